//! Property tests over generated package sets for one product with two components
//! (`kernel`, `net`) and two baselines (RTM, SP1).
//!
//! A generated world is a timeline of fixes KB1..KBn; fix k ships as package KBk, a hotfix
//! (LDR-only fix) or an update (GDR fix, both branches), for the components it touches.
//! SP1, if any, is built after fix s and holds every fix up to s; packages after s carry an
//! SP1 variant (and maybe still an RTM one), packages up to s only RTM variants. Builds are
//! cumulative per branch and versions grow with time — unless the world is *scrambled*,
//! where versions are drawn from a tiny range to force ties and out-of-order builds.

use std::collections::{BTreeMap, BTreeSet};

use hotfix_schema::{Branch, Kind, Manifest, Name, RelPath};
use proptest::prelude::*;

use super::fixtures::*;
use crate::engine::{
    ActiveFile, ActiveState, Applicability, BranchPolicy, ComponentState, Inputs, InstallOptions, Installed,
    NotApplicableReason, QfeOverride, active_files, active_state, applicability, transition,
};

const COMPONENTS: [&str; 2] = ["kernel", "net"];

#[derive(Clone, Debug)]
struct FixSpec {
    ldr_only: bool,
    touches: [bool; 2],
    keep_rtm: bool,
    install: bool,
    qfe: u8,
    noise: [u8; 8],
}

#[derive(Clone, Debug)]
struct World {
    fixes: Vec<FixSpec>,
    /// SP1 is built after this many fixes.
    sp_after: Option<usize>,
    rtm_installed: bool,
    sp_installed: bool,
    force_ldr: bool,
    scrambled: bool,
    order: Vec<u16>,
}

fn fix_spec() -> impl Strategy<Value = FixSpec> {
    (any::<bool>(), 1u8..4, any::<bool>(), prop::bool::weighted(0.7), 0u8..6, prop::array::uniform8(0u8..4)).prop_map(
        |(ldr_only, touches, keep_rtm, install, qfe, noise)| FixSpec {
            ldr_only,
            touches: [touches & 1 != 0, touches & 2 != 0],
            keep_rtm,
            install,
            qfe,
            noise,
        },
    )
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(fix_spec(), 0..8),
        prop::option::of(0usize..8),
        prop::bool::weighted(0.9),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.3),
        prop::collection::vec(any::<u16>(), 12),
    )
        .prop_map(|(fixes, sp_after, rtm_installed, sp_installed, force_ldr, scrambled, order)| World {
            sp_after: sp_after.map(|s| s.min(fixes.len())),
            fixes,
            rtm_installed,
            sp_installed,
            force_ldr,
            scrambled,
            order,
        })
}

impl World {
    fn touches(&self, j: usize, c: usize) -> bool {
        self.fixes[j - 1].touches[c]
    }

    /// Fixes 1..=k (from `from` on) touching `c`, GDR-class only if `gdr_only`.
    fn fixes_upto(&self, from: usize, k: usize, c: usize, gdr_only: bool) -> Vec<String> {
        (from + 1..=k)
            .filter(|&j| self.touches(j, c) && !(gdr_only && self.fixes[j - 1].ldr_only))
            .map(|j| format!("KB{j}"))
            .collect()
    }

    fn sp_fixes(&self, c: usize) -> Vec<String> {
        self.sp_after.map_or_else(Vec::new, |s| self.fixes_upto(0, s, c, false))
    }

    fn version(&self, level: u32, k: usize, noise: u8, ldr: bool) -> String {
        if self.scrambled { format!("{level}.{noise}") } else { format!("{level}.{k}.{}", u8::from(ldr)) }
    }

