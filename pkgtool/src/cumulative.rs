//! Cumulativeness against earlier packages (`pkgtool build --previous PKG`): fixes are
//! cumulative per branch, and a root runs the highest build of a branch, so a new build
//! numbered above an earlier build of the same component, baseline and branch must hold
//! every fix of it, and one numbered below it must hold no fix it lacks — otherwise that
//! fix ends up in no active build on a root that has both packages (the runtime warns
//! about exactly that; here the vendor hears it before shipping). A baseline package's
//! build counts for both branches of its baseline.

use hotfix_schema::{Manifest, Name, Variant};

/// The first break of cumulativeness between `new` and the `previous` packages, as a
/// sentence naming both builds and the fix; `None` when there is none.
pub fn check(new: &Manifest, previous: &[Manifest]) -> Option<String> {
    for n in &new.variants {
        for p in previous {
            for o in p.variants.iter().filter(|o| same_stream(n, o)) {
                let missing = |a: &Variant, b: &Variant| -> Option<Name> {
                    b.fixes.iter().find(|f| !a.fixes.iter().any(|x| x.same_as(f))).cloned()
                };
                let build = |m: &Manifest, v: &Variant| {
                    let branch = v.branch.map_or_else(|| "baseline".to_string(), |b| b.to_string().to_uppercase());
                    format!("{}'s {} {} {branch} {}", m.package.id, v.component, v.baseline, v.version)
                };
                let (newb, oldb) = (build(new, n), build(p, o));
                match n.version.cmp(&o.version) {
                    std::cmp::Ordering::Greater => {
                        if let Some(f) = missing(n, o) {
                            return Some(format!(
                                "{newb} is newer than {oldb} but lacks its fix {f}; a newer build holds every fix \
                                 of an older one (fixes are cumulative per branch)"
                            ));
                        }
                    }
                    std::cmp::Ordering::Less => {
                        if let Some(f) = missing(o, n) {
                            return Some(format!(
                                "{newb} is older than {oldb}, which lacks its fix {f}: on a root with both, the \
                                 newer build wins and {f} is in no active build; number the build above {}",
                                o.version
                            ));
                        }
                    }
                    std::cmp::Ordering::Equal => {
                        if let Some(f) = missing(n, o).or_else(|| missing(o, n)) {
                            return Some(format!(
                                "{newb} has the version of {oldb} but not the same fixes ({f}); a build's \
                                 version names one set of fixes"
                            ));
                        }
                    }
                }
            }
        }
    }
    None
}

/// Whether `o` is a build `n` is compared with: the same component and baseline, and the
/// same branch, or either is a baseline package's build.
fn same_stream(n: &Variant, o: &Variant) -> bool {
    n.component == o.component
        && n.baseline == o.baseline
        && (n.branch == o.branch || n.branch.is_none() || o.branch.is_none())
}

#[cfg(test)]
mod tests {
    use super::check;
    use hotfix_schema::{Branch, Channel, Kind, Manifest, Name, PackageInfo, Variant, Version};

    fn pkg(id: &str, variants: &[(Option<Branch>, &str, &[&str])]) -> Manifest {
        let name = |s: &str| Name::new(s).unwrap();
        Manifest {
            format_version: 1,
            package: PackageInfo {
                id: name(id),
                kind: Kind::Hotfix,
                product: name("p"),
                title: "t".into(),
                channel: Channel::Release,
                baseline: None,
            },
            tool: "test".into(),
            baselines: vec![name("RTM")],
            fixes: vec![],
            variants: variants
                .iter()
                .map(|(branch, version, fixes)| Variant {
                    component: name("kernel"),
                    baseline: name("RTM"),
                    branch: *branch,
                    version: Version::parse(version).unwrap(),
                    fixes: fixes.iter().map(|f| name(f)).collect(),
                    restart: false,
                    files: vec![],
                })
                .collect(),
            blobs: vec![],
        }
    }

    const LDR: Option<Branch> = Some(Branch::Ldr);
    const GDR: Option<Branch> = Some(Branch::Gdr);

    #[test]
    fn a_hotfix_numbered_below_an_earlier_ldr_build_that_lacks_its_fix_is_refused() {
        let kb4 = pkg("KB4", &[(GDR, "1.4", &["KB2", "KB4"]), (LDR, "1.4.1", &["KB1", "KB2", "KB3", "KB4"])]);
        let kb7 = pkg("KB7", &[(LDR, "1.2.7", &["KB1", "KB2", "KB7"])]);
        let why = check(&kb7, std::slice::from_ref(&kb4)).unwrap();
        assert!(why.contains("KB7's kernel RTM LDR 1.2.7 is older than KB4's kernel RTM LDR 1.4.1"), "{why}");
        assert!(why.contains("number the build above 1.4.1"), "{why}");
        // Numbered above, with every earlier fix: fine.
        let kb7 = pkg("KB7", &[(LDR, "1.4.7", &["KB1", "KB2", "KB3", "KB4", "KB7"])]);
        assert_eq!(check(&kb7, &[kb4]), None);
    }

    #[test]
    fn a_newer_build_without_an_earlier_fix_is_refused_and_other_branches_do_not_count() {
        let kb3 = pkg("KB3", &[(LDR, "1.3.1", &["KB1", "KB3"])]);
        let kb4 = pkg("KB4", &[(GDR, "1.4", &["KB4"]), (LDR, "1.4.1", &["KB1", "KB4"])]);
        let why = check(&kb4, &[kb3]).unwrap();
        assert!(
            why.contains("KB4's kernel RTM LDR 1.4.1 is newer than KB3's kernel RTM LDR 1.3.1 but lacks its fix KB3")
        );
        // The GDR build lacks KB1 and KB3 of the LDR stream by design.
        let kb3_gdr_only = pkg("KB4", &[(GDR, "1.4", &["KB4"])]);
        assert_eq!(check(&kb3_gdr_only, &[pkg("KB3", &[(LDR, "1.3.1", &["KB1", "KB3"])])]), None);
    }

    #[test]
    fn the_same_version_with_other_fixes_is_refused_and_case_does_not_matter() {
        let a = pkg("KB5", &[(LDR, "1.5.1", &["KB5"])]);
        let b = pkg("KB6", &[(LDR, "1.5.1", &["kb5"])]);
        assert_eq!(check(&b, std::slice::from_ref(&a)), None);
        let c = pkg("KB6", &[(LDR, "1.5.1", &["KB5", "KB6"])]);
        assert!(check(&c, &[a]).unwrap().contains("has the version of"));
    }
}
