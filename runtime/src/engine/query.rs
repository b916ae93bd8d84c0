//! "Is fix X present?" — answered from the fix lists of the active variants only. A version
//! number never answers it: GDR v5 lacks an LDR-only fix shipped in LDR v1.

use hotfix_schema::{Branch, Name, Version};

use super::state::ActiveState;

/// Where a fix is active.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixLocation {
    /// The component whose active variant lists the fix.
    pub component: Name,
    /// That component's branch.
    pub branch: Branch,
    /// The package the active variant comes from.
    pub package: Name,
    /// The active variant's version.
    pub version: Version,
}

/// A fix that is present: every component whose active variant lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixPresence {
    /// The fix, as the manifests spell it.
    pub fix: Name,
    /// Non-empty, sorted by component.
    pub locations: Vec<FixLocation>,
}

/// Whether `fix` is in the fix list of any active variant; `None` if it is in none.
///
/// A fix that spans several components is reported where it is active; whether it is
/// missing from a component it should also be in cannot be told from the active state.
pub fn fix_present(state: &ActiveState, fix: &Name) -> Option<FixPresence> {
    let locations: Vec<FixLocation> = state
        .components
        .iter()
        .filter(|(_, cs)| cs.chosen.variant.fixes.iter().any(|f| f.same_as(fix)))
        .map(|(component, cs)| FixLocation {
            component: component.clone(),
            branch: cs.branch,
            package: cs.chosen.package.clone(),
            version: cs.chosen.variant.version.clone(),
        })
        .collect();
    // The spelling the manifests use (fix ids ignore case; FORMAT.md §4.2).
    let spelled = state
        .components
        .values()
        .flat_map(|cs| &cs.chosen.variant.fixes)
        .find(|f| f.same_as(fix))
        .cloned()
        .unwrap_or_else(|| fix.clone());
    (!locations.is_empty()).then_some(FixPresence { fix: spelled, locations })
}

/// A fix that an installed build on its component's active branch lists, but the active
/// build lacks: the active build is newer (it won on version) yet not cumulative over it.
/// That is a vendor's numbering mistake — a higher build made without an earlier fix — and
/// `query --fix` answers absent for it until a build that has both is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostFix {
    /// The fix, as the package that ships it spells it.
    pub fix: Name,
    /// The package whose build lists it.
    pub package: Name,
    /// The component.
    pub component: Name,
    /// The version of that package's build.
    pub version: Version,
    /// The active build that lacks it.
    pub active: FixLocation,
}

/// Every [`LostFix`] of `installed` on `state`: for each installed build at the root's
/// baseline of a component on the root, on the component's active branch (or a baseline
/// package's build, which both branches continue), each of its fixes that the active build
/// does not list. A GDR root's lack of LDR-only fixes is by design and not reported.
pub fn lost_fixes(state: &ActiveState, installed: &[super::Installed]) -> Vec<LostFix> {
    let Some(baseline) = &state.baseline else { return Vec::new() };
    let mut out: Vec<LostFix> = Vec::new();
    for p in installed {
        for v in p.manifest.variants.iter().filter(|v| v.baseline == baseline.decl.name) {
            let Some(cs) = state.components.get(&v.component) else { continue };
            if v.branch.is_some_and(|b| b != cs.branch) {
                continue;
            }
            let active = &cs.chosen.variant;
            for fix in v.fixes.iter().filter(|f| !active.fixes.iter().any(|a| a.same_as(f))) {
                if out.iter().any(|l| l.component == v.component && l.fix.same_as(fix)) {
                    continue;
                }
                out.push(LostFix {
                    fix: fix.clone(),
                    package: p.manifest.package.id.clone(),
                    component: v.component.clone(),
                    version: v.version.clone(),
                    active: FixLocation {
                        component: v.component.clone(),
                        branch: cs.branch,
                        package: cs.chosen.package.clone(),
                        version: active.version.clone(),
                    },
                });
            }
        }
    }
    out
}

/// The warning an administrator reads for a [`LostFix`].
impl std::fmt::Display for LostFix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = &self.active;
        write!(
            f,
            "fix {fix} of {pkg} is in no active build: {c} runs {br} {av} from {ap}, a newer build than {pkg}'s \
             {v}, and it lacks {fix}. A newer build should hold every earlier fix (a vendor numbering mistake); \
             `query --fix {fix}` answers absent until a build with both is installed — ask the vendor for one",
            fix = self.fix,
            pkg = self.package,
            c = self.component,
            br = a.branch.to_string().to_uppercase(),
            av = a.version,
            ap = a.package,
            v = self.version,
        )
    }
}
