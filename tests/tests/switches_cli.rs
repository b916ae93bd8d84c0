//! `hotfix`'s administrator command line end to end: the Windows-style switches beside the
//! long options (case-insensitive; wusa's `hotfix PKG /switches` form), `/log:FILE`,
//! `/uninstall` and `/extract:DIR` on a package file, `--what-if`, unknown switches
//! (exit 2, listing the valid ones), `--json` on every command with an `exit_code`,
//! `HOTFIX_ROOT`, and the generated man pages and completions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotfix_tests::root::{Kit, hotfix, installed_ids, kb1, live_text, payload, tree};
use hotfix_tests::run::{bin, pkgtool};

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn at_rtm(case: &str) -> (Kit, PathBuf) {
    let kit = Kit::new(case);
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    (kit, root)
}

fn json(root: &Path, args: &[&str], code: i32) -> serde_json::Value {
    let out = hotfix(root, args);
    out.expect_code(code);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", out.stdout));
    assert_eq!(v["exit_code"], code, "{args:?}: {v}");
    v
}

#[test]
fn switches_are_taken_in_any_case_and_quiet_and_log_work_on_plain_hotfix() {
    let (kit, root) = at_rtm("switches_are_taken_in_any_case_and_quiet_and_log_work_on_plain_hotfix");
    let log = kit.path().join("ops.log");
    let kb4 = kit.contoso("kb4");
    let out = hotfix(&root, ["install", s(&kb4), "/QUIET", &format!("/Log:{}", s(&log))]);
    out.expect_code(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("=== hotfix ") && text.contains("written: bin/kernel.dll"), "{text}");
    assert!(text.contains("result:  exit 0 (success)"), "{text}");
    // wusa's form: the package first, no subcommand.
    let out = hotfix(&root, [s(&kb1(&kit)), "/passive", &format!("/log:{}", s(&log))]);
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4", "KB1"]);
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("=== hotfix ").count(), 2, "/log:FILE appends: {text}");
    assert!(text.contains("LDR because hotfix KB1 is installed"), "{text}");
}

#[test]
fn uninstall_extract_and_what_if_work_on_a_package_file() {
    let (kit, root) = at_rtm("uninstall_extract_and_what_if_work_on_a_package_file");
    let kb4 = kit.contoso("kb4");
    let rtm = tree(&root);
    let out = hotfix(&root, ["install", s(&kb4), "--what-if"]);
    out.expect_code(0);
    assert!(out.stdout.contains("package KB4 (update)") && out.stdout.contains("would change"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("hotfix --root {} install", root.display())), "{}", out.stdout);
    assert_eq!(tree(&root), rtm);
    hotfix(&root, ["install", s(&kb4)]).expect_code(0);
    hotfix(&root, ["install", s(&kb4), "/uninstall"]).expect_code(0);
    assert_eq!(tree(&root), rtm);
    let dir = kit.path().join("x");
    let out = Command::new(bin("hotfix"))
        .args([s(&kb4), &format!("/extract:{}", s(&dir)), "--trust", s(&kit.public)])
        .env_remove("HOTFIX_ROOT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(dir.join("RTM/ldr/kernel/bin/kernel.dll")).unwrap(),
        payload("rtm/ldr/kernel/bin/kernel.dll")
    );
}

#[test]
fn unknown_or_misplaced_switches_are_usage_errors_that_list_the_valid_ones() {
    let (kit, root) = at_rtm("unknown_or_misplaced_switches_are_usage_errors_that_list_the_valid_ones");
    let out = hotfix(&root, ["install", s(&kit.contoso("kb4")), "/silent"]);
    out.expect_code(2);
    assert!(out.stderr.contains("unknown switch /silent"), "{}", out.stderr);
    for want in
        ["/quiet", "/passive", "/norestart", "/forcerestart", "/log:FILE", "/extract:DIR", "/uninstall", "/B:QFE"]
    {
        assert!(out.stderr.contains(want), "lacks {want}: {}", out.stderr);
    }
    hotfix(&root, ["list", "/norestart"]).expect_code(2);
    hotfix(&root, ["list", "/quiet", "/passive"]).expect_code(2);
    hotfix(&root, ["install", s(&kit.contoso("kb4")), "/log"]).expect_code(2);
    hotfix(&root, ["install", s(&kit.contoso("kb4")), "/uninstall", "/B:QFE"]).expect_code(2);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
    let out = hotfix(&root, ["/?"]);
    out.expect_code(0);
    assert!(out.stdout.contains("/forcerestart") && out.stdout.contains("install"), "{}", out.stdout);
}

