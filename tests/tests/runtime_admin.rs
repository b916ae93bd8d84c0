//! The administrator's commands end to end: `query --fix` (branch-aware, exit 0/9),
//! `status --json` and `list --json` shapes, `policy branch`, `check [--repair]`,
//! `cleanup [--reset-base]`, `trust`, `recover`, `init`, and one operation at a time
//! (exit 8, or `--wait`).

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotfix_tests::root::{Kit, hotfix, installed_ids, kb1, live_text, manifest, payload, store_blob, tree};
use hotfix_tests::run::bin;

fn at_rtm(kit: &Kit) -> PathBuf {
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    root
}

fn install(root: &Path, pkg: &Path) {
    hotfix(root, [Path::new("install"), pkg]).expect_code(0);
}

fn json(root: &Path, args: &[&str]) -> serde_json::Value {
    let out = hotfix(root, args);
    assert!(out.code == 0 || out.code == 9, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", out.stdout))
}

#[test]
fn query_fix_is_branch_aware_and_exits_0_or_9() {
    let kit = Kit::new("query_fix_is_branch_aware_and_exits_0_or_9");
    let root = at_rtm(&kit);
    install(&root, &kit.contoso("kb4"));
    // GDR v4 has KB2 and KB4; KB1 and KB3 are only in the stashed LDR build.
    hotfix(&root, ["query", "--fix", "KB4"]).expect_code(0);
    let out = hotfix(&root, ["query", "--fix", "KB3"]);
    out.expect_code(9);
    assert!(
        out.stdout.contains("KB3 is absent") && out.stdout.contains("LDR 5.2.3790.1004 from KB4"),
        "{}",
        out.stdout
    );
    let v = json(&root, &["query", "--fix", "KB3", "--json"]);
    assert_eq!(v["present"], false);
    assert_eq!(v["stashed"][0]["branch"], "ldr");
    // Moving to LDR brings KB1 and KB3 in, with no version check anywhere.
    hotfix(&root, ["policy", "branch", "ldr"]).expect_code(0);
    hotfix(&root, ["query", "--fix", "KB3"]).expect_code(0);
    let v = json(&root, &["query", "--fix", "KB1", "--json"]);
    assert_eq!(v["present"], true);
    assert_eq!(v["active"][0]["branch"], "ldr");
    assert_eq!(v["active"][0]["package"], "KB4");
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("rtm/ldr/kernel/bin/kernel.dll"));
    hotfix(&root, ["policy", "branch", "auto"]).expect_code(0);
    hotfix(&root, ["query", "--fix", "KB1"]).expect_code(9);
    hotfix(&root, ["query", "--fix", "KB999"]).expect_code(9);
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("rtm/gdr/kernel/bin/kernel.dll"));
}

