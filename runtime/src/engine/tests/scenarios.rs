//! The vendor's own servicing stories (DESIGN.md "What follows"), each replayed on a
//! simulated root through the engine: branch, chosen build, fixes, and the files written.

use hotfix_schema::{Branch, Kind};

use super::fixtures::*;
use crate::engine::{BranchPolicy, BranchReason, QfeOverride, active_state, fix_present};

// The vendor's chart for `kernel`: #1 and #3 are LDR-only hotfixes, #2 and #4 are GDR
// updates that ship both branches. LDR builds hold every fix; GDR builds only GDR ones.
fn kb1() -> hotfix_schema::Manifest {
    hotfix("KB1", &[ldr("kernel", "RTM", "1.1.1", &["KB1"])])
}
fn kb2_gdr() -> V {
    gdr("kernel", "RTM", "1.2", &["KB2"])
}
fn kb2() -> hotfix_schema::Manifest {
    update("KB2", &[kb2_gdr(), ldr("kernel", "RTM", "1.2.1", &["KB1", "KB2"])])
}
fn kb3() -> hotfix_schema::Manifest {
    hotfix("KB3", &[ldr("kernel", "RTM", "1.3.1", &["KB1", "KB2", "KB3"])])
}
fn kb4_gdr() -> V {
    gdr("kernel", "RTM", "1.4", &["KB2", "KB4"])
}
fn kb4_ldr() -> V {
    ldr("kernel", "RTM", "1.4.1", &["KB1", "KB2", "KB3", "KB4"])
}
fn kb4() -> hotfix_schema::Manifest {
    update("KB4", &[kb4_gdr(), kb4_ldr()])
}
/// SP1 holds every fix of both branches built before it.
fn sp1() -> hotfix_schema::Manifest {
    baseline_pkg("SP1", "SP1", 1, &[("kernel", "2.0", &["KB1", "KB2", "KB3", "KB4"]), ("net", "2.0", &[])])
}
/// A hotfix built after SP1: it carries an SP1 variant too.
fn kb5_sp1() -> V {
    ldr("kernel", "SP1", "2.5.1", &["KB1", "KB2", "KB3", "KB4", "KB5"])
}
fn kb5() -> hotfix_schema::Manifest {
    hotfix("KB5", &[ldr("kernel", "RTM", "1.5.1", &["KB1", "KB2", "KB3", "KB4", "KB5"]), kb5_sp1()])
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_gdr_component_gets_the_update_s_gdr_variant_and_the_ldr_one_is_stashed() {
    let mut root = Root::at_rtm();
    let plan = root.install(kb4());
    let k = root.comp("kernel");
    assert_eq!(k.branch, Branch::Gdr);
    assert_eq!((k.chosen.package.as_str(), k.chosen.variant.branch), ("KB4", Some(Branch::Gdr)));
    assert_eq!(k.chosen.variant.version, ver("1.4"));
    assert_eq!(on_disk(&root, "kernel"), Some(file_digest(&kb4_gdr())));
    // Only kernel's file is written; net's is left alone.
    assert_eq!(plan.put.len(), 1);
    assert_eq!(plan.unchanged, 1);
    // The LDR build is installed (in the store) but not active: the stash.
    let kb4 = root.installed.iter().find(|p| p.manifest.package.id.as_str() == "KB4").unwrap();
    assert!(kb4.manifest.variants.iter().any(|v| v.branch == Some(Branch::Ldr)));
    assert_ne!(on_disk(&root, "kernel"), Some(file_digest(&kb4_ldr())));
}

#[test]
fn a_hotfix_moves_the_component_to_ldr_and_a_later_update_yields_its_ldr_variant() {
    let mut root = Root::at_rtm();
    root.install(kb1());
    let k = root.comp("kernel");
    assert_eq!(k.branch, Branch::Ldr);
    assert_eq!(k.reason.to_string(), "LDR because hotfix KB1 is installed");
    assert_eq!(k.chosen.package.as_str(), "KB1");
    root.install(kb4());
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.package.as_str()), (Branch::Ldr, "KB4"));
    assert_eq!(k.chosen.variant.branch, Some(Branch::Ldr));
    assert_eq!(on_disk(&root, "kernel"), Some(file_digest(&kb4_ldr())));
    assert_eq!(root.comp("net").branch, Branch::Gdr, "net has no hotfix");
}

