//! The self-contained installer end to end: `pkgtool build --self-contained` writes one
//! executable (the `hotfix` runtime as stub, then the package), which is run as a process
//! with each switch — install (`/quiet`, `/passive`, `/log:FILE`, `/norestart`,
//! `/forcerestart`), `/uninstall`, `/extract:DIR`, `--what-if`, the bare run off and on a
//! terminal — and checked by exit code, files on disk, the root's log and `/log:FILE`. A
//! changed stub byte is caught by the signature (exit 6); a truncated, appended-to or
//! tampered tail by the installer's check of its own file (exit 6); the root comes from
//! `--root`, `HOTFIX_ROOT` or the product's configuration file.

use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::root::{Kit, flip_stub_byte, hotfix, installed_ids, live_text, payload, run_installer, tree};
use hotfix_tests::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A kit with a root at RTM and the KB4 installer.
fn setup(case: &str) -> (Kit, PathBuf, PathBuf) {
    let kit = Kit::new(case);
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let exe = kit.contoso_installer("kb4");
    (kit, root, exe)
}

fn last_log_line(root: &Path) -> serde_json::Value {
    let log = fs::read_to_string(root.join(".servicing/log")).expect("the root's log");
    serde_json::from_str(log.lines().last().expect("a log line")).expect("log lines are JSON")
}

#[test]
fn quiet_install_prints_nothing_installs_and_writes_both_logs() {
    let (kit, root, exe) = setup("quiet_install_prints_nothing_installs_and_writes_both_logs");
    let log = kit.path().join("kb4.log");
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/QUIET", &format!("/log:{}", s(&log))], &[]);
    out.expect_code(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""), "/quiet prints nothing on success");
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("rtm/gdr/kernel/bin/kernel.dll"));
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);

    let text = fs::read_to_string(&log).expect("/log:FILE is written");
    for want in [
        "=== kb4.run ",
        "command: ",
        &format!("root:    {} (from --root)", root.display()),
        &format!("package: {}", exe.display()),
        "Installed KB4 (update)",
        "kernel: GDR 5.2.3790.0 from contoso-rtm (baseline build) -> GDR 5.2.3790.4 from KB4 (GDR: no hotfix",
        "kept in the store, not active: kernel LDR 5.2.3790.1004",
        "written: bin/kernel.dll",
        "written: bin/smtp.dll",
        "result:  exit 0 (success)",
    ] {
        assert!(text.contains(want), "log lacks {want:?}:\n{text}");
    }
    let entry = last_log_line(&root);
    assert_eq!(entry["op"], "install KB4");
    assert_eq!(entry["exit_code"], 0);
    assert_eq!(entry["files_written"], serde_json::json!(["bin/kernel.dll", "bin/smtp.dll"]));
    assert_eq!(entry["decisions"][0]["component"], "kernel");
    assert!(entry["decisions"][0]["reason"].as_str().unwrap().starts_with("GDR"), "{entry}");

    // Run again: already installed, exit 5, said on stderr even under /quiet, and logged.
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/quiet", &format!("/log:{}", s(&log))], &[]);
    out.expect_code(5);
    assert!(out.stdout.is_empty() && out.stderr.contains("KB4 is already installed"), "{out:?}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("result:  exit 5 (already installed, nothing changed)"), "{text}");
    let entry = last_log_line(&root);
    assert_eq!((entry["exit_code"].as_u64(), entry["package"].as_str()), (Some(5), Some("KB4")), "{entry}");
}

