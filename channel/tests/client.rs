//! The TUF client checks against repositories written by `repo` on disk, read through
//! `file://` URLs: freshness (freeze), rollback and mix-and-match are refused as trust
//! failures (exit 6), and the package metadata round-trips into the selection.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use hotfix_channel::Error;
use hotfix_channel::client::{Freshness, scan};
use hotfix_channel::meta::PackageMeta;
use hotfix_channel::repo::{self, Expiries, RoleKeyFiles};
use hotfix_channel::select::{LeftOutReason, RootView, select};
use hotfix_schema::{Channel, Kind, Name};
use jiff::Timestamp;
use url::Url;

struct Fixture {
    _t: tempfile::TempDir,
    dir: PathBuf,
    keys: RoleKeyFiles,
    state: PathBuf,
}

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn key(dir: &Path, name: &str, seed: u8) -> PathBuf {
    let p = dir.join(format!("{name}.key"));
    let pem = SigningKey::from_bytes(&[seed; 32]).to_pkcs8_pem(LineEnding::LF).unwrap();
    fs::write(&p, pem.as_bytes()).unwrap();
    p
}

impl Fixture {
    fn new() -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let keys = RoleKeyFiles {
            root: vec![key(t.path(), "root", 1)],
            targets: vec![key(t.path(), "targets", 2)],
            snapshot: vec![key(t.path(), "snapshot", 3)],
            timestamp: vec![key(t.path(), "timestamp", 4)],
        };
        let dir = t.path().join("repo");
        repo::init(&dir, &keys, 1, &Expiries::from_now(Timestamp::now())).unwrap();
        let state = t.path().join("state");
        fs::create_dir(&state).unwrap();
        Fixture { dir, keys, state, _t: t }
    }

    fn add(&self, id: &str, fixes: &[&str]) {
        let pkg = self.dir.parent().unwrap().join(format!("{id}.bytes"));
        fs::write(&pkg, format!("package {id}")).unwrap();
        let meta = PackageMeta {
            id: n(id),
            kind: Kind::Update,
            product: n("contoso"),
            baselines: vec![n("RTM")],
            baseline_level: None,
            channel: Channel::Release,
            fixes: fixes.iter().map(|f| n(f)).collect(),
            supersedes: vec![],
        };
        repo::add(&self.dir, &pkg, meta, &self.keys, &Expiries::from_now(Timestamp::now())).unwrap();
    }

    fn scan(&self, f: Freshness) -> Result<Vec<hotfix_channel::select::Candidate>, Error> {
        let url = Url::from_directory_path(&self.dir).unwrap();
        let root = fs::read(self.dir.join("root.json")).unwrap();
        scan(&url, &root, &self.state, f)
    }

    fn meta(&self, name: &str) -> PathBuf {
        self.dir.join("metadata").join(name)
    }
}

fn assert_trust_failure(r: Result<Vec<hotfix_channel::select::Candidate>, Error>, what: &str) {
    match r {
        Err(e @ (Error::Trust { .. } | Error::Expired { .. })) => {
            assert_eq!(e.exit_code(), 6);
            let text = e.to_string();
            assert!(text.contains("file://"), "names the repository: {text}");
            assert!(text.to_lowercase().contains(what), "says {what}: {text}");
        }
        other => panic!("expected a trust failure ({what}), got {other:?}"),
    }
}

#[test]
fn scanned_metadata_feeds_the_selection() {
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    f.add("KB5", &["KB4", "KB5"]);
    let cands = f.scan(Freshness::Enforce).unwrap();
    assert_eq!(cands.len(), 2);
    let root = RootView {
        product: Some(n("contoso")),
        baseline: Some((n("RTM"), 0)),
        installed: vec![n("RTM")],
        ..RootView::default()
    };
    let s = select(&root, &cands);
    assert_eq!(s.offered.len(), 1);
    assert_eq!(s.offered[0].candidate.meta.id.as_str(), "KB5");
    assert_eq!(s.offered[0].candidate.length, "package KB5".len() as u64);
    assert_eq!(s.left_out[0].reason, LeftOutReason::SupersededBy { by: n("KB5"), installed: false });
}

