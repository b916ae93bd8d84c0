//! `pkgtool --json`: the output of every command as data (README "JSON output"). Each run
//! prints one [`hotfix_schema::output`] envelope — `schema`, the command's fields below,
//! `exit_code`, or an `error` object with its class. [`schemas`] gives the JSON Schema of
//! each command's output; they are committed in `schema/json/pkgtool/` and checked against
//! these types by the test suite (`UPDATE_SCHEMA=1` regenerates them).

use std::path::PathBuf;

use hotfix_schema::Kind;
use hotfix_schema::output::{Message, schema_text};
use schemars::JsonSchema;
use serde::Serialize;

use crate::inspect::Inspection;

/// `pkgtool keygen NAME --json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Keygen {
    /// The secret key written (PKCS#8 PEM, mode 0600).
    pub secret_key: PathBuf,
    /// The public key written (SPKI PEM).
    pub public_key: PathBuf,
    /// The key id (16 hex digits).
    pub key_id: String,
}

/// `pkgtool build --json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Build {
    /// The package written.
    pub package: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The signing key's id.
    pub key_id: String,
    /// The package id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// Number of variants.
    pub variants: usize,
    /// Number of distinct contents.
    pub contents: usize,
    /// Number of blobs.
    pub blobs: usize,
    /// Whether it is a self-contained installer.
    pub self_contained: bool,
    /// The installer stub put before the package, if any.
    pub stub: Option<PathBuf>,
    /// What did not stop the build (e.g. a branch tag mismatch with `--no-tag-check`).
    pub warnings: Vec<String>,
}

/// `pkgtool verify --json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Verify {
    /// The package file.
    pub package: PathBuf,
    /// Always true: a package that fails verification is an error.
    pub verified: bool,
    /// Whether every blob was decoded too (`--deep`).
    pub deep: bool,
    /// The package id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// The signer's key id.
    pub signer_key_id: String,
    /// The trusted key file it was verified with.
    pub signer_key_file: PathBuf,
    /// Number of variants.
    pub variants: usize,
    /// Number of blobs.
    pub blobs: usize,
    /// The file's size in bytes.
    pub file_size: u64,
}

/// `pkgtool extract --json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Extract {
    /// The package file.
    pub package: PathBuf,
    /// Always true: nothing is extracted from a package that fails verification.
    pub verified: bool,
    /// The package id.
    pub id: String,
    /// The target directory.
    pub dir: PathBuf,
    /// The signer's key id.
    pub signer_key_id: String,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Variants extracted.
    pub variants: usize,
    /// Bytes before the archive (an installer stub), 0 for a plain package.
    pub stub_size: u64,
}

/// One binary `pkgtool filever` read.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FileverEntry {
    /// The file.
    pub file: PathBuf,
    /// What it says about itself.
    pub info: filever::FileVersionInfo,
}

/// `pkgtool filever --json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Filever {
    /// Every file, in the order given.
    pub files: Vec<FileverEntry>,
}

/// `pkgtool generate-docs --json`: the files written, by kind.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GeneratedDocs {
    /// The man pages written.
    pub man: Vec<PathBuf>,
    /// The completion scripts written.
    pub completions: Vec<PathBuf>,
}

/// The JSON Schema of every command's `--json` output, by file name (without
/// `.schema.json`): `usage` is the output of `--help`, `--version` and a command line that
/// does not parse.
pub fn schemas() -> Vec<(&'static str, String)> {
    #[cfg_attr(not(feature = "repo"), allow(unused_mut))]
    let mut out = vec![
        ("keygen", schema_text::<Keygen>("pkgtool keygen --json")),
        ("build", schema_text::<Build>("pkgtool build --json")),
        ("verify", schema_text::<Verify>("pkgtool verify --json")),
        ("inspect", schema_text::<Inspection<'static>>("pkgtool inspect --json")),
        ("extract", schema_text::<Extract>("pkgtool extract --json")),
        ("filever", schema_text::<Filever>("pkgtool filever --json")),
        ("generate-docs", schema_text::<GeneratedDocs>("pkgtool generate-docs --json")),
        ("usage", schema_text::<Message>("pkgtool --json --help, --version, or a command line that does not parse")),
    ];
    #[cfg(feature = "repo")]
    out.push(("repo", schema_text::<Repo>("pkgtool repo init|add|timestamp|rotate --json")));
    out
}

/// `pkgtool repo … --json`, by subcommand.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Repo {
    /// `repo init`.
    Init(RepoInit),
    /// `repo add`.
    Add(RepoAdd),
    /// `repo timestamp`.
    Timestamp(RepoTimestamp),
    /// `repo rotate`.
    Rotate(RepoRotate),
    /// `repo delegate`.
    Delegate(RepoDelegate),
    /// `repo rollout`.
    Rollout(RepoRollout),
}

