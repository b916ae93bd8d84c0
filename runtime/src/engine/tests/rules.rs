//! Applicability with its specific reasons, inconsistent inputs, the tie-break, and the
//! `/B:` switch syntax.

use hotfix_schema::{Branch, Kind};

use super::fixtures::*;
use crate::engine::{
    Applicability, BranchPolicy, Inputs, InstallOptions, NotApplicableReason as R, QfeOverride, StateError,
    active_files, active_state, applicability,
};

fn kernel_update(id: &str, baseline: &str) -> hotfix_schema::Manifest {
    update(id, &[gdr("kernel", baseline, "1.4", &[id]), ldr("kernel", baseline, "1.4.1", &[id])])
}

#[test]
fn a_package_for_another_product_is_not_applicable() {
    let mut root = Root::at_rtm();
    let other = manifest_for("fabrikam", "KB9", Kind::Hotfix, None, &[ldr("kernel", "RTM", "1.9", &["KB9"])]);
    let r = root.refuse(other, QfeOverride::Off);
    assert_eq!(r, R::OtherProduct { package: name("KB9"), product: name("fabrikam"), root: name("contoso") });
    assert_eq!(
        r.to_string(),
        "KB9 is for product fabrikam, but this root holds contoso; get the contoso build of the package"
    );
}

#[test]
fn a_package_without_a_variant_for_the_root_s_baseline_is_not_applicable() {
    let mut root = Root::at_rtm();
    let r = root.refuse(kernel_update("KB8", "SP1"), QfeOverride::Off);
    assert_eq!(
        r,
        R::NoVariantForBaseline {
            package: name("KB8"),
            root_baseline: name("RTM"),
            package_baselines: vec![name("SP1")]
        }
    );
    assert!(r.to_string().starts_with("KB8 has no build for this root's baseline RTM (it has builds for SP1)"));
}

#[test]
fn a_package_for_none_of_the_root_s_components_is_not_applicable() {
    let mut root = Root::at_rtm();
    let m = update("KB8", &[gdr("extra", "RTM", "1.1", &["KB8"]), ldr("extra", "RTM", "1.1.1", &["KB8"])]);
    let r = root.refuse(m, QfeOverride::Off);
    assert_eq!(
        r,
        R::NoInstalledComponent {
            package: name("KB8"),
            baseline: name("RTM"),
            package_components: vec![name("extra")],
            root_components: vec![name("kernel"), name("net")],
        }
    );
    assert!(
        r.to_string()
            .starts_with("KB8 updates extra at RTM, none of which is installed on this root (installed: kernel, net)")
    );
}

#[test]
fn an_update_on_a_root_without_a_baseline_is_not_applicable() {
    let mut root = Root::new();
    let r = root.refuse(kernel_update("KB8", "RTM"), QfeOverride::Off);
    assert_eq!(r, R::NoBaseline { package: name("KB8") });
    assert!(r.to_string().contains("install the product's RTM"));
}

#[test]
fn sp1qfe_is_not_applicable_on_an_rtm_root() {
    let mut root = Root::at_rtm();
    let r = root.refuse(kernel_update("KB8", "RTM"), QfeOverride::AtBaseline(name("SP1")));
    assert_eq!(r, R::QfeBaselineMismatch { wanted: name("SP1"), root: name("RTM") });
    assert_eq!(
        r.to_string(),
        "/B:SP1QFE asks for the LDR branch only on SP1, but this root is at RTM; use /B:RTMQFE or /B:QFE, or install \
         without the switch"
    );
    root.install_with(kernel_update("KB8", "RTM"), QfeOverride::AtBaseline(name("rtm")));
    assert_eq!(root.comp("kernel").branch, Branch::Ldr);
}