#[test]
fn a_bare_run_off_a_terminal_describes_exits_2_and_changes_nothing() {
    let (kit, root, exe) = setup("a_bare_run_off_a_terminal_describes_exits_2_and_changes_nothing");
    let before = (tree(&root), installed_ids(&root), fs::read(root.join(".servicing/log")).unwrap());
    // No switch, no terminal: describe, exit 2, and say which switch installs.
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root)], &[]);
    out.expect_code(2);
    for want in [
        "is a self-contained installer for KB4 (update): Security update for the kernel",
        "baselines RTM, SP1",
        "every byte verified",
        "installing it would change:",
        "kernel: GDR 5.2.3790.0 from contoso-rtm (baseline build) -> GDR 5.2.3790.4 from KB4",
        "Nothing was changed.",
        "/passive",
    ] {
        assert!(out.stdout.contains(want), "lacks {want:?}:\n{}", out.stdout);
    }
    assert!(out.stderr.contains("nothing was installed") && out.stderr.contains("/passive"), "{}", out.stderr);
    let after = (tree(&root), installed_ids(&root), fs::read(root.join(".servicing/log")).unwrap());
    assert!(before == after, "a bare run changed the root");

    // The explicit dry run, --what-if or /whatif, keeps "what installing would end with".
    for what_if in ["--what-if", "/whatif", "/WhatIf"] {
        let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), what_if], &[]);
        out.expect_code(0);
        assert!(out.stdout.contains("installing it would change:"), "{what_if}: {}", out.stdout);
    }
    let v: serde_json::Value =
        serde_json::from_str(&run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "--json"], &[]).stdout)
            .unwrap();
    assert_eq!(v["package"]["id"], "KB4");
    assert_eq!(v["package"]["self_contained"], true);
    assert_eq!(v["package"]["verified"], true);
    assert_eq!(v["decision"]["outcome"], "would-install");
    assert_eq!(v["decision"]["exit_code"], 0);
    assert_eq!(v["decision"]["change"]["components"][0]["after"]["version"], "5.2.3790.4");
    assert_eq!(v["exit_code"], 2, "a bare run is not an install, even with --json");
    assert!(before == (tree(&root), installed_ids(&root), fs::read(root.join(".servicing/log")).unwrap()));

    run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/passive"], &[]).expect_code(0);
    for args in [vec!["--root", s(&root)], vec!["--root", s(&root), "/whatif"]] {
        let out = run_installer(&exe, &kit.config_dir(), &args, &[]);
        out.expect_code(5);
        assert!(out.stdout.contains("it would not install (exit 5): KB4 is already installed"), "{}", out.stdout);
    }

    // No root anywhere: it still says what it is (unverified, and says so) and how to give one.
    let out = run_installer(&exe, &kit.config_dir(), Vec::<&str>::new(), &[]);
    out.expect_code(2);
    assert!(out.stdout.contains("KB4 (update)") && out.stdout.contains("NOT verified"), "{}", out.stdout);
    assert!(out.stdout.contains("HOTFIX_ROOT") && out.stdout.contains("contoso.root"), "{}", out.stdout);
    run_installer(&exe, &kit.config_dir(), ["--what-if"], &[]).expect_code(0);
}

/// Runs `exe ARGS` on a pseudo-terminal, typing `answer`; `None` without `script`.
fn on_a_terminal(exe: &Path, config: &Path, args: &str, answer: &str) -> Option<(i32, String)> {
    hotfix_tests::run::on_a_terminal(&format!("HOTFIX_CONFIG_DIR='{}' '{}' {args}", s(config), s(exe)), answer)
}

#[test]
fn a_bare_run_on_a_terminal_asks_and_installs_only_on_yes() {
    let (kit, root, exe) = setup("a_bare_run_on_a_terminal_asks_and_installs_only_on_yes");
    let before = (tree(&root), installed_ids(&root));
    let args = format!("--root '{}'", s(&root));
    let Some((code, screen)) = on_a_terminal(&exe, &kit.config_dir(), &args, "n\n") else {
        eprintln!("SKIP a_bare_run_on_a_terminal_asks_and_installs_only_on_yes: util-linux `script` is not installed");
        return;
    };
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("installing it would change:") && screen.contains("Install KB4 now? [y/N]"), "{screen}");
    assert!(screen.contains("Nothing was installed"), "{screen}");
    assert_eq!(before, (tree(&root), installed_ids(&root)), "declining changed the root");

    let (code, screen) = on_a_terminal(&exe, &kit.config_dir(), &args, "y\n").expect("script ran before");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("Install KB4 now? [y/N]") && screen.contains("Installed KB4"), "{screen}");
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("rtm/gdr/kernel/bin/kernel.dll"));
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
}

/// Copies `exe` to `dest` changed by `change`, executable.
fn damaged_copy(exe: &Path, dest: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    use std::os::unix::fs::PermissionsExt;
    let mut bytes = fs::read(exe).expect("read installer");
    change(&mut bytes);
    fs::write(dest, &bytes).expect("write damaged installer");
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).expect("chmod damaged installer");
}