#[test]
fn every_command_prints_json_with_an_exit_code() {
    let kit = Kit::new("every_command_prints_json_with_an_exit_code");
    let root = kit.path().join("root");
    let v = json(&root, &["init", "--product", "contoso", "--trust", s(&kit.public), "--json"], 0);
    assert_eq!((v["product"].as_str(), v["trusted_key"]["name"].as_str()), (Some("contoso"), Some("publisher")));
    let v = json(&root, &["install", s(&kit.contoso("rtm")), "--json"], 0);
    assert_eq!(v["operation"], "install contoso-rtm");
    assert_eq!(v["baseline"], serde_json::json!({"before": null, "after": "RTM"}));
    let v = json(&root, &["install", s(&kit.contoso("kb4")), "--json"], 0);
    assert_eq!(v["package"], "KB4");
    assert_eq!(v["applied"], true);
    let kernel = &v["components"][0];
    assert_eq!(kernel["component"], "kernel");
    assert_eq!(
        kernel["before"],
        serde_json::json!({"branch": "gdr", "version": "5.2.3790.0", "package": "contoso-rtm", "baseline_build": true})
    );
    assert_eq!(kernel["after"]["version"], "5.2.3790.4");
    assert!(kernel["reason"].as_str().unwrap().starts_with("GDR"), "{kernel}");
    assert_eq!(v["files"]["written"], serde_json::json!(["bin/kernel.dll", "bin/smtp.dll"]));
    assert_eq!(v["restart_required"], false);
    assert_eq!(json(&root, &["list", "--json"], 0)["packages"][1]["id"], "KB4");
    assert_eq!(json(&root, &["status", "--json"], 0)["baseline"]["name"], "RTM");
    assert_eq!(json(&root, &["query", "--fix", "KB3", "--json"], 9)["present"], false);
    assert_eq!(json(&root, &["policy", "branch", "ldr", "--json"], 0)["components"][0]["after"]["branch"], "ldr");
    assert_eq!(json(&root, &["check", "--json"], 0)["differences"], serde_json::json!([]));
    assert!(json(&root, &["cleanup", "--json"], 0)["blobs"].is_number());
    assert_eq!(json(&root, &["trust", "list", "--json"], 0)["keys"][0]["name"], "publisher");
    let v = json(&root, &["uninstall", "KB4", "--json"], 0);
    assert_eq!(v["components"][0]["after"]["package"], "contoso-rtm");
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("baseline-rtm/kernel/bin/kernel.dll"));
    // Errors are JSON too, beside the message on standard error.
    let v = json(&root, &["install", s(&kit.contoso("rtm")), "--json"], 5);
    assert_eq!(v["error"]["class"], "already-installed", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("already installed"), "{v}");
    assert_eq!((v["schema"].as_u64(), v["exit_code"].as_u64()), (Some(1), Some(5)), "{v}");
}

#[test]
fn hotfix_root_names_the_root_when_root_is_not_given() {
    let (_kit, root) = at_rtm("hotfix_root_names_the_root_when_root_is_not_given");
    let out = Command::new(bin("hotfix")).args(["list"]).env("HOTFIX_ROOT", &root).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("contoso-rtm"));
    let out = Command::new(bin("hotfix")).args(["list"]).env_remove("HOTFIX_ROOT").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOTFIX_ROOT"), "{out:?}");
}

#[test]
fn generate_docs_writes_man_pages_and_completions_for_both_tools() {
    let t = tempfile::tempdir().unwrap();
    let out = Command::new(bin("hotfix")).arg("generate-docs").arg(t.path().join("hotfix")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    pkgtool(["generate-docs", s(&t.path().join("pkgtool"))]).expect_code(0);
    for f in [
        "hotfix/man1/hotfix.1",
        "hotfix/man1/hotfix-install.1",
        "hotfix/man1/hotfix-installer.1",
        "hotfix/completions/hotfix.bash",
        "hotfix/completions/_hotfix",
        "hotfix/completions/hotfix.fish",
        "pkgtool/man1/pkgtool.1",
        "pkgtool/man1/pkgtool-build.1",
        "pkgtool/completions/pkgtool.bash",
        "pkgtool/completions/_pkgtool",
    ] {
        assert!(t.path().join(f).is_file(), "{f} missing");
    }
    let page = fs::read_to_string(t.path().join("hotfix/man1/hotfix-install.1")).unwrap();
    assert!(page.contains("norestart") && page.contains("what\\-if"), "{page}");
    let page = fs::read_to_string(t.path().join("pkgtool/man1/pkgtool-build.1")).unwrap();
    assert!(page.contains("self\\-contained"), "{page}");
    // generate-docs is a documented command now (issue 12), on the main page too.
    assert!(fs::read_to_string(t.path().join("hotfix/man1/hotfix.1")).unwrap().contains("generate\\-docs"));
}
