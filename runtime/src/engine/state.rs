//! The active state of a root: its baseline, and per component the branch, the reason for
//! that branch and the chosen variant — computed from the inputs alone.
//!
//! Tie-break (rule 3 leaves it open): among candidates of equal version, a variant from an
//! update or hotfix beats the baseline package's; then the greatest package id (byte-wise)
//! wins; then, within one package, the first variant in manifest order. Nothing depends on
//! the order of the installed slice.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::fmt;

use hotfix_schema::{BaselineDecl, Branch, Kind, Name, Variant};

use super::inputs::{BranchPolicy, Inputs, Installed, QfeOverride};

/// The servicing state a root's inputs call for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActiveState {
    /// The root's baseline; `None` on a root that has no baseline package installed yet.
    pub baseline: Option<RootBaseline>,
    /// Every component installed on the root (those of the baseline package), by name.
    pub components: BTreeMap<Name, ComponentState>,
}

/// The baseline a root is at and the package that established it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootBaseline {
    /// Name and level.
    pub decl: BaselineDecl,
    /// The installed baseline package with the highest level.
    pub package: Name,
}

/// One component's branch and active variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentState {
    /// The component's branch.
    pub branch: Branch,
    /// Why it is on that branch.
    pub reason: BranchReason,
    /// The active variant.
    pub chosen: Chosen,
}

/// The variant that is active for a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The package it comes from.
    pub package: Name,
    /// That package's kind; [`Kind::Baseline`] means the baseline package's own variant.
    pub kind: Kind,
    /// Its index in that package's (whole) manifest's `variants`.
    pub index: usize,
    /// The variant itself: version, fixes, files, restart flag.
    pub variant: Variant,
}

/// Why a component is on its branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BranchReason {
    /// LDR: the root's policy forces LDR.
    PolicyForcesLdr,
    /// LDR: installed packages with a variant of the component at the root's baseline ask
    /// for it. At least one list is non-empty; both are sorted by package id.
    LdrRequested {
        /// Hotfixes with a variant of the component at the root's baseline.
        hotfixes: Vec<Name>,
        /// Updates installed with a QFE override that counts at the root's baseline.
        qfe: Vec<(Name, QfeOverride)>,
    },
    /// GDR: nothing asks for LDR.
    NoLdrRequest {
        /// The component.
        component: Name,
        /// The root's baseline.
        baseline: Name,
    },
}

impl BranchReason {
    /// The branch this reason leads to.
    pub fn branch(&self) -> Branch {
        match self {
            BranchReason::PolicyForcesLdr | BranchReason::LdrRequested { .. } => Branch::Ldr,
            BranchReason::NoLdrRequest { .. } => Branch::Gdr,
        }
    }
}

impl fmt::Display for BranchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BranchReason::PolicyForcesLdr => f.write_str("LDR because the branch policy forces LDR"),
            BranchReason::LdrRequested { hotfixes, qfe } => {
                f.write_str("LDR because ")?;
                match hotfixes.as_slice() {
                    [] => {}
                    [one] => write!(f, "hotfix {one} is installed")?,
                    many => write!(f, "hotfixes {} are installed", join(many.iter()))?,
                }
                if !hotfixes.is_empty() && !qfe.is_empty() {
                    f.write_str(" and ")?;
                }
                for (i, (package, switch)) in qfe.iter().enumerate() {
                    let sep = match i {
                        0 => "",
                        _ if i + 1 == qfe.len() => " and ",
                        _ => ", ",
                    };
                    write!(f, "{sep}{package} was installed with {switch}")?;
                }
                Ok(())
            }
            BranchReason::NoLdrRequest { component, baseline } => {
                write!(f, "GDR: no hotfix and no /B:QFE install for {component} at {baseline}")
            }
        }
    }
}

fn join<'n>(names: impl Iterator<Item = &'n Name>) -> String {
    names.map(Name::as_str).collect::<Vec<_>>().join(", ")
}

