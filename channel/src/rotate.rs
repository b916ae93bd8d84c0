//! Key rotation (issue #14, "rotate any role's keys, root included, with thresholds"):
//! a new root.json, version N+1, in which one role's keys are replaced, then whatever the
//! rotated role signs re-signed with the new keys so that the repository stays loadable.
//!
//! TUF §5.3.4: a client that trusts root version N accepts N+1 only when N+1 is signed by a
//! threshold of N's root keys **and** a threshold of N+1's own root keys. Clients walk
//! `N+1.root.json`, `N+2.root.json`, … one version at a time from the root they pinned, so
//! `DIR/root.json` (version 1) is never rewritten and every intermediate root stays.
//!
//! tough's `SignedRole::new` signs with the keys the signing root lists for the role, which
//! cannot express "the old root's keys and the new root's keys": the signatures are made here
//! over tough's own canonical form ([`Role::canonical_form`], what `Root::verify_role`
//! checks), and every result is verified with `Root::verify_role` against the new root (and,
//! for a root, the old one) before anything is written.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::{Ed25519Key, Ed25519Scheme, Key};
use tough::schema::{Hashes, Metafile, Role as TufRole, RoleKeys, RoleType, Root, Signature, Signed};

use crate::error::{Error, Result};
use crate::repo::{Expiries, hex_of, load_own, runtime};

/// A role of the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Signs root.json: which keys every role has. Offline.
    Root,
    /// Signs targets.json: the packages.
    Targets,
    /// Signs snapshot.json: which targets.json is current.
    Snapshot,
    /// Signs timestamp.json: which snapshot is current. Online.
    Timestamp,
}

