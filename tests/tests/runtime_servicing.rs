//! The servicing rule's consequences (DESIGN.md "What follows"), shown end to end through
//! the `hotfix` binary on real roots: which build lands on disk, which branch and why,
//! what is kept in the store, and uninstalling in any order.

use std::path::Path;

use hotfix_tests::root::{Kit, hotfix, kb1, kb5, live_text, manifest, payload, store_blob, tree};

/// `(branch, version, package)` of a component, from `status --json`.
fn comp(root: &Path, c: &str) -> (String, String, String) {
    let out = hotfix(root, ["status", c, "--json"]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let s = &v["components"][0];
    let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
    (field("branch"), field("version"), field("package"))
}

fn install(root: &Path, pkg: &Path) -> String {
    let out = hotfix(root, [Path::new("install"), pkg]);
    out.expect_code(0);
    out.stdout
}

fn uninstall(root: &Path, id: &str) {
    hotfix(root, ["uninstall", id]).expect_code(0);
}

fn kernel_dll(root: &Path) -> String {
    live_text(root, "bin/kernel.dll")
}

fn triple(b: &str, v: &str, p: &str) -> (String, String, String) {
    (b.into(), v.into(), p.into())
}

#[test]
fn an_update_on_a_gdr_component_installs_gdr_and_stashes_ldr() {
    let kit = Kit::new("an_update_on_a_gdr_component_installs_gdr_and_stashes_ldr");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    let said = install(&root, &kit.contoso("kb4"));
    assert_eq!(comp(&root, "kernel"), triple("gdr", "5.2.3790.4", "KB4"));
    assert_eq!(kernel_dll(&root), payload("rtm/gdr/kernel/bin/kernel.dll"));
    assert_eq!(live_text(&root, "bin/smtp.dll"), payload("rtm/gdr/smtp-transport/bin/smtp.dll"));
    assert!(said.contains("kept in the store"), "{said}");
    // The LDR build is in the store: every file of KB4's LDR variants.
    let m = manifest(&kit.contoso("kb4"));
    let ldr: Vec<_> =
        m.variants.iter().filter(|v| v.branch == Some(hotfix_schema::Branch::Ldr)).flat_map(|v| &v.files).collect();
    assert!(!ldr.is_empty());
    for f in ldr {
        let blob = store_blob(&root, &f.sha256.to_hex());
        assert!(blob.is_file(), "{} is not in the store", f.path);
    }
}

/// The inode of a live file: the same inode means the file was never rewritten.
fn inode(root: &Path, rel: &str) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root.join(rel)).expect("live file"))
}

#[test]
fn untouched_files_are_never_rewritten() {
    let kit = Kit::new("untouched_files_are_never_rewritten");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    let smtp = inode(&root, "bin/smtp.dll");
    let kernel = inode(&root, "bin/kernel.dll");
    // KB1 is a kernel hotfix: the SMTP transport's file stays as it is.
    install(&root, &kb1(&kit));
    assert_eq!(inode(&root, "bin/smtp.dll"), smtp);
    assert_ne!(inode(&root, "bin/kernel.dll"), kernel);
    uninstall(&root, "KB1");
    let conf = inode(&root, "etc/kernel.conf");
    // KB4's GDR kernel.conf has the RTM bytes: a record change, not a write.
    let said = install(&root, &kit.contoso("kb4"));
    assert!(said.contains("1 records updated"), "{said}");
    assert_eq!(inode(&root, "etc/kernel.conf"), conf);
    assert_ne!(inode(&root, "bin/smtp.dll"), smtp);
}

#[test]
fn a_hotfix_moves_to_ldr_and_a_later_update_installs_its_ldr_build() {
    let kit = Kit::new("a_hotfix_moves_to_ldr_and_a_later_update_installs_its_ldr_build");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    install(&root, &kb1(&kit));
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1001", "KB1"));
    assert_eq!(kernel_dll(&root), "contoso kernel RTM LDR build with fix KB1\n");
    assert!(root.join("lib/kb1/trace.so").is_file());
    assert_eq!(comp(&root, "smtp-transport").0, "gdr", "KB1 has no smtp-transport build");

    install(&root, &kit.contoso("kb4"));
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1004", "KB4"));
    assert_eq!(kernel_dll(&root), payload("rtm/ldr/kernel/bin/kernel.dll"));
    assert_eq!(comp(&root, "smtp-transport"), triple("gdr", "8.0.685.4", "KB4"));
    // KB1's extra file is gone, and so are the directories hotfix made for it.
    assert!(!root.join("lib").exists(), "{:?}", tree(&root).keys().collect::<Vec<_>>());
}

