//! The queries dpkg and rpm users reach for first: `owner PATH` (`dpkg -S`), `files
//! ID|COMPONENT` (`dpkg -L`) and `list ID` (`rpm -qi`), answered from the installed
//! manifests and the active state.

use std::path::{Path, PathBuf};

use hotfix_tests::root::{Kit, hotfix, kb1};

fn root_with_kb4_and_kb1(kit: &Kit) -> PathBuf {
    let root = kit.root("root");
    for pkg in [kit.contoso("rtm"), kit.contoso("kb4"), kb1(kit)] {
        hotfix(&root, [Path::new("install"), &pkg]).expect_code(0);
    }
    root
}

fn json(out: &hotfix_tests::run::Outcome) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

#[test]
fn owner_names_the_active_build_and_every_installed_build_with_the_path() {
    let kit = Kit::new("owner_names_the_active_build_and_every_installed_build_with_the_path");
    let root = root_with_kb4_and_kb1(&kit);
    // kernel is on LDR (hotfix KB1); KB4's LDR 1004 is the newest LDR build.
    let out = hotfix(&root, ["owner", "bin/kernel.dll"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("bin/kernel.dll: kernel (active build LDR 5.2.3790.1004 from KB4)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("also in kernel RTM LDR 5.2.3790.1001 of KB1 [stashed]"), "{}", out.stdout);
    // An absolute path inside the root means the same; --json has the builds as data.
    // KB1's own file is in its stashed build only: owned, but not live.
    let abs = std::fs::canonicalize(&root).unwrap().join("lib/kb1/trace.so");
    let out = hotfix(&root, ["owner".as_ref(), abs.as_os_str(), "--json".as_ref()]);
    out.expect_code(0);
    let v = json(&out);
    assert_eq!(v["path"], "lib/kb1/trace.so");
    assert_eq!(v["active"], serde_json::Value::Null);
    assert_eq!(v["builds"][0]["package"], "KB1");
    assert_eq!(v["builds"][0]["state"], "stashed");
    let out = hotfix(&root, ["owner", "lib/kb1/trace.so"]);
    assert!(out.stdout.starts_with("lib/kb1/trace.so: no active build has it"), "{}", out.stdout);
    // Nobody's file: exit 1, as dpkg -S; a path outside the root: a usage error.
    let out = hotfix(&root, ["owner", "etc/passwd"]);
    out.expect_code(1);
    assert!(out.stderr.contains("no installed package has a file at etc/passwd"), "{}", out.stderr);
    hotfix(&root, ["owner", "/etc/passwd"]).expect_code(2);
}

#[test]
fn files_lists_a_package_s_or_a_component_s_builds_with_their_files() {
    let kit = Kit::new("files_lists_a_package_s_or_a_component_s_builds_with_their_files");
    let root = root_with_kb4_and_kb1(&kit);
    let out = hotfix(&root, ["files", "kb1"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with("kernel RTM LDR 5.2.3790.1001 of KB1 [stashed]:\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\n  lib/kb1/trace.so\n"), "{}", out.stdout);
    let v = json(&hotfix(&root, ["files", "smtp-transport", "--json"]));
    assert_eq!(v["of"], "component");
    let builds = v["builds"].as_array().unwrap();
    let active: Vec<_> = builds.iter().filter(|b| b["state"] == "active").collect();
    assert_eq!(active.len(), 1, "{v}");
    assert_eq!((active[0]["package"].as_str(), active[0]["branch"].as_str()), (Some("KB4"), Some("gdr")));
    assert_eq!(active[0]["files"], serde_json::json!(["bin/smtp.dll"]));
    let out = hotfix(&root, ["files", "KB999"]);
    out.expect_code(1);
    assert!(out.stderr.contains("neither an installed package") && out.stderr.contains("KB4"), "{}", out.stderr);
}

#[test]
fn list_id_shows_one_package_with_each_build_s_state() {
    let kit = Kit::new("list_id_shows_one_package_with_each_build_s_state");
    let root = root_with_kb4_and_kb1(&kit);
    let out = hotfix(&root, ["list", "kb4"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with("KB4 (update, release): Security update"), "{}", out.stdout);
    assert!(
        out.stdout.contains("kernel RTM LDR 5.2.3790.1004 [active]: 2 files; fixes KB1, KB2, KB3, KB4"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kernel RTM GDR 5.2.3790.4 [stashed]"), "{}", out.stdout);
    assert!(out.stdout.contains("kernel SP1 LDR 5.2.3791.1004 [other-baseline]"), "{}", out.stdout);
    let v = json(&hotfix(&root, ["list", "KB4", "--json"]));
    assert_eq!(v["id"], "KB4");
    assert_eq!(v["builds"].as_array().map(Vec::len), Some(8));
    let out = hotfix(&root, ["list", "KB999"]);
    out.expect_code(1);
    assert!(out.stderr.contains("KB999 is not installed"), "{}", out.stderr);
}