#[test]
fn baseline_packages_must_be_newer_carry_no_qfe_and_not_reuse_a_name() {
    let mut root = Root::at_rtm();
    let sp2 = baseline_pkg("SP2", "SP2", 2, &[("kernel", "3.0", &[]), ("net", "3.0", &[])]);
    let r = root.refuse(sp2.clone(), QfeOverride::Any);
    assert_eq!(r, R::QfeOnBaselinePackage { package: name("SP2"), switch: QfeOverride::Any });
    root.install(sp2);
    let sp1 = baseline_pkg("SP1", "SP1", 1, &[("kernel", "2.0", &[])]);
    let r = root.refuse(sp1, QfeOverride::Off);
    assert!(matches!(&r, R::BaselineNotNewer { root, .. } if root.name.as_str() == "SP2"));
    assert_eq!(
        r.to_string(),
        "SP1 establishes SP1 (level 1), but this root is already at SP2 (level 2); a baseline package must be newer \
         than the root's baseline (uninstall SP2 first to go back)"
    );
    let rtm_again = baseline_pkg("RTM2", "rtm", 3, &[("kernel", "4.0", &[])]);
    let r = root.refuse(rtm_again, QfeOverride::Off);
    assert!(matches!(r, R::BaselineNameTaken { installed_level: 0, .. }), "{r:?}");
}

#[test]
fn the_first_baseline_may_be_a_service_pack_and_then_rtm_is_not_applicable() {
    let mut root = Root::new();
    root.install(baseline_pkg("SP1", "SP1", 1, &[("kernel", "2.0", &[])]));
    assert!(matches!(root.refuse(rtm(), QfeOverride::Off), R::BaselineNotNewer { .. }));
}

#[test]
fn an_installed_package_id_is_already_installed_not_applicable() {
    let mut root = Root::at_rtm();
    root.install(kernel_update("KB8", "RTM"));
    let options = InstallOptions::default();
    let answer = applicability(&root.inputs(), &kernel_update("KB8", "RTM"), &options).unwrap();
    assert_eq!(answer, Applicability::AlreadyInstalled);
    assert_eq!(applicability(&root.inputs(), &rtm(), &options).unwrap(), Applicability::AlreadyInstalled);
}

fn state_of(installed: &[crate::engine::Installed]) -> Result<crate::engine::ActiveState, StateError> {
    let product = name(PRODUCT);
    active_state(&Inputs { product: &product, installed, policy: BranchPolicy::Auto })
}

#[test]
fn inconsistent_inputs_are_errors_not_guesses() {
    let off = || QfeOverride::Off;
    let foreign = manifest_for("fabrikam", "KB9", Kind::Hotfix, None, &[ldr("kernel", "RTM", "1.9", &["KB9"])]);
    let e = state_of(&[installed(rtm(), off()), installed(foreign, off())]).unwrap_err();
    assert!(matches!(e, StateError::ForeignPackage { .. }));

    let e = state_of(&[installed(rtm(), off()), installed(rtm(), off())]).unwrap_err();
    assert_eq!(e, StateError::DuplicatePackage(name("RTM")));

    let other_rtm = baseline_pkg("RTM-b", "RTMb", 0, &[("kernel", "1.0", &[])]);
    let e = state_of(&[installed(other_rtm, off()), installed(rtm(), off())]).unwrap_err();
    assert!(matches!(&e, StateError::ConflictingBaselines { first, .. } if first.as_str() == "RTM"), "{e:?}");

    let mut clash = ldr("net", "RTM", "1.9", &["KB9"]);
    clash.paths = vec!["kernel/kernel.bin".into()];
    let set = [installed(rtm(), off()), installed(hotfix("KB9", &[clash]), off())];
    let e = active_files(&state_of(&set).unwrap()).unwrap_err();
    assert_eq!(e.to_string(), "kernel/kernel.bin belongs to both kernel and net; two components never own one path");
}

