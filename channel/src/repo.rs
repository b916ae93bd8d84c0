//! Publishing: a TUF repository of packages on disk, made and changed with tough's
//! repository editor (issue #14, "Publishing").
//!
//! Layout of a repository directory `DIR` (copy it to any HTTP server, CDN, object store or
//! removable medium as it is):
//!
//! - `DIR/root.json` — the initial root (version 1), what administrators pin with
//!   `hotfix subscribe URL --root root.json`;
//! - `DIR/metadata/` — `N.root.json`, `N.targets.json`, `N.snapshot.json` (consistent
//!   snapshots: every file but `timestamp.json` is immutable and cacheable forever) and
//!   `timestamp.json`;
//! - `DIR/targets/` — each package as `<sha256>.<ID>.pkg`.
//!
//! Keys are `pkgtool keygen` Ed25519 keys (PKCS#8 PEM), one per online role at [`init`]
//! (root: one or more, with a threshold). The root keys sign only at [`init`] and at a
//! rotation ([`crate::rotate`]) and are kept offline; the targets and snapshot keys sign at
//! [`add`] (the release pipeline's); the timestamp key signs at [`timestamp`], the only key
//! that must be online (a periodic job re-signs `timestamp.json` before it expires). After a
//! rotation a role may have several keys and a threshold: give that many.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jiff::Timestamp;
use tough::editor::RepositoryEditor;
use tough::editor::signed::{PathExists, SignedRole};
use tough::key_source::KeySource;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Target};
use tough::sign::{Sign, parse_keypair};
use tough::{ExpirationEnforcement, RepositoryLoader, TargetName};

use crate::error::{Error, Result};
use crate::meta::{CUSTOM_KEY, PackageMeta, direct_supersedes};

/// The TUF specification version the metadata declares.
const SPEC_VERSION: &str = "1.0.0";

/// An Ed25519 key made by `pkgtool keygen` (or `openssl genpkey -algorithm ed25519`):
/// PKCS#8 PEM, which tough's own `LocalKeySource` does not read (it takes DER for Ed25519).
#[derive(Debug)]
pub struct PemKey {
    /// The key file.
    pub path: PathBuf,
}

impl PemKey {
    fn load(&self) -> Result<Box<dyn Sign>> {
        let bad = |msg: String| Error::Key { path: self.path.clone(), msg };
        let pem = std::fs::read_to_string(&self.path).map_err(Error::io(&self.path))?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| bad(format!("not an Ed25519 PKCS#8 PEM key: {e}")))?;
        let der = key.to_pkcs8_der().map_err(|e| bad(format!("cannot re-encode the key: {e}")))?;
        let pair = parse_keypair(der.as_bytes()).map_err(|e| bad(format!("refused by the TUF signer: {e}")))?;
        Ok(Box::new(pair))
    }
}

#[tough::async_trait]
impl KeySource for PemKey {
    async fn as_sign(&self) -> std::result::Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.load()?)
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err(format!("{}: pkgtool never writes a key through the TUF editor", self.path.display()).into())
    }
}

/// The four roles' key files. A role whose threshold is above 1 (after a
/// [`crate::rotate`]) needs that many of its keys; [`init`] takes one key per online role.
#[derive(Clone, Debug)]
pub struct RoleKeyFiles {
    /// Sign root.json; offline. Only [`init`] uses them.
    pub root: Vec<PathBuf>,
    /// Sign targets.json (which packages, with their length, hash and metadata).
    pub targets: Vec<PathBuf>,
    /// Sign snapshot.json (which targets.json version is current).
    pub snapshot: Vec<PathBuf>,
    /// Sign timestamp.json (which snapshot is current; short-lived); online.
    pub timestamp: Vec<PathBuf>,
}

impl RoleKeyFiles {
    /// The online roles' keys, for tough's editor (which picks each role's own).
    fn online(&self) -> Vec<&Path> {
        self.targets.iter().chain(&self.snapshot).chain(&self.timestamp).map(PathBuf::as_path).collect()
    }
}

/// When each role's metadata expires.
#[derive(Clone, Copy, Debug)]
pub struct Expiries {
    /// root.json.
    pub root: Timestamp,
    /// targets.json.
    pub targets: Timestamp,
    /// snapshot.json.
    pub snapshot: Timestamp,
    /// timestamp.json.
    pub timestamp: Timestamp,
}

impl Expiries {
    /// The defaults from `now`: root a year, targets and snapshot 90 days, timestamp 7 days.
    pub fn from_now(now: Timestamp) -> Expiries {
        let days = |d: i64| now + jiff::SignedDuration::from_hours(24 * d);
        Expiries { root: days(365), targets: days(90), snapshot: days(90), timestamp: days(7) }
    }
}