impl Role {
    /// The role's name in TUF metadata (`root`, `targets`, …).
    pub fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }

    fn tuf(self) -> RoleType {
        match self {
            Role::Root => RoleType::Root,
            Role::Targets => RoleType::Targets,
            Role::Snapshot => RoleType::Snapshot,
            Role::Timestamp => RoleType::Timestamp,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What to rotate, and the key files to sign with.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The role whose keys are replaced.
    pub role: Role,
    /// The role's new keys. Secret keys (`NAME.key`) sign; a public key (`NAME.pub`) is
    /// listed only. A threshold of them must be secret: they sign the new root (root) or the
    /// metadata re-signed with them (targets, snapshot, timestamp).
    pub new_keys: Vec<PathBuf>,
    /// How many of the new keys must sign the role's metadata.
    pub threshold: u64,
    /// Secret root keys of the current root, at least its root threshold.
    pub root_keys: Vec<PathBuf>,
    /// Secret targets keys: needed to re-sign targets.json — never, as a targets rotation
    /// signs with the new keys; given for a targets rotation, the old keys sign too.
    pub targets_keys: Vec<PathBuf>,
    /// Secret snapshot keys: needed after a targets rotation (a new snapshot.json lists
    /// the new targets.json); given for a snapshot rotation, the old keys sign too.
    pub snapshot_keys: Vec<PathBuf>,
    /// Secret timestamp keys: needed after a targets or snapshot rotation; given for a
    /// timestamp rotation, the old keys sign too.
    pub timestamp_keys: Vec<PathBuf>,
}

/// What [`rotate`] wrote.
#[derive(Debug)]
pub struct Rotated {
    /// The rotated role.
    pub role: Role,
    /// The new root.json version.
    pub root_version: u64,
    /// The role's key ids (hex) in the new root, in the order given.
    pub key_ids: Vec<String>,
    /// The role's threshold in the new root.
    pub threshold: u64,
    /// The files written, in the order they were put in place.
    pub written: Vec<PathBuf>,
    /// Whether the re-signed metadata is also accepted under the previous root (the rotated
    /// role's old keys signed it too), so that a client polling between the writes sees a
    /// consistent repository. Always true for a root rotation, which writes one file.
    pub accepted_by_previous_root: bool,
}

/// A key named on the command line: a secret key, which can sign, or a public key.
struct RoleKey {
    path: PathBuf,
    id: Decoded<Hex>,
    key: Key,
    secret: Option<SigningKey>,
}

impl RoleKey {
    fn load(path: &Path) -> Result<RoleKey> {
        let bad = |msg: &str| Error::Key { path: path.to_path_buf(), msg: msg.to_string() };
        let bytes = std::fs::read(path).map_err(Error::io(path))?;
        let not_a_key = "not a key: neither an Ed25519 secret key (PKCS#8 PEM, pkgtool keygen's NAME.key) \
                         nor an Ed25519 public key (SPKI PEM, NAME.pub)";
        let text = String::from_utf8(bytes).map_err(|_| bad(not_a_key))?;
        let (public, secret) = if let Ok(sk) = SigningKey::from_pkcs8_pem(&text) {
            (sk.verifying_key(), Some(sk))
        } else if let Ok(vk) = VerifyingKey::from_public_key_pem(&text) {
            (vk, None)
        } else {
            return Err(bad(not_a_key));
        };
        let key = Key::Ed25519 {
            keyval: Ed25519Key { public: public.to_bytes().to_vec().into(), _extra: HashMap::new() },
            scheme: Ed25519Scheme::Ed25519,
            _extra: HashMap::new(),
        };
        let id = key.key_id().map_err(|e| bad(&format!("cannot compute its TUF key id: {e}")))?;
        Ok(RoleKey { path: path.to_path_buf(), id, key, secret })
    }

    /// Loads a key that must sign: a secret key.
    fn load_secret(path: &Path, flag: &str) -> Result<RoleKey> {
        let k = RoleKey::load(path)?;
        if k.secret.is_none() {
            return Err(Error::Key {
                path: path.to_path_buf(),
                msg: format!("a public key cannot sign: {flag} takes the secret key (NAME.key)"),
            });
        }
        Ok(k)
    }
}

fn refused(what: &Path, msg: String) -> Error {
    Error::Refused { what: what.display().to_string(), msg }
}

fn role_keys(root: &Root, role: RoleType) -> Result<&RoleKeys> {
    root.roles.get(&role).ok_or_else(|| Error::Refused {
        what: format!("root version {}", root.version),
        msg: format!("lists no {role} role"),
    })
}

/// Signs `role` with every key of `signers` (secret keys, distinct ids) over tough's
/// canonical form, and serializes it as tough writes metadata (pretty JSON and a newline).
fn sign<T: TufRole + Serialize>(role: T, signers: &[&RoleKey], what: &Path) -> Result<(Signed<T>, Vec<u8>)> {
    let data = role
        .canonical_form()
        .map_err(|e| refused(what, format!("cannot put the {} metadata in canonical form: {e}", T::TYPE)))?;
    let mut signatures: Vec<Signature> = Vec::new();
    for k in signers {
        let Some(secret) = &k.secret else { continue };
        if signatures.iter().any(|s| s.keyid == k.id) {
            continue;
        }
        signatures.push(Signature { keyid: k.id.clone(), sig: secret.sign(&data).to_bytes().to_vec().into() });
    }
    let signed = Signed { signed: role, signatures };
    let mut buffer = serde_json::to_vec_pretty(&signed)
        .map_err(|e| refused(what, format!("cannot serialize the {} metadata: {e}", T::TYPE)))?;
    buffer.push(b'\n');
    Ok((signed, buffer))
}

/// The version after `v`; refused at the end of the range (a repository no tool wrote).
fn next(v: NonZeroU64, what: &str, dir: &Path) -> Result<NonZeroU64> {
    v.checked_add(1).ok_or_else(|| refused(dir, format!("{what} is at the last possible version {v}")))
}

/// The snapshot/timestamp entry describing a metadata file.
fn metafile(buffer: &[u8], version: NonZeroU64) -> Metafile {
    Metafile {
        length: Some(buffer.len() as u64),
        hashes: Some(Hashes { sha256: digest(&SHA256, buffer).as_ref().to_vec().into(), _extra: HashMap::new() }),
        version,
        _extra: HashMap::new(),
    }
}

/// A file written under a temporary name in the metadata directory, put in place by
/// [`Staged::commit`]; dropped uncommitted, it is removed.
struct Staged {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    /// Refuse to replace an existing file (a root version: two rotations racing).
    no_clobber: bool,
}

impl Staged {
    fn new(metadata: &Path, name: &str, bytes: &[u8], no_clobber: bool) -> Result<Staged> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(metadata)
            .map_err(Error::io(metadata))?;
        let path = tmp.path().to_path_buf();
        tmp.write_all(bytes).map_err(Error::io(&path))?;
        tmp.as_file().sync_all().map_err(Error::io(&path))?;
        Ok(Staged { tmp, dest: metadata.join(name), no_clobber })
    }

    fn commit(self) -> Result<PathBuf> {
        let dest = self.dest;
        let r = if self.no_clobber { self.tmp.persist_noclobber(&dest) } else { self.tmp.persist(&dest) };
        r.map_err(|e| Error::Io { path: dest.clone(), source: e.error })?;
        Ok(dest)
    }
}