/// Runs the damaged installer `bad` to install, describe and extract: each exits 6 with
/// `want` in its message and changes nothing; `--help` still answers.
fn assert_damage_reported(kit: &Kit, root: &Path, bad: &Path, want: &[&str]) {
    let before = (tree(root), installed_ids(root), fs::read(root.join(".servicing/log")).unwrap());
    let x = kit.path().join("x");
    for args in [
        vec!["--root".to_string(), s(root).into(), "/quiet".into()],
        vec!["--root".to_string(), s(root).into()],
        vec![format!("/extract:{}", s(&x)), "--trust".into(), s(&kit.public).into()],
    ] {
        let out = run_installer(bad, &kit.config_dir(), &args, &[]);
        out.expect_code(6);
        for w in want {
            assert!(out.stderr.contains(w), "{args:?}: lacks {w:?}: {}", out.stderr);
        }
        assert!(out.stderr.contains("fresh copy") && out.stderr.contains("pkgtool verify"), "{}", out.stderr);
    }
    assert!(!x.exists());
    assert!(before == (tree(root), installed_ids(root), fs::read(root.join(".servicing/log")).unwrap()));
    let help = run_installer(bad, &kit.config_dir(), ["--help"], &[]);
    help.expect_code(0);
    // The independent checks agree.
    pkgtool(["verify", s(bad), "--trust", s(&kit.public)]).expect_code(6);
}

#[test]
fn an_installer_truncated_by_one_byte_exits_6_naming_the_damage() {
    let (kit, root, exe) = setup("an_installer_truncated_by_one_byte_exits_6_naming_the_damage");
    let bad = kit.path().join("kb4-truncated.run");
    damaged_copy(&exe, &bad, |b| {
        b.pop();
    });
    assert_damage_reported(&kit, &root, &bad, &["cut short", "1 byte(s)", "[truncated]"]);
}

#[test]
fn an_installer_with_bytes_appended_exits_6_naming_the_damage() {
    let (kit, root, exe) = setup("an_installer_with_bytes_appended_exits_6_naming_the_damage");
    let bad = kit.path().join("kb4-appended.run");
    damaged_copy(&exe, &bad, |b| b.extend_from_slice(b"appended junk\n"));
    assert_damage_reported(&kit, &root, &bad, &["14 byte(s) were appended", "[unaccounted-bytes]"]);
}

#[test]
fn an_installer_with_a_tampered_tail_exits_6_naming_the_damage() {
    let (kit, root, exe) = setup("an_installer_with_a_tampered_tail_exits_6_naming_the_damage");
    // A byte of the central directory's last record (its file name), just before the
    // end record and the signature block.
    let bad = kit.path().join("kb4-tail.run");
    let tail = 22 + hotfix_schema::sigblock::SIG_BLOCK_LEN;
    damaged_copy(&exe, &bad, |b| {
        let at = b.len() - tail - 3;
        b[at] ^= 0x01;
    });
    assert_damage_reported(&kit, &root, &bad, &["kb4-tail.run"]);
    // The signature itself changed: the shape is intact, authentication catches it.
    let bad = kit.path().join("kb4-sig.run");
    damaged_copy(&exe, &bad, |b| {
        // Another hex digit (a flipped bit could make a non-digit: a malformed block).
        let last = b.len() - 1;
        b[last] = if b[last] == b'0' { b'1' } else { b'0' };
    });
    let out = run_installer(&bad, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]);
    out.expect_code(6);
    assert!(out.stderr.contains("[bad-signature]"), "{}", out.stderr);
}

#[test]
fn a_flipped_stub_byte_fails_verification_with_exit_6_and_changes_nothing() {
    let (kit, root, exe) = setup("a_flipped_stub_byte_fails_verification_with_exit_6_and_changes_nothing");
    let bad = kit.path().join("kb4-tampered.run");
    flip_stub_byte(&exe, &bad);
    let before = (tree(&root), installed_ids(&root));
    let out = run_installer(&bad, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]);
    out.expect_code(6);
    assert!(out.stderr.contains("[bad-signature]") && out.stderr.contains("fresh copy"), "{}", out.stderr);
    assert_eq!(before, (tree(&root), installed_ids(&root)));
    // Describing, extracting and uninstalling verify first too.
    run_installer(&bad, &kit.config_dir(), ["--root", s(&root)], &[]).expect_code(6);
    let x = kit.path().join("x");
    run_installer(
        &bad,
        &kit.config_dir(),
        [format!("/extract:{}", s(&x)), "--trust".into(), s(&kit.public).into()],
        &[],
    )
    .expect_code(6);
    assert!(!x.exists());
    // pkgtool and plain hotfix see the same.
    pkgtool(["verify", s(&bad), "--trust", s(&kit.public)]).expect_code(6);
    hotfix(&root, [Path::new("install"), &bad]).expect_code(6);
    assert_eq!(before, (tree(&root), installed_ids(&root)));
}

