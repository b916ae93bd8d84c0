//! `hotfix subscribe|scan|update` (issue #14) through the binaries: repositories made with
//! `pkgtool repo`, served by a real nginx on loopback (tests/src/nginx.rs) or read from a
//! `file://` directory (offline media), scanned and installed by `hotfix`.

use std::fs;
use std::path::Path;

use hotfix_tests::channel::{Channel, ids, json, scan, servicing_tree};
use hotfix_tests::root::{hotfix, installed_ids, kb1, tree};
use hotfix_tests::run::pkgtool;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn left_out_reason(v: &Value, id: &str) -> (String, Option<String>) {
    let l = v["left_out"].as_array().unwrap().iter().find(|l| l["id"] == id).unwrap_or_else(|| panic!("{id}: {v}"));
    (l["reason"].as_str().unwrap().to_string(), l["superseded_by"].as_str().map(String::from))
}

fn query(root: &Path, fix: &str) -> i32 {
    hotfix(root, ["query", "--fix", fix]).code
}

fn component(root: &Path, name: &str) -> Value {
    let out = hotfix(root, ["status", name, "--json"]);
    out.expect_code(0);
    json(&out)["components"].as_array().unwrap()[0].clone()
}

#[test]
fn scan_offers_only_the_newest_cumulative_rollup() {
    let Some(c) = Channel::http("scan-newest") else { return };
    for n in [4, 5, 6] {
        c.publish(&c.rollup(n));
    }
    c.publish(&kb1(&c.kit));
    let root = c.root("r");
    let v = scan(&root, &[]);
    assert_eq!(ids(&v, "offered"), ["KB6"], "{v:#}");
    assert_eq!(v["offered"][0]["reason"], "update");
    assert_eq!(left_out_reason(&v, "KB4"), ("superseded-by".into(), Some("KB6".into())));
    assert_eq!(left_out_reason(&v, "KB5"), ("superseded-by".into(), Some("KB6".into())));
    assert_eq!(left_out_reason(&v, "KB1").0, "hotfix-not-requested");
    // The text says the same to an administrator.
    let text = hotfix(&root, ["scan"]);
    text.expect_code(0);
    assert!(text.stdout.contains("superseded by KB6"), "{}", text.stdout);
    assert!(text.stdout.contains("hotfix update --hotfix KB1"), "{}", text.stdout);
    // A scan installs nothing.
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
}

