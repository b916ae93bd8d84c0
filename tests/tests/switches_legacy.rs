//! Switches scripts still pass: the long form of `/B:<BASELINE>QFE` (`--branch sp1qfe`)
//! and the older update.exe switches — accepted where they mean something here (`/u`,
//! `/z`, `/x:`, `/l`, `/warnrestart`, `/promptrestart`, `/kb:`), refused with what to use
//! instead where they do not (`/nobackup`, …).

use std::path::Path;

use hotfix_tests::root::{Kit, hotfix, installed_ids, kb1};

fn install(root: &Path, pkg: &Path, extra: &[&str]) -> hotfix_tests::run::Outcome {
    let args = [Path::new("install"), pkg].into_iter().chain(extra.iter().map(Path::new));
    hotfix(root, args)
}

#[test]
fn branch_takes_a_baseline_like_the_b_switch() {
    let kit = Kit::new("branch_takes_a_baseline_like_the_b_switch");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"), &[]).expect_code(0);
    // At RTM, an override for SP1 only makes the update not applicable, as /B:SP1QFE does.
    let out = install(&root, &kit.contoso("kb4"), &["--branch", "sp1qfe"]);
    out.expect_code(4);
    assert!(
        out.stderr.contains("/B:sp1QFE asks for the LDR branch only on sp1")
            && out.stderr.contains("this root is at RTM"),
        "{}",
        out.stderr
    );
    install(&root, &kit.contoso("sp1"), &[]).expect_code(0);
    install(&root, &kit.contoso("kb4"), &["--branch", "SP1QFE"]).expect_code(0);
    let out = hotfix(&root, ["status", "kernel"]);
    assert!(out.stdout.contains("kernel: LDR 5.2.3791.1004 from KB4"), "{}", out.stdout);
    let out = install(&root, &kit.contoso("kb4"), &["--branch", "ldr"]);
    out.expect_code(2);
}

#[test]
fn older_update_exe_switches_do_what_they_mean_here() {
    let kit = Kit::new("older_update_exe_switches_do_what_they_mean_here");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"), &[]).expect_code(0);
    // /u (unattended) and /z (no restart): a passive install.
    let out = install(&root, &kit.contoso("kb4"), &["/u", "/Z"]);
    out.expect_code(0);
    assert!(!out.stdout.contains("Installed KB4"), "/u is /passive: {}", out.stdout);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
    // /kb:ID asks whether a fix is present; /l lists the packages.
    let out = hotfix(&root, ["/kb:kb4"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with("KB4 is present"), "{}", out.stdout);
    hotfix(&root, ["/KB:KB3"]).expect_code(9);
    let out = hotfix(&root, ["/l"]);
    out.expect_code(0);
    assert!(out.stdout.contains("KB4 (update, release)"), "{}", out.stdout);
    // /warnrestart and /promptrestart: nothing restarts; the install goes on.
    install(&root, &kb1(&kit), &["/warnrestart:30", "/quiet"]).expect_code(0);
    // /x:DIR extracts.
    let dir = kit.path().join("out");
    let trust = kit.public.to_str().unwrap().to_string();
    let out = install(&root, &kit.contoso("kb4"), &[&format!("/x:{}", dir.display()), "--trust", &trust]);
    out.expect_code(0);
    assert!(dir.join("RTM/ldr/kernel/bin/kernel.dll").is_file());
}

#[test]
fn update_exe_switches_without_a_meaning_here_are_refused_with_what_to_do() {
    let kit = Kit::new("update_exe_switches_without_a_meaning_here_are_refused_with_what_to_do");
    let root = kit.root("root");
    let rtm = kit.contoso("rtm");
    for (switch, why) in [
        ("/nobackup", "the store is what makes uninstall in any order"),
        ("/n", "cannot be turned off"),
        ("/overwriteoem", "never overwritten"),
        ("/integrate:x", "(slipstreaming) is not supported"),
    ] {
        let out = install(&root, &rtm, &[switch]);
        out.expect_code(2);
        assert!(out.stderr.contains(why), "{switch}: {}", out.stderr);
    }
    assert!(installed_ids(&root).is_empty(), "a refused switch installed something");
}
