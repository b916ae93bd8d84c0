//! The inputs of the servicing decision: installed packages with their install options, the
//! branch policy, and the `/B:QFE` / `/B:<BASELINE>QFE` override and its switch syntax.

use std::fmt;

use hotfix_schema::{Manifest, Name, NameError};

/// One installed package: its manifest and the options it was installed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The package's manifest, as read (and validated) when it was installed.
    pub manifest: Manifest,
    /// The options given at install time; they stay with the package until it is removed.
    pub options: InstallOptions,
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
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The root's product (set by `init`).
    pub product: &'a Name,
    /// The installed packages, in any order.
    pub installed: &'a [Installed],
    /// The root's branch policy.
    pub policy: BranchPolicy,
}
