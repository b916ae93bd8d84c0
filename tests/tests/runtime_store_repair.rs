//! A way back from a damaged store, and a root on a read-only file system (issue 10,
//! section 4): `check --repair --from PKG` puts back the blobs of an installed package from
//! its verified file, and `check` names that command; `status`, `list`, `query` and
//! `check` answer on a read-only mount, and the commands that change the root say why
//! they cannot. `install --reinstall PKG` is the same way back for one package.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotfix_tests::root::{Kit, hotfix, kb1, live_text, manifest, store_blob, tree};

fn at_rtm(kit: &Kit) -> (PathBuf, PathBuf) {
    let root = kit.root("root");
    let rtm = kit.contoso("rtm");
    hotfix(&root, [Path::new("install"), &rtm]).expect_code(0);
    (root, rtm)
}

/// Flips one byte in the middle of the file at `path` (a store blob is read-only).
fn flip_a_byte(path: &Path) {
    let mut bytes = fs::read(path).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    fs::remove_file(path).expect("remove");
    fs::write(path, bytes).expect("write");
}

#[test]
fn damaged_baseline_blob_is_put_back_from_its_package_file() {
    let kit = Kit::new("damaged_baseline_blob_is_put_back_from_its_package_file");
    let (root, rtm) = at_rtm(&kit);
    let before = tree(&root);
    let m = manifest(&rtm);
    let kernel = m.variants.iter().flat_map(|v| &v.files).find(|f| f.path.as_str() == "bin/kernel.dll").expect("file");
    let blob = store_blob(&root, &kernel.sha256.to_hex());
    let good = fs::read(&blob).expect("read");
    flip_a_byte(&blob);
    // The live file is damaged too: repairing it needs the good blob.
    fs::write(root.join("bin/kernel.dll"), b"damaged").expect("damage");

    let out = hotfix(&root, ["check"]);
    out.expect_code(1);
    assert!(out.stdout.contains("check --repair --from contoso-rtm.pkg"), "names a command that works: {}", out.stdout);
    // Without the package file, the live file cannot be repaired from a damaged blob.
    let out = hotfix(&root, ["check", "--repair"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("--from"), "{}", out.stderr);

    let out = hotfix(&root, [Path::new("check"), Path::new("--repair"), Path::new("--from"), &rtm]);
    out.expect_code(0);
    assert!(out.stdout.contains("Put back 1 store blobs of contoso-rtm"), "{}", out.stdout);
    assert_eq!(fs::read(&blob).expect("read"), good, "the blob is whole again");
    assert_eq!(tree(&root), before, "the live file is repaired from it");
    hotfix(&root, ["check"]).expect_code(0);

    // Later changes that need that blob work again.
    hotfix(&root, [Path::new("install"), &kb1(&kit)]).expect_code(0);
    hotfix(&root, ["uninstall", "KB1"]).expect_code(0);
    assert_eq!(tree(&root), before);
}

#[test]
fn check_repair_from_a_package_that_is_not_installed_is_refused_and_writes_nothing() {
    let kit = Kit::new("check_repair_from_a_package_that_is_not_installed_is_refused_and_writes_nothing");
    let (root, _) = at_rtm(&kit);
    let kb4 = kit.contoso("kb4");
    let store = fs::read_dir(root.join(".servicing/store")).expect("store").count();
    let out = hotfix(&root, [Path::new("check"), Path::new("--repair"), Path::new("--from"), &kb4]);
    out.expect_code(1);
    assert!(out.stderr.contains("not installed"), "{}", out.stderr);
    assert_eq!(fs::read_dir(root.join(".servicing/store")).expect("store").count(), store);
    // --from without --repair is a usage error.
    hotfix(&root, [Path::new("check"), Path::new("--from"), &kb4]).expect_code(2);
}

/// Every regular file under the root's store, by path, with its bytes.
fn store_files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.join(".servicing/store")];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(&dir).expect("read store dir") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                dirs.push(e.path());
            } else {
                out.insert(e.path(), fs::read(e.path()).expect("read store file"));
            }
        }
    }
    out
}

/// The store blob of the file `rel` of package `pkg`.
fn blob_of(root: &Path, pkg: &Path, rel: &str) -> PathBuf {
    let m = manifest(pkg);
    let f = m.variants.iter().flat_map(|v| &v.files).find(|f| f.path.as_str() == rel).expect("the package has it");
    store_blob(root, &f.sha256.to_hex())
}

