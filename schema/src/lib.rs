//! The hotfix package format, version 1: manifest types, validated names and versions,
//! the signature block layout, the format's limits, and the JSON Schema of the manifest.
//!
//! The written specification is `schema/FORMAT.md`; section numbers in comments refer to
//! it. This crate does no I/O and no cryptography: `pkgtool` reads and writes packages on
//! top of it, and the runtime reads them through `pkgtool`'s reader.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod limits;
mod manifest;
mod names;
pub mod output;
pub mod sigblock;
pub mod text;
mod validate;
mod version;

pub use limits::Limits;
pub use manifest::{
    BaselineDecl, Blob, Branch, Channel, ContentLoc, Digest, Encoding, FileEntry, Kind, Manifest, Member, Mode,
    PackageInfo, Variant,
};
pub use names::{MAX_NAME_LEN, MAX_PATH_LEN, Name, RESERVED_DIR, RelPath};
pub use version::Version;

/// The format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the manifest entry, always the first entry of the archive.
pub const MANIFEST_ENTRY: &str = "manifest.json";
/// Prefix of blob entry names; the rest is the blob's SHA-256 in hex.
pub const BLOB_PREFIX: &str = "blobs/";

/// An untrusted string that is not a valid name, path, version, digest or mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Not an identifier.
    #[error("{0:?} is not a valid name (a letter or digit, then letters, digits, '.', '_' or '-'; at most 64 bytes)")]
    BadName(String),
    /// Not a safe relative path.
    #[error("unsafe path {path:?}: {why}")]
    BadPath {
        /// The path, escaped.
        path: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// Not a dotted numeric version.
    #[error("{0:?} is not a dotted numeric version (like 5.2.3790.4, no leading zeros)")]
    BadVersion(String),
    /// Not a SHA-256 in lowercase hex.
    #[error("{0:?} is not a SHA-256 digest in lowercase hex")]
    BadDigest(String),
    /// Not permission bits up to 0777.
    #[error("mode {0} is not permission bits up to 0777")]
    BadMode(String),
}

/// A manifest that breaks a rule of FORMAT.md §4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A `format_version` this crate does not read.
    #[error("unknown format version {0} (this tool reads version {FORMAT_VERSION})")]
    UnknownFormatVersion(u32),
    /// Not JSON of the manifest's shape.
    #[error("malformed manifest: {0}")]
    Malformed(String),
    /// Over a count or size limit.
    #[error("too many {what} (limit {limit})")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Well-formed but breaks a rule.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// A path that is a file and also a directory above another file that can be in the
    /// same root (FORMAT.md §4.3 rule 9): installing both cannot succeed.
    #[error("{file} is a file, and a directory of {below}; {why}")]
    FileAndDirectory {
        /// The path that is a file.
        file: String,
        /// A file below it.
        below: String,
        /// Which variants the two files are in.
        why: String,
    },
}

impl Manifest {
    /// Parses and validates a manifest: the format version first (so a newer format is
    /// reported as such, not as unknown fields), then the shape, then [`Manifest::validate`].
    pub fn from_json(bytes: &[u8], limits: &Limits) -> Result<Manifest, ManifestError> {
        #[derive(serde::Deserialize)]
        struct Probe {
            format_version: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if probe.format_version != FORMAT_VERSION {
            return Err(ManifestError::UnknownFormatVersion(probe.format_version));
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        m.validate(limits)?;
        Ok(m)
    }

    /// The canonical encoding: compact JSON with fields in declaration order.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The JSON Schema of the manifest, as committed in `schema/manifest.schema.json`.
pub fn manifest_json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_json_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/manifest.schema.json");
        let generated = manifest_json_schema();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "schema/manifest.schema.json is out of date with the manifest types; \
             regenerate it with `UPDATE_SCHEMA=1 cargo test -p hotfix-schema`"
        );
    }
}