#[test]
fn skipped_rollup_fixes_arrive_with_the_next_one() {
    let Some(c) = Channel::http("skipped-rollup") else { return };
    let root = c.root("r");
    c.publish(&c.rollup(4));
    assert_eq!(ids(&scan(&root, &[]), "offered"), ["KB4"]);
    // The administrator does not install KB4; KB5 is published.
    c.publish(&c.rollup(5));
    let out = hotfix(&root, ["update", "--json"]);
    out.expect_code(0);
    let v = json(&out);
    assert_eq!(ids(&v["scan"], "offered"), ["KB5"]);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB5"]);
    for fix in ["KB2", "KB4", "KB5"] {
        assert_eq!(query(&root, fix), 0, "{fix} is present with KB5 alone");
    }
    assert_eq!(component(&root, "kernel")["version"], "5.2.3790.5");
    // Up to date now: nothing offered, nothing done, exit 0.
    let again = hotfix(&root, ["update"]);
    again.expect_code(0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB5"]);
}

#[test]
fn hotfix_offered_only_when_named() {
    let Some(c) = Channel::http("hotfix-named") else { return };
    c.publish(&c.kit.contoso("kb4"));
    c.publish(&kb1(&c.kit));
    let root = c.root("r");
    let v = scan(&root, &[]);
    assert_eq!(ids(&v, "offered"), ["KB4"]);
    assert_eq!(left_out_reason(&v, "KB1").0, "hotfix-not-requested");
    hotfix(&root, ["update"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
    assert_eq!(query(&root, "KB1"), 9, "KB1's fix is only in LDR builds, and the root is on GDR");

    let v = scan(&root, &["--hotfix", "kb1"]);
    assert_eq!(ids(&v, "offered"), ["KB1"]);
    assert_eq!(v["offered"][0]["reason"], "hotfix-requested");
    hotfix(&root, ["update", "--hotfix", "kb1"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4", "KB1"]);
    assert_eq!(query(&root, "KB1"), 0);
    // The hotfix moved the kernel to LDR, where KB4's LDR build (which carries KB1) wins.
    let k = component(&root, "kernel");
    assert_eq!((k["branch"].as_str(), k["version"].as_str()), (Some("ldr"), Some("5.2.3790.1004")), "{k:#}");
}

#[test]
fn ldr_component_gets_the_update_ldr_build_from_the_channel() {
    let Some(c) = Channel::http("ldr-from-channel") else { return };
    let root = c.root("r");
    hotfix(&root, ["install", s(&kb1(&c.kit))]).expect_code(0);
    assert_eq!(component(&root, "kernel")["branch"], "ldr");
    c.publish(&c.kit.contoso("kb4"));
    let v = scan(&root, &[]);
    assert_eq!(ids(&v, "offered"), ["KB4"]);
    assert_eq!(v["offered"][0]["replaces"], serde_json::json!([]), "an update never replaces a hotfix");
    hotfix(&root, ["update"]).expect_code(0);
    let k = component(&root, "kernel");
    assert_eq!((k["branch"].as_str(), k["version"].as_str()), (Some("ldr"), Some("5.2.3790.1004")), "{k:#}");
    let smtp = component(&root, "smtp-transport");
    assert_eq!((smtp["branch"].as_str(), smtp["version"].as_str()), (Some("gdr"), Some("8.0.685.4")));
    assert_eq!(query(&root, "KB1"), 0);
}

#[test]
fn rollback_to_an_older_snapshot_is_refused() {
    let Some(c) = Channel::http("rollback") else { return };
    c.publish(&c.rollup(4));
    let old_timestamp = fs::read(c.repo.join("metadata/timestamp.json")).unwrap();
    c.publish(&c.rollup(5));
    let root = c.root("r");
    assert_eq!(ids(&scan(&root, &[]), "offered"), ["KB5"]);
    // The server (or a mirror, or a man in the middle) goes back to the older repository:
    // validly signed, but older than what this root has seen.
    let new_timestamp = fs::read(c.repo.join("metadata/timestamp.json")).unwrap();
    fs::write(c.repo.join("metadata/timestamp.json"), &old_timestamp).unwrap();
    let before = servicing_tree(&root);
    for cmd in ["scan", "update"] {
        let out = hotfix(&root, [cmd, "--json"]);
        out.expect_code(6);
        let v = json(&out);
        assert_eq!(v["error"]["class"], "tuf", "{v:#}");
        assert!(out.stderr.contains(&c.url()), "names the repository: {}", out.stderr);
        assert!(out.stderr.contains("version 2 of timestamp"), "says why: {}", out.stderr);
    }
    assert_eq!(servicing_tree(&root), before, "nothing installed or changed");
    // Back to the current repository: the scan works again.
    fs::write(c.repo.join("metadata/timestamp.json"), &new_timestamp).unwrap();
    assert_eq!(ids(&scan(&root, &[]), "offered"), ["KB5"]);
}

#[test]
fn expired_timestamp_blocks_automatic_update() {
    let Some(c) = Channel::http("expired") else { return };
    c.publish(&c.rollup(4));
    let root = c.root("r");
    pkgtool([
        "repo",
        "timestamp",
        s(&c.repo),
        "--timestamp-key",
        &c.key("timestamp"),
        "--expires",
        "2020-01-01T00:00:00Z",
    ])
    .expect_code(0);
    let before = servicing_tree(&root);
    let out = hotfix(&root, ["update", "--json"]);
    out.expect_code(6);
    assert_eq!(json(&out)["error"]["class"], "expired-metadata");
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert!(out.stderr.contains("--allow-expired"), "says how to override: {}", out.stderr);
    assert_eq!(servicing_tree(&root), before);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);

    // The explicit override installs, warns, and is logged.
    let out = hotfix(&root, ["update", "--allow-expired"]);
    out.expect_code(0);
    assert!(out.stderr.contains("--allow-expired"), "warns: {}", out.stderr);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
    let log = fs::read_to_string(root.join(".servicing/log")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"update ") && l.contains("expired metadata accepted")), "{log}");
}

#[test]
fn mixed_snapshot_and_targets_are_refused() {
    let Some(c) = Channel::http("mix-and-match") else { return };
    c.publish(&c.rollup(4));
    c.publish(&c.rollup(5));
    // targets.json version 2 listed KB4 only; serve it where snapshot 3 says version 3 is:
    // each file validly signed, the combination never published.
    let md = c.repo.join("metadata");
    fs::copy(md.join("2.targets.json"), md.join("3.targets.json")).unwrap();
    let root = c.root("r");
    let before = servicing_tree(&root);
    let out = hotfix(&root, ["update", "--json"]);
    out.expect_code(6);
    assert_eq!(json(&out)["error"]["class"], "tuf");
    assert_eq!(servicing_tree(&root), before);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
}

#[test]
fn tampered_package_on_the_server_is_refused_before_anything_is_written() {
    let Some(c) = Channel::http("tampered") else { return };
    c.publish(&c.rollup(4));
    let root = c.root("r");
    let target = fs::read_dir(c.repo.join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".KB4.pkg"))
        .unwrap();
    let good = fs::read(&target).unwrap();
    let live = tree(&root);
    let before = servicing_tree(&root);
    // One bit flipped; then the whole file replaced by a longer one.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    let mut longer = good.clone();
    longer.extend_from_slice(&[0u8; 4096]);
    for served in [bad, longer] {
        fs::write(&target, &served).unwrap();
        let out = hotfix(&root, ["update", "--json"]);
        out.expect_code(6);
        let v = json(&out);
        assert_eq!(v["failed"]["id"], "KB4", "{v:#}");
        assert_eq!(v["failed"]["class"], "tuf", "{v:#}");
        assert_eq!(tree(&root), live, "no live file changed");
        assert_eq!(servicing_tree(&root), before, "nothing stored, nothing recorded");
    }
    fs::write(&target, &good).unwrap();
    hotfix(&root, ["update"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
}

#[test]
fn offline_media_repository_scans_like_http() {
    let Some(http) = Channel::http("media") else { return };
    for n in [4, 5] {
        http.publish(&http.rollup(n));
    }
    http.publish(&kb1(&http.kit));
    let over_http = http.root("over-http");
    // The same tree, copied to "removable media" and read through file://.
    let media = http.kit.path().join("media");
    hotfix_tests::root::copy_tree(&http.repo, &media);
    let from_media = http.kit.root("from-media");
    hotfix(&from_media, ["install", s(&http.kit.contoso("rtm"))]).expect_code(0);
    http.subscribe(&from_media, &format!("file://{}/", media.display()));
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("url");
        v.as_object_mut().unwrap().remove("traffic");
        v.as_object_mut().unwrap().remove("host_id");
        v
    };
    let a = strip(scan(&over_http, &[]));
    let b = strip(scan(&from_media, &[]));
    assert_eq!(a, b);
    assert_eq!(ids(&b, "offered"), ["KB5"]);
    hotfix(&from_media, ["update"]).expect_code(0);
    assert_eq!(installed_ids(&from_media), ["contoso-rtm", "KB5"]);
    let media_only = Channel::media("media-only");
    media_only.publish(&media_only.rollup(4));
    let r = media_only.root("r");
    assert_eq!(ids(&scan(&r, &[]), "offered"), ["KB4"]);
}

#[test]
fn an_idle_poll_fetches_only_the_next_root_and_the_timestamp() {
    let Some(c) = Channel::http("idle-poll") else { return };
    c.publish(&c.rollup(4));
    let root = c.root("r");
    let mut seen = 0;
    c.requests_since(&mut seen);
    scan(&root, &[]);
    let first: Vec<String> = c.requests_since(&mut seen).iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        first,
        ["/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/2.snapshot.json", "/metadata/2.targets.json"]
    );
    let v = scan(&root, &[]);
    let second = c.requests_since(&mut seen);
    let uris: Vec<&str> = second.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, ["/metadata/2.root.json", "/metadata/timestamp.json"]);
    assert_eq!((second[0].status, second[1].status), (404, 200));
    assert_eq!(v["traffic"]["requests"], 2);
    assert_eq!(v["traffic"]["cached"], 2);
}