#[test]
fn fix_4_then_older_hotfix_1_ends_on_ldr_v4_from_the_stash_never_v1() {
    let mut root = Root::at_rtm();
    root.install(kb4());
    assert_eq!(fix_present(&root.state(), &name("KB1")), None);
    let plan = root.install(kb1());
    let k = root.comp("kernel");
    assert_eq!(k.branch, Branch::Ldr);
    assert_eq!(k.chosen.package.as_str(), "KB4", "taken from the stash, not from KB1");
    assert_eq!(k.chosen.variant.version, ver("1.4.1"));
    assert_eq!(root.fixes("kernel"), strs(&["KB1", "KB2", "KB3", "KB4"]));
    assert_eq!(on_disk(&root, "kernel"), Some(file_digest(&kb4_ldr())));
    assert_eq!(plan.put.len(), 1);
    assert_eq!(plan.put[0].old.as_ref().map(|o| o.sha256), Some(file_digest(&kb4_gdr())));
    for fix in ["KB1", "KB4"] {
        let hit = fix_present(&root.state(), &name(fix)).unwrap();
        assert_eq!(hit.locations[0].branch, Branch::Ldr);
    }
}

#[test]
fn uninstalling_every_hotfix_of_a_component_returns_it_to_gdr() {
    let mut root = Root::at_rtm();
    root.install(kb4());
    root.install(kb1());
    root.install(kb3());
    assert_eq!(root.comp("kernel").reason.to_string(), "LDR because hotfixes KB1, KB3 are installed");
    root.uninstall("KB1");
    assert_eq!(root.comp("kernel").branch, Branch::Ldr, "KB3 still holds it on LDR");
    root.uninstall("KB3");
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.variant.version.clone()), (Branch::Gdr, ver("1.4")));
    assert_eq!(on_disk(&root, "kernel"), Some(file_digest(&kb4_gdr())));
}

#[test]
fn dropping_the_qfe_override_too_returns_the_component_to_gdr() {
    let mut root = Root::at_rtm();
    root.install_with(kb4(), QfeOverride::Any);
    root.install(kb1());
    root.uninstall("KB1");
    let k = root.comp("kernel");
    assert_eq!(k.branch, Branch::Ldr);
    assert_eq!(k.reason.to_string(), "LDR because KB4 was installed with /B:QFE");
    root.uninstall("KB4");
    root.install(kb4());
    assert_eq!(root.comp("kernel").branch, Branch::Gdr);
}

#[test]
fn a_service_pack_over_a_hotfix_built_before_it_moves_the_component_to_the_sp_gdr_line() {
    let mut root = Root::at_rtm();
    root.install(kb1());
    root.install(sp1());
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.package.as_str(), k.chosen.kind), (Branch::Gdr, "SP1", Kind::Baseline));
    assert_eq!(k.reason.to_string(), "GDR: no hotfix and no /B:QFE install for kernel at SP1");
    assert!(fix_present(&root.state(), &name("KB1")).is_some(), "SP1 contains KB1");
}

#[test]
fn a_service_pack_over_a_hotfix_built_after_it_keeps_the_component_on_ldr_at_the_post_sp_variant() {
    let mut root = Root::at_rtm();
    root.install(kb5());
    root.install(sp1());
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.package.as_str()), (Branch::Ldr, "KB5"));
    assert_eq!(k.chosen.variant.baseline.as_str(), "SP1");
    assert_eq!(on_disk(&root, "kernel"), Some(file_digest(&kb5_sp1())));
    assert_eq!(root.comp("net").branch, Branch::Gdr);
}

#[test]
fn packages_are_cumulative_skipping_a_rollup_gives_every_fix_of_both() {
    let ru1 = update("RU1", &[gdr("kernel", "RTM", "1.1", &["RU1"]), ldr("kernel", "RTM", "1.1.1", &["RU1"])]);
    let ru2 = update(
        "RU2",
        &[
            gdr("kernel", "RTM", "1.2", &["RU1", "RU2"]),
            ldr("kernel", "RTM", "1.2.1", &["RU1", "RU2"]),
            gdr("net", "RTM", "1.2", &["RU2"]),
            ldr("net", "RTM", "1.2.1", &["RU2"]),
        ],
    );
    let mut skipped = Root::at_rtm();
    skipped.install(ru2.clone());
    let state = skipped.state();
    assert!(fix_present(&state, &name("RU1")).is_some());
    assert_eq!(fix_present(&state, &name("RU2")).unwrap().locations.len(), 2);
    let mut both = Root::at_rtm();
    both.install(ru1);
    both.install(ru2);
    assert_eq!(both.disk, skipped.disk);
}