pub(crate) fn keys(files: &[&Path]) -> Vec<Box<dyn KeySource>> {
    files.iter().map(|p| Box::new(PemKey { path: p.to_path_buf() }) as Box<dyn KeySource>).collect()
}

pub(crate) fn runtime(what: &Path) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io(what))
}

fn dir_url(dir: &Path) -> Result<url::Url> {
    let abs = std::path::absolute(dir).map_err(Error::io(dir))?;
    url::Url::from_directory_path(&abs)
        .map_err(|()| Error::Refused { what: dir.display().to_string(), msg: "not a usable directory path".into() })
}

pub(crate) fn nz(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN)
}

/// The next snapshot and timestamp versions of `repo` (every change signs both).
pub(crate) fn next_versions(repo: &tough::Repository) -> [u64; 2] {
    [repo.snapshot().signed.version.get() + 1, repo.timestamp().signed.version.get() + 1]
}

/// Gives `editor` the snapshot and timestamp versions `next` ([`next_versions`]), expiring
/// as `exp` says.
pub(crate) fn set_next_versions(editor: &mut RepositoryEditor, [snapshot, timestamp]: [u64; 2], exp: &Expiries) {
    editor
        .snapshot_version(nz(snapshot))
        .snapshot_expires(exp.snapshot)
        .timestamp_version(nz(timestamp))
        .timestamp_expires(exp.timestamp);
}

/// What [`init`] made.
#[derive(Debug)]
pub struct Init {
    /// The root.json to pin.
    pub root_json: PathBuf,
    /// Each role's (first) key id (hex), root, targets, snapshot, timestamp.
    pub key_ids: [String; 4],
    /// Every root key id (hex), in the order given.
    pub root_key_ids: Vec<String>,
}

/// Creates an empty repository in `dir` (which must not hold one): root.json version 1
/// with the root keys given and `root_threshold` (every one of them signs), one key per
/// other role with threshold 1, consistent snapshots, and empty targets, snapshot and
/// timestamp metadata.
pub fn init(dir: &Path, files: &RoleKeyFiles, root_threshold: u64, exp: &Expiries) -> Result<Init> {
    runtime(dir)?.block_on(init_async(dir, files, root_threshold, exp))
}

async fn init_async(dir: &Path, files: &RoleKeyFiles, root_threshold: u64, exp: &Expiries) -> Result<Init> {
    let metadata = dir.join("metadata");
    if metadata.exists() || dir.join("root.json").exists() {
        return Err(Error::Refused {
            what: dir.display().to_string(),
            msg: "already holds a repository (metadata/ or root.json)".into(),
        });
    }
    let n_root = files.root.len() as u64;
    let threshold = NonZeroU64::new(root_threshold).filter(|t| t.get() <= n_root).ok_or_else(|| Error::Refused {
        what: dir.display().to_string(),
        msg: format!("root threshold {root_threshold}: must be between 1 and the number of root keys ({n_root})"),
    })?;
    for (role, given) in [("targets", &files.targets), ("snapshot", &files.snapshot), ("timestamp", &files.timestamp)] {
        if given.len() != 1 {
            return Err(Error::Refused {
                what: dir.display().to_string(),
                msg: format!(
                    "{} {role} keys given: a new repository has one key per online role \
                     (`pkgtool repo rotate` gives a role several, with a threshold)",
                    given.len()
                ),
            });
        }
    }
    let roles = [
        (RoleType::Root, &files.root),
        (RoleType::Targets, &files.targets),
        (RoleType::Snapshot, &files.snapshot),
        (RoleType::Timestamp, &files.timestamp),
    ];
    let mut root = Root {
        spec_version: SPEC_VERSION.into(),
        consistent_snapshot: true,
        version: NonZeroU64::MIN,
        expires: exp.root,
        keys: HashMap::new(),
        roles: HashMap::new(),
        _extra: HashMap::new(),
    };
    let mut key_ids: [String; 4] = Default::default();
    let mut root_key_ids = Vec::new();
    for (i, (role, paths)) in roles.iter().enumerate() {
        let mut ids = Vec::new();
        for path in paths.iter() {
            let key = PemKey { path: path.to_path_buf() }.load()?.tuf_key();
            let id = key.key_id().map_err(|e| Error::Key { path: path.to_path_buf(), msg: e.to_string() })?;
            if ids.contains(&id) {
                return Err(Error::Refused {
                    what: path.display().to_string(),
                    msg: format!("given twice as a {role} key (the keys of a role must be distinct)"),
                });
            }
            root.keys.insert(id.clone(), key);
            ids.push(id);
        }
        key_ids[i] = ids.first().map(|id| hex_of(id)).unwrap_or_default();
        if *role == RoleType::Root {
            root_key_ids = ids.iter().map(|id| hex_of(id)).collect();
        }
        let threshold = if *role == RoleType::Root { threshold } else { NonZeroU64::MIN };
        root.roles.insert(*role, RoleKeys { keyids: ids, threshold, _extra: HashMap::new() });
    }
    let holder = KeyHolder::Root(root.clone());
    let root_paths: Vec<&Path> = files.root.iter().map(PathBuf::as_path).collect();
    let signed_root = SignedRole::new(root, &holder, &keys(&root_paths), &SystemRandom::new()).await.map_err(|e| {
        let names: Vec<String> = files.root.iter().map(|p| p.display().to_string()).collect();
        Error::from_tough(names.join(", "), e)
    })?;
    std::fs::create_dir_all(&metadata).map_err(Error::io(&metadata))?;
    std::fs::create_dir_all(dir.join("targets")).map_err(Error::io(dir))?;
    signed_root.write(&metadata, true).await.map_err(|e| Error::from_tough(metadata.display().to_string(), e))?;
    let root_json = dir.join("root.json");
    std::fs::write(&root_json, signed_root.buffer()).map_err(Error::io(&root_json))?;

    let mut editor = RepositoryEditor::new(metadata.join("1.root.json"))
        .await
        .map_err(|e| Error::from_tough(metadata.display().to_string(), e))?;
    editor.targets_version(NonZeroU64::MIN).map_err(|e| Error::from_tough(dir.display().to_string(), e))?;
    editor.targets_expires(exp.targets).map_err(|e| Error::from_tough(dir.display().to_string(), e))?;
    editor
        .snapshot_version(NonZeroU64::MIN)
        .snapshot_expires(exp.snapshot)
        .timestamp_version(NonZeroU64::MIN)
        .timestamp_expires(exp.timestamp);
    let signed =
        editor.sign(&keys(&files.online())).await.map_err(|e| Error::from_tough(dir.display().to_string(), e))?;
    signed.write(&metadata).await.map_err(|e| Error::from_tough(metadata.display().to_string(), e))?;
    Ok(Init { root_json, key_ids, root_key_ids })
}