#[test]
fn status_json_has_the_documented_shape() {
    let kit = Kit::new("status_json_has_the_documented_shape");
    let root = at_rtm(&kit);
    install(&root, &kit.contoso("kb4"));
    install(&root, &kb1(&kit));
    let v = json(&root, &["status", "--json"]);
    assert_eq!(v["product"], "contoso");
    assert_eq!(v["policy"], "auto");
    assert_eq!(v["baseline"], serde_json::json!({"name": "RTM", "level": 0, "package": "contoso-rtm"}));
    let comps = v["components"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    let k = &comps[0];
    assert_eq!(k["component"], "kernel");
    assert_eq!(k["branch"], "ldr");
    assert_eq!(k["reason"], "LDR because hotfix KB1 is installed");
    assert_eq!(k["version"], "5.2.3790.1004");
    assert_eq!(k["package"], "KB4");
    assert_eq!(k["package_kind"], "update");
    assert_eq!(k["fixes"], serde_json::json!(["KB1", "KB2", "KB3", "KB4"]));
    assert_eq!(k["restart"], false);
    assert_eq!(k["files"], serde_json::json!(["bin/kernel.dll", "etc/kernel.conf"]));
    assert_eq!(comps[1]["component"], "smtp-transport");
    assert_eq!(comps[1]["branch"], "gdr");
    assert_eq!(comps[1]["reason"], "GDR: no hotfix and no /B:QFE install for smtp-transport at RTM");
    // One component, and an unknown one.
    assert_eq!(json(&root, &["status", "kernel", "--json"])["components"].as_array().unwrap().len(), 1);
    let out = hotfix(&root, ["status", "dns"]);
    out.expect_code(1);
    assert!(out.stderr.contains("no component dns"), "{}", out.stderr);

    let l = json(&root, &["list", "--json"]);
    let ids: Vec<&str> = l["packages"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["contoso-rtm", "KB4", "KB1"]);
    assert_eq!(l["packages"][1]["active_in"], serde_json::json!(["kernel", "smtp-transport"]));
    assert_eq!(l["packages"][2]["kind"], "hotfix");
    assert_eq!(l["packages"][2]["sequence"], 3);
}

#[test]
fn check_finds_differences_and_repair_restores_them_from_the_store() {
    let kit = Kit::new("check_finds_differences_and_repair_restores_them_from_the_store");
    let root = at_rtm(&kit);
    install(&root, &kit.contoso("kb4"));
    let good = tree(&root);
    hotfix(&root, ["check"]).expect_code(0);
    fs::write(root.join("bin/kernel.dll"), "patched by hand\n").unwrap();
    fs::remove_file(root.join("bin/smtp.dll")).unwrap();
    fs::set_permissions(root.join("etc/kernel.conf"), fs::Permissions::from_mode(0o600)).unwrap();
    let out = hotfix(&root, ["check"]);
    out.expect_code(1);
    for w in ["bin/kernel.dll: content differs", "bin/smtp.dll: missing", "etc/kernel.conf: mode 0600", "--repair"] {
        assert!(out.stdout.contains(w), "{w:?} in {}", out.stdout);
    }
    hotfix(&root, ["check", "--repair"]).expect_code(0);
    assert_eq!(tree(&root), good);
    hotfix(&root, ["check"]).expect_code(0);
    // A damaged store blob is reported, not silently used.
    let m = manifest(&kit.contoso("kb4"));
    let first_file = &m.variants[0].files[0];
    let blob = store_blob(&root, &first_file.sha256.to_hex());
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, "rot").unwrap();
    let out = hotfix(&root, ["check"]);
    out.expect_code(1);
    assert!(out.stdout.contains("is damaged"), "{}", out.stdout);
}

#[test]
fn cleanup_frees_unreferenced_blobs_and_reset_base_makes_the_state_permanent() {
    let kit = Kit::new("cleanup_frees_unreferenced_blobs_and_reset_base_makes_the_state_permanent");
    let root = at_rtm(&kit);
    install(&root, &kb1(&kit));
    install(&root, &kit.contoso("kb4"));
    let out = hotfix(&root, ["cleanup"]);
    out.expect_code(0);
    assert!(out.stdout.contains("Deleted 0 unreferenced blobs"), "{}", out.stdout);
    hotfix(&root, ["uninstall", "KB1"]).expect_code(0);
    let out = hotfix(&root, ["cleanup"]);
    out.expect_code(0);
    assert!(!out.stdout.contains("Deleted 0 "), "KB1's own blobs are garbage now: {}", out.stdout);
    let kb4 = manifest(&kit.contoso("kb4")).content_index();
    for digest in manifest(&kb1(&kit)).content_index().into_keys() {
        assert_eq!(store_blob(&root, &digest.to_hex()).exists(), kb4.contains_key(&digest));
    }
    hotfix(&root, ["check"]).expect_code(0);

    // Reset base after a service pack: the RTM package no longer decides anything; KB4's
    // SP1 build is active, so KB4 stays.
    install(&root, &kit.contoso("sp1"));
    let before = tree(&root);
    // Off a terminal it asks for --yes, naming what it would drop, and changes nothing.
    let out = hotfix(&root, ["cleanup", "--reset-base"]);
    out.expect_code(2);
    assert!(out.stderr.contains("contoso-rtm would be dropped") && out.stderr.contains("--yes"), "{}", out.stderr);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4", "contoso-sp1"]);
    assert_eq!(tree(&root), before);
    let out = hotfix(&root, ["cleanup", "--reset-base", "--yes"]);
    out.expect_code(0);
    assert!(out.stderr.contains("can no longer be uninstalled"), "warning first: {}", out.stderr);
    assert_eq!(installed_ids(&root), ["KB4", "contoso-sp1"]);
    assert!(out.stdout.contains("no longer uninstallable: contoso-rtm."), "{}", out.stdout);
    assert_eq!(tree(&root), before, "the active state is kept exactly");
    hotfix(&root, ["check"]).expect_code(0);
    let out = hotfix(&root, ["uninstall", "contoso-sp1"]);
    out.expect_code(1);
    assert!(out.stderr.contains("only baseline package"), "{}", out.stderr);
}

