//! `pkgtool repo`: publishing packages to a TUF repository (issue #14, "Publishing"),
//! through the binary.

use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::root::Kit;
use hotfix_tests::run::pkgtool;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A repository in the kit's workspace, with one key per role.
struct Repo {
    dir: PathBuf,
    keys: PathBuf,
}

impl Repo {
    fn init(kit: &Kit) -> Repo {
        let keys = kit.path().join("repo-keys");
        fs::create_dir_all(&keys).unwrap();
        for role in ["root", "targets", "snapshot", "timestamp"] {
            pkgtool(["-q", "keygen", s(&keys.join(role))]).expect_code(0);
        }
        let dir = kit.path().join("repo");
        let r = Repo { dir, keys };
        let root_key = r.key("root");
        let mut args = vec!["repo".to_string(), "init".into(), s(&r.dir).into(), "--root-key".into(), root_key];
        args.extend(r.online_keys());
        pkgtool(&args).expect_code(0);
        r
    }

    fn key(&self, role: &str) -> String {
        s(&self.keys.join(format!("{role}.key"))).to_string()
    }

    fn online_keys(&self) -> Vec<String> {
        ["targets", "snapshot", "timestamp"].iter().flat_map(|r| [format!("--{r}-key"), self.key(r)]).collect()
    }

    fn add(&self, pkg: &Path, trust: &Path) -> hotfix_tests::run::Outcome {
        let mut args = vec!["repo".to_string(), "add".into(), s(&self.dir).into(), s(pkg).into()];
        args.extend(["--trust".into(), s(trust).into()]);
        args.extend(self.online_keys());
        pkgtool(&args)
    }

    /// The newest targets.json's `targets` object.
    fn targets(&self) -> serde_json::Map<String, Value> {
        let ts: Value = serde_json::from_slice(&fs::read(self.dir.join("metadata/timestamp.json")).unwrap()).unwrap();
        let snap_v = ts["signed"]["meta"]["snapshot.json"]["version"].as_u64().unwrap();
        let snap: Value =
            serde_json::from_slice(&fs::read(self.dir.join(format!("metadata/{snap_v}.snapshot.json"))).unwrap())
                .unwrap();
        let tv = snap["signed"]["meta"]["targets.json"]["version"].as_u64().unwrap();
        let t: Value =
            serde_json::from_slice(&fs::read(self.dir.join(format!("metadata/{tv}.targets.json"))).unwrap()).unwrap();
        t["signed"]["targets"].as_object().unwrap().clone()
    }

    /// Every file of the repository with its bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for sub in ["metadata", "targets"] {
            for e in fs::read_dir(self.dir.join(sub)).unwrap() {
                let p = e.unwrap().path();
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
        out.push((self.dir.join("root.json"), fs::read(self.dir.join("root.json")).unwrap()));
        out.sort();
        out
    }
}

/// A cumulative rollup after the contoso KB4: every fix of KB4 and KB5 on both baselines.
const KB5: &str = r#"
[package]
id = "KB5"
kind = "update"
product = "contoso"
title = "Rollup 5"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "gdr"
version = "5.2.3790.5"
fixes = ["KB2", "KB4", "KB5"]
dir = "KB5/gdr"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1005"
fixes = ["KB1", "KB2", "KB3", "KB4", "KB5"]
dir = "KB5/ldr"

[[variant]]
component = "kernel"
baseline = "SP1"
branch = "gdr"
version = "5.2.3791.5"
fixes = ["KB2", "KB4", "KB5"]
dir = "KB5/gdr"

[[variant]]
component = "kernel"
baseline = "SP1"
branch = "ldr"
version = "5.2.3791.1005"
fixes = ["KB1", "KB2", "KB3", "KB4", "KB5"]
dir = "KB5/ldr"
"#;