#[test]
fn hotfix_1_after_update_4_ends_on_update_4_ldr_build_from_the_stash() {
    let kit = Kit::new("hotfix_1_after_update_4_ends_on_update_4_ldr_build_from_the_stash");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    install(&root, &kit.contoso("kb4"));
    install(&root, &kb1(&kit));
    // Never a downgrade to v1001, never a loss of KB4: LDR v1004 from the stash.
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1004", "KB4"));
    assert_eq!(kernel_dll(&root), payload("rtm/ldr/kernel/bin/kernel.dll"));
    for fix in ["KB1", "KB2", "KB3", "KB4"] {
        hotfix(&root, ["query", "--fix", fix]).expect_code(0);
    }
    assert!(!root.join("lib").exists(), "KB1's own build is not active");
}

#[test]
fn uninstalling_the_last_hotfix_returns_to_gdr() {
    let kit = Kit::new("uninstalling_the_last_hotfix_returns_to_gdr");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    install(&root, &kit.contoso("kb4"));
    install(&root, &kb1(&kit));
    hotfix(&root, ["query", "--fix", "KB3"]).expect_code(0);
    uninstall(&root, "KB1");
    assert_eq!(comp(&root, "kernel"), triple("gdr", "5.2.3790.4", "KB4"));
    assert_eq!(kernel_dll(&root), payload("rtm/gdr/kernel/bin/kernel.dll"));
    hotfix(&root, ["query", "--fix", "KB3"]).expect_code(9);
    hotfix(&root, ["check"]).expect_code(0);
}

#[test]
fn a_service_pack_over_a_pre_sp_hotfix_moves_to_the_sp_line() {
    let kit = Kit::new("a_service_pack_over_a_pre_sp_hotfix_moves_to_the_sp_line");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    install(&root, &kb1(&kit));
    let said = install(&root, &kit.contoso("sp1"));
    assert!(said.contains("baseline: RTM -> SP1"), "{said}");
    assert_eq!(comp(&root, "kernel"), triple("gdr", "5.2.3791.0", "contoso-sp1"));
    assert_eq!(kernel_dll(&root), payload("baseline-sp1/kernel/bin/kernel.dll"));
    assert!(!root.join("lib").exists());
}

#[test]
fn a_service_pack_over_a_post_sp_hotfix_stays_ldr_at_the_post_sp_build() {
    let kit = Kit::new("a_service_pack_over_a_post_sp_hotfix_stays_ldr_at_the_post_sp_build");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    install(&root, &kb5(&kit));
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1005", "KB5"));
    install(&root, &kit.contoso("sp1"));
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3791.1005", "KB5"));
    assert_eq!(kernel_dll(&root), "contoso kernel SP1 LDR build with fixes KB1 KB2 KB3 KB4 KB5\n");
    assert_eq!(comp(&root, "smtp-transport"), triple("gdr", "8.1.240.0", "contoso-sp1"));
}

#[test]
fn uninstall_in_any_order_including_the_service_pack() {
    let kit = Kit::new("uninstall_in_any_order_including_the_service_pack");
    let pkgs = [kit.contoso("kb4"), kb1(&kit), kb5(&kit), kit.contoso("sp1")];
    let orders: [&[&str]; 2] = [&["contoso-sp1", "KB4", "KB5", "KB1"], &["KB1", "contoso-sp1", "KB5", "KB4"]];
    for (n, order) in orders.iter().enumerate() {
        let root = kit.root(&format!("root{n}"));
        install(&root, &kit.contoso("rtm"));
        let at_rtm = tree(&root);
        for p in &pkgs {
            install(&root, p);
        }
        assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3791.1005", "KB5"));
        for id in *order {
            uninstall(&root, id);
            hotfix(&root, ["check"]).expect_code(0);
        }
        assert_eq!(tree(&root), at_rtm, "after uninstalling {order:?} the root is RTM again, byte for byte");
    }
    // Spot-check the first order's intermediate state: SP1 gone, back at RTM on KB5's RTM build.
    let root = kit.root("spot");
    for p in [kit.contoso("rtm")].iter().chain(&pkgs) {
        install(&root, p);
    }
    uninstall(&root, "contoso-sp1");
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1005", "KB5"));
    assert_eq!(kernel_dll(&root), "contoso kernel RTM LDR build with fixes KB1 KB2 KB3 KB4 KB5\n");
    uninstall(&root, "KB5");
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1004", "KB4"));
}