#[test]
fn an_expired_timestamp_is_refused_unless_expiry_is_explicitly_ignored() {
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    repo::timestamp(&f.dir, &f.keys.timestamp, "2020-01-01T00:00:00Z".parse().unwrap()).unwrap();
    assert_trust_failure(f.scan(Freshness::Enforce), "expired");
    assert_eq!(f.scan(Freshness::IgnoreExpiry).unwrap().len(), 1);
}

#[test]
fn an_older_timestamp_after_a_newer_one_was_seen_is_refused() {
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    let old = fs::read(f.meta("timestamp.json")).unwrap();
    f.add("KB5", &["KB4", "KB5"]);
    assert_eq!(f.scan(Freshness::Enforce).unwrap().len(), 2);
    // The server (or a mirror) goes back to the earlier, validly signed timestamp.
    fs::write(f.meta("timestamp.json"), old).unwrap();
    assert_trust_failure(f.scan(Freshness::Enforce), "previously fetched version 3");
}

#[test]
fn a_targets_file_from_another_snapshot_is_refused() {
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    f.add("KB5", &["KB4", "KB5"]);
    // Mix and match: the current snapshot (version 3) names targets version 3; serve the
    // validly signed version 2 under that name.
    fs::copy(f.meta("2.targets.json"), f.meta("3.targets.json")).unwrap();
    let r = f.scan(Freshness::Enforce);
    assert!(matches!(r, Err(Error::Trust { .. })), "{r:?}");
    let text = r.unwrap_err().to_string();
    assert!(text.contains("3.targets.json"), "names the file: {text}");
}

#[test]
fn a_snapshot_not_named_by_the_timestamp_is_refused() {
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    f.add("KB5", &["KB4", "KB5"]);
    fs::copy(f.meta("2.snapshot.json"), f.meta("3.snapshot.json")).unwrap();
    let r = f.scan(Freshness::Enforce);
    assert!(matches!(r, Err(Error::Trust { .. })), "{r:?}");
    let text = r.unwrap_err().to_string();
    assert!(text.contains("3.snapshot.json"), "names the file: {text}");
}

#[test]
fn a_timestamp_signed_by_another_key_is_refused() {
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    let impostor = key(f.dir.parent().unwrap(), "impostor", 9);
    // repo::timestamp signs with the key it is given; the root does not list this one.
    assert!(repo::timestamp(&f.dir, std::slice::from_ref(&impostor), "2031-01-01T00:00:00Z".parse().unwrap()).is_err());
    // Forge the file by hand instead: bump the version without a valid signature.
    let mut ts: serde_json::Value = serde_json::from_slice(&fs::read(f.meta("timestamp.json")).unwrap()).unwrap();
    ts["signed"]["version"] = serde_json::json!(99);
    fs::write(f.meta("timestamp.json"), serde_json::to_vec(&ts).unwrap()).unwrap();
    let r = f.scan(Freshness::Enforce);
    assert!(matches!(r, Err(Error::Trust { .. })), "{r:?}");
}

#[test]
fn a_poll_that_finds_nothing_new_fetches_only_the_next_root_and_the_timestamp() {
    use hotfix_channel::client::{ClientState, open};
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    let url = Url::from_directory_path(&f.dir).unwrap();
    let root = fs::read(f.dir.join("root.json")).unwrap();
    let first = open(&url, &root, &ClientState::default(), Freshness::Enforce).unwrap();
    assert_eq!(first.candidates().unwrap().len(), 1);
    let t = first.traffic();
    assert_eq!((t.requests, t.cached), (4, 0), "2.root.json, timestamp, snapshot, targets: {t:?}");
    let state = first.state().clone();
    assert_eq!(state.cache.keys().collect::<Vec<_>>(), ["2.snapshot.json", "2.targets.json"]);
    assert!(state.trusted.contains_key("timestamp.json"));

    let second = open(&url, &root, &state, Freshness::Enforce).unwrap();
    let t = second.traffic();
    assert_eq!((t.requests, t.cached), (2, 2), "only 2.root.json and timestamp.json go out: {t:?}");
    assert_eq!(second.candidates().unwrap().len(), 1);

    // A new package: the new snapshot and targets are fetched, and the cache follows them.
    f.add("KB5", &["KB4", "KB5"]);
    let third = open(&url, &root, second.state(), Freshness::Enforce).unwrap();
    assert_eq!(third.traffic().requests, 4);
    assert_eq!(third.state().cache.keys().collect::<Vec<_>>(), ["3.snapshot.json", "3.targets.json"]);
    assert_eq!(third.candidates().unwrap().len(), 2);
}

