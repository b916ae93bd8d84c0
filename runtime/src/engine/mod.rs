//! The servicing decision (DESIGN.md "The servicing rule"), as pure functions over data.
//!
//! Nothing here touches the file system. The inputs are the root's installed packages with
//! the options each was installed with ([`Installed`]), the root's product and its branch
//! policy ([`Inputs`]). From them:
//!
//! - [`active_state`] — the root's baseline and, per component, the branch, the reason for
//!   it and the chosen variant;
//! - [`applicability`] — whether a package may be installed, and if not, exactly why;
//! - [`active_files`] and [`diff`] — the files the active state puts under the root and the
//!   minimal change between two of them; [`transition`] does all three for an install or an
//!   uninstall;
//! - [`fix_present`] — whether a fix is active, from the active variants' fix lists only.
//!
//! Every result depends on the *set* of installed packages, never on their order.
#![deny(missing_docs)]

mod applicability;
mod files;
mod inputs;
mod query;
mod state;

pub use applicability::{Applicability, NotApplicableReason, applicability};
pub use files::{ActiveFile, Plan, Put, Removal, Transition, active_files, diff, transition};
pub use inputs::{BranchPolicy, Inputs, InstallOptions, Installed, QfeOverride, QfeSwitchError};
pub use query::{FixLocation, FixPresence, LostFix, fix_present, lost_fixes};
pub use state::{ActiveState, BranchReason, Chosen, ComponentState, RootBaseline, StateError, active_state};

#[cfg(test)]
pub(crate) mod tests;