#[test]
fn damaged_baseline_blobs_and_live_file_are_put_back_by_install_reinstall() {
    let kit = Kit::new("damaged_baseline_blobs_and_live_file_are_put_back_by_install_reinstall");
    let (root, rtm) = at_rtm(&kit);
    let at_rtm_only = tree(&root);
    hotfix(&root, [Path::new("install"), &kb1(&kit)]).expect_code(0);
    let before = tree(&root);
    let store_before = store_files(&root);
    // RTM's kernel build is stashed (KB1's is live): uninstalling KB1 needs its blob. RTM's
    // SMTP build is live: its blob and the live file are both damaged. KB1's live kernel is
    // damaged too, and is not RTM's to put back.
    let stashed = blob_of(&root, &rtm, "bin/kernel.dll");
    let live_blob = blob_of(&root, &rtm, "bin/smtp.dll");
    flip_a_byte(&stashed);
    flip_a_byte(&live_blob);
    fs::write(root.join("bin/smtp.dll"), b"damaged smtp").expect("damage");
    fs::write(root.join("bin/kernel.dll"), b"damaged kernel").expect("damage");

    // What failed before: installing it again is "already installed", and the only
    // baseline cannot be uninstalled.
    hotfix(&root, [Path::new("install"), &rtm]).expect_code(5);
    hotfix(&root, ["uninstall", "contoso-rtm"]).expect_code(1);

    let out = hotfix(&root, [Path::new("install"), Path::new("--reinstall"), &rtm]);
    out.expect_code(0);
    assert!(out.stdout.contains("Put back 2 store blobs of contoso-rtm"), "{}", out.stdout);
    assert!(out.stdout.contains("bin/smtp.dll: content differs"), "{}", out.stdout);
    assert!(!out.stdout.contains("bin/kernel.dll"), "KB1's live file is not RTM's: {}", out.stdout);
    assert_eq!(store_files(&root), store_before, "the store is byte for byte what it was");
    assert_eq!(live_text(&root, "bin/kernel.dll"), "damaged kernel", "left to check --repair");
    let log = fs::read_to_string(root.join(".servicing/log")).expect("log");
    assert!(log.contains("install --reinstall contoso-rtm"), "{log}");

    // The rest is check's: it names the live file, and --repair restores it.
    let out = hotfix(&root, ["check"]);
    out.expect_code(1);
    assert!(out.stdout.contains("bin/kernel.dll") && !out.stdout.contains("store blob"), "{}", out.stdout);
    hotfix(&root, ["check", "--repair"]).expect_code(0);
    assert_eq!(tree(&root), before);
    hotfix(&root, ["check"]).expect_code(0);
    // Uninstalling the later hotfix needs RTM's stashed build: it works again.
    hotfix(&root, ["uninstall", "KB1"]).expect_code(0);
    assert_eq!(tree(&root), at_rtm_only);
    hotfix(&root, ["check"]).expect_code(0);
}

#[test]
fn reinstall_of_a_package_not_installed_or_not_the_installed_one_is_refused_and_writes_nothing() {
    let kit = Kit::new("reinstall_of_a_package_not_installed_or_not_the_installed_one_is_refused_and_writes_nothing");
    let (root, rtm) = at_rtm(&kit);
    let blob = blob_of(&root, &rtm, "bin/kernel.dll");
    flip_a_byte(&blob);
    let (before, store_before) = (tree(&root), store_files(&root));
    // Another package; the same id with another manifest (a changed title).
    let kb4 = kit.contoso("kb4");
    let spec = fs::read_to_string(hotfix_tests::root::examples().join("rtm.toml")).expect("spec");
    let spec = spec.replace("Contoso Server RTM", "Contoso Server RTM, rebuilt");
    let other = kit.path().join("other-rtm.toml");
    fs::write(
        &other,
        spec.replace("dir = \"payload/", &format!("dir = \"{}/payload/", hotfix_tests::root::examples().display())),
    )
    .expect("write spec");
    let other = kit.build(&other, "other-rtm");
    for (pkg, why) in [(&kb4, "not installed"), (&other, "differs from the installed")] {
        let out = hotfix(&root, [Path::new("install"), Path::new("--reinstall"), pkg]);
        out.expect_code(1);
        assert!(out.stderr.contains(why), "{}: {}", pkg.display(), out.stderr);
        assert_eq!(store_files(&root), store_before, "{}: nothing written", pkg.display());
        assert_eq!(tree(&root), before);
    }
    // A tampered file is refused before anything is written (exit 6).
    let mut bytes = fs::read(&rtm).expect("read package");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let tampered = kit.path().join("tampered.pkg");
    fs::write(&tampered, bytes).expect("write");
    hotfix(&root, [Path::new("install"), Path::new("--reinstall"), &tampered]).expect_code(6);
    assert_eq!(store_files(&root), store_before);
    // --reinstall installs nothing new and takes no branch option.
    hotfix(&root, [Path::new("install"), Path::new("--reinstall"), Path::new("--branch"), Path::new("qfe"), &rtm])
        .expect_code(2);
}

/// A mount that is undone when the test ends, even by a panic.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn read_only_root_answers_status_list_query_and_check_and_refuses_changes_clearly() {
    let kit = Kit::new("read_only_root_answers_status_list_query_and_check_and_refuses_changes_clearly");
    let mnt = kit.path().join("mnt");
    fs::create_dir_all(&mnt).expect("mount point");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"]).arg(&mnt).status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipping: cannot mount a tmpfs here (needs root, as in CI)");
        return;
    }
    let _m = Mount(mnt.clone());
    let root = mnt.join("root");
    let public = kit.public.to_str().expect("utf-8");
    hotfix(&root, ["init", "--product", "contoso", "--trust", public]).expect_code(0);
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    hotfix(&root, [Path::new("install"), &kb1(&kit)]).expect_code(0);
    let before = tree(&root);
    let ro = Command::new("mount").args(["-o", "remount,ro"]).arg(&mnt).status().expect("mount runs");
    assert!(ro.success());

    let out = hotfix(&root, ["list"]);
    out.expect_code(0);
    assert!(out.stdout.contains("KB1"), "{}", out.stdout);
    hotfix(&root, ["status"]).expect_code(0);
    hotfix(&root, ["query", "--fix", "KB1"]).expect_code(0);
    hotfix(&root, ["query", "--fix", "KB4"]).expect_code(9);
    hotfix(&root, ["check"]).expect_code(0);
    for args in [vec!["uninstall", "KB1"], vec!["check", "--repair"], vec!["cleanup"]] {
        let out = hotfix(&root, &args);
        out.expect_code(1);
        assert!(out.stderr.contains("read-only file system"), "{args:?}: {}", out.stderr);
    }
    assert_eq!(tree(&root), before);
}
