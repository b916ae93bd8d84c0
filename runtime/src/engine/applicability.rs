//! Whether a package may be installed on a root, and if not, exactly why and what to do —
//! instead of the old installers' opaque "not applicable".

use std::fmt;

use hotfix_schema::{BaselineDecl, Kind, Manifest, Name};

use super::inputs::{Inputs, InstallOptions, QfeOverride};
use super::state::{StateError, active_state};

/// The answer to "may this package be installed here?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applicability {
    /// It may; installing it changes the inputs (it may still change no file).
    Applicable,
    /// A package with this id is installed already; nothing changes (exit 5). The caller
    /// compares manifests if it wants to tell a re-release under the same id apart.
    AlreadyInstalled,
    /// It does not apply to this root (exit 4); nothing changes.
    NotApplicable(NotApplicableReason),
}

/// Why a package does not apply. Each message says which check failed and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotApplicableReason {
    /// The package services another product.
    OtherProduct {
        /// The package id.
        package: Name,
        /// The package's product.
        product: Name,
        /// The root's product.
        root: Name,
    },
    /// An update or hotfix offered to a root that has no baseline package yet.
    NoBaseline {
        /// The package id.
        package: Name,
    },
    /// The package has no variant for the root's baseline.
    NoVariantForBaseline {
        /// The package id.
        package: Name,
        /// The root's baseline.
        root_baseline: Name,
        /// The baselines the package has variants for.
        package_baselines: Vec<Name>,
    },
    /// The package's variants for the root's baseline are all of components the root does
    /// not have.
    NoInstalledComponent {
        /// The package id.
        package: Name,
        /// The root's baseline.
        baseline: Name,
        /// The components the package has variants of at that baseline.
        package_components: Vec<Name>,
        /// The components installed on the root.
        root_components: Vec<Name>,
    },
    /// `/B:<X>QFE` with `X` other than the root's baseline.
    QfeBaselineMismatch {
        /// The baseline the switch names.
        wanted: Name,
        /// The root's baseline.
        root: Name,
    },
    /// A QFE override given for a baseline package, which has no branch.
    QfeOnBaselinePackage {
        /// The package id.
        package: Name,
        /// The override given.
        switch: QfeOverride,
    },
    /// A baseline package that is not newer than the root's baseline.
    BaselineNotNewer {
        /// The package id.
        package: Name,
        /// What it establishes.
        package_baseline: BaselineDecl,
        /// The root's baseline.
        root: BaselineDecl,
    },
    /// A baseline package that reuses the name of an installed baseline (ignoring ASCII
    /// case) at another level.
    BaselineNameTaken {
        /// The package id.
        package: Name,
        /// What it establishes.
        package_baseline: BaselineDecl,
        /// The installed baseline package with that name.
        installed: Name,
        /// Its level.
        installed_level: u32,
    },
}

impl fmt::Display for NotApplicableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use NotApplicableReason as R;
        match self {
            R::OtherProduct { package, product, root } => write!(
                f,
                "{package} is for product {product}, but this root holds {root}; get the {root} build of the package"
            ),
            R::NoBaseline { package } => write!(
                f,
                "{package} services an installed product, but this root has no baseline yet; \
                 install the product's RTM (a baseline package) first"
            ),
            R::NoVariantForBaseline { package, root_baseline, package_baselines } => write!(
                f,
                "{package} has no build for this root's baseline {root_baseline} (it has builds for {}); \
                 get the {root_baseline} release of the package, or check whether {root_baseline} already contains its fixes",
                list(package_baselines)
            ),
            R::NoInstalledComponent { package, baseline, package_components, root_components } => write!(
                f,
                "{package} updates {} at {baseline}, none of which is installed on this root (installed: {}); \
                 there is nothing for it to service",
                list(package_components),
                list(root_components)
            ),
            R::QfeBaselineMismatch { wanted, root } => write!(
                f,
                "/B:{wanted}QFE asks for the LDR branch only on {wanted}, but this root is at {root}; \
                 use /B:{root}QFE or /B:QFE, or install without the switch"
            ),
            R::QfeOnBaselinePackage { package, switch } => write!(
                f,
                "{switch} picks a branch for updates and hotfixes, but {package} is a baseline package and has none; \
                 install it without the switch (`hotfix policy branch ldr` keeps every component on LDR)"
            ),
            R::BaselineNotNewer { package, package_baseline: p, root } => write!(
                f,
                "{package} establishes {} (level {}), but this root is already at {} (level {}); a baseline \
                 package must be newer than the root's baseline (uninstall {} first to go back)",
                p.name, p.level, root.name, root.level, root.name
            ),
            R::BaselineNameTaken { package, package_baseline: p, installed, installed_level } => write!(
                f,
                "{package} declares baseline {} at level {}, but installed package {installed} already is {} at \
                 level {installed_level}; one of the two packages is mislabelled",
                p.name, p.level, p.name
            ),
        }
    }
}