#[test]
fn an_installer_from_an_untrusted_publisher_is_refused_with_exit_6_and_a_hint() {
    let kit = Kit::new("an_installer_from_an_untrusted_publisher_is_refused_with_exit_6_and_a_hint");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let other = Kit::new("untrusted-publisher");
    let (key, _, _) = hotfix_tests::fixtures::key_pair(other.path(), "stranger", 42);
    let exe = kit.path().join("stranger.run");
    pkgtool([
        "build",
        s(&hotfix_tests::root::examples().join("kb4.toml")),
        "--key",
        s(&key),
        "-o",
        s(&exe),
        "--self-contained",
    ])
    .expect_code(0);
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]);
    out.expect_code(6);
    assert!(out.stderr.contains("[untrusted-key]") && out.stderr.contains("trust add"), "{}", out.stderr);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
}

#[test]
fn extract_switch_unpacks_the_verified_variants() {
    let (kit, root, exe) = setup("extract_switch_unpacks_the_verified_variants");
    let dir = kit.path().join("unpacked");
    let out = run_installer(
        &exe,
        &kit.config_dir(),
        [format!("/EXTRACT:{}", s(&dir)), "--trust".into(), s(&kit.public).into()],
        &[],
    );
    out.expect_code(0);
    assert!(out.stdout.contains("extracted") && out.stdout.contains("KB4"), "{}", out.stdout);
    for (rel, src) in [
        ("RTM/gdr/kernel/bin/kernel.dll", "rtm/gdr/kernel/bin/kernel.dll"),
        ("RTM/ldr/kernel/bin/kernel.dll", "rtm/ldr/kernel/bin/kernel.dll"),
        ("SP1/ldr/smtp-transport/bin/smtp.dll", "sp1/ldr/smtp-transport/bin/smtp.dll"),
    ] {
        assert_eq!(fs::read_to_string(dir.join(rel)).unwrap(), payload(src), "{rel}");
    }
    // The root's keys do as well; no key at all is a usage error that says what to give.
    let dir2 = kit.path().join("unpacked2");
    run_installer(&exe, &kit.config_dir(), ["--root", s(&root), &format!("/extract:{}", s(&dir2))], &[]).expect_code(0);
    assert!(dir2.join("SP1/gdr/kernel/bin/kernel.dll").is_file());
    let out = run_installer(&exe, &kit.config_dir(), [format!("/extract:{}", s(&kit.path().join("no")))], &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("--trust KEY.pub"), "{}", out.stderr);
    assert!(!kit.path().join("no").exists());
    assert_eq!(installed_ids(&root), ["contoso-rtm"], "extracting installs nothing");
}

#[test]
fn uninstall_switch_removes_its_package() {
    let (kit, root, exe) = setup("uninstall_switch_removes_its_package");
    let rtm_tree = tree(&root);
    run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]).expect_code(0);
    assert_ne!(tree(&root), rtm_tree);
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/Uninstall", "/quiet"], &[]);
    out.expect_code(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert_eq!(tree(&root), rtm_tree);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
    assert_eq!(last_log_line(&root)["op"], "uninstall KB4");
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/uninstall"], &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("KB4 is not installed on this root"), "{}", out.stderr);
}

#[test]
fn unknown_switch_exits_2_and_lists_the_valid_ones_help_shows_them() {
    let (kit, root, exe) = setup("unknown_switch_exits_2_and_lists_the_valid_ones_help_shows_them");
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/quiet", "/frobnicate"], &[]);
    out.expect_code(2);
    for want in ["unknown switch /frobnicate", "/quiet", "/passive", "/norestart", "/forcerestart", "/log:FILE"] {
        assert!(out.stderr.contains(want), "lacks {want:?}: {}", out.stderr);
    }
    for want in ["/extract:DIR", "/uninstall", "/B:QFE", "/B:<BASELINE>QFE", "/help", "/?"] {
        assert!(out.stderr.contains(want), "lacks {want:?}: {}", out.stderr);
    }
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
    for help in ["/?", "/HELP", "--help"] {
        let out = run_installer(&exe, &kit.config_dir(), [help], &[]);
        out.expect_code(0);
        assert!(out.stdout.contains("/log:FILE") && out.stdout.contains("--root"), "{help}: {}", out.stdout);
    }
}

