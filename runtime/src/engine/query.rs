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
    /// The fix.
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
        .filter(|(_, cs)| cs.chosen.variant.fixes.contains(fix))
        .map(|(component, cs)| FixLocation {
            component: component.clone(),
            branch: cs.branch,
            package: cs.chosen.package.clone(),
            version: cs.chosen.variant.version.clone(),
        })
        .collect();
    (!locations.is_empty()).then(|| FixPresence { fix: fix.clone(), locations })
}