/// What re-signing after a rotation knows.
struct Resign<'a> {
    dir: &'a Path,
    /// The rotated role.
    role: Role,
    /// Its new keys.
    new: &'a [RoleKey],
    old_root: &'a Root,
    new_root: &'a Root,
}

impl<'a> Resign<'a> {
    /// The keys that sign role `r`'s re-signed metadata: for the rotated role its new keys,
    /// and its old ones when given (so that the previous root accepts the result as well);
    /// for another role the keys given for it, which the new root (unchanged for that role)
    /// must list, at least its threshold.
    fn signers(&self, r: Role, given: &'a [RoleKey], flag: &str) -> Result<Vec<&'a RoleKey>> {
        let Resign { dir, role, new, old_root, new_root } = *self;
        let old_version = old_root.version.get();
        let old_ids = &role_keys(old_root, r.tuf())?.keyids;
        let new_role = role_keys(new_root, r.tuf())?;
        let mut out: Vec<&RoleKey> = Vec::new();
        if r == role {
            out.extend(new.iter());
        }
        for k in given {
            let listed = new_role.keyids.contains(&k.id) || (r == role && old_ids.contains(&k.id));
            if !listed {
                return Err(refused(
                    &k.path,
                    format!(
                        "{flag}: not a {r} key of root version {old_version} or {} (key id {}); nothing was written",
                        new_root.version,
                        hex_of(&k.id)
                    ),
                ));
            }
            out.push(k);
        }
        let valid: HashSet<&Decoded<Hex>> =
            out.iter().filter(|k| k.secret.is_some() && new_role.keyids.contains(&k.id)).map(|k| &k.id).collect();
        if (valid.len() as u64) < new_role.threshold.get() {
            return Err(refused(
                dir,
                format!(
                    "re-signing {r}.json after the {role} rotation needs {} {r} key(s) ({flag}), {} given; \
                     nothing was written",
                    new_role.threshold,
                    valid.len()
                ),
            ));
        }
        Ok(out)
    }
}

/// Rotates `rot.role`'s keys in the repository in `dir`: writes root.json version N+1 and,
/// for an online role, what that role signs, re-signed. Refuses, writing nothing, when the
/// root keys given do not reach the current root threshold, the threshold is not between 1
/// and the number of new keys, the new keys repeat one another, or a key needed to re-sign
/// is missing.
pub fn rotate(dir: &Path, rot: &Rotation, exp: &Expiries) -> Result<Rotated> {
    runtime(dir)?.block_on(rotate_async(dir, rot, exp))
}

async fn rotate_async(dir: &Path, rot: &Rotation, exp: &Expiries) -> Result<Rotated> {
    let role = rot.role;
    let n_new = rot.new_keys.len() as u64;
    if rot.threshold < 1 || rot.threshold > n_new {
        return Err(refused(
            dir,
            format!(
                "threshold {}: must be between 1 and the number of new {role} keys ({n_new}); nothing was written",
                rot.threshold
            ),
        ));
    }
    let mut new: Vec<RoleKey> = Vec::new();
    for p in &rot.new_keys {
        let k = RoleKey::load(p)?;
        if let Some(first) = new.iter().find(|o| o.id == k.id) {
            return Err(refused(
                p,
                format!("the same key as {} (new keys must be distinct); nothing was written", first.path.display()),
            ));
        }
        new.push(k);
    }
    let new_signing = new.iter().filter(|k| k.secret.is_some()).count() as u64;
    if new_signing < rot.threshold {
        let why = if role == Role::Root {
            "a new root must be signed by a threshold of its own keys too (TUF 5.3.4)"
        } else {
            "they sign the re-signed metadata"
        };
        return Err(refused(
            dir,
            format!(
                "{new_signing} of the new {role} keys are secret keys, the threshold is {}: {why}; \
                 give the secret keys (NAME.key); nothing was written",
                rot.threshold
            ),
        ));
    }
    let load_all = |paths: &[PathBuf], flag: &str| -> Result<Vec<RoleKey>> {
        paths.iter().map(|p| RoleKey::load_secret(p, flag)).collect()
    };
    let root_keys = load_all(&rot.root_keys, "--root-key")?;
    let targets_keys = load_all(&rot.targets_keys, "--targets-key")?;
    let snapshot_keys = load_all(&rot.snapshot_keys, "--snapshot-key")?;
    let timestamp_keys = load_all(&rot.timestamp_keys, "--timestamp-key")?;

    let repo = load_own(dir).await?;
    let old_root = repo.root().signed.clone();
    let old_version = old_root.version.get();

    // The current root's root keys: every key given must be one, and together they must
    // reach its threshold.
    let old_root_role = role_keys(&old_root, RoleType::Root)?;
    let mut root_ids = HashSet::new();
    for k in &root_keys {
        if !old_root_role.keyids.contains(&k.id) {
            return Err(refused(
                &k.path,
                format!("not a root key of root version {old_version} (key id {}); nothing was written", hex_of(&k.id)),
            ));
        }
        root_ids.insert(k.id.clone());
    }
    if (root_ids.len() as u64) < old_root_role.threshold.get() {
        return Err(refused(
            dir,
            format!(
                "{} distinct root key(s) of root version {old_version} given, its root threshold is {}: \
                 a new root must be signed by a threshold of the current root's keys (TUF 5.3.4); \
                 nothing was written",
                root_ids.len(),
                old_root_role.threshold
            ),
        ));
    }

    // The new root: the role's keys replaced, keys no role lists any more dropped.
    let mut new_root = old_root.clone();
    new_root.version = next(old_root.version, "root.json", dir)?;
    new_root.expires = exp.root;
    let threshold = NonZeroU64::new(rot.threshold).unwrap_or(NonZeroU64::MIN);
    for k in &new {
        new_root.keys.insert(k.id.clone(), k.key.clone());
    }
    new_root.roles.insert(
        role.tuf(),
        RoleKeys { keyids: new.iter().map(|k| k.id.clone()).collect(), threshold, _extra: HashMap::new() },
    );
    let listed: HashSet<Decoded<Hex>> = new_root.roles.values().flat_map(|r| r.keyids.iter().cloned()).collect();
    new_root.keys.retain(|id, _| listed.contains(id));

    let metadata = dir.join("metadata");
    let consistent = new_root.consistent_snapshot;
    let root_signers: Vec<&RoleKey> =
        root_keys.iter().chain(if role == Role::Root { new.as_slice() } else { &[] }).collect();
    let (signed_root, root_buf) = sign(new_root.clone(), &root_signers, dir)?;
    let check = |r: &Root, which: &str, what: &str, res: std::result::Result<(), tough::schema::Error>| {
        res.map_err(|e| {
            refused(dir, format!("the new {what} does not verify under {which} (root version {}): {e}", r.version))
        })
    };
    check(&old_root, "the current root", "root", old_root.verify_role(&signed_root))?;
    check(&new_root, "itself", "root", new_root.verify_role(&signed_root))?;

    // What the rotated role signs, re-signed (Resign::signers says with which keys).
    let ctx = Resign { dir, role, new: &new, old_root: &old_root, new_root: &new_root };

    let mut staged: Vec<Staged> = Vec::new();
    let mut accepted_by_previous_root = true;
    let mut snapshot_meta = None;
    let mut timestamp_meta = None;
    if role == Role::Targets {
        let signers = ctx.signers(Role::Targets, &targets_keys, "--targets-key")?;
        let mut t = repo.targets().signed.clone();
        t.version = next(t.version, "targets.json", dir)?;
        t.expires = exp.targets;
        let version = t.version;
        let (signed, buf) = sign(t, &signers, dir)?;
        check(&new_root, "the new root", "targets.json", new_root.verify_role(&signed))?;
        accepted_by_previous_root &= old_root.verify_role(&signed).is_ok();
        snapshot_meta = Some(metafile(&buf, version));
        staged.push(Staged::new(&metadata, &signed.signed.filename(consistent), &buf, false)?);
    }
    if matches!(role, Role::Targets | Role::Snapshot) {
        let signers = ctx.signers(Role::Snapshot, &snapshot_keys, "--snapshot-key")?;
        let mut s = repo.snapshot().signed.clone();
        s.version = next(s.version, "snapshot.json", dir)?;
        s.expires = exp.snapshot;
        if let Some(m) = snapshot_meta.take() {
            s.meta.insert("targets.json".to_owned(), m);
        }
        let version = s.version;
        let (signed, buf) = sign(s, &signers, dir)?;
        check(&new_root, "the new root", "snapshot.json", new_root.verify_role(&signed))?;
        accepted_by_previous_root &= old_root.verify_role(&signed).is_ok();
        timestamp_meta = Some(metafile(&buf, version));
        staged.push(Staged::new(&metadata, &signed.signed.filename(consistent), &buf, false)?);
    }
    if role != Role::Root {
        let signers = ctx.signers(Role::Timestamp, &timestamp_keys, "--timestamp-key")?;
        let mut ts = repo.timestamp().signed.clone();
        ts.version = next(ts.version, "timestamp.json", dir)?;
        ts.expires = exp.timestamp;
        if let Some(m) = timestamp_meta.take() {
            ts.meta.insert("snapshot.json".to_owned(), m);
        }
        let (signed, buf) = sign(ts, &signers, dir)?;
        check(&new_root, "the new root", "timestamp.json", new_root.verify_role(&signed))?;
        accepted_by_previous_root &= old_root.verify_role(&signed).is_ok();
        staged.push(Staged::new(&metadata, &signed.signed.filename(consistent), &buf, false)?);
    }
    staged.push(Staged::new(&metadata, &signed_root.signed.filename(true), &root_buf, true)?);

    // Everything is signed, verified and on disk under temporary names; now the renames, in
    // the order a client reads the files in reverse: the new N.targets.json and
    // N.snapshot.json first (versioned names nothing refers to yet, invisible to clients),
    // then timestamp.json (which makes them current), then N+1.root.json last. A client
    // polling meanwhile sees the old repository, or the new metadata under the old root —
    // which it accepts when the rotated role's old keys signed too (`--targets-key` &c. given
    // the old key; `accepted_by_previous_root`), and otherwise refuses as a failed check,
    // never a wrong answer, until the root lands a moment later — or the new repository.
    // Writing the root first would be no better: the new root with the old timestamp is
    // refused just the same, and not even the old keys' signatures could bridge it. A rename
    // that fails part-way leaves at most new versioned files that nothing lists (the next
    // rotation or `repo add` replaces them), never a listed file that is missing.
    let mut written = Vec::new();
    for s in staged {
        written.push(s.commit()?);
    }
    if let Ok(d) = std::fs::File::open(&metadata) {
        // Best effort: make the renames durable (not possible on every platform).
        let _ = d.sync_all();
    }
    Ok(Rotated {
        role,
        root_version: new_root.version.get(),
        key_ids: new.iter().map(|k| hex_of(&k.id)).collect(),
        threshold: rot.threshold,
        written,
        accepted_by_previous_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{Expiries, RoleKeyFiles, init};
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

    /// Writes key `n` as `NAME.key` (secret) and `NAME.pub` in `dir`; returns the secret's path.
    fn key(dir: &Path, name: &str, n: u8) -> PathBuf {
        let sk = SigningKey::from_bytes(&[n; 32]);
        let secret = dir.join(format!("{name}.key"));
        std::fs::write(&secret, sk.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        std::fs::write(dir.join(format!("{name}.pub")), sk.verifying_key().to_public_key_pem(LineEnding::LF).unwrap())
            .unwrap();
        secret
    }

    struct Fixture {
        _tmp: tempfile::TempDir,
        dir: PathBuf,
        keys: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let keys = tmp.path().join("keys");
            std::fs::create_dir_all(&keys).unwrap();
            let dir = tmp.path().join("repo");
            let files = RoleKeyFiles {
                root: vec![key(&keys, "root", 1)],
                targets: vec![key(&keys, "targets", 2)],
                snapshot: vec![key(&keys, "snapshot", 3)],
                timestamp: vec![key(&keys, "timestamp", 4)],
            };
            init(&dir, &files, 1, &exp()).unwrap();
            Fixture { _tmp: tmp, dir, keys }
        }

        fn k(&self, name: &str) -> PathBuf {
            self.keys.join(name)
        }

        fn rotation(&self, role: Role, new: &[&str], threshold: u64) -> Rotation {
            Rotation {
                role,
                new_keys: new.iter().map(|n| self.k(n)).collect(),
                threshold,
                root_keys: vec![self.k("root.key")],
                targets_keys: vec![],
                snapshot_keys: vec![],
                timestamp_keys: vec![],
            }
        }

        fn metadata_files(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(self.dir.join("metadata"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }

        fn load(&self) -> tough::Repository {
            runtime(&self.dir).unwrap().block_on(load_own(&self.dir)).unwrap()
        }
    }

    fn exp() -> Expiries {
        Expiries::from_now(jiff::Timestamp::now())
    }

    fn id_of(path: &Path) -> Decoded<Hex> {
        RoleKey::load(path).unwrap().id
    }

    #[test]
    fn a_root_rotation_verifies_under_the_old_root_and_the_new_one() {
        let f = Fixture::new();
        key(&f.keys, "a", 10);
        key(&f.keys, "b", 11);
        let r = rotate(&f.dir, &f.rotation(Role::Root, &["a.key", "b.key"], 2), &exp()).unwrap();
        assert_eq!((r.root_version, r.threshold, r.key_ids.len()), (2, 2, 2));
        assert_eq!(r.written, [f.dir.join("metadata/2.root.json")]);
        let repo = f.load();
        let v2 = repo.root();
        assert_eq!(v2.signed.version.get(), 2);
        assert_eq!(v2.signed.roles[&RoleType::Root].keyids, [id_of(&f.k("a.key")), id_of(&f.k("b.key"))]);
        // Checked with tough's own verification, as its client does.
        let v1: Signed<Root> =
            serde_json::from_slice(&std::fs::read(f.dir.join("metadata/1.root.json")).unwrap()).unwrap();
        v1.signed.verify_role(v2).unwrap();
        v2.signed.verify_role(v2).unwrap();
        // The old root key is no longer listed; the other roles' keys are.
        assert!(!v2.signed.keys.contains_key(&id_of(&f.k("root.key"))));
        assert!(v2.signed.keys.contains_key(&id_of(&f.k("timestamp.key"))));
    }

    #[test]
    fn a_snapshot_rotation_resigns_snapshot_and_timestamp() {
        let f = Fixture::new();
        key(&f.keys, "snapshot2", 12);
        let before = f.load();
        let (sv, tv) = (before.snapshot().signed.version.get(), before.timestamp().signed.version.get());
        let mut rot = f.rotation(Role::Snapshot, &["snapshot2.key"], 1);
        // Without the timestamp key the new snapshot cannot be made current: refused.
        let err = rotate(&f.dir, &rot, &exp()).unwrap_err();
        assert!(err.to_string().contains("--timestamp-key"), "{err}");
        rot.timestamp_keys = vec![f.k("timestamp.key")];
        rot.snapshot_keys = vec![f.k("snapshot.key")];
        let r = rotate(&f.dir, &rot, &exp()).unwrap();
        assert!(r.accepted_by_previous_root, "the old snapshot key signed too");
        let after = f.load();
        assert_eq!(after.root().signed.version.get(), 2);
        assert_eq!(after.snapshot().signed.version.get(), sv + 1);
        assert_eq!(after.timestamp().signed.version.get(), tv + 1);
        let ids: Vec<&Decoded<Hex>> = after.snapshot().signatures.iter().map(|s| &s.keyid).collect();
        assert_eq!(ids, [&id_of(&f.k("snapshot2.key")), &id_of(&f.k("snapshot.key"))]);
    }

    #[test]
    fn refusals_leave_the_metadata_directory_as_it_was() {
        let f = Fixture::new();
        key(&f.keys, "a", 10);
        key(&f.keys, "b", 11);
        let before = f.metadata_files();
        let refused = |rot: Rotation| {
            let err = rotate(&f.dir, &rot, &exp()).unwrap_err();
            assert_eq!(f.metadata_files(), before, "{err}");
            err.to_string()
        };
        // Public keys cannot sign the new root.
        let msg = refused(f.rotation(Role::Root, &["a.pub", "b.key"], 2));
        assert!(msg.contains("secret"), "{msg}");
        // The same key as a secret and a public key.
        let msg = refused(f.rotation(Role::Root, &["a.key", "a.pub"], 1));
        assert!(msg.contains("distinct"), "{msg}");
        let msg = refused(f.rotation(Role::Timestamp, &["a.key"], 2));
        assert!(msg.contains("threshold 2"), "{msg}");
        let msg = refused(f.rotation(Role::Timestamp, &["a.key"], 0));
        assert!(msg.contains("threshold 0"), "{msg}");
        // A wrong key for a role that is re-signed fails after the root is signed, before
        // anything is written.
        let mut rot = f.rotation(Role::Targets, &["a.key"], 1);
        rot.snapshot_keys = vec![f.k("timestamp.key")];
        rot.timestamp_keys = vec![f.k("timestamp.key")];
        let msg = refused(rot);
        assert!(msg.contains("timestamp.key") && msg.contains("not a snapshot key"), "{msg}");
        // A root key that is not one.
        let mut rot = f.rotation(Role::Root, &["a.key"], 1);
        rot.root_keys = vec![f.k("a.key")];
        let msg = refused(rot);
        assert!(msg.contains("not a root key"), "{msg}");
    }

    #[test]
    fn a_staged_file_that_is_not_committed_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = Staged::new(tmp.path(), "timestamp.json", b"{}", false).unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        drop(staged);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        let dest = Staged::new(tmp.path(), "2.root.json", b"{}", true).unwrap().commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"{}");
        // A root version is never replaced.
        assert!(Staged::new(tmp.path(), "2.root.json", b"[]", true).unwrap().commit().is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