#[test]
fn a_damaged_cache_entry_is_refused_by_the_checks_and_fetched_again() {
    use hotfix_channel::client::{ClientState, open};
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    let url = Url::from_directory_path(&f.dir).unwrap();
    let root = fs::read(f.dir.join("root.json")).unwrap();
    let mut state = open(&url, &root, &ClientState::default(), Freshness::Enforce).unwrap().state().clone();
    let targets = state.cache.get_mut("2.targets.json").unwrap();
    let at = targets.len() / 2;
    targets[at] ^= 1;
    let again = open(&url, &root, &state, Freshness::Enforce).unwrap();
    assert_eq!(again.traffic().requests, 4, "the damaged targets.json is fetched again");
    assert_eq!(again.candidates().unwrap().len(), 1);
    assert_ne!(again.state().cache["2.targets.json"], state.cache["2.targets.json"]);
}

#[test]
fn delegated_roles_carry_the_policy_and_prereleases_and_nothing_else() {
    use hotfix_channel::client::{ClientState, open};
    use hotfix_channel::roles::{self, ChangeKeys, Delegated};
    use hotfix_channel::rollout::{Policy, Schedule};
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    let rollout = key(f.dir.parent().unwrap(), "rollout", 5);
    let pre = key(f.dir.parent().unwrap(), "prerelease", 6);
    let exp = Expiries::from_now(Timestamp::now());
    fn k<'a>(f: &'a Fixture, role: &'a Path) -> ChangeKeys<'a> {
        ChangeKeys { targets: &f.keys.targets, role, snapshot: &f.keys.snapshot, timestamp: &f.keys.timestamp }
    }
    roles::delegate(&f.dir, Delegated::Rollout, &k(&f, &rollout), &exp).unwrap();
    roles::delegate(&f.dir, Delegated::Prerelease, &k(&f, &pre), &exp).unwrap();
    let mut policy = Policy::default();
    policy.packages.insert("KB4".into(), Schedule::default());
    roles::set_policy(&f.dir, &policy, &ChangeKeys { targets: &[], ..k(&f, &rollout) }, &exp).unwrap();
    let pkg = f.dir.parent().unwrap().join("KB9.bytes");
    fs::write(&pkg, "package KB9").unwrap();
    let mut meta = PackageMeta {
        id: n("KB9"),
        kind: Kind::Update,
        product: n("contoso"),
        baselines: vec![n("RTM")],
        baseline_level: None,
        channel: Channel::Prerelease,
        fixes: vec![n("KB9")],
        supersedes: vec![],
    };
    roles::add_prerelease(&f.dir, &pkg, meta.clone(), &ChangeKeys { targets: &[], ..k(&f, &pre) }, &exp).unwrap();
    // The rollout role lists a package of its own: inside its path and outside it.
    meta.id = n("KB8");
    meta.channel = Channel::Release;
    let value = serde_json::to_value(&meta).unwrap();
    roles::set_delegated_target(
        &f.dir,
        Delegated::Rollout,
        "rollout-KB8.pkg",
        &pkg,
        ("hotfix", value),
        &ChangeKeys { targets: &[], ..k(&f, &rollout) },
        &exp,
    )
    .unwrap();
    // The prerelease key lists a "release": not taken as a prerelease package (nor as any).
    let mut fake = meta.clone();
    fake.id = n("KB7");
    roles::set_delegated_target(
        &f.dir,
        Delegated::Prerelease,
        "prerelease-KB7.pkg",
        &pkg,
        ("hotfix", serde_json::to_value(&fake).unwrap()),
        &ChangeKeys { targets: &[], ..k(&f, &pre) },
        &exp,
    )
    .unwrap();
    // A release package added after the delegations keeps them.
    f.add("KB5", &["KB4", "KB5"]);

    let url = Url::from_directory_path(&f.dir).unwrap();
    let root = fs::read(f.dir.join("root.json")).unwrap();
    let s = open(&url, &root, &ClientState::default(), Freshness::Enforce).unwrap();
    let ids: Vec<String> = s.candidates().unwrap().iter().map(|c| c.meta.id.to_string()).collect();
    assert_eq!(ids, ["KB4", "KB5"], "the rollout role's KB8 is not a package");
    let pre_ids: Vec<String> =
        roles::prerelease_targets(s.repository()).iter().map(|c| c.meta.id.to_string()).collect();
    assert_eq!(pre_ids, ["KB9"]);
    assert_eq!(roles::policy(s.repository()).unwrap(), Some(policy));
    assert!(s.state().cache.keys().any(|k| k.ends_with(".rollout.json")), "{:?}", s.state().cache.keys());
    // The next poll serves every immutable file from the cache.
    let again = open(&url, &root, s.state(), Freshness::Enforce).unwrap();
    assert_eq!(again.traffic().requests, 2, "{:?}", again.traffic());
}

