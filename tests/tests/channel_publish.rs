//! `pkgtool repo`: publishing packages to a TUF repository (issue #14, "Publishing"),
//! through the binary.

use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::channel::{make_role_keys, online_key_args, repo_init_args, role_key};
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
        make_role_keys(&keys);
        let dir = kit.path().join("repo");
        pkgtool(repo_init_args(&dir, &keys)).expect_code(0);
        Repo { dir, keys }
    }

    fn key(&self, role: &str) -> String {
        role_key(&self.keys, role)
    }

    fn online_keys(&self) -> Vec<String> {
        online_key_args(&self.keys)
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

// Key rotation (`repo rotate`): every role's keys, root included, with thresholds.

/// Makes `NAME.key` and `NAME.pub` in the repository's key directory.
fn keygen(repo: &Repo, name: &str) {
    pkgtool(["-q", "keygen", s(&repo.keys.join(name))]).expect_code(0);
}

impl Repo {
    fn pub_key(&self, name: &str) -> String {
        s(&self.keys.join(format!("{name}.pub"))).to_string()
    }

    /// `repo rotate DIR --role ROLE --new-key …  --threshold N --root-key …` plus `extra`.
    fn rotate(&self, role: &str, new: &[String], threshold: u64, root: &[String], extra: &[String]) -> Outcome {
        let mut args = vec!["repo".to_string(), "rotate".into(), s(&self.dir).into(), "--role".into(), role.into()];
        for k in new {
            args.extend(["--new-key".to_string(), k.clone()]);
        }
        args.extend(["--threshold".to_string(), threshold.to_string()]);
        for k in root {
            args.extend(["--root-key".to_string(), k.clone()]);
        }
        args.extend(extra.iter().cloned());
        pkgtool(&args)
    }

    /// A client pinned at `pinned` loads the repository (a `file://` URL, a fresh
    /// datastore, expiry enforced): the root version it ends at.
    fn client_load(&self, pinned: &Path) -> Result<u64, hotfix_channel::Error> {
        let url = url::Url::from_directory_path(&self.dir).expect("absolute directory");
        let root = fs::read(pinned).unwrap();
        let datastore = tempfile::tempdir().unwrap();
        let repo = hotfix_channel::client::load(&url, &root, datastore.path(), Freshness::Enforce)?;
        Ok(repo.root().signed.version.get())
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_slice(&fs::read(self.dir.join("metadata").join(name)).unwrap()).unwrap()
    }
}

use hotfix_channel::client::Freshness;
use hotfix_tests::run::Outcome;

/// The secret key in `path` (PKCS#8 PEM).
fn secret(path: &str) -> ed25519_dalek::SigningKey {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    ed25519_dalek::SigningKey::from_pkcs8_pem(&fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn canonical(v: &Value) -> Vec<u8> {
    use serde::Serialize;
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    v.serialize(&mut ser).unwrap();
    buf
}

/// A key's TUF form and key id (SHA-256 of the canonical form), as the TUF spec defines them.
fn tuf_key(k: &ed25519_dalek::SigningKey) -> (String, Value) {
    use sha2::Digest;
    let key = serde_json::json!({
        "keytype": "ed25519",
        "keyval": { "public": hex(k.verifying_key().as_bytes()) },
        "scheme": "ed25519",
    });
    (hex(&sha2::Sha256::digest(canonical(&key))), key)
}

/// `{"signed": signed, "signatures": …}` signed by `keys` over the canonical form.
fn sign_by_hand(signed: Value, keys: &[&ed25519_dalek::SigningKey]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let data = canonical(&signed);
    let sigs: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::json!({ "keyid": tuf_key(k).0, "sig": hex(&k.sign(&data).to_bytes()) }))
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({ "signed": signed, "signatures": sigs })).unwrap()
}

/// The key ids whose signatures a metadata file carries.
fn signers(v: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        v["signatures"].as_array().unwrap().iter().map(|s| s["keyid"].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

fn key_ids(repo: &Repo, names: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = names.iter().map(|n| tuf_key(&secret(&repo.key(n))).0).collect();
    out.sort();
    out
}

fn role_keyids(root: &Value, role: &str) -> Vec<String> {
    let mut out: Vec<String> = root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn root_rotation_v1_to_v3_with_threshold_is_followed_by_a_client_pinned_at_v1() {
    let kit = Kit::new("rotate-root");
    let repo = Repo::init(&kit);
    let pinned = repo.dir.join("root.json");
    let v1 = fs::read(&pinned).unwrap();
    for k in ["r2", "r3", "r4", "r5", "r6"] {
        keygen(&repo, k);
    }

    // v2: {r2, r3, r4}, threshold 2, signed by r1 (the old root) and two of the new — r4 is
    // given as a public key, listed but not signing.
    let out = repo.rotate(
        "root",
        &[repo.key("r2"), repo.key("r3"), repo.pub_key("r4")],
        2,
        &[repo.key("root")],
        &["--json".into()],
    );
    out.expect_code(0);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["root_version"], 2, "{j}");
    assert_eq!(j["threshold"], 2, "{j}");
    let v2 = repo.json("2.root.json");
    assert_eq!(v2["signed"]["version"], 2);
    assert_eq!(v2["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(role_keyids(&v2, "root"), key_ids(&repo, &["r2", "r3", "r4"]));
    assert_eq!(signers(&v2), key_ids(&repo, &["root", "r2", "r3"]));
    // The old root key is no longer listed anywhere; the online roles are untouched.
    assert!(v2["signed"]["keys"].get(&key_ids(&repo, &["root"])[0]).is_none(), "{v2}");
    assert_eq!(role_keyids(&v2, "timestamp"), key_ids(&repo, &["timestamp"]));

    // v3: {r5, r6}, threshold 2: two of {r2, r3, r4} (r4's secret half this time) and both new.
    repo.rotate("root", &[repo.key("r5"), repo.key("r6")], 2, &[repo.key("r2"), repo.key("r4")], &[]).expect_code(0);
    let v3 = repo.json("3.root.json");
    assert_eq!(v3["signed"]["version"], 3);
    assert_eq!(role_keyids(&v3, "root"), key_ids(&repo, &["r5", "r6"]));
    assert_eq!(signers(&v3), key_ids(&repo, &["r2", "r4", "r5", "r6"]));

    // The pinned root.json is never rewritten; a client pinned at it walks v2 then v3.
    assert_eq!(fs::read(&pinned).unwrap(), v1);
    assert_eq!(repo.client_load(&pinned).unwrap(), 3);
    // And the repository still publishes: the online keys did not change.
    repo.add(&kit.contoso("kb4"), &kit.public).expect_code(0);
    assert_eq!(repo.client_load(&pinned).unwrap(), 3);
}

#[test]
fn root_rotation_signed_below_threshold_is_refused_by_the_client() {
    let kit = Kit::new("rotate-root-forged");
    let repo = Repo::init(&kit);
    let pinned = repo.dir.join("root.json");
    keygen(&repo, "r2");
    keygen(&repo, "r3");
    let (r1, r2, r3) = (secret(&repo.key("root")), secret(&repo.key("r2")), secret(&repo.key("r3")));

    // Root v2 made by hand: root role {r2, r3}, threshold 2.
    let mut signed = repo.json("1.root.json")["signed"].clone();
    signed["version"] = 2.into();
    let (id1, _) = tuf_key(&r1);
    signed["keys"].as_object_mut().unwrap().remove(&id1);
    let mut ids = Vec::new();
    for k in [&r2, &r3] {
        let (id, key) = tuf_key(k);
        signed["keys"][&id] = key;
        ids.push(id);
    }
    signed["roles"]["root"] = serde_json::json!({ "keyids": ids, "threshold": 2 });
    let v2 = repo.dir.join("metadata/2.root.json");

    // Signed by the old root and one of the two new keys: below the new threshold.
    fs::write(&v2, sign_by_hand(signed.clone(), &[&r1, &r2])).unwrap();
    let err = repo.client_load(&pinned).unwrap_err();
    assert_eq!(err.exit_code(), 6, "{err}");
    assert_eq!(err.class(), "tuf", "{err}");
    assert!(err.to_string().contains("root"), "{err}");

    // The same root signed by both new keys but not the old root: refused as well.
    fs::write(&v2, sign_by_hand(signed.clone(), &[&r2, &r3])).unwrap();
    let err = repo.client_load(&pinned).unwrap_err();
    assert_eq!((err.exit_code(), err.class()), (6, "tuf"), "{err}");

    // Control: with both new keys and the old one, the hand-made root is followed.
    fs::write(&v2, sign_by_hand(signed, &[&r1, &r2, &r3])).unwrap();
    assert_eq!(repo.client_load(&pinned).unwrap(), 2);
}

#[test]
fn rotate_refuses_root_keys_below_the_old_threshold_and_writes_nothing() {
    let kit = Kit::new("rotate-refusals");
    let keys = kit.path().join("repo-keys");
    fs::create_dir_all(&keys).unwrap();
    let repo = Repo { dir: kit.path().join("repo"), keys };
    for k in ["r1", "r2", "r3", "n1", "n2", "targets", "snapshot", "timestamp"] {
        keygen(&repo, k);
    }
    // A root of three keys, threshold 2.
    let mut init = vec!["repo".to_string(), "init".into(), s(&repo.dir).into()];
    for k in ["r1", "r2", "r3"] {
        init.extend(["--root-key".to_string(), repo.key(k)]);
    }
    init.extend(["--root-threshold".to_string(), "2".into()]);
    init.extend(repo.online_keys());
    pkgtool(&init).expect_code(0);
    let v1 = repo.json("1.root.json");
    assert_eq!(v1["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(role_keyids(&v1, "root"), key_ids(&repo, &["r1", "r2", "r3"]));
    let before = repo.files();
    let new = [repo.key("n1"), repo.key("n2")];

    // One root key of a threshold-2 root, for a root and for a timestamp rotation.
    let out = repo.rotate("root", &new, 2, &[repo.key("r1")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("threshold is 2"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
    assert_eq!(repo.files(), before);
    let out = repo.rotate("timestamp", &new[..1], 1, &[repo.key("r2")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("threshold is 2"), "{}", out.stderr);
    // The same key twice counts once.
    repo.rotate("root", &new, 2, &[repo.key("r1"), repo.key("r1")], &[]).expect_code(1);
    // A key that is not a root key is named.
    let out = repo.rotate("root", &new, 2, &[repo.key("r1"), repo.key("targets")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("targets.key") && out.stderr.contains("not a root key"), "{}", out.stderr);
    assert_eq!(repo.files(), before);

    // The new keys: threshold above their number, threshold 0, the same key twice, a file
    // that is not a key, a threshold of public keys that cannot sign the new root.
    let out = repo.rotate("root", &new, 3, &[repo.key("r1"), repo.key("r2")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("threshold 3"), "{}", out.stderr);
    repo.rotate("root", &new, 0, &[repo.key("r1"), repo.key("r2")], &[]).expect_code(2);
    let out = repo.rotate("root", &[repo.key("n1"), repo.pub_key("n1")], 1, &[repo.key("r1"), repo.key("r2")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("distinct"), "{}", out.stderr);
    let junk = kit.path().join("junk.key");
    fs::write(&junk, "not a key\n").unwrap();
    let out = repo.rotate("root", &[s(&junk).to_string()], 1, &[repo.key("r1"), repo.key("r2")], &["--json".into()]);
    out.expect_code(1);
    assert!(out.stderr.contains("junk.key"), "{}", out.stderr);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["error"]["class"], "secret-key", "{j}");
    let out = repo.rotate("root", &[repo.pub_key("n1"), repo.key("n2")], 2, &[repo.key("r1"), repo.key("r2")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("secret"), "{}", out.stderr);
    // A targets rotation without the snapshot and timestamp keys it needs to re-sign.
    let out = repo.rotate("targets", &new[..1], 1, &[repo.key("r1"), repo.key("r2")], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("--snapshot-key"), "{}", out.stderr);
    assert_eq!(repo.files(), before, "a refused rotation writes nothing, not even a temporary file");
    assert_eq!(repo.client_load(&repo.dir.join("root.json")).unwrap(), 1);

    // Two of the three root keys: accepted.
    repo.rotate("root", &new, 2, &[repo.key("r3"), repo.key("r1")], &[]).expect_code(0);
    assert_eq!(repo.client_load(&repo.dir.join("root.json")).unwrap(), 2);
}

#[test]
fn timestamp_key_rotation_keeps_the_repository_loadable() {
    let kit = Kit::new("rotate-timestamp");
    let repo = Repo::init(&kit);
    let pinned = repo.dir.join("root.json");
    keygen(&repo, "timestamp2");
    keygen(&repo, "timestamp3");
    let ts_v = |r: &Repo| r.json("timestamp.json")["signed"]["version"].as_u64().unwrap();
    let v_before = ts_v(&repo);

    repo.rotate("timestamp", &[repo.key("timestamp2")], 1, &[repo.key("root")], &[]).expect_code(0);
    let v2 = repo.json("2.root.json");
    assert_eq!(role_keyids(&v2, "timestamp"), key_ids(&repo, &["timestamp2"]));
    let ts = repo.json("timestamp.json");
    assert_eq!(ts_v(&repo), v_before + 1);
    assert_eq!(signers(&ts), key_ids(&repo, &["timestamp2"]));
    assert_eq!(repo.client_load(&pinned).unwrap(), 2);
    // The periodic job goes on with the new key.
    pkgtool(["repo", "timestamp", s(&repo.dir), "--timestamp-key", &repo.key("timestamp2")]).expect_code(0);
    assert_eq!(repo.client_load(&pinned).unwrap(), 2);

    // The old key cannot sign an accepted timestamp: `repo timestamp` refuses it…
    let before = repo.files();
    let out = pkgtool(["repo", "timestamp", s(&repo.dir), "--timestamp-key", &repo.key("timestamp")]);
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(repo.files(), before);
    // …and a timestamp.json it signed anyway (by hand) is refused by the client.
    let good = fs::read(repo.dir.join("metadata/timestamp.json")).unwrap();
    let mut signed = repo.json("timestamp.json")["signed"].clone();
    signed["version"] = (ts_v(&repo) + 1).into();
    fs::write(
        repo.dir.join("metadata/timestamp.json"),
        sign_by_hand(signed.clone(), &[&secret(&repo.key("timestamp"))]),
    )
    .unwrap();
    let err = repo.client_load(&pinned).unwrap_err();
    assert_eq!((err.exit_code(), err.class()), (6, "tuf"), "{err}");
    // Control: the same timestamp signed by the new key is accepted.
    fs::write(repo.dir.join("metadata/timestamp.json"), sign_by_hand(signed, &[&secret(&repo.key("timestamp2"))]))
        .unwrap();
    assert_eq!(repo.client_load(&pinned).unwrap(), 2);
    fs::write(repo.dir.join("metadata/timestamp.json"), good).unwrap();

    // Rotating again with the old key given too: the new timestamp.json carries both
    // signatures, so a client that reads it before 3.root.json is in place (the moment
    // between the two renames) still accepts it under root version 2.
    let out = repo.rotate(
        "timestamp",
        &[repo.key("timestamp3")],
        1,
        &[repo.key("root")],
        &["--timestamp-key".into(), repo.key("timestamp2"), "--json".into()],
    );
    out.expect_code(0);
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["accepted_by_previous_root"], true, "{j}");
    let written: Vec<&str> = j["written"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert!(written.last().unwrap().ends_with("3.root.json"), "the root is put in place last: {written:?}");
    assert_eq!(signers(&repo.json("timestamp.json")), key_ids(&repo, &["timestamp2", "timestamp3"]));
    let v3 = repo.dir.join("metadata/3.root.json");
    let aside = kit.path().join("3.root.json");
    fs::rename(&v3, &aside).unwrap();
    assert_eq!(repo.client_load(&pinned).unwrap(), 2);
    fs::rename(&aside, &v3).unwrap();
    assert_eq!(repo.client_load(&pinned).unwrap(), 3);
}

#[test]
fn targets_key_rotation_then_add_with_new_key_works() {
    let kit = Kit::new("rotate-targets");
    let repo = Repo::init(&kit);
    let pinned = repo.dir.join("root.json");
    repo.add(&kit.contoso("kb4"), &kit.public).expect_code(0);
    keygen(&repo, "targets2");
    let listed_before = repo.targets();

    let online = |targets: &str| -> Vec<String> {
        vec![
            "--targets-key".into(),
            repo.key(targets),
            "--snapshot-key".into(),
            repo.key("snapshot"),
            "--timestamp-key".into(),
            repo.key("timestamp"),
        ]
    };
    let extra: Vec<String> = online("targets")[2..].to_vec();
    repo.rotate("targets", &[repo.key("targets2")], 1, &[repo.key("root")], &extra).expect_code(0);
    let v2 = repo.json("2.root.json");
    assert_eq!(role_keyids(&v2, "targets"), key_ids(&repo, &["targets2"]));
    // A new targets.json, the same packages, signed by the new key; the snapshot lists it.
    let snap_v = repo.json("timestamp.json")["signed"]["meta"]["snapshot.json"]["version"].as_u64().unwrap();
    let snap = repo.json(&format!("{snap_v}.snapshot.json"));
    let tv = snap["signed"]["meta"]["targets.json"]["version"].as_u64().unwrap();
    assert_eq!(tv, 3);
    assert_eq!(signers(&repo.json("3.targets.json")), key_ids(&repo, &["targets2"]));
    assert_eq!(repo.targets(), listed_before);
    assert_eq!(repo.client_load(&pinned).unwrap(), 2);

    // Publishing goes on with the new key; the old one is refused.
    let kb5 =
        kit.spec("KB5", KB5, &[("gdr/bin/kernel.dll", "kernel gdr 5\n"), ("ldr/bin/kernel.dll", "kernel ldr 5\n")]);
    let before = repo.files();
    let mut old = vec!["repo".to_string(), "add".into(), s(&repo.dir).into(), s(&kb5).into()];
    old.extend(["--trust".into(), s(&kit.public).into()]);
    let mut new = old.clone();
    old.extend(online("targets"));
    assert_ne!(pkgtool(&old).code, 0);
    assert_eq!(repo.files(), before);
    new.extend(online("targets2"));
    pkgtool(&new).expect_code(0);
    assert!(repo.targets().contains_key("KB5.pkg"));
    let url = url::Url::from_directory_path(&repo.dir).unwrap();
    let ds = tempfile::tempdir().unwrap();
    let candidates =
        hotfix_channel::client::scan(&url, &fs::read(&pinned).unwrap(), ds.path(), Freshness::Enforce).unwrap();
    let names: Vec<&str> = candidates.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(names, ["KB4.pkg", "KB5.pkg"]);
}

#[test]
fn online_roles_with_threshold_two_need_two_keys_to_publish() {
    let kit = Kit::new("rotate-online-threshold");
    let repo = Repo::init(&kit);
    let pinned = repo.dir.join("root.json");
    for k in ["targets2", "targets3", "timestamp2", "timestamp3"] {
        keygen(&repo, k);
    }
    let (t2, t3, ts2, ts3) =
        (repo.key("targets2"), repo.key("targets3"), repo.key("timestamp2"), repo.key("timestamp3"));
    let extra: Vec<String> =
        vec!["--snapshot-key".into(), repo.key("snapshot"), "--timestamp-key".into(), repo.key("timestamp")];
    repo.rotate("targets", &[t2.clone(), t3.clone()], 2, &[repo.key("root")], &extra).expect_code(0);
    repo.rotate("timestamp", &[ts2.clone(), ts3.clone()], 2, &[repo.key("root")], &[]).expect_code(0);
    assert_eq!(repo.client_load(&pinned).unwrap(), 3);
    assert_eq!(repo.json("3.root.json")["signed"]["roles"]["timestamp"]["threshold"], 2);

    // `repo timestamp` with one of two keys is refused and writes nothing; with both it signs.
    let before = repo.files();
    let out = pkgtool(["repo", "timestamp", s(&repo.dir), "--timestamp-key", &ts2]);
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(repo.files(), before);
    pkgtool(["repo", "timestamp", s(&repo.dir), "--timestamp-key", &ts2, "--timestamp-key", &ts3]).expect_code(0);
    assert_eq!(signers(&repo.json("timestamp.json")), key_ids(&repo, &["timestamp2", "timestamp3"]));
    assert_eq!(repo.client_load(&pinned).unwrap(), 3);

    // `repo add` likewise needs both targets keys.
    let kb4 = kit.contoso("kb4");
    let add = |targets: &[&String]| {
        let mut args = vec!["repo".to_string(), "add".into(), s(&repo.dir).into(), s(&kb4).into()];
        args.extend(["--trust".into(), s(&kit.public).into()]);
        for t in targets {
            args.extend(["--targets-key".to_string(), t.to_string()]);
        }
        args.extend(["--snapshot-key".into(), repo.key("snapshot")]);
        args.extend(["--timestamp-key".into(), ts2.clone(), "--timestamp-key".into(), ts3.clone()]);
        pkgtool(&args)
    };
    let before = repo.files();
    assert_ne!(add(&[&t2]).code, 0);
    assert_eq!(repo.files(), before);
    add(&[&t2, &t3]).expect_code(0);
    assert!(repo.targets().contains_key("KB4.pkg"));
    assert_eq!(repo.client_load(&pinned).unwrap(), 3);
}