/// `pkgtool repo delegate --json`.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RepoDelegate {
    /// The repository directory.
    pub repository: PathBuf,
    /// The delegated role.
    pub role: String,
    /// The only paths it is trusted for.
    pub paths: String,
}

/// `pkgtool repo rollout --json`.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RepoRollout {
    /// The repository directory.
    pub repository: PathBuf,
    /// The policy now signed.
    pub policy: hotfix_channel::rollout::Policy,
}

/// The key ids of a repository's four roles.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RoleKeyIds {
    /// The root role's (keep its key offline).
    pub root: String,
    /// The targets role's.
    pub targets: String,
    /// The snapshot role's.
    pub snapshot: String,
    /// The timestamp role's (the one online key).
    pub timestamp: String,
}

/// `pkgtool repo init --json`.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RepoInit {
    /// The repository directory.
    pub repository: PathBuf,
    /// The root metadata to pin on clients.
    pub root_json: PathBuf,
    /// The roles' key ids (the first root key's for `root`).
    pub key_ids: RoleKeyIds,
    /// Every root key id, in the order given.
    pub root_key_ids: Vec<String>,
    /// How many root keys must sign a later root.json.
    pub root_threshold: u64,
}

/// `pkgtool repo add --json`.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RepoAdd {
    /// The repository directory.
    pub repository: PathBuf,
    /// The target name the package was published as.
    pub target: String,
    /// The version of `targets.json` that lists it.
    pub targets_version: u64,
    /// What the signed targets metadata says of the package.
    pub metadata: hotfix_channel::meta::PackageMeta,
}

/// `pkgtool repo timestamp --json`.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RepoTimestamp {
    /// The repository directory.
    pub repository: PathBuf,
    /// The new `timestamp.json` version.
    pub version: u64,
    /// When it expires (RFC 3339).
    pub expires: String,
}

/// `pkgtool repo rotate --json`.
#[cfg(feature = "repo")]
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RepoRotate {
    /// The repository directory.
    pub repository: PathBuf,
    /// The rotated role.
    pub role: RotatedRole,
    /// The new root.json version (`metadata/<version>.root.json`).
    pub root_version: u64,
    /// The role's key ids in the new root, in the order given.
    pub key_ids: Vec<String>,
    /// How many of them must sign.
    pub threshold: u64,
    /// The files written, in the order they were put in place (the root last).
    pub written: Vec<PathBuf>,
    /// Whether the re-signed metadata is also accepted under the previous root (the rotated
    /// role's old keys signed it too); always true for a root rotation.
    pub accepted_by_previous_root: bool,
}

/// The role `repo rotate` rotated.
#[cfg(feature = "repo")]
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RotatedRole {
    /// root.json's signers.
    Root,
    /// targets.json's signers.
    Targets,
    /// snapshot.json's signers.
    Snapshot,
    /// timestamp.json's signers.
    Timestamp,
}

#[cfg(feature = "repo")]
impl From<hotfix_channel::rotate::Role> for RotatedRole {
    fn from(r: hotfix_channel::rotate::Role) -> RotatedRole {
        use hotfix_channel::rotate::Role;
        match r {
            Role::Root => RotatedRole::Root,
            Role::Targets => RotatedRole::Targets,
            Role::Snapshot => RotatedRole::Snapshot,
            Role::Timestamp => RotatedRole::Timestamp,
        }
    }
}