#[test]
fn a_client_with_saved_state_follows_timestamp_and_snapshot_rotations() {
    use hotfix_channel::rotate::{Role, Rotation, rotate};
    let f = Fixture::new();
    f.add("KB1", &["KB1"]);
    // The client has seen (and saved) the timestamp and snapshot signed by the old keys.
    assert_eq!(f.scan(Freshness::Enforce).unwrap().len(), 1);
    let keys_dir = f.dir.parent().unwrap();
    for (role, name, seed) in [(Role::Timestamp, "timestamp2", 14), (Role::Snapshot, "snapshot2", 13)] {
        let new = key(keys_dir, name, seed);
        // The snapshot rotation comes second: the timestamp key is the new one by then.
        let timestamp =
            if role == Role::Snapshot { vec![keys_dir.join("timestamp2.key")] } else { f.keys.timestamp.clone() };
        let rot = Rotation {
            role,
            new_keys: vec![new],
            threshold: 1,
            root_keys: f.keys.root.clone(),
            targets_keys: vec![],
            snapshot_keys: f.keys.snapshot.clone(),
            timestamp_keys: timestamp,
        };
        rotate(&f.dir, &rot, &Expiries::from_now(Timestamp::now())).unwrap();
        // The same client, with its saved state, follows the new root and accepts metadata
        // signed by the new key.
        assert_eq!(f.scan(Freshness::Enforce).unwrap().len(), 1, "after the {role} rotation");
    }
    // Publishing goes on with the new online keys.
    let keys = RoleKeyFiles {
        root: vec![],
        targets: f.keys.targets.clone(),
        snapshot: vec![keys_dir.join("snapshot2.key")],
        timestamp: vec![keys_dir.join("timestamp2.key")],
    };
    let pkg = keys_dir.join("KB2.bytes");
    fs::write(&pkg, "package KB2").unwrap();
    let meta = PackageMeta {
        id: n("KB2"),
        kind: Kind::Update,
        product: n("contoso"),
        baselines: vec![n("RTM")],
        baseline_level: None,
        channel: Channel::Release,
        fixes: vec![n("KB2")],
        supersedes: vec![],
    };
    repo::add(&f.dir, &pkg, meta, &keys, &Expiries::from_now(Timestamp::now())).unwrap();
    assert_eq!(f.scan(Freshness::Enforce).unwrap().len(), 2);
}

#[test]
fn a_fifo_in_a_file_repository_is_refused_not_waited_on() {
    use hotfix_channel::client::{ClientState, open};
    let f = Fixture::new();
    f.add("KB4", &["KB4"]);
    let ts = f.meta("timestamp.json");
    fs::remove_file(&ts).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&ts).status().unwrap();
    assert!(made.success());
    let url = Url::from_directory_path(&f.dir).unwrap();
    let root = fs::read(f.dir.join("root.json")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = open(&url, &root, &ClientState::default(), Freshness::Enforce).map(|_| ());
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    let r = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the client did not hang on the FIFO");
    let e = r.unwrap_err();
    assert!(e.contains("timestamp.json"), "{e}");
}
