//! The channel's errors, each naming the file or URL and the cause, with the exit code of
//! DESIGN.md's table.

use std::path::PathBuf;

/// An error of the update channel.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a local file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A signing key cannot be used.
    #[error("{}: {msg}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The repository's metadata failed a TUF check: signature, threshold, rollback,
    /// freeze (expiry), mix-and-match, length or hash.
    #[error("{what}: {source} [tuf]")]
    Trust {
        /// The repository (its URL or directory) or the file concerned.
        what: String,
        /// tough's account of the failed check.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The repository's metadata has expired (the TUF freeze check): a freeze attack, or a
    /// repository whose timestamp was not re-signed in time (offline media).
    #[error("{what}: {source} [tuf freeze check]")]
    Expired {
        /// The repository.
        what: String,
        /// tough's account of which role expired when.
        source: Box<tough::error::Error>,
    },
    /// The repository could not be reached or a file of it could not be read.
    #[error("{what}: {source}")]
    Transport {
        /// The repository or file.
        what: String,
        /// The cause.
        source: Box<tough::error::Error>,
    },
    /// Refused: nothing was written.
    #[error("{what}: {msg}")]
    Refused {
        /// The repository, package or file.
        what: String,
        /// Why.
        msg: String,
    },
}

impl Error {
    /// The process exit code (DESIGN.md "Exit codes"): 6 for a failed trust check, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Trust { .. } | Error::Expired { .. } => 6,
            _ => 1,
        }
    }

    /// The error's class in `--json` output.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Key { .. } => "secret-key",
            Error::Trust { .. } => "tuf",
            Error::Expired { .. } => "expired-metadata",
            Error::Transport { .. } => "transport",
            Error::Refused { .. } => "refused",
        }
    }

    /// Sorts a tough error into a trust failure or a transport/I-O one.
    pub fn from_tough(what: impl Into<String>, e: tough::error::Error) -> Error {
        use tough::error::Error as T;
        let what = what.into();
        if matches!(e, T::Transport { .. }) && failed_check_inside(&e) {
            return Error::Trust { what, source: Box::new(e) };
        }
        match e {
            T::ExpiredMetadata { .. } => Error::Expired { what, source: Box::new(e) },
            T::Transport { .. }
            | T::FileRead { .. }
            | T::FileOpen { .. }
            | T::FileWrite { .. }
            | T::DirCreate { .. }
            | T::DatastoreCreate { .. }
            | T::DatastoreInit { .. }
            | T::DatastoreOpen { .. }
            | T::NamedTempFileCreate { .. }
            | T::NamedTempFilePersist { .. } => Error::Transport { what, source: Box::new(e) },
            _ => Error::Trust { what, source: Box::new(e) },
        }
    }

    /// Wraps an I/O error with its file, for `map_err`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }
}

/// Whether a transport error carries a failed check: tough verifies length and hash while
/// it streams a file, so a file that is too long or has the wrong hash surfaces as a
/// transport error wrapping `MaxSizeExceeded` or `HashMismatch` — a trust failure, not a
/// network one.
fn failed_check_inside(e: &tough::error::Error) -> bool {
    use tough::error::Error as T;
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<T>()
            && matches!(t, T::HashMismatch { .. } | T::MaxSizeExceeded { .. })
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Result with the channel's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
