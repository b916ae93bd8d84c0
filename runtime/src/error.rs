//! The runtime's errors, one enum whose variants line up with the documented exit-code
//! classes (DESIGN.md "Exit codes"); [`Error::exit_code`] is the one mapping.

use std::io;
use std::path::{Path, PathBuf};

use hotfix_schema::Name;

use crate::engine::{NotApplicableReason, StateError};

/// Everything a servicing operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command line the runtime does not accept (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The package does not apply to this root (exit 4).
    #[error("{package} is not applicable to this root: {reason}. Nothing was changed.")]
    NotApplicable {
        /// The package id.
        package: Name,
        /// Exactly why.
        reason: Box<NotApplicableReason>,
    },
    /// The same package is installed already (exit 5).
    #[error(
        "{package} is already installed (installed as #{sequence}, {options}); nothing was changed. \
         To put back its files and store from this package: hotfix --root {root} install --reinstall PKG; \
         to install it afresh, uninstall it first: hotfix --root {root} uninstall {package}"
    )]
    AlreadyInstalled {
        /// The package id.
        package: Name,
        /// Its install sequence number.
        sequence: i64,
        /// The options it was installed with.
        options: String,
        /// The root, for the hint.
        root: String,
    },
    /// The package is tampered with, malformed, or signed by a key the root does not trust;
    /// or a key offered for trust is not usable (exit 6 for both, 1 for plain I/O).
    #[error("{source}{hint}")]
    Package {
        /// What the reader said.
        source: Box<pkgtool::Error>,
        /// What to do about it.
        hint: String,
    },
    /// A prerelease package without `--allow-prerelease` (exit 7).
    #[error(
        "{package} is a prerelease package (channel prerelease), not for production; refused by policy and \
         nothing was changed. Install it anyway with --allow-prerelease"
    )]
    Prerelease {
        /// The package id.
        package: Name,
    },
    /// Another servicing operation holds the root (exit 8).
    #[error(
        "{} is busy: another servicing operation holds {} ({holder}); try again when it has finished, \
         or pass --wait",
        root.display(), lock.display()
    )]
    Busy {
        /// The root.
        root: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The inventory database failed.
    #[error("inventory {}: {source}", path.display())]
    Inventory {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The inventory holds something it never writes: it was damaged or edited.
    #[error("inventory {}: damaged: {msg}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The installed packages are inconsistent (see [`StateError`]).
    #[error("the root's installed packages are inconsistent: {0}")]
    State(#[from] StateError),
    /// A live path that is not the runtime's would be overwritten, or cannot be written.
    #[error("{}: {why}; nothing was changed", path.display())]
    Conflict {
        /// The path under the root.
        path: PathBuf,
        /// Why it is in the way.
        why: String,
    },
    /// A blob the inventory needs is missing from the store or damaged there.
    #[error("store blob {}: {why}", path.display())]
    Store {
        /// The blob's path in the store.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Not a servicing root, already one, or an operation the state forbids.
    #[error("{0}")]
    Refused(String),
    /// The update channel failed: a TUF check (exit 6), expired metadata (exit 6), the
    /// network or the repository (exit 1).
    #[cfg(feature = "channel")]
    #[error("{source}{hint}")]
    Channel {
        /// The channel's account.
        source: Box<hotfix_channel::Error>,
        /// What to do about it.
        hint: String,
    },
}

impl Error {
    /// The process exit code (DESIGN.md "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::NotApplicable { .. } => 4,
            Error::AlreadyInstalled { .. } => 5,
            Error::Package { source, .. } => source.exit_code(),
            Error::Prerelease { .. } => 7,
            Error::Busy { .. } => 8,
            Error::Io { .. }
            | Error::Inventory { .. }
            | Error::Corrupt { .. }
            | Error::State(_)
            | Error::Conflict { .. }
            | Error::Store { .. }
            | Error::Refused(_) => 1,
            #[cfg(feature = "channel")]
            Error::Channel { source, .. } => source.exit_code(),
        }
    }

    /// The error's class in `--json` output (README "JSON output"): one per variant, and
    /// for a package the reader's class (`bad-signature`, `untrusted-key`, …).
    pub fn class(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::NotApplicable { .. } => "not-applicable",
            Error::AlreadyInstalled { .. } => "already-installed",
            Error::Package { source, .. } => source.class(),
            Error::Prerelease { .. } => "refused-by-policy",
            Error::Busy { .. } => "busy",
            Error::Io { .. } => "io",
            Error::Inventory { .. } => "inventory",
            Error::Corrupt { .. } => "corrupt-inventory",
            Error::State(_) => "inconsistent-state",
            Error::Conflict { .. } => "conflict",
            Error::Store { .. } => "store",
            Error::Refused(_) => "refused",
            #[cfg(feature = "channel")]
            Error::Channel { source, .. } => source.class(),
        }
    }

    /// A closure mapping an I/O error on `path` to [`Error::Io`].
    pub fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
