//! What `hotfix install` refuses, with which exit code and which words — and that a refusal
//! changes nothing: not applicable (4) for another product, another baseline, no installed
//! component or a mismatched /B:<BASELINE>QFE; already installed (5); prerelease (7);
//! tampered or untrusted (6); usage (2); and a file in the way that hotfix does not own (1).

use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::fixtures;
use hotfix_tests::root::{Kit, hotfix, kb1, tree};

/// The live tree and the store's files: what "nothing was written" compares.
fn everything(root: &Path) -> (hotfix_tests::root::Tree, Vec<PathBuf>, Vec<String>) {
    let mut store = Vec::new();
    let mut stack = vec![root.join(".servicing/store")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                store.push(e.path());
            }
        }
    }
    store.sort();
    (tree(root), store, hotfix_tests::root::installed_ids(root))
}

fn at_rtm(kit: &Kit) -> PathBuf {
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    root
}

fn install(root: &Path, pkg: &Path, extra: &[&str]) -> hotfix_tests::run::Outcome {
    let mut args: Vec<&std::ffi::OsStr> = vec!["install".as_ref(), pkg.as_os_str()];
    args.extend(extra.iter().map(|e| std::ffi::OsStr::new(*e)));
    hotfix(root, args)
}

/// Installs `pkg`, expects `code` and `words` in the error, and that nothing changed.
fn refused(root: &Path, pkg: &Path, extra: &[&str], code: i32, words: &[&str]) {
    let before = everything(root);
    let out = install(root, pkg, extra);
    out.expect_code(code);
    for w in words {
        assert!(out.stderr.contains(w), "expected {w:?} in: {}", out.stderr);
    }
    assert!(everything(root) == before, "a refused install changed the root");
}

fn hotfix_spec(id: &str, product: &str, channel: &str, component: &str, baseline: &str) -> String {
    named_spec(id, id, product, channel, component, baseline)
}

/// A one-variant hotfix spec whose payload is under `NAME/p`.
fn named_spec(name: &str, id: &str, product: &str, channel: &str, component: &str, baseline: &str) -> String {
    format!(
        r#"[package]
id = "{id}"
kind = "hotfix"
product = "{product}"
title = "Test hotfix {id}"
channel = "{channel}"

[[variant]]
component = "{component}"
baseline = "{baseline}"
branch = "ldr"
version = "5.2.3791.1100"
fixes = ["{id}"]
dir = "{name}/p"
"#
    )
}

#[test]
fn a_package_for_another_product_is_not_applicable_and_says_so() {
    let kit = Kit::new("a_package_for_another_product_is_not_applicable_and_says_so");
    let root = at_rtm(&kit);
    let pkg = kit.spec("KB10", &hotfix_spec("KB10", "fabrikam", "release", "kernel", "RTM"), &[("p/bin/k.dll", "x\n")]);
    refused(&root, &pkg, &[], 4, &["not applicable", "is for product fabrikam", "this root holds contoso"]);
}

#[test]
fn a_package_for_another_baseline_is_not_applicable_and_says_so() {
    let kit = Kit::new("a_package_for_another_baseline_is_not_applicable_and_says_so");
    let root = at_rtm(&kit);
    let pkg = kit.spec("KB11", &hotfix_spec("KB11", "contoso", "release", "kernel", "SP1"), &[("p/bin/k.dll", "x\n")]);
    refused(&root, &pkg, &[], 4, &["not applicable", "no build for this root's baseline RTM", "builds for SP1"]);
}

#[test]
fn a_package_for_no_installed_component_is_not_applicable_and_says_so() {
    let kit = Kit::new("a_package_for_no_installed_component_is_not_applicable_and_says_so");
    let root = at_rtm(&kit);
    let pkg = kit.spec("KB12", &hotfix_spec("KB12", "contoso", "release", "dns", "RTM"), &[("p/bin/dns.dll", "x\n")]);
    refused(
        &root,
        &pkg,
        &[],
        4,
        &["updates dns at RTM", "none of which is installed", "(installed: kernel, smtp-transport)"],
    );
}

#[test]
fn a_b_switch_for_another_baseline_is_not_applicable() {
    let kit = Kit::new("a_b_switch_for_another_baseline_is_not_applicable");
    let root = at_rtm(&kit);
    refused(&root, &kit.contoso("kb4"), &["/B:SP1QFE"], 4, &["/B:SP1QFE", "this root is at RTM"]);
}

#[test]
fn an_update_before_any_baseline_is_not_applicable() {
    let kit = Kit::new("an_update_before_any_baseline_is_not_applicable");
    let root = kit.root("root");
    refused(&root, &kit.contoso("kb4"), &[], 4, &["no baseline yet", "install the product's RTM"]);
}

#[test]
fn reinstalling_says_already_installed() {
    let kit = Kit::new("reinstalling_says_already_installed");
    let root = at_rtm(&kit);
    install(&root, &kit.contoso("kb4"), &[]).expect_code(0);
    refused(&root, &kit.contoso("kb4"), &[], 5, &["KB4 is already installed", "uninstall KB4"]);
    refused(&root, &kit.contoso("rtm"), &[], 5, &["contoso-rtm is already installed"]);
}