#[test]
fn b_qfe_and_passive_install_the_ldr_builds_and_print_nothing() {
    let (kit, root, exe) = setup("b_qfe_and_passive_install_the_ldr_builds_and_print_nothing");
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/passive", "/b:rtmqfe"], &[]);
    out.expect_code(0);
    assert_eq!(out.stdout, "", "/passive shows a progress bar only (none without a terminal)");
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("rtm/ldr/kernel/bin/kernel.dll"));
    let out = hotfix(&root, ["list"]);
    assert!(out.stdout.contains("/B:rtmQFE"), "{}", out.stdout);
}

#[test]
fn restart_is_reported_with_exit_3_by_the_installer_unless_nothing_changed() {
    let kit = Kit::new("restart_is_reported_with_exit_3_by_the_installer_unless_nothing_changed");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let exe = kit.installer(&kit.restart_hotfix_spec(), "KB7");
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/norestart"], &[]);
    out.expect_code(3);
    assert!(out.stdout.contains("Restart required") && out.stdout.contains("/norestart"), "{}", out.stdout);
    assert_eq!(live_text(&root, "bin/smtp.dll"), "contoso smtp RTM LDR build with fix KB7\n");
    assert_eq!(last_log_line(&root)["result"], "ok, restart required");
    let out = run_installer(&exe, &kit.config_dir(), ["--root", s(&root), "/uninstall", "--json"], &[]);
    out.expect_code(3);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["restart_required"].as_bool(), v["exit_code"].as_u64()), (Some(true), Some(3)), "{v}");
    assert_eq!(live_text(&root, "bin/smtp.dll"), payload("baseline-rtm/smtp-transport/bin/smtp.dll"));

    // /forcerestart asks for one after any successful change; a plain install of KB4 does not.
    let kb4 = kit.contoso_installer("kb4");
    let out = run_installer(&kb4, &kit.config_dir(), ["--root", s(&root), "/forcerestart"], &[]);
    out.expect_code(3);
    assert!(out.stdout.contains("/forcerestart") && out.stdout.contains("never restarts"), "{}", out.stdout);
    run_installer(&kb4, &kit.config_dir(), ["--root", s(&root), "/uninstall", "/quiet"], &[]).expect_code(0);
    run_installer(&kb4, &kit.config_dir(), ["--root", s(&root), "/norestart", "/quiet"], &[]).expect_code(0);

    // A build that asks for a restart but does not become active changes nothing of its
    // own: KB6 (LDR 8.0.685.1001) moves smtp-transport to LDR, where KB4's newer LDR build
    // from the store wins; no file of KB6 is written, so no restart (exit 0).
    let spec7 = std::fs::read_to_string(kit.restart_hotfix_spec()).unwrap();
    let spec6 = spec7.replace("KB7", "KB6").replace("8.0.685.1007", "8.0.685.1001");
    hotfix_tests::fixtures::write(kit.path(), "KB6/p/bin/smtp.dll", "contoso smtp RTM LDR build with fix KB6\n");
    let exe6 = kit.installer(&hotfix_tests::fixtures::write(kit.path(), "KB6.toml", &spec6), "KB6");
    let out = run_installer(&exe6, &kit.config_dir(), ["--root", s(&root), "--install"], &[]);
    out.expect_code(0);
    assert!(!out.stdout.contains("Restart required"), "{}", out.stdout);
    assert_eq!(live_text(&root, "bin/smtp.dll"), payload("rtm/ldr/smtp-transport/bin/smtp.dll"));
}

#[test]
fn the_root_comes_from_hotfix_root_or_the_products_config_file_or_the_error_says_how() {
    let (kit, root, exe) = setup("the_root_comes_from_hotfix_root_or_the_products_config_file_or_the_error_says_how");
    let config = kit.config_dir();
    let out = run_installer(&exe, &config, ["/quiet"], &[]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--root DIR") && out.stderr.contains("HOTFIX_ROOT") && out.stderr.contains("contoso.root"),
        "{}",
        out.stderr
    );
    fs::write(config.join("contoso.root"), format!("# the contoso root\n{}\n", root.display())).unwrap();
    let out = run_installer(&exe, &config, ["/quiet"], &[]);
    out.expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
    let out = run_installer(&exe, &config, ["/uninstall", "/quiet"], &[("HOTFIX_ROOT", s(&root))]);
    out.expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
}

