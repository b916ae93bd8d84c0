//! A full or read-only disk in the middle of a transaction (issue 10, section 3): every
//! new file is written before any old one is removed, so the failure strikes while the
//! old tree is whole; rollback goes on past a path it cannot restore and names it;
//! `recover` completes once the cause is gone; and after a failed install the store and
//! the disk usage are what they were. On a small tmpfs and read-only bind mounts: these
//! need root (CI runs as root) and skip with a message otherwise.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotfix_tests::root::{Kit, Tree, copy_tree, hotfix, hotfix_env, installed_ids, kb1, tree};

/// A mount that is undone when the test ends, even by a panic.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&std::ffi::OsStr], at: &Path) -> Option<Mount> {
    let ok = Command::new("mount").args(args).arg(at).status().is_ok_and(|s| s.success());
    ok.then(|| Mount(at.to_path_buf()))
}

/// A tmpfs of `bytes` at `at`, or `None` (with a message) where mounting is not allowed.
fn tmpfs(at: &Path, bytes: u64) -> Option<Mount> {
    fs::create_dir_all(at).expect("mount point");
    let size = format!("size={bytes}");
    let m = mount(&["-t".as_ref(), "tmpfs".as_ref(), "-o".as_ref(), size.as_ref(), "tmpfs".as_ref()], at);
    if m.is_none() {
        eprintln!("skipping: cannot mount a tmpfs here (needs root, as in CI)");
    }
    m
}

/// Makes `dir` read-only by bind-mounting it over itself.
fn read_only(dir: &Path) -> Mount {
    let bind = mount(&["--bind".as_ref(), dir.as_os_str()], dir).expect("bind mount");
    let ro = Command::new("mount").args(["-o", "remount,bind,ro"]).arg(dir).status().expect("mount runs");
    assert!(ro.success(), "remount read-only");
    bind
}

/// Bytes available on the file system holding `path`.
fn available(path: &Path) -> u64 {
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().expect("df runs");
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df output")
}

/// Incompressible bytes, the same every run.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// KBZ: a kernel hotfix that drops `etc/kernel.conf` and grows `bin/kernel.dll` to
/// `size` incompressible bytes.
fn kbz(kit: &Kit, size: usize) -> PathBuf {
    let dll = kit.path().join("KBZ/p/bin/kernel.dll");
    fs::create_dir_all(dll.parent().expect("dir")).expect("payload dir");
    fs::write(&dll, noise(size, 0x9e37_79b9_7f4a_7c15)).expect("payload");
    let spec = r#"[package]
id = "KBZ"
kind = "hotfix"
product = "contoso"
title = "A large kernel hotfix"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1900"
fixes = ["KBZ"]
dir = "KBZ/p"
"#;
    kit.build(&hotfix_tests::fixtures::write(kit.path(), "KBZ.toml", spec), "KBZ")
}

/// Every file under the store with its size: "the store is what it was".
fn store_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(".servicing/store")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = e.metadata().expect("stat");
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

fn snapshot(root: &Path) -> (Tree, Vec<(PathBuf, u64)>, Vec<String>) {
    (tree(root), store_files(root), installed_ids(root))
}

