//! A root is hostile ground (issue 10, section 1 and 4): links planted at the runtime's
//! temporary names, in the store, at `.servicing/lock` and `.servicing/log`, a hard link
//! from a live file to a file outside the root, a FIFO or a link to `/dev/zero` in place
//! of a store blob. Every case checks a canary file outside the root byte for byte, and
//! that the runtime still does its job.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotfix_tests::root::{Kit, hotfix, kb1, live_text, manifest, payload, store_blob, tree};
use hotfix_tests::run::bin;

const CANARY: &[u8] = b"canary: nothing may write here\n";

/// A file outside every root, holding [`CANARY`].
fn canary(kit: &Kit, name: &str) -> PathBuf {
    let dir = kit.path().join("outside");
    fs::create_dir_all(&dir).expect("outside dir");
    let path = dir.join(name);
    fs::write(&path, CANARY).expect("canary");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

fn assert_canary(path: &Path) {
    assert_eq!(fs::read(path).expect("canary is there"), CANARY, "{} was written through", path.display());
    assert_eq!(
        fs::metadata(path).expect("stat").permissions().mode() & 0o7777,
        0o644,
        "{} was chmodded",
        path.display()
    );
}

fn at_rtm(kit: &Kit) -> PathBuf {
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    root
}

fn is_plain_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file() && m.nlink() == 1)
}