#[test]
fn ties_prefer_a_non_baseline_variant_then_the_greatest_package_id_in_any_order() {
    // Same version as the baseline's own build: the update's build wins.
    let same = update("KB1", &[gdr("kernel", "RTM", "1.0", &["KB1"]), ldr("kernel", "RTM", "1.0", &["KB1"])]);
    let state = state_of(&[installed(same, QfeOverride::Off), installed(rtm(), QfeOverride::Off)]).unwrap();
    assert_eq!(state.components[&name("kernel")].chosen.package.as_str(), "KB1");

    // Two hotfixes with one version: "KB9" > "KB10" byte-wise, whatever the order.
    let a = hotfix("KB10", &[ldr("kernel", "RTM", "1.5", &["KB10"])]);
    let b = hotfix("KB9", &[ldr("kernel", "RTM", "1.5", &["KB9"])]);
    let mut set =
        vec![installed(rtm(), QfeOverride::Off), installed(a, QfeOverride::Off), installed(b, QfeOverride::Off)];
    let forward = state_of(&set).unwrap();
    set.reverse();
    assert_eq!(state_of(&set).unwrap(), forward);
    assert_eq!(forward.components[&name("kernel")].chosen.package.as_str(), "KB9");
}

#[test]
fn branch_reasons_read_as_sentences() {
    let mut root = Root::at_rtm();
    root.install(hotfix("KB1", &[ldr("kernel", "RTM", "1.1.1", &["KB1"])]));
    root.install_with(kernel_update("KB4", "RTM"), QfeOverride::Any);
    root.install_with(kernel_update("KB6", "RTM"), QfeOverride::AtBaseline(name("RTM")));
    root.install_with(kernel_update("KB7", "RTM"), QfeOverride::Any);
    assert_eq!(
        root.comp("kernel").reason.to_string(),
        "LDR because hotfix KB1 is installed and KB4 was installed with /B:QFE, KB6 was installed with /B:RTMQFE \
         and KB7 was installed with /B:QFE"
    );
    assert_eq!(root.comp("net").reason.to_string(), "GDR: no hotfix and no /B:QFE install for net at RTM");
}

#[test]
fn b_switch_values_parse_case_insensitively() {
    assert_eq!(QfeOverride::from_switch_value("QFE"), Ok(QfeOverride::Any));
    assert_eq!(QfeOverride::from_switch_value("qfe"), Ok(QfeOverride::Any));
    assert_eq!(QfeOverride::from_switch_value("SP1QFE"), Ok(QfeOverride::AtBaseline(name("SP1"))));
    let lower = QfeOverride::from_switch_value("sp1qfe").unwrap();
    assert!(lower.counts_at(&name("SP1")) && !lower.counts_at(&name("RTM")));
    for bad in ["", "QF", "SP1", "GDR", "SP1/QFE", "-QFE", "éQFE", "QFEé"] {
        let e = QfeOverride::from_switch_value(bad).unwrap_err();
        assert!(e.to_string().contains("use /B:QFE"), "{bad:?}");
    }
    assert_eq!(QfeOverride::Any.to_string(), "/B:QFE");
    assert_eq!(QfeOverride::AtBaseline(name("SP2")).to_string(), "/B:SP2QFE");
}

#[test]
fn a_transition_names_the_components_it_changes() {
    let root = Root::at_rtm();
    let mut next = root.installed.clone();
    next.push(installed(kernel_update("KB8", "RTM"), QfeOverride::Off));
    let after = Inputs { product: &root.product, installed: &next, policy: BranchPolicy::Auto };
    let t = crate::engine::transition(&root.inputs(), &after).unwrap();
    assert_eq!(t.changed_components(), vec![name("kernel")]);
    let policy = Inputs { policy: BranchPolicy::ForceLdr, ..root.inputs() };
    let t = crate::engine::transition(&root.inputs(), &policy).unwrap();
    assert_eq!(t.changed_components(), vec![name("kernel"), name("net")], "the reason changes even if no file does");
    assert!(t.plan.is_empty());
}
