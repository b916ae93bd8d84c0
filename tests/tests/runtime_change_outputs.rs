//! What a change says it did to files: the text output names the paths it wrote and
//! removed — up to ten of each, then how many more (`--json` and `/log:FILE` list every
//! one) — rather than only counting them.

use std::path::Path;

use hotfix_tests::root::{Kit, hotfix, kb1};

#[test]
fn install_and_uninstall_name_the_files_they_write_and_remove() {
    let kit = Kit::new("install_and_uninstall_name_the_files_they_write_and_remove");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let out = hotfix(&root, [Path::new("install"), &kb1(&kit)]);
    out.expect_code(0);
    assert!(out.stdout.contains("  written: bin/kernel.dll\n"), "{}", out.stdout);
    assert!(out.stdout.contains("  written: lib/kb1/trace.so\n"), "{}", out.stdout);
    let out = hotfix(&root, ["uninstall", "KB1"]);
    out.expect_code(0);
    assert!(out.stdout.contains("1 removed"), "{}", out.stdout);
    assert!(out.stdout.contains("  removed: lib/kb1/trace.so\n"), "{}", out.stdout);
}

#[test]
fn past_ten_paths_the_rest_are_counted() {
    let kit = Kit::new("past_ten_paths_the_rest_are_counted");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let files: Vec<(String, String)> =
        (0..13).map(|i| (format!("rtm/lib/many/f{i:02}.so"), format!("file {i}\n"))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let mut all = vec![("rtm/bin/kernel.dll", "kernel with many files\n")];
    all.extend(refs);
    let pkg = kit.spec(
        "KB12",
        r#"[package]
id = "KB12"
kind = "hotfix"
product = "contoso"
title = "Hotfix with many files"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1012"
fixes = ["KB12"]
dir = "KB12/rtm"
"#,
        &all,
    );
    let out = hotfix(&root, [Path::new("install"), &pkg, Path::new("--what-if")]);
    out.expect_code(0);
    assert_eq!(out.stdout.matches("  written: ").count(), 10, "{}", out.stdout);
    assert!(out.stdout.contains("… and 4 more written (--json or /log:FILE lists every path)"), "{}", out.stdout);
    let out = hotfix(&root, [Path::new("install"), &pkg, Path::new("--json")]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let written = v["files"]["written"].as_array().or_else(|| v["change"]["files"]["written"].as_array());
    assert_eq!(written.map(Vec::len), Some(14), "{v}");
}