/// Inputs that no sequence of applicable installs produces: the inventory is damaged or a
/// package is malformed. Nothing can be decided until it is repaired.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// An installed package is for another product.
    #[error("installed package {package} is for product {product}, but this root holds {root}")]
    ForeignPackage {
        /// The package.
        package: Name,
        /// Its product.
        product: Name,
        /// The root's product.
        root: Name,
    },
    /// Two installed packages have one id.
    #[error("package id {0} is installed twice")]
    DuplicatePackage(Name),
    /// A baseline package without its baseline declaration.
    #[error("baseline package {0} does not declare the baseline it establishes")]
    UndeclaredBaseline(Name),
    /// Two baseline packages claim one level, or one baseline name (ignoring ASCII case).
    #[error(
        "baseline packages {first} ({} level {}) and {second} ({} level {}) conflict: each level and each \
         baseline name belongs to one baseline package",
        first_decl.name, first_decl.level, second_decl.name, second_decl.level
    )]
    ConflictingBaselines {
        /// One package (the smaller id).
        first: Name,
        /// What it declares.
        first_decl: BaselineDecl,
        /// The other package.
        second: Name,
        /// What it declares.
        second_decl: BaselineDecl,
    },
    /// Two active components own one path.
    #[error("{path} belongs to both {first} and {second}; two components never own one path")]
    PathOwnedTwice {
        /// The path.
        path: hotfix_schema::RelPath,
        /// One component (the smaller name).
        first: Name,
        /// The other.
        second: Name,
    },
}

/// The active state of a root (DESIGN.md "The servicing rule").
///
/// The root's baseline `B` is declared by the installed baseline package with the highest
/// level; its components are that package's components. For each component `c`:
/// 1. candidates are the variants of `c` at `B` in installed updates and hotfixes, plus the
///    baseline package's variant of `c`;
/// 2. `c` is on LDR if the policy forces it, or an installed hotfix has a variant of `c` at
///    `B`, or an update with a variant of `c` at `B` was installed with a QFE override that
///    counts at `B`; otherwise on GDR;
/// 3. the active variant is the highest version among the candidates on that branch, the
///    baseline package's variant counting on both (ties: see the module documentation).
pub fn active_state(inputs: &Inputs<'_>) -> Result<ActiveState, StateError> {
    check_consistency(inputs)?;
    let Some((base, decl)) = top_baseline(inputs.installed) else {
        return Ok(ActiveState::default());
    };
    let mut components = BTreeMap::new();
    for v in base.manifest.variants.iter().filter(|v| v.baseline == decl.name) {
        if !components.contains_key(&v.component)
            && let Some(state) = component_state(inputs, base, &v.component, &decl.name)
        {
            components.insert(v.component.clone(), state);
        }
    }
    let baseline = RootBaseline { decl: decl.clone(), package: base.manifest.package.id.clone() };
    Ok(ActiveState { baseline: Some(baseline), components })
}

fn check_consistency(inputs: &Inputs<'_>) -> Result<(), StateError> {
    let mut by_id: BTreeMap<&Name, &Installed> = BTreeMap::new();
    for p in inputs.installed {
        let info = &p.manifest.package;
        if &info.product != inputs.product {
            return Err(StateError::ForeignPackage {
                package: info.id.clone(),
                product: info.product.clone(),
                root: inputs.product.clone(),
            });
        }
        if by_id.insert(&info.id, p).is_some() {
            return Err(StateError::DuplicatePackage(info.id.clone()));
        }
    }
    let mut seen: Vec<(&Name, &BaselineDecl)> = Vec::new();
    for (id, p) in by_id.into_iter().filter(|(_, p)| p.manifest.package.kind == Kind::Baseline) {
        let decl = p.manifest.package.baseline.as_ref().ok_or_else(|| StateError::UndeclaredBaseline(id.clone()))?;
        // Names are compared ignoring ASCII case, as `/B:<BASELINE>QFE` matches them.
        let same_name = |d: &BaselineDecl| d.name.as_str().eq_ignore_ascii_case(decl.name.as_str());
        let clash = seen.iter().find(|(_, d)| d.level == decl.level || same_name(d));
        if let Some((other, other_decl)) = clash {
            return Err(StateError::ConflictingBaselines {
                first: (*other).clone(),
                first_decl: (*other_decl).clone(),
                second: id.clone(),
                second_decl: decl.clone(),
            });
        }
        seen.push((id, decl));
    }
    Ok(())
}