    fn package(&self, k: usize) -> Manifest {
        let spec = &self.fixes[k - 1];
        let mut vs = Vec::new();
        for (ci, c) in COMPONENTS.iter().enumerate().filter(|(ci, _)| spec.touches[*ci]) {
            let post_sp = self.sp_after.is_some_and(|s| k > s);
            let mut at = Vec::new();
            if !post_sp || spec.keep_rtm {
                at.push(("RTM", 0u32, 0usize, Vec::new()));
            }
            if let (true, Some(s)) = (post_sp, self.sp_after) {
                at.push(("SP1", 1, s, self.sp_fixes(ci)));
            }
            for (b, level, from, carried) in at {
                let with = |gdr_only| {
                    let mut f = carried.clone();
                    f.extend(self.fixes_upto(from, k, ci, gdr_only));
                    f
                };
                let n = ci * 4 + level as usize * 2;
                let (lf, lv) = (with(false), self.version(level, k, spec.noise[n + 1], true));
                vs.push(ldr(c, b, &lv, &lf.iter().map(String::as_str).collect::<Vec<_>>()));
                if !spec.ldr_only {
                    let (gf, gv) = (with(true), self.version(level, k, spec.noise[n], false));
                    vs.push(gdr(c, b, &gv, &gf.iter().map(String::as_str).collect::<Vec<_>>()));
                }
            }
        }
        let id = format!("KB{k}");
        if spec.ldr_only { hotfix(&id, &vs) } else { update(&id, &vs) }
    }

    fn baseline(&self, id: &str, level: u32) -> Manifest {
        let version = if self.scrambled { format!("{level}.2") } else { format!("{level}.0") };
        let fixes: Vec<Vec<String>> = (0..2).map(|c| if level == 0 { Vec::new() } else { self.sp_fixes(c) }).collect();
        let refs: Vec<Vec<&str>> = fixes.iter().map(|f| f.iter().map(String::as_str).collect()).collect();
        let comps: Vec<(&str, &str, &[&str])> =
            COMPONENTS.iter().zip(&refs).map(|(c, f)| (*c, version.as_str(), f.as_slice())).collect();
        baseline_pkg(id, id, level, &comps)
    }

    fn qfe(&self, k: usize) -> QfeOverride {
        match self.fixes[k - 1].qfe {
            3 => QfeOverride::Any,
            4 => QfeOverride::AtBaseline(name("RTM")),
            5 => QfeOverride::AtBaseline(name("SP1")),
            _ => QfeOverride::Off,
        }
    }

    /// Every package of the world, with whether it is installed.
    fn all(&self) -> Vec<(Installed, bool)> {
        let mut out = vec![(installed(self.baseline("RTM", 0), QfeOverride::Off), self.rtm_installed)];
        if self.sp_after.is_some() {
            out.push((installed(self.baseline("SP1", 1), QfeOverride::Off), self.sp_installed));
        }
        for k in 1..=self.fixes.len() {
            out.push((installed(self.package(k), self.qfe(k)), self.fixes[k - 1].install));
        }
        out
    }

    fn installed(&self) -> Vec<Installed> {
        self.all().into_iter().filter(|(_, on)| *on).map(|(p, _)| p).collect()
    }

    fn shuffled(&self, set: &[Installed]) -> Vec<Installed> {
        let mut keyed: Vec<(u16, usize)> = (0..set.len()).map(|i| (self.order[i % self.order.len()], i)).collect();
        keyed.sort();
        keyed.into_iter().map(|(_, i)| set[i].clone()).collect()
    }

    fn policy(&self) -> BranchPolicy {
        if self.force_ldr { BranchPolicy::ForceLdr } else { BranchPolicy::Auto }
    }
}

fn state(w: &World, set: &[Installed]) -> ActiveState {
    let product = name(PRODUCT);
    active_state(&Inputs { product: &product, installed: set, policy: w.policy() }).unwrap()
}

