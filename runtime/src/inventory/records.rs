//! The serialized forms the inventory keeps: a file record, a package's install options, and
//! the pending-transaction record written before the live tree is touched.

use hotfix_schema::{Blob, Digest, Manifest, Mode, Name, PackageInfo, RelPath, Variant};
use serde::{Deserialize, Serialize};

use crate::engine::{ActiveFile, InstallOptions, QfeOverride};

/// One active file as recorded (the engine's [`ActiveFile`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRec {
    /// The owning component.
    pub component: Name,
    /// The package whose variant is active.
    pub package: Name,
    /// Content hash; names the store blob.
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: Mode,
    /// Whether the variant needs a restart.
    pub restart: bool,
}

impl From<&ActiveFile> for FileRec {
    fn from(f: &ActiveFile) -> Self {
        FileRec {
            component: f.component.clone(),
            package: f.package.clone(),
            sha256: f.sha256,
            size: f.size,
            mode: f.mode,
            restart: f.restart,
        }
    }
}

impl From<FileRec> for ActiveFile {
    fn from(f: FileRec) -> Self {
        ActiveFile {
            component: f.component,
            package: f.package,
            sha256: f.sha256,
            size: f.size,
            mode: f.mode,
            restart: f.restart,
        }
    }
}

/// A package's manifest without its variants and blobs, as the `packages` table keeps it
/// (the variants are rows of `variants`, the blobs one row of `blobs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The manifest's format version.
    pub format_version: u32,
    /// Identity, kind, channel, baseline declaration.
    pub package: PackageInfo,
    /// The tool that built the package.
    pub tool: String,
    /// Every baseline a variant is built for.
    pub baselines: Vec<Name>,
    /// Every fix any variant contains.
    pub fixes: Vec<Name>,
}

impl Header {
    /// The header of `m`.
    pub fn of(m: &Manifest) -> Header {
        Header {
            format_version: m.format_version,
            package: m.package.clone(),
            tool: m.tool.clone(),
            baselines: m.baselines.clone(),
            fixes: m.fixes.clone(),
        }
    }

    /// The manifest with these variants and blobs.
    pub fn manifest(self, variants: Vec<Variant>, blobs: Vec<Blob>) -> Manifest {
        Manifest {
            format_version: self.format_version,
            package: self.package,
            tool: self.tool,
            baselines: self.baselines,
            fixes: self.fixes,
            variants,
            blobs,
        }
    }
}

/// Install options as stored: the `/B:` value (`QFE`, `SP1QFE`) or none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredOptions {
    /// The `/B:` switch value, if the package was installed with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qfe: Option<String>,
}

impl StoredOptions {
    /// The stored form of `options`.
    pub fn of(options: &InstallOptions) -> Self {
        let qfe = match &options.qfe {
            QfeOverride::Off => None,
            QfeOverride::Any => Some("QFE".to_string()),
            QfeOverride::AtBaseline(b) => Some(format!("{b}QFE")),
        };
        StoredOptions { qfe }
    }

    /// Back to the engine's options; `None` if the stored value is not a switch value.
    pub fn to_options(&self) -> Option<InstallOptions> {
        let qfe = match &self.qfe {
            None => QfeOverride::Off,
            Some(v) => QfeOverride::from_switch_value(v).ok()?,
        };
        Some(InstallOptions { qfe })
    }
}

/// One path a transaction touches: what was there (per the inventory) and what goes there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Touched {
    /// The path under the root.
    pub path: RelPath,
    /// The inventory's file before; `None` if the path was not the runtime's.
    pub old: Option<FileRec>,
    /// The file after; `None` if it is removed.
    pub new: Option<FileRec>,
}

/// A transaction that was started and not yet committed. Recovery rolls it back: every
/// touched path gets its old content (from the store) or is removed, and every directory
/// in `created_dirs` is removed if empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// The command, e.g. `install KB4`.
    pub op: String,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// The package installed or removed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Name>,
    /// Every path written, chmod-ed or removed, sorted.
    pub touched: Vec<Touched>,
    /// Directories the transaction creates, parents first.
    pub created_dirs: Vec<RelPath>,
}