/// Every name under `dir` that starts with the runtime's temporary prefix.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let ty = e.file_type().expect("type");
            if ty.is_dir() {
                stack.push(e.path());
            }
            if e.file_name().to_string_lossy().starts_with(".hotfix-tmp.") {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
fn link_planted_at_a_temporary_name_is_replaced_not_written_through() {
    let kit = Kit::new("link_planted_at_a_temporary_name_is_replaced_not_written_through");
    let root = at_rtm(&kit);
    let victim = canary(&kit, "victim");
    symlink(&victim, root.join("bin/.hotfix-tmp.kernel.dll")).expect("plant");
    symlink(&victim, root.join("etc/.hotfix-tmp.kernel.conf")).expect("plant");
    hotfix(&root, [Path::new("install"), &kb1(&kit)]).expect_code(0);
    assert_canary(&victim);
    assert!(is_plain_file(&root.join("bin/kernel.dll")), "bin/kernel.dll must be a regular file of its own");
    assert!(temporaries(&root).is_empty(), "left behind: {:?}", temporaries(&root));
    // The same tree as on a root nobody tampered with.
    let clean = kit.path().join("clean");
    hotfix(&clean, ["init", "--product", "contoso", "--trust", kit.public.to_str().expect("utf-8")]).expect_code(0);
    hotfix(&clean, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    hotfix(&clean, [Path::new("install"), &kb1(&kit)]).expect_code(0);
    assert_eq!(tree(&root), tree(&clean));
}

#[test]
fn check_repair_never_writes_through_a_planted_link() {
    let kit = Kit::new("check_repair_never_writes_through_a_planted_link");
    let root = at_rtm(&kit);
    let good = fs::read(root.join("bin/kernel.dll")).expect("read");
    fs::write(root.join("bin/kernel.dll"), b"damaged").expect("damage");
    let victim = canary(&kit, "victim");
    symlink(&victim, root.join("bin/.hotfix-tmp.kernel.dll")).expect("plant");
    let out = hotfix(&root, ["check", "--repair"]);
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    assert_canary(&victim);
    assert!(is_plain_file(&root.join("bin/kernel.dll")));
    assert_eq!(fs::read(root.join("bin/kernel.dll")).expect("read"), good, "repaired from the store");
    hotfix(&root, ["check"]).expect_code(0);
}

#[test]
fn links_planted_in_the_store_are_never_written_through() {
    let kit = Kit::new("links_planted_in_the_store_are_never_written_through");
    let root = at_rtm(&kit);
    let pkg = kb1(&kit);
    let m = manifest(&pkg);
    let victim = canary(&kit, "victim");
    let staging = root.join(".servicing/store/tmp");
    fs::create_dir_all(&staging).expect("staging dir");
    let mut planted = 0;
    for (digest, _, _) in m.blobs.iter().flat_map(|b| b.contents()) {
        let hex = digest.to_hex();
        let blob = store_blob(&root, &hex);
        if blob.exists() {
            continue;
        }
        fs::create_dir_all(blob.parent().expect("shard")).expect("shard");
        // The staging name, the final name, and the old temporary name beside it.
        symlink(&victim, staging.join(&hex)).expect("plant");
        symlink(&victim, &blob).expect("plant");
        symlink(&victim, blob.with_file_name(format!(".hotfix-tmp.{hex}"))).expect("plant");
        planted += 1;
    }
    assert!(planted > 0, "KB1 adds blobs to the store");
    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    assert_canary(&victim);
    for (digest, _, _) in m.blobs.iter().flat_map(|b| b.contents()) {
        assert!(is_plain_file(&store_blob(&root, &digest.to_hex())), "blob {digest} is a file of its own");
    }
    hotfix(&root, ["check"]).expect_code(0);
}

#[test]
fn links_at_the_lock_and_the_log_are_replaced_not_followed() {
    let kit = Kit::new("links_at_the_lock_and_the_log_are_replaced_not_followed");
    let root = at_rtm(&kit);
    let (lock_victim, log_victim) = (canary(&kit, "lock-victim"), canary(&kit, "log-victim"));
    for (name, victim) in [("lock", &lock_victim), ("log", &log_victim)] {
        let path = root.join(".servicing").join(name);
        fs::remove_file(&path).expect("remove");
        symlink(victim, &path).expect("plant");
    }
    hotfix(&root, [Path::new("install"), &kb1(&kit)]).expect_code(0);
    assert_canary(&lock_victim);
    assert_canary(&log_victim);
    assert!(is_plain_file(&root.join(".servicing/lock")));
    let log = fs::read_to_string(root.join(".servicing/log")).expect("log");
    assert!(log.contains("KB1"), "the log goes on in a fresh file: {log}");
    // A hard link is not the runtime's file either.
    fs::remove_file(root.join(".servicing/log")).expect("remove");
    fs::hard_link(&log_victim, root.join(".servicing/log")).expect("hard link");
    hotfix(&root, ["uninstall", "KB1"]).expect_code(0);
    assert_canary(&log_victim);
}

#[test]
fn hard_linked_live_file_is_replaced_when_only_its_mode_changes() {
    let kit = Kit::new("hard_linked_live_file_is_replaced_when_only_its_mode_changes");
    let root = at_rtm(&kit);
    // A hotfix whose kernel build is RTM's, bytes for bytes, with bin/kernel.dll executable.
    let spec = r#"[package]
id = "KBM"
kind = "hotfix"
product = "contoso"
title = "Mode-only hotfix"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1500"
fixes = ["KBM"]
dir = "KBM/p"
"#;
    let dll = payload("baseline-rtm/kernel/bin/kernel.dll");
    let conf = payload("baseline-rtm/kernel/etc/kernel.conf");
    hotfix_tests::fixtures::write(kit.path(), "KBM/p/bin/kernel.dll", &dll);
    hotfix_tests::fixtures::write(kit.path(), "KBM/p/etc/kernel.conf", &conf);
    let exe = kit.path().join("KBM/p/bin/kernel.dll");
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).expect("chmod");
    let pkg = kit.build(&hotfix_tests::fixtures::write(kit.path(), "KBM.toml", spec), "KBM");

    // The live file becomes a hard link to a file outside the root with the same bytes.
    let victim = kit.path().join("outside-victim");
    fs::write(&victim, &dll).expect("victim");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::remove_file(root.join("bin/kernel.dll")).expect("remove");
    fs::hard_link(&victim, root.join("bin/kernel.dll")).expect("hard link");

    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    assert_eq!(
        fs::metadata(&victim).expect("stat").permissions().mode() & 0o7777,
        0o644,
        "the outside file kept its mode"
    );
    assert_eq!(fs::read(&victim).expect("read"), dll.as_bytes());
    let live = root.join("bin/kernel.dll");
    assert!(is_plain_file(&live), "replaced by a file of its own");
    assert_eq!(fs::metadata(&live).expect("stat").permissions().mode() & 0o7777, 0o755);
    assert_eq!(live_text(&root, "bin/kernel.dll"), dll);
}

#[test]
fn linked_directory_in_the_root_is_refused_and_its_target_untouched() {
    let kit = Kit::new("linked_directory_in_the_root_is_refused_and_its_target_untouched");
    let root = at_rtm(&kit);
    let outside = kit.path().join("outside-bin");
    fs::create_dir_all(&outside).expect("outside");
    fs::write(outside.join("kernel.dll"), CANARY).expect("canary");
    let before = tree(&outside);
    fs::rename(root.join("bin"), kit.path().join("moved-bin")).expect("move bin away");
    symlink(&outside, root.join("bin")).expect("plant");
    let out = hotfix(&root, [Path::new("install"), &kb1(&kit)]);
    out.expect_code(1);
    assert!(out.stderr.contains("bin"), "{}", out.stderr);
    assert_eq!(tree(&outside), before, "nothing written through the linked directory");
    let out = hotfix(&root, ["check", "--repair"]);
    assert_ne!(out.code, 0, "a linked directory is a problem check reports: {out:?}");
    assert_eq!(tree(&outside), before, "check --repair does not write through it either");
}

#[test]
fn linked_servicing_directory_is_refused() {
    let kit = Kit::new("linked_servicing_directory_is_refused");
    let root = at_rtm(&kit);
    let elsewhere = kit.path().join("elsewhere");
    fs::rename(root.join(".servicing"), &elsewhere).expect("move");
    symlink(&elsewhere, root.join(".servicing")).expect("plant");
    let log_before = fs::read(elsewhere.join("log")).expect("log");
    let out = hotfix(&root, [Path::new("install"), &kb1(&kit)]);
    out.expect_code(1);
    assert!(out.stderr.contains(".servicing"), "{}", out.stderr);
    assert_eq!(fs::read(elsewhere.join("log")).expect("log"), log_before);
}

/// Runs `hotfix --root ROOT ARGS` and fails the test if it has not ended within 30 s.
fn hotfix_bounded(root: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(bin("hotfix"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hotfix runs");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            return (status.code().unwrap_or(-1), text);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("hotfix {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn store_blob_replaced_by_a_fifo_or_a_device_link_is_reported_not_read() {
    let kit = Kit::new("store_blob_replaced_by_a_fifo_or_a_device_link_is_reported_not_read");
    let root = at_rtm(&kit);
    let m = manifest(&kit.contoso("rtm"));
    let mut blobs = m.blobs.iter().flat_map(|b| b.contents()).map(|(d, _, _)| store_blob(&root, &d.to_hex()));
    let (fifo, zero) = (blobs.next().expect("a blob"), blobs.next().expect("another blob"));
    fs::remove_file(&fifo).expect("remove");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    fs::remove_file(&zero).expect("remove");
    symlink("/dev/zero", &zero).expect("plant");
    let (code, text) = hotfix_bounded(&root, &["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FIFO") || text.contains("not a blob"), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
    // Uninstalling nothing and installing KB1 reads only the blobs it needs, never these.
    let (code, text) = hotfix_bounded(&root, &["install", kb1(&kit).to_str().expect("utf-8")]);
    assert!(code == 0 || code == 1, "{text}");
}

#[test]
fn inventory_files_that_are_links_are_refused_not_written_through() {
    let kit = Kit::new("inventory_files_that_are_links_are_refused_not_written_through");
    let root = at_rtm(&kit);
    let victim = canary(&kit, "victim");
    let servicing = root.join(".servicing");
    // The write-ahead log is the file SQLite writes first.
    let _ = fs::remove_file(servicing.join("inventory.db-wal"));
    symlink(&victim, servicing.join("inventory.db-wal")).expect("plant");
    let out = hotfix(&root, [Path::new("install"), &kb1(&kit)]);
    out.expect_code(1);
    assert!(out.stderr.contains("inventory.db-wal"), "{}", out.stderr);
    assert_canary(&victim);
    fs::remove_file(servicing.join("inventory.db-wal")).expect("remove the link");
    // A hard link from the inventory to a file elsewhere.
    let copy = kit.path().join("outside-inventory");
    fs::hard_link(servicing.join("inventory.db"), &copy).expect("hard link");
    let before = fs::read(&copy).expect("read");
    let out = hotfix(&root, [Path::new("install"), &kb1(&kit)]);
    out.expect_code(1);
    assert!(out.stderr.contains("hard link"), "{}", out.stderr);
    assert_eq!(fs::read(&copy).expect("read"), before);
    fs::remove_file(&copy).expect("unlink the other name");
    hotfix(&root, [Path::new("install"), &kb1(&kit)]).expect_code(0);
}

#[test]
fn staging_left_by_a_killed_install_is_removed_by_the_next_command_and_reported_by_check() {
    let kit = Kit::new("staging_left_by_a_killed_install_is_removed_by_the_next_command_and_reported_by_check");
    let root = at_rtm(&kit);
    let staging = root.join(".servicing/store/tmp");
    fs::create_dir_all(&staging).expect("staging dir");
    fs::write(staging.join("a".repeat(64)), vec![0u8; 4096]).expect("leftover");
    fs::write(staging.join("b".repeat(64)), vec![0u8; 100]).expect("leftover");
    let out = hotfix(&root, ["check"]);
    out.expect_code(0);
    assert!(out.stdout.contains("Removed 2 files (4196 bytes)"), "{}", out.stdout);
    assert_eq!(fs::read_dir(&staging).expect("staging").count(), 0);
    let out = hotfix(&root, ["check"]);
    assert!(!out.stdout.contains("Removed"), "{}", out.stdout);
}

#[test]
fn the_log_rotates_to_log_1_past_its_bound_replacing_a_planted_link_there() {
    let kit = Kit::new("the_log_rotates_to_log_1_past_its_bound_replacing_a_planted_link_there");
    let root = at_rtm(&kit);
    let servicing = root.join(".servicing");
    // A log at its bound (1 MiB, runtime/src/oplog.rs LOG_MAX_BYTES) of earlier lines.
    let line = "{\"op\":\"earlier\",\"pad\":\"................................................\"}\n";
    let old: String = line.repeat((1 << 20) / line.len());
    fs::write(servicing.join("log"), &old).unwrap();
    let outside = canary(&kit, "log1-target");
    symlink(&outside, servicing.join("log.1")).unwrap();

    hotfix(&root, ["policy", "branch", "ldr"]).expect_code(0);
    assert_canary(&outside);
    assert!(is_plain_file(&servicing.join("log.1")), "log.1 is the runtime's own file now, not the link");
    assert_eq!(fs::read_to_string(servicing.join("log.1")).unwrap(), old, "the old log, whole, as log.1");
    let fresh = fs::read_to_string(servicing.join("log")).unwrap();
    assert_eq!(fresh.lines().count(), 1, "a fresh log with the new line: {fresh}");
    assert!(fresh.contains("\"op\":\"policy branch ldr\""), "{fresh}");

    // Below the bound, lines are appended and log.1 is left alone.
    hotfix(&root, ["policy", "branch", "auto"]).expect_code(0);
    assert_eq!(fs::read_to_string(servicing.join("log")).unwrap().lines().count(), 2);
    assert_eq!(fs::read_to_string(servicing.join("log.1")).unwrap(), old);
    // A second rotation replaces log.1 with the then-current log: one older generation.
    let current = fs::read_to_string(servicing.join("log")).unwrap();
    let big = format!("{current}{}", line.repeat((1 << 20) / line.len()));
    fs::write(servicing.join("log"), &big).unwrap();
    hotfix(&root, ["policy", "branch", "ldr"]).expect_code(0);
    assert_eq!(fs::read_to_string(servicing.join("log.1")).unwrap(), big);
    assert!(!servicing.join("log.2").exists());
}