#[test]
fn another_package_under_an_installed_id_is_refused() {
    let kit = Kit::new("another_package_under_an_installed_id_is_refused");
    let root = at_rtm(&kit);
    install(&root, &kb1(&kit), &[]).expect_code(0);
    let impostor = kit.spec(
        "KB1-other",
        &named_spec("KB1-other", "KB1", "contoso", "release", "kernel", "RTM"),
        &[("p/bin/k.dll", "y\n")],
    );
    refused(&root, &impostor, &[], 1, &["a different package with that id is installed", "ids must be unique"]);
}

#[test]
fn a_prerelease_package_is_refused_unless_allowed() {
    let kit = Kit::new("a_prerelease_package_is_refused_unless_allowed");
    let root = at_rtm(&kit);
    let pkg =
        kit.spec("KB13", &hotfix_spec("KB13", "contoso", "prerelease", "kernel", "RTM"), &[("p/bin/k.dll", "x\n")]);
    refused(&root, &pkg, &[], 7, &["prerelease", "--allow-prerelease"]);
    install(&root, &pkg, &["--allow-prerelease"]).expect_code(0);
    assert_eq!(fs::read_to_string(root.join("bin/k.dll")).unwrap(), "x\n");
}

#[test]
fn a_tampered_package_exits_6_and_nothing_is_written() {
    let kit = Kit::new("a_tampered_package_exits_6_and_nothing_is_written");
    let root = at_rtm(&kit);
    let good = fs::read(kit.contoso("kb4")).unwrap();
    for at in [good.len() / 3, good.len() / 2, good.len() - 5] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let pkg = kit.path().join(format!("kb4-flipped-{at}.pkg"));
        fs::write(&pkg, bad).unwrap();
        refused(&root, &pkg, &[], 6, &["Nothing was written"]);
    }
}

#[test]
fn a_package_signed_by_an_untrusted_key_exits_6_and_says_how_to_trust() {
    let kit = Kit::new("a_package_signed_by_an_untrusted_key_exits_6_and_says_how_to_trust");
    let root = at_rtm(&kit);
    let (other, other_pub, _) = fixtures::key_pair(kit.path(), "stranger", 9);
    let out = kit.path().join("kb4-stranger.pkg");
    let spec = hotfix_tests::root::examples().join("kb4.toml");
    hotfix_tests::run::pkgtool(
        [spec.as_os_str(), other.as_os_str(), out.as_os_str()].iter().copied().enumerate().flat_map(|(i, a)| match i {
            0 => vec![std::ffi::OsStr::new("build"), a],
            1 => vec![std::ffi::OsStr::new("--key"), a],
            _ => vec![std::ffi::OsStr::new("-o"), a],
        }),
    )
    .expect_code(0);
    refused(&root, &out, &[], 6, &["not trusted", "trust add"]);
    hotfix(&root, [Path::new("trust"), Path::new("add"), &other_pub]).expect_code(0);
    install(&root, &out, &[]).expect_code(0);
}

#[test]
fn unknown_switches_and_bad_arguments_are_usage_errors() {
    let kit = Kit::new("unknown_switches_and_bad_arguments_are_usage_errors");
    let root = at_rtm(&kit);
    let kb4 = kit.contoso("kb4");
    refused(&root, &kb4, &["/frobnicate"], 2, &["unknown switch /frobnicate"]);
    refused(&root, &kb4, &["/B:LDR"], 2, &["/B:LDR is not a branch override"]);
    refused(&root, &kb4, &["/B:QFE", "--branch", "qfe"], 2, &["not both"]);
    refused(&root, &kb4, &["--no-such-flag"], 2, &[]);
    hotfix(&root, ["uninstall", "not a name"]).expect_code(2);
    hotfix(&root, ["/B:QFE", "uninstall", "KB4"]).expect_code(2);
    // A switch may stand before the command, as with the old installers.
    hotfix(&root, [Path::new("/b:qfe"), Path::new("install"), &kb4]).expect_code(0);
}

#[test]
fn a_file_in_the_way_that_hotfix_does_not_own_is_a_conflict_not_an_overwrite() {
    let kit = Kit::new("a_file_in_the_way_that_hotfix_does_not_own_is_a_conflict_not_an_overwrite");
    let root = at_rtm(&kit);
    fixtures::write(&root, "lib/kb1/trace.so", "the administrator's own file\n");
    refused(&root, &kb1(&kit), &[], 1, &["lib/kb1/trace.so", "not installed by hotfix"]);
    assert_eq!(fs::read_to_string(root.join("lib/kb1/trace.so")).unwrap(), "the administrator's own file\n");
}

#[test]
fn a_hotfix_that_takes_a_file_of_another_component_is_refused_naming_both() {
    let kit = Kit::new("a_hotfix_that_takes_a_file_of_another_component_is_refused_naming_both");
    let root = at_rtm(&kit);
    // A kernel hotfix that also ships the SMTP transport's bin/smtp.dll.
    let pkg = kit.spec(
        "KB14",
        &hotfix_spec("KB14", "contoso", "release", "kernel", "RTM"),
        &[("p/bin/kernel.dll", "k\n"), ("p/bin/smtp.dll", "s\n")],
    );
    refused(&root, &pkg, &[], 1, &["bin/smtp.dll belongs to both kernel and smtp-transport"]);
}
