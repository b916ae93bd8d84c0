//! A package may turn a file into a directory or a directory into a file (issue 10,
//! section 5): `bin/kernel.dll` becomes a directory holding a file, and `etc/` becomes a
//! file. Install and uninstall both ways, a crash at every step of each, and a directory
//! that holds a file nobody owns (a conflict that changes nothing).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::root::{Kit, Node, copy_tree, hotfix, hotfix_env, installed_ids, tree};

/// KBD: the kernel's files become `bin/kernel.dll/README` and a file `etc`.
fn kbd(kit: &Kit) -> PathBuf {
    let spec = r#"[package]
id = "KBD"
kind = "hotfix"
product = "contoso"
title = "Kernel hotfix that reshapes its files"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1700"
fixes = ["KBD"]
dir = "KBD/p"
"#;
    kit.spec(
        "KBD",
        spec,
        &[("p/bin/kernel.dll/README", "kernel.dll is a directory now\n"), ("p/etc", "etc is a file now\n")],
    )
}

fn at_rtm(kit: &Kit, name: &str) -> PathBuf {
    let root = kit.root(name);
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    root
}

#[test]
fn hotfix_turning_a_file_into_a_directory_and_a_directory_into_a_file_installs_and_uninstalls() {
    let kit = Kit::new("hotfix_turning_a_file_into_a_directory_and_a_directory_into_a_file_installs_and_uninstalls");
    let root = at_rtm(&kit, "root");
    let before = tree(&root);
    let pkg = kbd(&kit);
    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    let after = tree(&root);
    assert_eq!(after.get("bin/kernel.dll"), Some(&Node::Dir));
    assert!(
        matches!(after.get("bin/kernel.dll/README"), Some(Node::File(b, _)) if b == b"kernel.dll is a directory now\n")
    );
    assert!(matches!(after.get("etc"), Some(Node::File(b, _)) if b == b"etc is a file now\n"));
    assert!(!after.contains_key("etc/kernel.conf"));
    hotfix(&root, ["check"]).expect_code(0);
    hotfix(&root, ["uninstall", "KBD"]).expect_code(0);
    assert_eq!(tree(&root), before, "uninstall gives back the file and the directory");
    hotfix(&root, ["check"]).expect_code(0);
}

#[test]
fn directory_holding_a_file_nobody_owns_does_not_give_way_to_a_file() {
    let kit = Kit::new("directory_holding_a_file_nobody_owns_does_not_give_way_to_a_file");
    let root = at_rtm(&kit, "root");
    fs::write(root.join("etc/local.conf"), b"the administrator's own\n").expect("write");
    let before = tree(&root);
    let out = hotfix(&root, [Path::new("install"), &kbd(&kit)]);
    out.expect_code(1);
    assert!(out.stderr.contains("etc") && out.stderr.contains("no package"), "{}", out.stderr);
    assert_eq!(tree(&root), before);
    assert_eq!(installed_ids(&root), vec!["contoso-rtm".to_string()]);
}

/// Kills `op` at every durable step in turn; after `recover` the root is exactly the tree
/// before or the tree after, and the operation then completes.
fn sweep(kit: &Kit, template: &Path, op: &[OsString]) {
    let before = tree(template);
    let done = kit.path().join("done");
    copy_tree(template, &done);
    hotfix(&done, op).expect_code(0);
    let after = tree(&done);
    let root = kit.path().join("sweep");
    for n in 1..200 {
        let _ = fs::remove_dir_all(&root);
        copy_tree(template, &root);
        let out = hotfix_env(&root, op, &[("HOTFIX_CRASH_AT", &n.to_string())]);
        if out.code == 0 {
            assert_eq!(tree(&root), after);
            assert!(n > 6, "the sweep crashed {} steps only", n - 1);
            eprintln!("{op:?}: crashed at each of {} steps", n - 1);
            return;
        }
        assert!(out.stderr.contains("aborting before"), "step {n}: {out:?}");
        hotfix(&root, ["recover"]).expect_code(0);
        let now = tree(&root);
        assert!(now == before || now == after, "step {n}: neither the old nor the new tree: {now:?}");
        hotfix(&root, ["check"]).expect_code(0);
        if now == before {
            hotfix(&root, op).expect_code(0);
            assert_eq!(tree(&root), after, "step {n}: the operation completes after recovery");
        }
    }
    panic!("the operation never completed");
}

#[test]
fn crash_at_every_step_of_a_reshaping_install_and_uninstall_ends_in_the_old_or_new_tree() {
    let kit = Kit::new("crash_at_every_step_of_a_reshaping_install_and_uninstall_ends_in_the_old_or_new_tree");
    let template = at_rtm(&kit, "template");
    let pkg = kbd(&kit);
    sweep(&kit, &template, &[OsString::from("install"), pkg.clone().into_os_string()]);
    let installed = kit.path().join("installed");
    copy_tree(&template, &installed);
    hotfix(&installed, [Path::new("install"), &pkg]).expect_code(0);
    fs::remove_dir_all(kit.path().join("done")).expect("clean");
    sweep(&kit, &installed, &[OsString::from("uninstall"), OsString::from("KBD")]);
}

#[test]
fn file_with_a_255_byte_name_installs_and_uninstalls() {
    let kit = Kit::new("file_with_a_255_byte_name_installs_and_uninstalls");
    let root = at_rtm(&kit, "root");
    let before = tree(&root);
    let long = "n".repeat(255);
    let spec = r#"[package]
id = "KBL"
kind = "hotfix"
product = "contoso"
title = "A file with the longest name a file system allows"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1800"
fixes = ["KBL"]
dir = "KBL/p"
"#;
    let pkg = kit.spec("KBL", spec, &[(&format!("p/bin/{long}"), "long\n"), ("p/bin/kernel.dll", "kernel KBL\n")]);
    hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    assert!(matches!(tree(&root).get(&format!("bin/{long}")), Some(Node::File(b, _)) if b == b"long\n"));
    hotfix(&root, ["uninstall", "KBL"]).expect_code(0);
    assert_eq!(tree(&root), before);
}