#[test]
fn not_applicable_and_refused_by_policy_say_why_through_the_installer() {
    let kit = Kit::new("not_applicable_and_refused_by_policy_say_why_through_the_installer");
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let spec = |id: &str, product: &str, channel: &str| {
        format!(
            "[package]\nid = \"{id}\"\nkind = \"hotfix\"\nproduct = \"{product}\"\ntitle = \"t\"\nchannel = \
             \"{channel}\"\n\n[[variant]]\ncomponent = \"kernel\"\nbaseline = \"RTM\"\nbranch = \"ldr\"\nversion = \
             \"5.2.3790.1009\"\nfixes = [\"{id}\"]\ndir = \"{id}/p\"\n"
        )
    };
    let build = |id: &str, product: &str, channel: &str| {
        hotfix_tests::fixtures::write(kit.path(), &format!("{id}/p/bin/kernel.dll"), &format!("{id}\n"));
        let spec = hotfix_tests::fixtures::write(kit.path(), &format!("{id}.toml"), &spec(id, product, channel));
        kit.installer(&spec, id)
    };
    let other = build("KB8", "fabrikam", "release");
    let out = run_installer(&other, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]);
    out.expect_code(4);
    assert!(out.stderr.contains("is for product fabrikam, but this root holds contoso"), "{}", out.stderr);
    let beta = build("KB9", "contoso", "prerelease");
    let out = run_installer(&beta, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]);
    out.expect_code(7);
    assert!(out.stderr.contains("--allow-prerelease"), "{}", out.stderr);
    run_installer(&beta, &kit.config_dir(), ["--root", s(&root), "--allow-prerelease", "/quiet"], &[]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB9"]);
}

#[test]
fn pkgtool_and_hotfix_install_accept_the_self_contained_form() {
    let (kit, root, exe) = setup("pkgtool_and_hotfix_install_accept_the_self_contained_form");
    pkgtool(["verify", s(&exe), "--trust", s(&kit.public)]).expect_code(0);
    let out = pkgtool(["inspect", s(&exe), "--json"]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let stub_len = fs::metadata(hotfix_tests::run::bin("hotfix-installer")).unwrap().len();
    assert_eq!(v["stub_size"].as_u64(), Some(stub_len), "the stub is the hotfix-installer binary");
    let dir = kit.path().join("x");
    pkgtool(["extract", s(&exe), s(&dir), "--trust", s(&kit.public)]).expect_code(0);
    assert!(dir.join("RTM/gdr/kernel/bin/kernel.dll").is_file());
    hotfix(&root, [Path::new("install"), &exe]).expect_code(0);
    assert_eq!(live_text(&root, "bin/kernel.dll"), payload("rtm/gdr/kernel/bin/kernel.dll"));
    // A plain package does not run, and a plain hotfix binary is no installer.
    let out = run_installer(&hotfix_tests::run::bin("hotfix"), &kit.config_dir(), ["--root", s(&root), "list"], &[]);
    out.expect_code(0);
    assert!(out.stdout.contains("KB4"), "{}", out.stdout);
}

#[test]
fn build_takes_an_explicit_stub_and_reports_it() {
    let kit = Kit::new("build_takes_an_explicit_stub_and_reports_it");
    let spec = hotfix_tests::root::examples().join("kb4.toml");
    let stub = hotfix_tests::run::bin("hotfix");
    let exe = kit.path().join("kb4.run");
    let out = pkgtool(["build", s(&spec), "--key", s(&kit.key), "-o", s(&exe), "--stub", s(&stub), "--json"]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["self_contained"].as_bool(), v["stub"].as_str()), (Some(true), Some(s(&stub))), "{v}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&exe).unwrap().permissions().mode() & 0o111, 0o111, "the installer is executable");
    // Without --stub, pkgtool embeds a hotfix-installer that cargo built (beside it, or the
    // size-minded one in target/installer/), not the full hotfix binary.
    let found = kit.path().join("found.run");
    let out = pkgtool(["build", s(&spec), "--key", s(&kit.key), "-o", s(&found), "--self-contained", "--json"]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["stub"].as_str().is_some_and(|p| p.ends_with("/hotfix-installer")), "{v}");
    let missing = kit.path().join("no-such-stub");
    let out =
        pkgtool(["build", s(&spec), "--key", s(&kit.key), "-o", s(&kit.path().join("b.run")), "--stub", s(&missing)]);
    out.expect_code(1);
    assert!(out.stderr.contains("no-such-stub") && !kit.path().join("b.run").exists(), "{}", out.stderr);
}
