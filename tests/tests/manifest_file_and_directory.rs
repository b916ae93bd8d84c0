//! A path that is both a file and a directory of another file of the same root (FORMAT.md
//! §4.3 rule 9): `pkgtool build` refuses it naming the spec and both paths; a package that
//! carries it anyway (signed by a trusted key) is refused by `verify` and by `hotfix
//! install` with exit 6 `[file-and-directory]`, before the root changes.

use std::fs;
use std::path::Path;

use hotfix_tests::craft::RawPackage;
use hotfix_tests::fixtures;
use hotfix_tests::root::{Kit, hotfix, tree};
use hotfix_tests::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

const TWO_COMPONENTS: &str = r#"[package]
id = "RTM"
kind = "baseline"
product = "contoso"
title = "Two components, one file below the other's file"
baseline = { name = "RTM", level = 0 }

[[variant]]
component = "core"
version = "1.0"
dir = "core"

[[variant]]
component = "plugins"
version = "1.0"
dir = "plugins"
"#;

#[test]
fn build_refuses_a_file_of_one_component_below_a_file_of_another() {
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    fixtures::write(t.path(), "core/bin/x", "core's file\n");
    fixtures::write(t.path(), "plugins/bin/x/y", "a plugin below it\n");
    let spec = fixtures::write(t.path(), "rtm.toml", TWO_COMPONENTS);
    let pkg = t.path().join("rtm.pkg");
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]);
    out.expect_code(1);
    for needle in ["rtm.toml:", "bin/x (", "a directory of bin/x/y", "component core", "component plugins"] {
        assert!(out.stderr.contains(needle), "expected {needle:?} in: {}", out.stderr);
    }
    assert!(!pkg.exists(), "a package was written");
}

#[test]
fn build_accepts_gdr_and_ldr_of_one_component_turning_a_file_into_a_directory() {
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    fs::remove_file(t.path().join("p/ldr/etc/kernel.conf")).unwrap();
    fixtures::write(t.path(), "p/ldr/etc/kernel.conf/main.conf", "# now a directory\n");
    let pkg = t.path().join("kb4.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    let pubkey = t.path().join("vendor.pub");
    pkgtool(["verify", s(&pkg), "--trust", s(&pubkey)]).expect_code(0);
}

#[test]
fn install_refuses_a_signed_variant_with_a_file_and_a_file_below_it_before_touching_the_root() {
    let kit = Kit::new("file-and-directory");
    let (_, _, key) = fixtures::key_pair(kit.path(), "publisher", 7);
    let rtm = kit.contoso("rtm");
    let root = kit.root("root");
    let rc = hotfix(&root, ["install".as_ref(), rtm.as_os_str()]).code;
    assert!(rc == 0 || rc == 3, "baseline install exited {rc}");
    let kb4 = kit.contoso("kb4");
    let raw = RawPackage::parse(&fs::read(&kb4).unwrap());
    let mut m = raw.manifest();
    let files = m["variants"][0]["files"].as_array().unwrap().clone();
    let first = files[0]["path"].as_str().unwrap().to_string();
    // The second file moved below the first: still sorted, still backed by its blob.
    m["variants"][0]["files"][1]["path"] = format!("{first}/below").into();
    let mut r = raw.clone();
    r.set_manifest(&m);
    let bad = kit.path().join("bad.pkg");
    fs::write(&bad, r.write(&key, |_| {})).unwrap();

    let out = pkgtool(["verify", s(&bad), "--trust", s(&kit.public)]);
    out.expect_code(6);
    assert!(out.stderr.contains("[file-and-directory]"), "{}", out.stderr);

    let before = tree(&root);
    let out = hotfix(&root, ["install".as_ref(), bad.as_os_str()]);
    out.expect_code(6);
    assert!(out.stderr.contains("file-and-directory") || out.stderr.contains(&first), "{}", out.stderr);
    assert_eq!(tree(&root), before, "the root changed");
}