#[test]
fn uninstall_works_in_any_order() {
    let packages = [kb4(), kb1(), kb5(), sp1()];
    let mut full = Root::at_rtm();
    for p in &packages {
        full.install(p.clone());
    }
    let ids = ["KB4", "KB1", "KB5", "SP1"];
    for order in permutations(&ids) {
        let mut root = Root { installed: full.installed.clone(), disk: full.disk.clone(), ..Root::new() };
        for id in order {
            root.uninstall(id);
            // Same state as a root that never had the removed packages.
            let mut fresh = Root::at_rtm();
            for p in packages.iter().filter(|p| root.installed.iter().any(|i| i.manifest == **p)) {
                fresh.install(p.clone());
            }
            assert_eq!(root.state(), fresh.state());
            assert_eq!(root.disk, fresh.disk);
        }
        assert_eq!(root.state(), Root::at_rtm().state());
    }
}

fn permutations<'a>(items: &[&'a str]) -> Vec<Vec<&'a str>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            out.push(tail);
        }
    }
    out
}

#[test]
fn uninstalling_the_service_pack_returns_the_root_to_the_previous_baseline() {
    let mut root = Root::at_rtm();
    root.install(kb4());
    root.install(kb1());
    root.install(kb5());
    let (state, disk) = (root.state(), root.disk.clone());
    root.install(sp1());
    assert_eq!(root.state().baseline.unwrap().decl.name.as_str(), "SP1");
    root.uninstall("SP1");
    assert_eq!(root.state(), state);
    assert_eq!(root.disk, disk);
    assert_eq!(root.state().baseline.unwrap().decl.name.as_str(), "RTM");
}

#[test]
fn qfe_override_on_an_update_puts_its_components_on_ldr() {
    let mut root = Root::at_rtm();
    root.install_with(kb4(), QfeOverride::Any);
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.variant.version.clone()), (Branch::Ldr, ver("1.4.1")));
    assert_eq!(k.reason.to_string(), "LDR because KB4 was installed with /B:QFE");
    assert_eq!(root.comp("net").branch, Branch::Gdr, "KB4 has no variant of net");
}

#[test]
fn baseline_qfe_override_counts_only_while_the_root_is_at_that_baseline() {
    let kb6 = update(
        "KB6",
        &[
            gdr("kernel", "RTM", "1.6", &["KB2", "KB4", "KB6"]),
            ldr("kernel", "RTM", "1.6.1", &["KB1", "KB2", "KB3", "KB4", "KB6"]),
            gdr("kernel", "SP1", "2.6", &["KB1", "KB2", "KB3", "KB4", "KB6"]),
            ldr("kernel", "SP1", "2.6.1", &["KB1", "KB2", "KB3", "KB4", "KB6"]),
        ],
    );
    let mut root = Root::at_rtm();
    root.install(sp1());
    root.install_with(kb6, QfeOverride::AtBaseline(name("sp1")));
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.variant.version.clone()), (Branch::Ldr, ver("2.6.1")));
    assert_eq!(k.reason.to_string(), "LDR because KB6 was installed with /B:sp1QFE");
    root.uninstall("SP1");
    let k = root.comp("kernel");
    assert_eq!((k.branch, k.chosen.variant.version.clone()), (Branch::Gdr, ver("1.6")));
}

#[test]
fn policy_force_ldr_puts_every_component_on_ldr_and_auto_restores() {
    let mut root = Root::at_rtm();
    root.install(kb4());
    let before = root.state();
    root.set_policy(BranchPolicy::ForceLdr);
    for (c, package) in [("kernel", "KB4"), ("net", "RTM")] {
        let cs = root.comp(c);
        assert_eq!((cs.branch, cs.chosen.package.as_str()), (Branch::Ldr, package));
        assert_eq!(cs.reason, BranchReason::PolicyForcesLdr);
        assert_eq!(cs.reason.to_string(), "LDR because the branch policy forces LDR");
    }
    root.set_policy(BranchPolicy::Auto);
    assert_eq!(root.state(), before);
}