fn list(names: &[Name]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names.iter().map(Name::as_str).collect::<Vec<_>>().join(", ")
}

/// Whether `candidate`, installed with `options`, applies to the root described by `inputs`.
///
/// Checks, first failure wins: product; already installed (same id, case ignored); then for a baseline
/// package: no QFE override, its name not taken at another level, newer than the root's
/// baseline; for an update or hotfix: the root has a baseline, a `/B:<X>QFE` names it, the
/// package has a variant for it, and one of those variants is of an installed component.
/// Errors only if the inputs themselves are inconsistent (see [`StateError`]).
pub fn applicability(
    inputs: &Inputs<'_>,
    candidate: &Manifest,
    options: &InstallOptions,
) -> Result<Applicability, StateError> {
    use NotApplicableReason as R;
    let state = active_state(inputs)?;
    let info = &candidate.package;
    let no = |r: R| Ok(Applicability::NotApplicable(r));
    if &info.product != inputs.product {
        return no(R::OtherProduct {
            package: info.id.clone(),
            product: info.product.clone(),
            root: inputs.product.clone(),
        });
    }
    if inputs.installed.iter().any(|p| p.manifest.package.id.same_as(&info.id)) {
        return Ok(Applicability::AlreadyInstalled);
    }
    if info.kind == Kind::Baseline {
        if options.qfe != QfeOverride::Off {
            return no(R::QfeOnBaselinePackage { package: info.id.clone(), switch: options.qfe.clone() });
        }
        // A validated manifest always declares it.
        let decl = info.baseline.as_ref().ok_or_else(|| StateError::UndeclaredBaseline(info.id.clone()))?;
        let taken = inputs.installed.iter().find_map(|p| {
            let d = p.manifest.package.baseline.as_ref().filter(|_| p.manifest.package.kind == Kind::Baseline)?;
            (d.name.as_str().eq_ignore_ascii_case(decl.name.as_str()) && d.level != decl.level)
                .then(|| (p.manifest.package.id.clone(), d.level))
        });
        if let Some((installed, installed_level)) = taken {
            return no(R::BaselineNameTaken {
                package: info.id.clone(),
                package_baseline: decl.clone(),
                installed,
                installed_level,
            });
        }
        return match state.baseline {
            Some(root) if root.decl.level >= decl.level => {
                no(R::BaselineNotNewer { package: info.id.clone(), package_baseline: decl.clone(), root: root.decl })
            }
            _ => Ok(Applicability::Applicable),
        };
    }
    let Some(root) = state.baseline else {
        return no(R::NoBaseline { package: info.id.clone() });
    };
    let b = &root.decl.name;
    if let QfeOverride::AtBaseline(wanted) = &options.qfe
        && !options.qfe.counts_at(b)
    {
        return no(R::QfeBaselineMismatch { wanted: wanted.clone(), root: b.clone() });
    }
    let mut at_b: Vec<Name> =
        candidate.variants.iter().filter(|v| &v.baseline == b).map(|v| v.component.clone()).collect();
    if at_b.is_empty() {
        let mut package_baselines: Vec<Name> = candidate.variants.iter().map(|v| v.baseline.clone()).collect();
        package_baselines.sort();
        package_baselines.dedup();
        return no(R::NoVariantForBaseline { package: info.id.clone(), root_baseline: b.clone(), package_baselines });
    }
    if !at_b.iter().any(|c| state.components.contains_key(c)) {
        at_b.sort();
        at_b.dedup();
        return no(R::NoInstalledComponent {
            package: info.id.clone(),
            baseline: b.clone(),
            package_components: at_b,
            root_components: state.components.into_keys().collect(),
        });
    }
    Ok(Applicability::Applicable)
}