#[test]
fn scan_without_a_subscription_says_how_to_subscribe() {
    let c = Channel::media("no-subscription");
    let root = c.kit.root("r");
    let out = hotfix(&root, ["scan"]);
    out.expect_code(1);
    assert!(out.stderr.contains("subscribe URL --root-json"), "{}", out.stderr);
    // A root.json that is not signed by its own keys is refused; nothing is subscribed.
    let mut root_json: Value = serde_json::from_slice(&fs::read(c.repo.join("root.json")).unwrap()).unwrap();
    root_json["signed"]["version"] = 7.into();
    let forged = c.kit.path().join("forged-root.json");
    fs::write(&forged, serde_json::to_vec(&root_json).unwrap()).unwrap();
    let out = hotfix(&root, ["subscribe", &c.url(), "--root-json", s(&forged)]);
    out.expect_code(6);
    assert!(out.stderr.contains("forged-root.json"), "{}", out.stderr);
    assert!(!root.join(".servicing/channel/subscription.json").exists());
    let out = hotfix(&root, ["subscribe", "ftp://example.invalid/", "--root-json", s(&c.repo.join("root.json"))]);
    out.expect_code(2);
    let out = hotfix(&root, ["subscribe", &c.url(), "--root-json", s(&c.repo.join("root.json")), "--ring", "a/b"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--ring"), "{}", out.stderr);
    assert!(!root.join(".servicing/channel/subscription.json").exists());
}

#[test]
fn links_planted_in_the_channel_state_are_never_followed() {
    let c = Channel::media("planted-links");
    c.publish(&c.rollup(4));
    let root = c.root("r");
    scan(&root, &[]);
    let outside = c.kit.path().join("outside.txt");
    fs::write(&outside, "not the runtime's\n").unwrap();
    let state = root.join(".servicing/channel");
    // A link among the cached metadata is not read and is removed by name.
    let cached = state.join("cache/2.targets.json");
    fs::remove_file(&cached).unwrap();
    std::os::unix::fs::symlink(&outside, &cached).unwrap();
    assert_eq!(ids(&scan(&root, &[]), "offered"), ["KB4"]);
    assert!(fs::symlink_metadata(&cached).unwrap().file_type().is_file(), "replaced by the fetched file");
    // A link in place of trusted metadata stops the scan, naming it; the target is untouched.
    let trusted = state.join("trusted/timestamp.json");
    fs::remove_file(&trusted).unwrap();
    std::os::unix::fs::symlink(&outside, &trusted).unwrap();
    let out = hotfix(&root, ["scan"]);
    out.expect_code(1);
    assert!(out.stderr.contains("trusted/timestamp.json") && out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "not the runtime's\n");
    // The whole state directory as a link: refused, not followed.
    fs::remove_file(&trusted).unwrap();
    let elsewhere = c.kit.path().join("elsewhere");
    fs::rename(&state, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &state).unwrap();
    let out = hotfix(&root, ["scan"]);
    out.expect_code(1);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "not the runtime's\n");
}

#[test]
fn root_key_rotation_v1_to_v3_with_threshold() {
    let Some(c) = Channel::http("root-rotation") else { return };
    c.publish(&c.rollup(4));
    let root = c.root("r");
    assert_eq!(scan(&root, &[])["metadata"]["root"], 1);
    for k in ["r2", "r3", "r4", "r5", "r6"] {
        pkgtool(["-q", "keygen", s(&c.keys.join(k))]).expect_code(0);
    }
    let rotate = |new: &[&str], root_keys: &[&str]| {
        let mut args = vec!["repo".to_string(), "rotate".into(), s(&c.repo).into(), "--role".into(), "root".into()];
        for k in new {
            args.extend(["--new-key".to_string(), c.key(k)]);
        }
        args.extend(["--threshold".to_string(), "2".into()]);
        for k in root_keys {
            args.extend(["--root-key".to_string(), c.key(k)]);
        }
        pkgtool(&args).expect_code(0);
    };
    // v2: three root keys, any two of them; v3: two others, both needed.
    rotate(&["r2", "r3", "r4"], &["root"]);
    rotate(&["r5", "r6"], &["r2", "r4"]);
    c.publish(&c.rollup(5));
    // The subscribed root walks v2 then v3 and keeps v3 as its trusted root.
    let v = scan(&root, &[]);
    assert_eq!(v["metadata"]["root"], 3, "{v:#}");
    assert_eq!(ids(&v, "offered"), ["KB5"]);
    let trusted: Value =
        serde_json::from_slice(&fs::read(root.join(".servicing/channel/trusted/root.json")).unwrap()).unwrap();
    assert_eq!(trusted["signed"]["version"], 3);
    // A root subscribing now, pinned at v1 as the vendor published it, follows as well.
    let late = c.root("late");
    assert_eq!(scan(&late, &[])["metadata"]["root"], 3);

    // A v4 that the v3 keys did not sign (v3's signatures over a changed body) is refused,
    // and the root keeps trusting v3.
    let mut v4: Value = serde_json::from_slice(&fs::read(c.repo.join("metadata/3.root.json")).unwrap()).unwrap();
    v4["signed"]["version"] = 4.into();
    fs::write(c.repo.join("metadata/4.root.json"), serde_json::to_vec(&v4).unwrap()).unwrap();
    let before = servicing_tree(&root);
    let out = hotfix(&root, ["update", "--json"]);
    out.expect_code(6);
    assert_eq!(json(&out)["error"]["class"], "tuf");
    assert!(out.stderr.contains(&c.url()), "{}", out.stderr);
    assert_eq!(servicing_tree(&root), before);
    let trusted: Value =
        serde_json::from_slice(&fs::read(root.join(".servicing/channel/trusted/root.json")).unwrap()).unwrap();
    assert_eq!(trusted["signed"]["version"], 3, "the refused v4 is not trusted");
    fs::remove_file(c.repo.join("metadata/4.root.json")).unwrap();
    // Losing the trusted v3 does not quietly fall back to the pinned v1 (whose keys were
    // rotated out): refused, naming the file.
    let trusted_path = root.join(".servicing/channel/trusted/root.json");
    let saved = fs::read(&trusted_path).unwrap();
    fs::remove_file(&trusted_path).unwrap();
    let out = hotfix(&root, ["scan"]);
    out.expect_code(6);
    assert!(out.stderr.contains("trusted/root.json") && out.stderr.contains("version 3"), "{}", out.stderr);
    fs::write(&trusted_path, saved).unwrap();
    hotfix(&root, ["update"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB5"]);
}

#[test]
fn update_honours_the_restart_switches_as_install_does() {
    let c = Channel::media("update-restart");
    c.publish(&c.rollup(4));
    let root = c.root("r");
    let out = hotfix(&root, ["update", "/forcerestart"]);
    out.expect_code(3);
    assert!(out.stdout.contains("/forcerestart"), "{}", out.stdout);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
    // Nothing to do: nothing to restart for.
    hotfix(&root, ["update", "/forcerestart"]).expect_code(0);
}
