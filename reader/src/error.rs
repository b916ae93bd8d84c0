//! The package reader's (and the packager's) errors: one enum whose variants line up with the documented exit codes
//! (DESIGN.md "Exit codes") and, for integrity failures, with the test vectors' `expect`
//! classes (`schema/vectors/*.expect`).

use std::io;
use std::path::{Path, PathBuf};

/// Why a package was rejected. Each variant has a stable class name ([`Integrity::class`])
/// that the test vectors name in their `expect:` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Integrity {
    /// Shorter than the format's fixed trailer, or the end record is not where it must be.
    #[error("truncated or not a package: {0}")]
    Truncated(String),
    /// Not a well-formed archive of format v1 (bad record, unsupported method or flag, …).
    #[error("malformed archive: {0}")]
    MalformedArchive(String),
    /// Two entries claim the same bytes.
    #[error("overlapping entries: {0}")]
    OverlappingEntries(String),
    /// Bytes that belong to no entry.
    #[error("bytes outside any entry: {0}")]
    UnaccountedBytes(String),
    /// An entry name appears twice.
    #[error("duplicate entry {0:?}")]
    DuplicateEntry(String),
    /// An entry name that is unsafe or not of the format's shape.
    #[error("bad entry name {0:?}")]
    BadEntryName(String),
    /// An entry marked as a symbolic link or other non-regular file.
    #[error("entry {0:?} is not a regular file (symlink or special file)")]
    SymlinkEntry(String),
    /// An entry the manifest does not list.
    #[error("entry {0:?} is not in the manifest")]
    EntryNotInManifest(String),
    /// A blob the manifest lists but the archive lacks.
    #[error("blob {0} listed in the manifest is missing from the archive")]
    EntryMissing(String),
    /// The manifest is over the size limit.
    #[error("manifest of {size} bytes is over the {limit}-byte limit")]
    ManifestTooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The manifest is not JSON of the manifest's shape.
    #[error("malformed manifest: {0}")]
    MalformedManifest(String),
    /// The manifest breaks a rule of the format.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// A path that is a file and a directory above another file of the same root
    /// (FORMAT.md §4.3 rule 9).
    #[error("invalid manifest: {0}")]
    FileAndDirectory(String),
    /// A format version this tool does not read.
    #[error("unknown format version {0} (this tool reads version 1)")]
    UnknownFormatVersion(u32),
    /// A signature block version or algorithm this tool does not know.
    #[error("unknown signature algorithm: {0}")]
    UnknownSignatureAlgorithm(String),
    /// Signed by a key that is not trusted.
    #[error("signed by key {key_id}, which is not trusted (trusted: {trusted})")]
    UntrustedKey {
        /// The signer's key id.
        key_id: String,
        /// The trusted key ids.
        trusted: String,
    },
    /// The signature does not match the file.
    #[error("signature does not match the file's contents (the file was changed after signing)")]
    BadSignature,
    /// Decoded content longer or shorter than declared (a decompression bomb stops here).
    #[error("blob {blob}: decoded size {found} does not match the declared {declared}")]
    SizeMismatch {
        /// The blob.
        blob: String,
        /// Declared size.
        declared: u64,
        /// Size found (when over, the first byte past the declared size).
        found: u64,
    },
    /// Decoded content whose hash is not the declared one.
    #[error("{what}: SHA-256 {found} does not match the declared {declared}")]
    HashMismatch {
        /// The blob or file.
        what: String,
        /// Declared digest.
        declared: String,
        /// Digest found.
        found: String,
    },
    /// Compressed data that does not decode.
    #[error("entry {entry:?}: {why}")]
    BadCompressedData {
        /// The entry.
        entry: String,
        /// The decoder's complaint.
        why: String,
    },
}

impl Integrity {
    /// The stable class name used by the test vectors.
    pub fn class(&self) -> &'static str {
        match self {
            Integrity::Truncated(_) => "truncated",
            Integrity::MalformedArchive(_) => "malformed-archive",
            Integrity::OverlappingEntries(_) => "overlapping-entries",
            Integrity::UnaccountedBytes(_) => "unaccounted-bytes",
            Integrity::DuplicateEntry(_) => "duplicate-entry",
            Integrity::BadEntryName(_) => "bad-entry-name",
            Integrity::SymlinkEntry(_) => "symlink-entry",
            Integrity::EntryNotInManifest(_) => "entry-not-in-manifest",
            Integrity::EntryMissing(_) => "entry-missing",
            Integrity::ManifestTooLarge { .. } => "manifest-too-large",
            Integrity::MalformedManifest(_) => "malformed-manifest",
            Integrity::InvalidManifest(_) => "invalid-manifest",
            Integrity::FileAndDirectory(_) => "file-and-directory",
            Integrity::UnknownFormatVersion(_) => "unknown-format-version",
            Integrity::UnknownSignatureAlgorithm(_) => "unknown-signature-algorithm",
            Integrity::UntrustedKey { .. } => "untrusted-key",
            Integrity::BadSignature => "bad-signature",
            Integrity::SizeMismatch { .. } => "size-mismatch",
            Integrity::HashMismatch { .. } => "hash-mismatch",
            Integrity::BadCompressedData { .. } => "bad-compressed-data",
        }
    }
}

/// Everything the packager library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The build spec or its payload is wrong; `line` points into the spec when known.
    #[error("{}{}: {msg}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Spec {
        /// The spec file.
        file: PathBuf,
        /// 1-based line in the spec.
        line: Option<usize>,
        /// What is wrong.
        msg: String,
    },
    /// A secret key cannot be used.
    #[error("{}: {msg}", path.display())]
    SecretKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A public key cannot be trusted: malformed, weak, or not a key.
    #[error("{}: {msg}", path.display())]
    PublicKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The package is tampered with, malformed, or not signed by a trusted key.
    #[error("{}: {kind} [{}]", path.display(), kind.class())]
    Integrity {
        /// The package file.
        path: PathBuf,
        /// What check failed.
        kind: Integrity,
    },
    /// An output that would be overwritten or a target that is not empty.
    #[error("{}: {msg}", path.display())]
    Refused {
        /// The file or directory.
        path: PathBuf,
        /// Why nothing was written.
        msg: String,
    },
}

impl Error {
    /// The process exit code for this error (DESIGN.md "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Integrity { .. } | Error::PublicKey { .. } => 6,
            _ => 1,
        }
    }

    /// The error's class in `--json` output: an integrity failure's own class
    /// ([`Integrity::class`]), else `io`, `spec`, `secret-key`, `public-key` or `refused`.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Spec { .. } => "spec",
            Error::SecretKey { .. } => "secret-key",
            Error::PublicKey { .. } => "public-key",
            Error::Integrity { kind, .. } => kind.class(),
            Error::Refused { .. } => "refused",
        }
    }

    /// Wraps an I/O error with the file it concerns, for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }

    /// An integrity failure of the package at `path`.
    pub fn integrity(path: &Path, kind: Integrity) -> Error {
        Error::Integrity { path: path.to_path_buf(), kind }
    }
}

/// Result with the packager's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