pub(crate) fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Loads the repository in `dir` as a client would, from its pinned root.json. The vendor
/// re-signs even a repository whose metadata has expired (that is how it is repaired), so
/// expiry is not enforced here — deliberately, and only here.
pub(crate) async fn load_own(dir: &Path) -> Result<tough::Repository> {
    let root_path = dir.join("root.json");
    let root = std::fs::read(&root_path).map_err(Error::io(&root_path))?;
    let base = dir_url(dir)?;
    let join = |p: &str| {
        base.join(p).map_err(|e| Error::Refused { what: base.to_string(), msg: format!("cannot join {p}: {e}") })
    };
    RepositoryLoader::new(&root, join("metadata/")?, join("targets/")?)
        .expiration_enforcement(ExpirationEnforcement::Unsafe)
        .load()
        .await
        .map_err(|e| Error::from_tough(dir.display().to_string(), e))
}

/// The release packages of a loaded repository: every target the top-level targets role
/// lists itself (not a delegated role's: the rollout role may not add packages, and
/// prerelease packages are [`crate::roles::prerelease_targets`]), with its metadata. A
/// target without `hotfix` custom metadata, or with metadata that does not parse, is an
/// error naming the target.
pub fn package_targets(repo: &tough::Repository) -> Result<Vec<crate::select::Candidate>> {
    let mut out = Vec::new();
    for (name, target) in &repo.targets().signed.targets {
        out.push(candidate(name.raw(), target)?);
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(out)
}

/// One package target with its metadata.
pub(crate) fn candidate(name: &str, target: &Target) -> Result<crate::select::Candidate> {
    let bad = |msg: String| Error::Refused { what: format!("target {name}"), msg };
    let value = target.custom.get(CUSTOM_KEY).ok_or_else(|| bad(format!("no \"{CUSTOM_KEY}\" custom metadata")))?;
    let meta: PackageMeta =
        serde_json::from_value(value.clone()).map_err(|e| bad(format!("bad \"{CUSTOM_KEY}\" metadata: {e}")))?;
    let sha256 = target.hashes.sha256.iter().map(|b| format!("{b:02x}")).collect();
    Ok(crate::select::Candidate { target: name.to_string(), length: target.length, sha256, meta })
}

/// [`load_own`], and the path of the current root.json (for the editor).
pub(crate) async fn load_own_for(dir: &Path) -> Result<(tough::Repository, PathBuf)> {
    let repo = load_own(dir).await?;
    let root = dir.join("metadata").join(format!("{}.root.json", repo.root().signed.version.get()));
    Ok((repo, root))
}

/// What [`add`] published.
#[derive(Debug)]
pub struct Added {
    /// The target's name.
    pub target: String,
    /// The metadata written, `supersedes` included.
    pub meta: PackageMeta,
    /// The new targets.json version.
    pub targets_version: u64,
}

/// Adds the package at `pkg`, whose manifest was authenticated into `meta` by the caller,
/// as target `<ID>.pkg`: copied to `targets/` under its hash, listed in a new targets.json
/// with `meta` (its `supersedes` computed against the packages already listed), then new
/// snapshot and timestamp. One targets.json signature whatever the number of packages.
/// A package id already listed is refused.
pub fn add(dir: &Path, pkg: &Path, meta: PackageMeta, files: &RoleKeyFiles, exp: &Expiries) -> Result<Added> {
    runtime(dir)?.block_on(add_async(dir, pkg, meta, files, exp))
}

async fn add_async(
    dir: &Path,
    pkg: &Path,
    mut meta: PackageMeta,
    files: &RoleKeyFiles,
    exp: &Expiries,
) -> Result<Added> {
    let repo = load_own(dir).await?;
    let existing = package_targets(&repo)?;
    if let Some(c) = existing.iter().find(|c| c.meta.id.same_as(&meta.id)) {
        return Err(Error::Refused {
            what: pkg.display().to_string(),
            msg: format!("package {} is already published as target {}", meta.id, c.target),
        });
    }
    meta.supersedes = direct_supersedes(&meta, &existing.iter().map(|c| &c.meta).collect::<Vec<_>>());
    let name_str = format!("{}.pkg", meta.id);
    let name = TargetName::new(name_str.clone()).map_err(|e| Error::from_tough(name_str.clone(), e))?;
    let mut target = Target::from_path(pkg)
        .await
        .map_err(|e| Error::Refused { what: pkg.display().to_string(), msg: e.to_string() })?;
    let value =
        serde_json::to_value(&meta).map_err(|e| Error::Refused { what: name_str.clone(), msg: e.to_string() })?;
    target.custom.insert(CUSTOM_KEY.into(), value);

    let targets_version = repo.targets().signed.version.get() + 1;
    let next = next_versions(&repo);
    let root_version = repo.root().signed.version.get();
    let metadata = dir.join("metadata");
    let tough_err = |e| Error::from_tough(dir.display().to_string(), e);
    let mut editor = RepositoryEditor::from_repo(metadata.join(format!("{root_version}.root.json")), repo)
        .await
        .map_err(tough_err)?;
    editor.add_target(name.clone(), target).map_err(tough_err)?;
    editor.targets_version(nz(targets_version)).map_err(tough_err)?;
    editor.targets_expires(exp.targets).map_err(tough_err)?;
    set_next_versions(&mut editor, next, exp);
    let signed = editor.sign(&keys(&files.online())).await.map_err(tough_err)?;
    // The package first, then the metadata that lists it, timestamp.json last: a client
    // polling meanwhile sees the old repository or the new one, never a listed package
    // that is not there yet.
    let targets_dir = dir.join("targets");
    signed.copy_target(pkg, &targets_dir, PathExists::Fail, Some(&name)).await.map_err(tough_err)?;
    signed.write(&metadata).await.map_err(tough_err)?;
    Ok(Added { target: name_str, meta, targets_version })
}

/// Re-signs `timestamp.json` with a new version and expiry, with the timestamp keys only
/// (as many as the role's threshold). Returns the new version.
pub fn timestamp(dir: &Path, timestamp_keys: &[PathBuf], expires: Timestamp) -> Result<u64> {
    runtime(dir)?.block_on(timestamp_async(dir, timestamp_keys, expires))
}

async fn timestamp_async(dir: &Path, timestamp_keys: &[PathBuf], expires: Timestamp) -> Result<u64> {
    let repo = load_own(dir).await?;
    let mut ts = repo.timestamp().signed.clone();
    ts.version = nz(ts.version.get() + 1);
    ts.expires = expires;
    let version = ts.version.get();
    let holder = KeyHolder::Root(repo.root().signed.clone());
    let paths: Vec<&Path> = timestamp_keys.iter().map(PathBuf::as_path).collect();
    let names: Vec<String> = timestamp_keys.iter().map(|p| p.display().to_string()).collect();
    let signed = SignedRole::new(ts, &holder, &keys(&paths), &SystemRandom::new())
        .await
        .map_err(|e| Error::from_tough(names.join(", "), e))?;
    let metadata = dir.join("metadata");
    signed.write(&metadata, true).await.map_err(|e| Error::from_tough(metadata.display().to_string(), e))?;
    Ok(version)
}