/// The installed baseline package with the highest level, if any. Levels are unique once
/// [`check_consistency`] has passed.
fn top_baseline(installed: &[Installed]) -> Option<(&Installed, &BaselineDecl)> {
    installed
        .iter()
        .filter(|p| p.manifest.package.kind == Kind::Baseline)
        .filter_map(|p| p.manifest.package.baseline.as_ref().map(|d| (p, d)))
        .max_by_key(|(p, d)| (d.level, &p.manifest.package.id))
}

/// One candidate variant with what ranks it.
struct Candidate<'a> {
    package: &'a Installed,
    index: usize,
    variant: &'a Variant,
}

impl Candidate<'_> {
    fn is_baseline(&self) -> bool {
        self.package.manifest.package.kind == Kind::Baseline
    }

    /// Higher is better: version, then not-the-baseline, then package id, then earlier index.
    fn rank(&self, other: &Self) -> Ordering {
        (&self.variant.version, !self.is_baseline(), &self.package.manifest.package.id, Reverse(self.index)).cmp(&(
            &other.variant.version,
            !other.is_baseline(),
            &other.package.manifest.package.id,
            Reverse(other.index),
        ))
    }
}

/// `None` only if the baseline package has no variant of `component` at `baseline`, which
/// [`active_state`] never asks about.
fn component_state(inputs: &Inputs<'_>, base: &Installed, component: &Name, baseline: &Name) -> Option<ComponentState> {
    let at_b = |v: &Variant| &v.component == component && &v.baseline == baseline;
    let holders: Vec<&Installed> = inputs
        .installed
        .iter()
        .filter(|p| p.manifest.package.kind != Kind::Baseline && p.manifest.variants.iter().any(at_b))
        .collect();
    let reason = branch_reason(inputs.policy, &holders, component, baseline);
    let branch = reason.branch();

    let mut best: Option<Candidate<'_>> = None;
    let from_holders = holders
        .iter()
        .flat_map(|p| p.manifest.variants.iter().enumerate().map(move |(i, v)| (*p, p.variant_index(i), v)));
    let from_base = base.manifest.variants.iter().enumerate().map(|(i, v)| (base, base.variant_index(i), v));
    for (package, index, variant) in from_holders.chain(from_base) {
        let on_branch = package.manifest.package.kind == Kind::Baseline || variant.branch == Some(branch);
        if !at_b(variant) || !on_branch {
            continue;
        }
        let candidate = Candidate { package, index, variant };
        if best.as_ref().is_none_or(|b| candidate.rank(b) == Ordering::Greater) {
            best = Some(candidate);
        }
    }
    let best = best?;
    let chosen = Chosen {
        package: best.package.manifest.package.id.clone(),
        kind: best.package.manifest.package.kind,
        index: best.index,
        variant: best.variant.clone(),
    };
    Some(ComponentState { branch, reason, chosen })
}

fn branch_reason(policy: BranchPolicy, holders: &[&Installed], component: &Name, baseline: &Name) -> BranchReason {
    if policy == BranchPolicy::ForceLdr {
        return BranchReason::PolicyForcesLdr;
    }
    let mut hotfixes: Vec<Name> = holders
        .iter()
        .filter(|p| p.manifest.package.kind == Kind::Hotfix)
        .map(|p| p.manifest.package.id.clone())
        .collect();
    let mut qfe: Vec<(Name, QfeOverride)> = holders
        .iter()
        .filter(|p| p.manifest.package.kind == Kind::Update && p.options.qfe.counts_at(baseline))
        .map(|p| (p.manifest.package.id.clone(), p.options.qfe.clone()))
        .collect();
    hotfixes.sort();
    qfe.sort_by(|a, b| a.0.cmp(&b.0));
    if hotfixes.is_empty() && qfe.is_empty() {
        BranchReason::NoLdrRequest { component: component.clone(), baseline: baseline.clone() }
    } else {
        BranchReason::LdrRequested { hotfixes, qfe }
    }
}
