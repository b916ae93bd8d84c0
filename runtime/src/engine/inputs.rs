//! The inputs of the servicing decision: installed packages with their install options, the
//! branch policy, and the `/B:QFE` / `/B:<BASELINE>QFE` override and its switch syntax.

use std::fmt;

use hotfix_schema::{Manifest, Name, NameError, Variant};

/// One installed package: its manifest and the options it was installed with.
///
/// The manifest may be *restricted* to some of the package's variants (see [`Inputs`] for
/// what a restricted input still decides); `variant_indices` then maps each kept variant to
/// its index in the whole manifest, so that [`crate::engine::Chosen::index`] means the same
/// either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The package's manifest, as read (and validated) when it was installed — or that
    /// manifest with only some of its variants (and no blobs).
    pub manifest: Manifest,
    /// The options given at install time; they stay with the package until it is removed.
    pub options: InstallOptions,
    /// `None`: `manifest` is whole. `Some(ix)`: `manifest.variants[i]` is variant `ix[i]`
    /// of the whole manifest (`ix` is increasing, one entry per kept variant).
    pub variant_indices: Option<Vec<usize>>,
}

impl Installed {
    /// A package with its whole manifest.
    pub fn new(manifest: Manifest, options: InstallOptions) -> Installed {
        Installed { manifest, options, variant_indices: None }
    }

    /// The package restricted to the variants `keep` selects (and no blobs): what an
    /// inventory that loads only some components' variants gives the engine.
    pub fn restrict(&self, keep: impl Fn(&Variant) -> bool) -> Installed {
        let (indices, variants): (Vec<usize>, Vec<Variant>) = self
            .manifest
            .variants
            .iter()
            .enumerate()
            .filter(|(_, v)| keep(v))
            .map(|(i, v)| (self.variant_index(i), v.clone()))
            .unzip();
        let manifest = Manifest { variants, blobs: Vec::new(), ..self.manifest.clone() };
        Installed { manifest, options: self.options.clone(), variant_indices: Some(indices) }
    }

    /// The index in the whole manifest of `manifest.variants[i]`.
    pub fn variant_index(&self, i: usize) -> usize {
        self.variant_indices.as_ref().and_then(|ix| ix.get(i).copied()).unwrap_or(i)
    }
}

/// Options given when a package is installed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// The QFE override (`/B:QFE`, `/B:<BASELINE>QFE`, `--branch qfe`).
    pub qfe: QfeOverride,
}

/// The branch override a package was installed with.
///
/// It applies to updates and hotfixes only; a baseline package has no branch and is refused
/// with it (see [`crate::engine::NotApplicableReason::QfeOnBaselinePackage`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum QfeOverride {
    /// No override: the servicing rule decides.
    #[default]
    Off,
    /// `/B:QFE` or `--branch qfe`: the package's components go to LDR at any baseline.
    Any,
    /// `/B:<BASELINE>QFE`: LDR, and only while the root is at that baseline. The name is
    /// compared with the root's baseline ignoring ASCII case, like the switch itself.
    AtBaseline(Name),
}

impl QfeOverride {
    /// Whether the override puts the package's components on LDR while the root is at
    /// `baseline`.
    pub fn counts_at(&self, baseline: &Name) -> bool {
        match self {
            QfeOverride::Off => false,
            QfeOverride::Any => true,
            QfeOverride::AtBaseline(b) => b.as_str().eq_ignore_ascii_case(baseline.as_str()),
        }
    }

    /// Parses the value of a `/B:` switch, ignoring ASCII case: `QFE` is [`QfeOverride::Any`],
    /// `SP1QFE` is [`QfeOverride::AtBaseline`] of `SP1`. The baseline part keeps the case it
    /// was given in.
    pub fn from_switch_value(value: &str) -> Result<Self, QfeSwitchError> {
        let bad = || QfeSwitchError(value.escape_debug().to_string());
        let split = value.len().checked_sub(3).filter(|&at| value.is_char_boundary(at)).ok_or_else(bad)?;
        let (prefix, suffix) = value.split_at(split);
        if !suffix.eq_ignore_ascii_case("QFE") {
            return Err(bad());
        }
        if prefix.is_empty() {
            return Ok(QfeOverride::Any);
        }
        Name::new(prefix).map(QfeOverride::AtBaseline).map_err(|_: NameError| bad())
    }
}

/// Shows the override the way it is typed: `/B:QFE`, `/B:SP1QFE`, or `no /B override`.
impl fmt::Display for QfeOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QfeOverride::Off => f.write_str("no /B override"),
            QfeOverride::Any => f.write_str("/B:QFE"),
            QfeOverride::AtBaseline(b) => write!(f, "/B:{b}QFE"),
        }
    }
}

/// A `/B:` value that is neither `QFE` nor `<BASELINE>QFE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("/B:{0} is not a branch override; use /B:QFE, or /B:<BASELINE>QFE such as /B:SP1QFE")]
pub struct QfeSwitchError(pub String);

/// The root's persistent branch policy (`hotfix policy branch ldr|auto`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BranchPolicy {
    /// The servicing rule decides per component.
    #[default]
    Auto,
    /// Every component is on LDR.
    ForceLdr,
}

impl fmt::Display for BranchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BranchPolicy::Auto => "auto",
            BranchPolicy::ForceLdr => "ldr",
        })
    }
}

/// Everything the active state of a root depends on.
///
/// **Restricted inputs.** A component's state depends only on the root's baseline (which the
/// package headers decide: every installed package must be there, with its identity, kind
/// and baseline declaration), the policy, and the variants *of that component* at that
/// baseline. So when every package's manifest is restricted (see [`Installed::restrict`]) to
/// the variants of a set of components `S` — at least those at the root's baseline — then:
/// - [`crate::engine::active_state`] gives exactly the whole input's state of every
///   component of `S` the root has, and no other component;
/// - [`crate::engine::active_files`] gives the files of those components; it finds two
///   components owning one path only if both are in `S` (a caller that restricts must put
///   the owner of every path a component of `S` newly takes into `S`);
/// - [`crate::engine::transition`] between two restricted inputs that differ only in a
///   package whose variants at the baseline are all of components in `S`, or only in the
///   policy with `S` every component, plans exactly the whole input's writes, removals and
///   relabels, and counts only `S`'s files in [`crate::engine::Plan::unchanged`];
/// - [`crate::engine::applicability`] answers as for the whole input when `S` holds every
///   component the candidate has at the root's baseline, except that a
///   [`crate::engine::NotApplicableReason::NoInstalledComponent`] lists only `S`'s
///   components as the root's.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The root's product (set by `init`).
    pub product: &'a Name,
    /// The installed packages, in any order.
    pub installed: &'a [Installed],
    /// The root's branch policy.
    pub policy: BranchPolicy,
}