#[test]
fn a_second_operation_exits_8_naming_the_holder_or_waits() {
    let kit = Kit::new("a_second_operation_exits_8_naming_the_holder_or_waits");
    let root = at_rtm(&kit);
    let lock_path = root.join(".servicing/lock");
    let mut lock = OpenOptions::new().read(true).write(true).open(&lock_path).unwrap();
    lock.try_lock().unwrap();
    lock.set_len(0).unwrap();
    // The note names this process, the lock's real holder: the message quotes it.
    let me = std::process::id();
    lock.write_all(format!("pid {me}: hotfix install KB9.pkg\n").as_bytes()).unwrap();
    let before = tree(&root);
    let out = hotfix(&root, [Path::new("install"), &kit.contoso("kb4")]);
    out.expect_code(8);
    let quoted = format!("pid {me}: hotfix install KB9.pkg");
    assert!(out.stderr.contains("busy") && out.stderr.contains(&quoted), "{}", out.stderr);
    // A stale note (pid 4242 ended long ago) is not believed: the kernel's holder is named.
    lock.set_len(0).unwrap();
    lock.seek(SeekFrom::Start(0)).unwrap();
    lock.write_all(b"pid 4242: hotfix install KB9.pkg\n").unwrap();
    let out = hotfix(&root, [Path::new("install"), &kit.contoso("kb4")]);
    out.expect_code(8);
    assert!(!out.stderr.contains("4242"), "named the stale note's process: {}", out.stderr);
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy();
    assert!(
        out.stderr.contains(&format!("held by pid {me}: ")) && out.stderr.contains(&*exe_name),
        "names the real holder and its command line: {}",
        out.stderr
    );
    assert!(out.stderr.contains("--wait"), "{}", out.stderr);
    assert_eq!(tree(&root), before);
    hotfix(&root, ["uninstall", "contoso-rtm"]).expect_code(8);
    // Readers are not blocked.
    hotfix(&root, ["status"]).expect_code(0);

    // --wait: the install starts once the lock is released.
    let mut child = Command::new(bin("hotfix"))
        .arg("--root")
        .arg(&root)
        .args(["--wait", "install"])
        .arg(kit.contoso("kb4"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "it waits while the lock is held");
    drop(lock);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "it never finished");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
    let _ = File::open(&lock_path).unwrap();
}

#[test]
fn init_trust_and_recover_behave() {
    let kit = Kit::new("init_trust_and_recover_behave");
    let plain = kit.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    let out = hotfix(&plain, ["status"]);
    out.expect_code(1);
    assert!(out.stderr.contains("not a servicing root") && out.stderr.contains("init"), "{}", out.stderr);
    let root = kit.root("root");
    let out = hotfix(
        &root,
        [Path::new("init"), Path::new("--product"), Path::new("contoso"), Path::new("--trust"), &kit.public],
    );
    out.expect_code(1);
    assert!(out.stderr.contains("a servicing root already"), "{}", out.stderr);
    let junk = kit.path().join("junk.pub");
    fs::write(&junk, "not a key").unwrap();
    hotfix(
        &kit.path().join("other"),
        [Path::new("init"), Path::new("--product"), Path::new("x"), Path::new("--trust"), &junk],
    )
    .expect_code(6);
    hotfix(&root, ["recover"]).expect_code(0);
    let v = json(&root, &["trust", "list", "--json"]);
    assert_eq!(v["keys"][0]["name"], "publisher");
    hotfix(&root, ["trust", "remove", "publisher"]).expect_code(0);
    let out = hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]);
    out.expect_code(6);
    hotfix(&root, [Path::new("trust"), Path::new("add"), &kit.public]).expect_code(0);
    install(&root, &kit.contoso("rtm"));
    assert!(fs::read_to_string(root.join(".servicing/log")).unwrap().lines().count() >= 2);
}
