//! Fix ids and package ids ignore case (FORMAT.md §4.2): administrators type KB ids in any
//! case, so `query --fix kb3`, `uninstall kb4` and an install of a package whose id differs
//! only in case from an installed one all mean the same fix or package; a manifest spells
//! each fix one way, and that spelling is what every output shows.

use std::path::Path;

use hotfix_tests::fixtures;
use hotfix_tests::root::{Kit, hotfix, installed_ids};
use hotfix_tests::run::pkgtool;

fn install(root: &Path, pkg: &Path) {
    hotfix(root, [Path::new("install"), pkg]).expect_code(0);
}

#[test]
fn query_fix_in_any_case_answers_for_the_manifest_spelling() {
    let kit = Kit::new("query_fix_in_any_case_answers_for_the_manifest_spelling");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    install(&root, &kit.contoso("kb4"));
    // KB4 is in the active GDR build; any case finds it and the answer spells it KB4.
    let out = hotfix(&root, ["query", "--fix", "kb4"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with("KB4 is present:"), "{}", out.stdout);
    let out = hotfix(&root, ["query", "--fix", "Kb4", "--json"]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["fix"], "KB4");
    assert_eq!(v["present"], true);
    // KB3 is only in the stashed LDR build: absent in any case, and named as installed.
    let out = hotfix(&root, ["query", "--fix", "kb3"]);
    out.expect_code(9);
    assert!(out.stdout.starts_with("KB3 is absent"), "{}", out.stdout);
    assert!(out.stdout.contains("LDR 5.2.3790.1004 from KB4"), "{}", out.stdout);
    // A fix nobody ships is absent, as typed.
    let out = hotfix(&root, ["query", "--fix", "kb999"]);
    out.expect_code(9);
    assert!(out.stdout.starts_with("kb999 is absent"), "{}", out.stdout);
}

#[test]
fn uninstall_and_install_match_package_ids_in_any_case() {
    let kit = Kit::new("uninstall_and_install_match_package_ids_in_any_case");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    let kb4 = kit.contoso("kb4");
    install(&root, &kb4);
    // The same package again: already installed (exit 5), and the advice names --reinstall.
    let out = hotfix(&root, [Path::new("install"), &kb4]);
    out.expect_code(5);
    assert!(out.stderr.contains("--reinstall"), "{}", out.stderr);
    // Another package whose id differs only in case is not a second package.
    let spec = std::fs::read_to_string(hotfix_tests::root::examples().join("kb4.toml"))
        .unwrap()
        .replace("id = \"KB4\"", "id = \"kb4\"")
        .replace("title = \"Security update", "title = \"Another security update")
        .replace("dir = \"payload/", &format!("dir = \"{}/payload/", hotfix_tests::root::examples().display()));
    let other = kit.build(&fixtures::write(kit.path(), "kb4-lower.toml", &spec), "kb4-lower");
    let before = hotfix_tests::root::tree(&root);
    let out = hotfix(&root, [Path::new("install"), &other]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("package ids must be unique"), "{}", out.stderr);
    assert_eq!(hotfix_tests::root::tree(&root), before, "a refused install changed the root");
    // `uninstall kb4` removes KB4.
    hotfix(&root, ["uninstall", "kb4"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
}

#[test]
fn a_manifest_that_spells_a_fix_two_ways_is_not_built() {
    let kit = Kit::new("a_manifest_that_spells_a_fix_two_ways_is_not_built");
    fixtures::write(kit.path(), "p/a/bin/a.dll", "a\n");
    fixtures::write(kit.path(), "p/b/bin/b.dll", "b\n");
    let spec = fixtures::write(
        kit.path(),
        "two-ways.toml",
        r#"[package]
id = "KB8"
kind = "hotfix"
product = "contoso"
title = "Two spellings"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1008"
fixes = ["KB8"]
dir = "p/a"

[[variant]]
component = "smtp-transport"
baseline = "RTM"
branch = "ldr"
version = "8.0.685.1008"
fixes = ["kb8"]
dir = "p/b"
"#,
    );
    let out_pkg = kit.path().join("two-ways.pkg");
    let out = pkgtool([
        "build".as_ref(),
        spec.as_os_str(),
        "--key".as_ref(),
        kit.key.as_os_str(),
        "-o".as_ref(),
        out_pkg.as_os_str(),
    ]);
    out.expect_code(1);
    assert!(out.stderr.contains("fix KB8 is also spelled kb8"), "{}", out.stderr);
    assert!(!out_pkg.exists(), "a refused build left {}", out_pkg.display());
}