#[test]
fn repo_add_lists_the_verified_package_with_its_manifest_and_what_it_supersedes() {
    let kit = Kit::new("repo-add");
    let repo = Repo::init(&kit);
    assert!(repo.dir.join("root.json").is_file());
    assert!(repo.targets().is_empty());

    let kb4 = kit.contoso("kb4");
    repo.add(&kb4, &kit.public).expect_code(0);
    let kb5 =
        kit.spec("KB5", KB5, &[("gdr/bin/kernel.dll", "kernel gdr 5\n"), ("ldr/bin/kernel.dll", "kernel ldr 5\n")]);
    let out = repo.add(&kb5, &kit.public);
    out.expect_code(0);
    assert!(out.stdout.contains("supersedes KB4"), "{}", out.stdout);

    let targets = repo.targets();
    let m4 = &targets["KB4.pkg"];
    assert_eq!(m4["length"].as_u64().unwrap(), fs::metadata(&kb4).unwrap().len());
    let h = &m4["custom"]["hotfix"];
    assert_eq!(h["id"], "KB4");
    assert_eq!(h["kind"], "update");
    assert_eq!(h["product"], "contoso");
    assert_eq!(h["channel"], "release");
    assert_eq!(h["baselines"], serde_json::json!(["RTM", "SP1"]));
    assert_eq!(h["fixes"], serde_json::json!(["KB1", "KB2", "KB3", "KB4"]));
    assert_eq!(h["supersedes"], serde_json::json!([]));
    assert_eq!(targets["KB5.pkg"]["custom"]["hotfix"]["supersedes"], serde_json::json!(["KB4"]));

    // Consistent snapshots: the package is stored under its hash; metadata under versions.
    let sha = m4["hashes"]["sha256"].as_str().unwrap();
    assert_eq!(fs::read(repo.dir.join(format!("targets/{sha}.KB4.pkg"))).unwrap(), fs::read(&kb4).unwrap());
    assert!(repo.dir.join("metadata/3.targets.json").is_file());

    // The same id twice is refused and changes nothing.
    let before = repo.files();
    let again = repo.add(&kb4, &kit.public);
    again.expect_code(1);
    assert!(again.stderr.contains("already published"), "{}", again.stderr);
    assert_eq!(repo.files(), before);
}

#[test]
fn repo_add_refuses_a_package_that_fails_verification_and_writes_nothing() {
    let kit = Kit::new("repo-add-forged");
    let repo = Repo::init(&kit);
    let kb4 = kit.contoso("kb4");
    let before = repo.files();

    // Signed by a key the publisher does not trust.
    pkgtool(["-q", "keygen", s(&kit.path().join("other"))]).expect_code(0);
    let out = repo.add(&kb4, &kit.path().join("other.pub"));
    out.expect_code(6);
    assert!(out.stderr.contains("kb4.pkg"), "{}", out.stderr);
    assert_eq!(repo.files(), before);

    // One bit flipped.
    let mut bytes = fs::read(&kb4).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = kit.path().join("bad.pkg");
    fs::write(&bad, bytes).unwrap();
    let out = repo.add(&bad, &kit.public);
    out.expect_code(6);
    assert!(out.stderr.contains("bad.pkg"), "{}", out.stderr);
    assert_eq!(repo.files(), before);
}

#[test]
fn repo_timestamp_resigns_with_the_timestamp_key_alone() {
    let kit = Kit::new("repo-timestamp");
    let repo = Repo::init(&kit);
    let ts =
        || -> Value { serde_json::from_slice(&fs::read(repo.dir.join("metadata/timestamp.json")).unwrap()).unwrap() };
    let v1 = ts()["signed"]["version"].as_u64().unwrap();
    let out = pkgtool([
        "repo",
        "timestamp",
        s(&repo.dir),
        "--timestamp-key",
        &repo.key("timestamp"),
        "--expires",
        "2031-01-01T00:00:00Z",
    ]);
    out.expect_code(0);
    let t = ts();
    assert_eq!(t["signed"]["version"].as_u64().unwrap(), v1 + 1);
    assert_eq!(t["signed"]["expires"], "2031-01-01T00:00:00Z");

    // Another role's key cannot sign the timestamp.
    let before = repo.files();
    let out = pkgtool(["repo", "timestamp", s(&repo.dir), "--timestamp-key", &repo.key("targets")]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("targets.key") || out.stderr.contains("timestamp"), "{}", out.stderr);
    assert_eq!(repo.files(), before);
}