#[test]
fn the_b_qfe_switch_puts_an_update_on_ldr_case_insensitively() {
    let kit = Kit::new("the_b_qfe_switch_puts_an_update_on_ldr_case_insensitively");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    hotfix(&root, [Path::new("install"), &kit.contoso("kb4"), Path::new("/b:rtmqfe")]).expect_code(0);
    assert_eq!(comp(&root, "kernel"), triple("ldr", "5.2.3790.1004", "KB4"));
    let out = hotfix(&root, ["status", "kernel"]);
    assert!(out.stdout.contains("LDR because KB4 was installed with /B:rtmQFE"), "{}", out.stdout);
    uninstall(&root, "KB4");
    hotfix(&root, [Path::new("install"), &kit.contoso("kb4"), Path::new("--branch"), Path::new("qfe")]).expect_code(0);
    assert_eq!(comp(&root, "kernel").0, "ldr");
}

#[test]
fn a_build_that_needs_a_restart_exits_3_on_install_and_uninstall() {
    let kit = Kit::new("a_build_that_needs_a_restart_exits_3_on_install_and_uninstall");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    let pkg = kit.build(&kit.restart_hotfix_spec(), "KB7");
    let out = hotfix(&root, [Path::new("install"), &pkg]);
    out.expect_code(3);
    assert!(out.stdout.contains("Restart required"), "{}", out.stdout);
    assert_eq!(live_text(&root, "bin/smtp.dll"), "contoso smtp RTM LDR build with fix KB7\n");
    hotfix(&root, ["uninstall", "KB7"]).expect_code(3);
    assert_eq!(live_text(&root, "bin/smtp.dll"), payload("baseline-rtm/smtp-transport/bin/smtp.dll"));
}

#[test]
fn a_hotfix_reports_the_components_and_files_it_leaves_alone() {
    let kit = Kit::new("a_hotfix_reports_the_components_and_files_it_leaves_alone");
    let root = kit.root("root");
    install(&root, &kit.contoso("rtm"));
    let json = |out: hotfix_tests::run::Outcome| -> serde_json::Value {
        out.expect_code(0);
        serde_json::from_str(&out.stdout).expect("JSON")
    };
    let files = |v: &serde_json::Value| {
        let f = &v["files"];
        (f["written"].clone(), f["removed"].clone(), f["relabelled"].clone(), f["unchanged"].clone())
    };
    // RTM: bin/kernel.dll, etc/kernel.conf (kernel) and bin/smtp.dll (smtp-transport); KB1
    // rewrites the kernel's two files and adds lib/kb1/trace.so.
    let kernel = serde_json::json!(["bin/kernel.dll", "etc/kernel.conf"]);
    let trace = serde_json::json!(["lib/kb1/trace.so"]);
    let v = json(hotfix(&root, [Path::new("install"), &kb1(&kit), Path::new("--json")]));
    assert_eq!(v["components"][0]["component"], "kernel");
    assert_eq!(v["unchanged_components"], serde_json::json!(["smtp-transport"]));
    let written = serde_json::json!(["bin/kernel.dll", "etc/kernel.conf", "lib/kb1/trace.so"]);
    assert_eq!(files(&v), (written, serde_json::json!([]), 0.into(), 1.into()));
    let v = json(hotfix(&root, ["uninstall", "KB1", "--json"]));
    assert_eq!(v["unchanged_components"], serde_json::json!(["smtp-transport"]));
    assert_eq!(files(&v), (kernel, trace, 0.into(), 1.into()));
}