/// Every variant of `c` at `b` in installed packages, with whether it is the baseline's.
fn variants_at<'s>(
    set: &'s [Installed],
    c: &'s Name,
    b: &'s Name,
) -> impl Iterator<Item = (&'s hotfix_schema::Variant, bool)> + 's {
    set.iter().flat_map(move |p| {
        let is_base = p.manifest.package.kind == Kind::Baseline;
        p.manifest.variants.iter().filter(move |v| &v.component == c && &v.baseline == b).map(move |v| (v, is_base))
    })
}

fn files(s: &ActiveState) -> BTreeMap<RelPath, ActiveFile> {
    active_files(s).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) Installing a package then uninstalling it restores the state and the files.
    #[test]
    fn install_then_uninstall_restores_the_previous_state(w in world(), pick in any::<prop::sample::Index>()) {
        let set = w.installed();
        prop_assume!(!set.is_empty());
        let i = pick.index(set.len());
        let without: Vec<Installed> = set.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p.clone()).collect();
        let product = name(PRODUCT);
        let before = Inputs { product: &product, installed: &without, policy: w.policy() };
        let after = Inputs { product: &product, installed: &set, policy: w.policy() };
        let install = transition(&before, &after).unwrap();
        let uninstall = transition(&after, &before).unwrap();
        let mut disk = install.before_files.clone();
        apply(&mut disk, &install.plan);
        prop_assert_eq!(&disk, &install.after_files);
        apply(&mut disk, &uninstall.plan);
        prop_assert_eq!(&disk, &install.before_files);
        prop_assert_eq!(&uninstall.after, &install.before);
        prop_assert_eq!(uninstall.plan.put.len() + uninstall.plan.remove.len(),
            install.plan.put.len() + install.plan.remove.len());
    }

    /// (b) The active variant is never older than a variant on its branch at the root's
    /// baseline in an installed package; the baseline's own variant counts on both. And it
    /// is itself on that branch or the baseline's.
    #[test]
    fn the_active_variant_is_the_highest_on_its_branch(w in world()) {
        let set = w.installed();
        let s = state(&w, &set);
        let Some(root) = &s.baseline else { return Ok(()) };
        for (c, cs) in &s.components {
            let chosen = &cs.chosen.variant;
            prop_assert!(chosen.branch.is_none_or(|b| b == cs.branch));
            prop_assert_eq!(&chosen.baseline, &root.decl.name);
            let from_base = cs.chosen.kind == Kind::Baseline;
            prop_assert_eq!(from_base, chosen.branch.is_none());
            for (v, is_base) in variants_at(&set, c, &root.decl.name) {
                if is_base || v.branch == Some(cs.branch) {
                    prop_assert!(chosen.version >= v.version, "{} {} < {}", c, chosen.version, v.version);
                }
            }
        }
    }

    /// (c) The result does not depend on the order of the installed packages.
    #[test]
    fn the_result_does_not_depend_on_install_order(w in world()) {
        let set = w.installed();
        let s = state(&w, &set);
        let shuffled = w.shuffled(&set);
        prop_assert_eq!(&state(&w, &shuffled), &s);
        let mut reversed = set.clone();
        reversed.reverse();
        prop_assert_eq!(&state(&w, &reversed), &s);
        prop_assert_eq!(files(&state(&w, &shuffled)), files(&s));
    }

    /// (d) With builds cumulative per branch and versions growing with time (precondition:
    /// on each component, baseline and branch, a higher version lists every fix of a lower
    /// one, the baseline's variant included), a GDR component holds every fix of every
    /// installed GDR variant at the baseline, and an LDR component every fix of every
    /// installed variant there. No LDR-only fix is ever active on GDR.
    #[test]
    fn cumulative_builds_lose_no_fix(w in world()) {
        prop_assume!(!w.scrambled);
        let set = w.installed();
        let s = state(&w, &set);
        let Some(root) = &s.baseline else { return Ok(()) };
        for (c, cs) in &s.components {
            let active = &cs.chosen.variant.fixes;
            for (v, is_base) in variants_at(&set, c, &root.decl.name) {
                if is_base || cs.branch == Branch::Ldr || v.branch == Some(Branch::Gdr) {
                    for f in &v.fixes {
                        prop_assert!(active.contains(f), "{} on {} lacks {} of {}", c, cs.branch, f, v.version);
                    }
                }
            }
            if cs.branch == Branch::Gdr {
                let level = root.decl.level;
                for f in active {
                    let k: usize = f.as_str().trim_start_matches("KB").parse().unwrap();
                    let in_sp = level == 1 && w.sp_after.is_some_and(|sp| k <= sp);
                    prop_assert!(in_sp || !w.fixes[k - 1].ldr_only, "LDR-only {} active on GDR {}", f, c);
                }
            }
        }
    }

    /// With every package restricted to the variants of some components at the root's
    /// baseline, those components get exactly the whole input's state — the same chosen
    /// variant, index included — and no other component appears.
    #[test]
    fn restricted_inputs_give_the_whole_roots_state_of_their_components(w in world(), which in 0usize..3) {
        let set = w.installed();
        let whole = state(&w, &set);
        let Some(root) = &whole.baseline else { return Ok(()) };
        let scope: BTreeSet<Name> =
            COMPONENTS.iter().enumerate().filter(|(i, _)| which == 2 || *i == which).map(|(_, c)| name(c)).collect();
        let b = root.decl.name.clone();
        let restricted: Vec<Installed> =
            set.iter().map(|p| p.restrict(|v| scope.contains(&v.component) && v.baseline == b)).collect();
        let part = state(&w, &restricted);
        prop_assert_eq!(&part.baseline, &whole.baseline);
        let expected: BTreeMap<Name, ComponentState> =
            whole.components.iter().filter(|(c, _)| scope.contains(*c)).map(|(c, s)| (c.clone(), s.clone())).collect();
        prop_assert_eq!(part.components, expected);
    }

    /// Installing or uninstalling an update or hotfix, decided from the packages restricted
    /// to the components it has variants of at the root's baseline, plans exactly the
    /// writes, removals and relabels of the whole root; only the files left alone are
    /// fewer, by the files of the other components.
    #[test]
    fn a_change_decided_on_its_components_alone_plans_as_on_the_whole_root(
        w in world(),
        pick in any::<prop::sample::Index>(),
    ) {
        let set = w.installed();
        prop_assume!(!set.is_empty());
        let i = pick.index(set.len());
        prop_assume!(set[i].manifest.package.kind != Kind::Baseline);
        let without: Vec<Installed> = set.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| p.clone()).collect();
        let Some(root) = state(&w, &without).baseline else { return Ok(()) };
        let b = root.decl.name;
        let scope: BTreeSet<Name> =
            set[i].manifest.variants.iter().filter(|v| v.baseline == b).map(|v| v.component.clone()).collect();
        let restrict = |ps: &[Installed]| -> Vec<Installed> {
            ps.iter().map(|p| p.restrict(|v| scope.contains(&v.component) && v.baseline == b)).collect()
        };
        let product = name(PRODUCT);
        let inputs = |ps| Inputs { product: &product, installed: ps, policy: w.policy() };
        let (r_without, r_set) = (restrict(&without), restrict(&set));
        for (from, to, r_from, r_to) in [(&without, &set, &r_without, &r_set), (&set, &without, &r_set, &r_without)] {
            let whole = transition(&inputs(from), &inputs(to)).unwrap();
            let part = transition(&inputs(r_from), &inputs(r_to)).unwrap();
            prop_assert_eq!(&part.plan.put, &whole.plan.put);
            prop_assert_eq!(&part.plan.remove, &whole.plan.remove);
            prop_assert_eq!(&part.plan.relabel, &whole.plan.relabel);
            prop_assert_eq!(part.plan.restart, whole.plan.restart);
            let outside = whole.before_files.len() - part.before_files.len();
            prop_assert_eq!(part.plan.unchanged + outside, whole.plan.unchanged);
            prop_assert_eq!(part.changed_components(), whole.changed_components());
        }
    }

    /// A package refused because it has no variant for the baseline or none for an
    /// installed component would change nothing even if it were forced in.
    #[test]
    fn refused_packages_would_change_nothing(w in world()) {
        let set = w.installed();
        let product = name(PRODUCT);
        let inputs = Inputs { product: &product, installed: &set, policy: w.policy() };
        let s = state(&w, &set);
        for (p, on) in w.all() {
            if on { continue; }
            let options = InstallOptions::default();
            let answer = applicability(&inputs, &p.manifest, &options).unwrap();
            if let Applicability::NotApplicable(
                NotApplicableReason::NoVariantForBaseline { .. } | NotApplicableReason::NoInstalledComponent { .. },
            ) = answer
            {
                let mut forced = set.clone();
                forced.push(p);
                prop_assert_eq!(&state(&w, &forced), &s);
            }
        }
    }
}