fn init_at_rtm(kit: &Kit, root: &Path) {
    let public = kit.public.to_str().expect("utf-8");
    hotfix(root, ["init", "--product", "contoso", "--trust", public]).expect_code(0);
    hotfix(root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
}

#[test]
fn full_disk_mid_install_leaves_the_old_tree_the_store_and_the_space_as_they_were() {
    let kit = Kit::new("full_disk_mid_install_leaves_the_old_tree_the_store_and_the_space_as_they_were");
    let size = 3 << 20;
    let pkg = kbz(&kit, size);
    let mnt = kit.path().join("mnt");
    let Some(_m) = tmpfs(&mnt, 24 << 20) else { return };
    let root = mnt.join("root");
    init_at_rtm(&kit, &root);
    // Room for the staged blob and half the live file: the disk fills while the new
    // bin/kernel.dll is written, after the store took its blob.
    let filler = mnt.join("filler");
    let keep = (size as u64) * 3 / 2 + (256 << 10);
    fs::write(&filler, vec![0u8; usize::try_from(available(&mnt) - keep).expect("size")]).expect("filler");
    let before = snapshot(&root);
    let free_before = available(&mnt);

    let out = hotfix(&root, [Path::new("install"), &pkg]);
    out.expect_code(1);
    assert!(out.stderr.contains("No space left"), "{}", out.stderr);
    assert!(snapshot(&root) == before, "the root, its store and its packages are as they were");
    assert!(tree(&root).contains_key("etc/kernel.conf"), "nothing old was removed");
    let free_after = available(&mnt);
    assert!(
        free_after + (64 << 10) >= free_before,
        "disk usage is what it was (a log line aside): {free_before} free before, {free_after} after"
    );
    hotfix(&root, ["list"]).expect_code(0);
    hotfix(&root, ["recover"]).expect_code(0);
    hotfix(&root, ["check"]).expect_code(0);

    // Once there is room, the same install goes through.
    fs::remove_file(&filler).expect("free the space");
    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    assert!(!tree(&root).contains_key("etc/kernel.conf"));
    hotfix(&root, ["uninstall", "KBZ"]).expect_code(0);
    assert_eq!(tree(&root), before.0);
}

#[test]
fn read_only_directory_mid_install_rolls_back_and_removes_nothing() {
    let kit = Kit::new("read_only_directory_mid_install_rolls_back_and_removes_nothing");
    let pkg = kbz(&kit, 64 << 10);
    let mnt = kit.path().join("mnt");
    let Some(_m) = tmpfs(&mnt, 16 << 20) else { return };
    let root = mnt.join("root");
    init_at_rtm(&kit, &root);
    let before = snapshot(&root);
    {
        let _ro = read_only(&root.join("bin"));
        let out = hotfix(&root, [Path::new("install"), &pkg]);
        out.expect_code(1);
        assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
        assert!(snapshot(&root) == before, "etc/kernel.conf stays, the store is as it was");
    }
    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
}

#[test]
fn rollback_goes_on_past_a_path_it_cannot_restore_and_recover_completes_later() {
    let kit = Kit::new("rollback_goes_on_past_a_path_it_cannot_restore_and_recover_completes_later");
    let pkg = kb1(&kit);
    let mnt = kit.path().join("mnt");
    let Some(_m) = tmpfs(&mnt, 16 << 20) else { return };
    let template = mnt.join("template");
    init_at_rtm(&kit, &template);
    let before = tree(&template);
    // Kill the install just before its commit: every new file is in place by then.
    let root = mnt.join("root");
    let mut killed = false;
    for n in 1..64 {
        let _ = fs::remove_dir_all(&root);
        copy_tree(&template, &root);
        let out = hotfix_env(
            &root,
            [OsString::from("install"), pkg.clone().into_os_string()],
            &[("HOTFIX_CRASH_AT", &n.to_string())],
        );
        if out.stderr.contains("aborting before commit the inventory") {
            killed = true;
            break;
        }
    }
    assert!(killed, "the install reaches its commit point");
    assert_ne!(tree(&root), before, "the new files are in place");
    {
        let _ro = read_only(&root.join("bin"));
        let out = hotfix(&root, ["recover"]);
        out.expect_code(1);
        assert!(out.stderr.contains("bin/kernel.dll"), "names the path it could not restore: {}", out.stderr);
        let now = tree(&root);
        assert_eq!(now.get("etc/kernel.conf"), before.get("etc/kernel.conf"), "the other paths are restored");
    }
    hotfix(&root, ["recover"]).expect_code(0);
    assert_eq!(tree(&root), before);
    assert_eq!(installed_ids(&root), vec!["contoso-rtm".to_string()]);
    hotfix(&root, ["check"]).expect_code(0);
}

#[test]
fn recover_on_a_full_disk_frees_its_temporaries_first_and_completes() {
    let kit = Kit::new("recover_on_a_full_disk_frees_its_temporaries_first_and_completes");
    let pkg = kbz(&kit, 3 << 20);
    let mnt = kit.path().join("mnt");
    let Some(_m) = tmpfs(&mnt, 24 << 20) else { return };
    let template = mnt.join("template");
    init_at_rtm(&kit, &template);
    let before = tree(&template);
    let root = mnt.join("root");
    let mut killed = false;
    for n in 1..64 {
        let _ = fs::remove_dir_all(&root);
        copy_tree(&template, &root);
        let step = n.to_string();
        let out =
            hotfix_env(&root, [OsString::from("install"), pkg.clone().into_os_string()], &[("HOTFIX_CRASH_AT", &step)]);
        if out.stderr.contains("aborting before file rename into place") {
            killed = true;
            break;
        }
    }
    assert!(killed, "the install reaches its first rename");
    fs::remove_dir_all(&template).expect("room for the filler only");
    // Fill the disk to the last byte: the killed install's temporary file holds 3 MiB.
    let filler = mnt.join("filler");
    let _ = fs::write(&filler, vec![0u8; usize::try_from(available(&mnt)).expect("size")]);
    assert!(available(&mnt) < 8 << 10, "the disk is full: {} bytes free", available(&mnt));
    let out = hotfix(&root, ["recover"]);
    out.expect_code(0);
    assert_eq!(tree(&root), before, "the old tree, and no temporary file");
    hotfix(&root, ["check"]).expect_code(0);
    fs::remove_file(&filler).expect("free");
    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
}
