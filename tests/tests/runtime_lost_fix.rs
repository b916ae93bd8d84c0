//! A fix that ends up in no active build — a vendor numbering mistake the runtime is in a
//! unique place to catch: hotfix KB9 ships LDR 5.2.3790.1002 with fix KB9 after update KB4
//! put LDR 5.2.3790.1004 (which lacks KB9) on the root. The newer build wins, so KB9 is
//! absent; install, `status` and `check` say so, naming the package, the fix and the build
//! that lacks it, without failing (nothing is damaged).

use std::path::{Path, PathBuf};

use hotfix_tests::root::{Kit, hotfix};

fn kb9(kit: &Kit) -> PathBuf {
    kit.spec(
        "KB9",
        r#"[package]
id = "KB9"
kind = "hotfix"
product = "contoso"
title = "Hotfix numbered below an earlier update"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1002"
fixes = ["KB1", "KB2", "KB9"]
dir = "KB9/rtm"
"#,
        &[("rtm/bin/kernel.dll", "contoso kernel RTM LDR 1002 with KB9\n")],
    )
}

const LOST: &str = "fix KB9 of KB9 is in no active build: kernel runs LDR 5.2.3790.1004 from KB4";

#[test]
fn a_fix_in_no_active_build_is_warned_at_install_status_and_check() {
    let kit = Kit::new("a_fix_in_no_active_build_is_warned_at_install_status_and_check");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    hotfix(&root, [Path::new("install"), &kit.contoso("kb4")]).expect_code(0);
    let kb9 = kb9(&kit);
    // What-if already says it.
    let out = hotfix(&root, [Path::new("install"), &kb9, Path::new("--what-if")]);
    assert!(out.stderr.contains(LOST), "{out:?}");
    let out = hotfix(&root, [Path::new("install"), &kb9]);
    out.expect_code(0);
    assert!(out.stderr.contains(LOST), "{}", out.stderr);
    hotfix(&root, ["query", "--fix", "KB9"]).expect_code(9);
    let out = hotfix(&root, ["status"]);
    out.expect_code(0);
    assert!(out.stdout.contains(&format!("warning: {LOST}")), "{}", out.stdout);
    let out = hotfix(&root, ["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["warnings"][0].as_str().unwrap().starts_with(LOST), "{v}");
    let out = hotfix(&root, ["check"]);
    out.expect_code(0);
    assert!(out.stdout.contains(&format!("warning: {LOST}")), "{}", out.stdout);
    // Once KB4 is gone, KB9's build is the newest LDR one and its fix is present.
    hotfix(&root, ["uninstall", "KB4"]).expect_code(0);
    hotfix(&root, ["query", "--fix", "KB9"]).expect_code(0);
    let out = hotfix(&root, ["status"]);
    assert!(!out.stdout.contains("warning:"), "{}", out.stdout);
}

#[test]
fn a_cumulative_hotfix_installs_without_a_warning() {
    let kit = Kit::new("a_cumulative_hotfix_installs_without_a_warning");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    hotfix(&root, [Path::new("install"), &kit.contoso("kb4")]).expect_code(0);
    let out = hotfix(&root, [Path::new("install"), &hotfix_tests::root::kb5(&kit)]);
    out.expect_code(0);
    assert!(!out.stderr.contains("no active build"), "{}", out.stderr);
}

#[test]
fn pkgtool_build_refuses_a_hotfix_numbered_below_a_previous_build_that_lacks_its_fix() {
    let kit = Kit::new("pkgtool_build_refuses_a_hotfix_numbered_below_a_previous_build_that_lacks_its_fix");
    let kb4 = kit.contoso("kb4");
    kb9(&kit); // writes KB9.toml and its payload
    let spec = kit.path().join("KB9.toml");
    let out_pkg = kit.path().join("kb9-checked.pkg");
    let build = |previous: &Path| {
        hotfix_tests::run::pkgtool([
            "build".as_ref(),
            spec.as_os_str(),
            "--key".as_ref(),
            kit.key.as_os_str(),
            "-o".as_ref(),
            out_pkg.as_os_str(),
            "--previous".as_ref(),
            previous.as_os_str(),
        ])
    };
    let out = build(&kb4);
    out.expect_code(1);
    assert!(
        out.stderr.contains(
            "KB9's kernel RTM LDR 5.2.3790.1002 is older than KB4's kernel RTM LDR 5.2.3790.1004, which lacks its fix KB9"
        ),
        "{}",
        out.stderr
    );
    assert!(!out_pkg.exists(), "a refused build wrote {}", out_pkg.display());
    // Against the RTM baseline alone (builds 5.2.3790.0, no fixes) it is cumulative.
    build(&kit.contoso("rtm")).expect_code(0);
    assert!(out_pkg.exists());
}

#[test]
fn reset_base_never_drops_a_package_whose_fix_is_in_no_active_build() {
    let kit = Kit::new("reset_base_never_drops_a_package_whose_fix_is_in_no_active_build");
    let root = kit.root("root");
    for pkg in [kit.contoso("rtm"), kit.contoso("kb4"), kb9(&kit), hotfix_tests::root::kb1(&kit)] {
        hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    }
    // kernel is LDR (hotfixes KB9 and KB1), LDR 5.2.3790.1004 from KB4 is active and lacks
    // KB9. Without KB9 the active state would be the same (KB1 keeps LDR), but KB9's fix
    // would then be gone for good: it stays. KB1's fix is in the active build: it goes.
    let out = hotfix(&root, ["cleanup", "--reset-base", "--yes"]);
    out.expect_code(0);
    let ids = hotfix_tests::root::installed_ids(&root);
    assert!(ids.contains(&"KB9".to_string()), "{ids:?}\n{}", out.stdout);
    assert!(!ids.contains(&"KB1".to_string()), "{ids:?}\n{}", out.stdout);
    // Uninstalling KB4 still brings KB9's fix in.
    hotfix(&root, ["uninstall", "KB4"]).expect_code(0);
    hotfix(&root, ["query", "--fix", "KB9"]).expect_code(0);
}