#[test]
fn fix_query_is_branch_aware_and_never_reads_versions() {
    let kb5u = update(
        "KB5",
        &[gdr("kernel", "RTM", "1.5", &["KB2", "KB5"]), ldr("kernel", "RTM", "1.5.1", &["KB1", "KB2", "KB5"])],
    );
    let mut root = Root::at_rtm();
    root.install(kb5u);
    // GDR v1.5 is newer than KB1's LDR v1.1.1, yet does not contain KB1.
    assert_eq!(fix_present(&root.state(), &name("KB1")), None);
    assert!(fix_present(&root.state(), &name("KB5")).is_some());
    root.install(kb1());
    let hit = fix_present(&root.state(), &name("KB1")).unwrap();
    assert_eq!(hit.locations.len(), 1);
    let at = &hit.locations[0];
    assert_eq!((at.component.as_str(), at.branch, at.package.as_str()), ("kernel", Branch::Ldr, "KB5"));
    assert_eq!(at.version, ver("1.5.1"));
}

#[test]
fn an_older_update_after_a_newer_one_applies_but_writes_nothing() {
    let mut root = Root::at_rtm();
    root.install(kb4());
    let plan = root.install(kb2());
    assert!(plan.is_empty());
    assert_eq!(root.comp("kernel").chosen.package.as_str(), "KB4");
}

#[test]
fn updates_of_components_the_baseline_lacks_are_ignored() {
    let mut root = Root::at_rtm();
    let extra = update(
        "KB7",
        &[
            gdr("kernel", "RTM", "1.7", &["KB7"]),
            ldr("kernel", "RTM", "1.7.1", &["KB7"]),
            gdr("extra", "RTM", "1.7", &["KB7"]),
            ldr("extra", "RTM", "1.7.1", &["KB7"]),
        ],
    );
    root.install(extra);
    let state = root.state();
    assert_eq!(state.components.keys().map(|c| c.as_str()).collect::<Vec<_>>(), ["kernel", "net"]);
    assert!(!root.disk.keys().any(|p| p.as_str().starts_with("extra/")));
}

#[test]
fn an_empty_root_has_no_baseline_and_no_components() {
    let root = Root::new();
    assert_eq!(active_state(&root.inputs()).unwrap(), Default::default());
}

#[test]
fn a_hotfix_numbered_below_the_active_ldr_build_loses_its_fix_and_is_reported() {
    use crate::engine::lost_fixes;
    let mut root = Root::at_rtm();
    root.install(kb1());
    root.install(kb4());
    assert!(lost_fixes(&root.state(), &root.installed).is_empty(), "a cumulative chain loses nothing");
    // KB7 was numbered 1.2.7, below KB4's LDR 1.4.1, which lacks KB7.
    root.install(hotfix("KB7", &[ldr("kernel", "RTM", "1.2.7", &["KB1", "KB2", "KB7"])]));
    let state = root.state();
    assert_eq!(root.comp("kernel").chosen.package.as_str(), "KB4");
    assert!(fix_present(&state, &name("KB7")).is_none());
    let lost = lost_fixes(&state, &root.installed);
    assert_eq!(lost.len(), 1, "{lost:?}");
    let l = &lost[0];
    assert_eq!((l.fix.as_str(), l.package.as_str(), l.component.as_str()), ("KB7", "KB7", "kernel"));
    assert_eq!((l.active.package.as_str(), l.active.version.to_string()), ("KB4", "1.4.1".to_string()));
    let text = l.to_string();
    assert!(text.contains("fix KB7 of KB7 is in no active build") && text.contains("LDR 1.4.1 from KB4"), "{text}");
}

#[test]
fn ldr_only_fixes_missing_from_an_active_gdr_build_are_not_lost() {
    let mut root = Root::at_rtm();
    root.install(kb4());
    assert_eq!(root.comp("kernel").branch, Branch::Gdr);
    // KB1 and KB3 are only in the stashed LDR build: by design, not a numbering mistake.
    assert!(crate::engine::lost_fixes(&root.state(), &root.installed).is_empty());
}
