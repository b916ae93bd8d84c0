//! The manifest: the JSON document that describes a package (FORMAT.md §4).
//!
//! These types are the single source of the published JSON Schema
//! (`schema/manifest.schema.json`). Every struct denies unknown fields: a reader that meets
//! a field it does not know is reading a format it does not speak.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Name, NameError, RelPath, Version};

/// The manifest of one package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version; this crate reads and writes [`crate::FORMAT_VERSION`].
    pub format_version: u32,
    /// Who the package is and what it is for.
    pub package: PackageInfo,
    /// The tool and version that built the package, e.g. `pkgtool 0.1.0`.
    pub tool: String,
    /// Every baseline a variant is built for, sorted, without repeats.
    pub baselines: Vec<Name>,
    /// Every fix any variant contains, sorted, without repeats.
    pub fixes: Vec<Name>,
    /// The builds the package carries.
    pub variants: Vec<Variant>,
    /// The distinct file contents, each stored once as the entry `blobs/<sha256>`.
    pub blobs: Vec<Blob>,
}

/// The package's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// Unique package id, e.g. `KB4`.
    pub id: Name,
    /// What kind of package this is.
    pub kind: Kind,
    /// The product the package services.
    pub product: Name,
    /// A one-line title for people.
    pub title: String,
    /// Release or prerelease.
    pub channel: Channel,
    /// Baseline packages only: the baseline they establish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineDecl>,
}

/// A baseline's name and its order among baselines (RTM is 0, SP1 is 1, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineDecl {
    /// The baseline's name, e.g. `SP1`.
    pub name: Name,
    /// Its level: RTM 0, SP1 1, SP2 2, …
    pub level: u32,
}

/// Package kinds (DESIGN.md "Package kinds").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A new baseline (RTM or a service pack): one variant per component, no branch.
    Baseline,
    /// GDR and LDR variants of every component it covers.
    Update,
    /// LDR variants only.
    Hotfix,
}

impl Kind {
    /// The lowercase name used in specs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline",
            Kind::Update => "update",
            Kind::Hotfix => "hotfix",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Distribution channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// For general use.
    Release,
    /// Not for production; the runtime refuses it without `--allow-prerelease`.
    Prerelease,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Release => "release",
            Channel::Prerelease => "prerelease",
        })
    }
}

/// Servicing branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Branch {
    /// General distribution release: security and high-impact fixes only.
    Gdr,
    /// Limited distribution release (QFE): every fix.
    Ldr,
}

impl Branch {
    /// The lowercase name used in specs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Branch::Gdr => "gdr",
            Branch::Ldr => "ldr",
        }
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One build of one component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// The component this build is of.
    pub component: Name,
    /// The baseline this build is for.
    pub baseline: Name,
    /// The branch; absent in baseline packages, whose variants count on both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Branch>,
    /// The build's version.
    pub version: Version,
    /// Every fix the build contains (cumulative).
    pub fixes: Vec<Name>,
    /// Whether installing or removing this build needs a restart.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    /// The component's files, sorted by path.
    pub files: Vec<FileEntry>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One file of a variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Where the file goes, relative to the root.
    pub path: RelPath,
    /// Its size in bytes.
    pub size: u64,
    /// Its permission bits.
    pub mode: Mode,
    /// SHA-256 of its content; names the blob that holds it.
    pub sha256: Digest,
    /// What the file says about its own version, when it says anything: a PE file's
    /// `FileVersion` string or an ELF file's packaging-note `fileVersion`, e.g.
    /// `5.2.3790.4354 (srv03_sp2_gdr.080813-1204)`. At most 256 bytes, printable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_string: Option<String>,
}

/// One stored content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    /// SHA-256 of the decoded content.
    pub sha256: Digest,
    /// Size of the decoded content; caps decompression.
    pub size: u64,
    /// How the entry's bytes encode the content.
    pub encoding: Encoding,
    /// For `zstd-delta` and `bsdiff-zstd`: what the delta is against — the decoded content
    /// of an earlier blob (a pack's being its members' concatenation), or a member of an
    /// earlier pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Digest>,
    /// For a *pack*: the contents it holds, in order. A pack's decoded content is their
    /// concatenation; many small similar files compressed together share one context,
    /// as in a solid archive, while each stays addressable by its own hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

impl Blob {
    /// Whether this blob is a pack of several contents.
    pub fn is_pack(&self) -> bool {
        !self.members.is_empty()
    }

    /// The contents this blob holds, with their offsets in its decoded content: its
    /// members, or the blob itself.
    pub fn contents(&self) -> Vec<(Digest, u64, u64)> {
        if !self.is_pack() {
            return vec![(self.sha256, 0, self.size)];
        }
        let mut offset = 0u64;
        self.members
            .iter()
            .map(|m| {
                let at = offset;
                offset = offset.saturating_add(m.size);
                (m.sha256, at, m.size)
            })
            .collect()
    }
}

/// Where one content of a package is: which blob, and where in its decoded content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentLoc {
    /// Index of the blob in `Manifest::blobs`.
    pub blob: usize,
    /// Offset of the content in the blob's decoded content (0 unless the blob is a pack).
    pub offset: u64,
    /// Size of the content.
    pub size: u64,
}

impl Manifest {
    /// Every content of the package by its hash: each blob that is not a pack, and each
    /// member of a pack. On a valid manifest the hashes are unique; otherwise the first
    /// occurrence wins.
    pub fn content_index(&self) -> std::collections::HashMap<Digest, ContentLoc> {
        let mut index = std::collections::HashMap::new();
        for (blob, b) in self.blobs.iter().enumerate() {
            for (digest, offset, size) in b.contents() {
                index.entry(digest).or_insert(ContentLoc { blob, offset, size });
            }
        }
        index
    }
}

/// One content inside a pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// SHA-256 of the content.
    pub sha256: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// Blob encodings. Readers reject an encoding they do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// The entry is zip method 93, one Zstandard frame of the content.
    Zstd,
    /// The entry is zip method 93, one Zstandard frame of the content compressed with the
    /// decoded content of the `reference` blob as its prefix (`zstd --patch-from`).
    ZstdDelta,
    /// The entry is zip method 93 holding a bsdiff delta against the `reference` blob:
    /// two little-endian `u32` frame lengths, then three Zstandard frames — controls,
    /// byte-wise differences, extra bytes (FORMAT.md §4.4).
    BsdiffZstd,
    /// As `bsdiff-zstd`, but the differences are against the reference with its x86
    /// call, jump and RIP-relative operands pointed where the controls moved their
    /// targets (FORMAT.md §4.4).
    BsdiffX86Zstd,
    /// As `bsdiff-x86-zstd`, with the code addresses in the reference's ELF unwind tables,
    /// dynamic symbols and relocations pointed where the controls moved them too
    /// (FORMAT.md §4.4).
    BsdiffElfZstd,
    /// As `bsdiff-zstd`, the differences taken against the reference translated as x86-64
    /// ELF — every file of a reference pack on its own: branch, conditional-jump and
    /// RIP-relative operands of its executable segments (targets through their virtual
    /// addresses), the jump tables they name, the ELF tables of `bsdiff-elf-zstd`, and in
    /// fixed-address executables the absolute addresses in code and data; and the extra
    /// bytes compressed with the reference as their prefix (FORMAT.md §4.4).
    BsdiffElf2Zstd,
    /// As `bsdiff-elf2-zstd`, and each relative operand the translation reads (calls,
    /// jumps, conditional jumps, RIP-relative operands, FDE starts) is predicted, where an
    /// earlier one with the same target has been decoded, from how far that one said the
    /// target moved (FORMAT.md §4.4).
    BsdiffElf3Zstd,
    /// The entry is zip method 93: records of the gzip members stored inflated, then one
    /// Zstandard frame of the content with those members inflated; each is deflated again
    /// by zlib at its recorded level (FORMAT.md §4.4).
    ZstdGz,
    /// As `zstd-gz`, the frame compressed with the `reference` blob's content, its gzip
    /// members inflated, as its prefix.
    ZstdDeltaGz,
    /// As `zstd-gz`, with an `lzma` entry (zip method 14) in place of the frame.
    LzmaGz,
    /// As `zstd-gz`, with an `lzma-x86` entry (zip method 14) in place of the frame.
    LzmaX86Gz,
    /// As `zstd-gz`, with a `ppmd` entry (zip method 98) in place of the frame.
    PpmdGz,
    /// The entry is zip method 0, the content itself.
    Stored,
    /// The entry is zip method 14 (LZMA, with an end-of-stream marker) of the content.
    Lzma,
    /// The entry is zip method 14 of the content passed through the x86 branch filter
    /// (BCJ, as in `xz --x86`), which turns relative call and jump targets into absolute
    /// ones so that repeated calls to one function compress alike (FORMAT.md §4.4).
    LzmaX86,
    /// The entry is zip method 98 (PPMd version I, revision 1): a two-byte header of model
    /// order, memory and restoration method, then the range-coded content ending with an
    /// end marker. Prose and source text compress tighter under this context model than
    /// under LZMA, and faster (FORMAT.md §4.4).
    Ppmd,
}

impl Encoding {
    /// Whether the content is decoded against a reference blob.
    pub fn is_delta(self) -> bool {
        matches!(
            self,
            Encoding::ZstdDelta
                | Encoding::BsdiffZstd
                | Encoding::BsdiffX86Zstd
                | Encoding::BsdiffElfZstd
                | Encoding::BsdiffElf2Zstd
                | Encoding::BsdiffElf3Zstd
                | Encoding::ZstdDeltaGz
        )
    }
}

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::BadDigest(s.escape_debug().to_string());
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(chunk[0]);
            let lo = hex_val(chunk[1]);
            out[i] = (hi << 4) | lo;
        }
        Ok(Digest(out))
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        crate::text::hex(&self.0)
    }
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => b - b'a' + 10,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Digest {
    fn schema_name() -> Cow<'static, str> {
        "Sha256".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "SHA-256 digest as 64 lowercase hex digits.",
            "type": "string",
            "pattern": "^[0-9a-f]{64}$"
        })
    }
}

/// Unix permission bits of a file, at most `0777`, written as four octal digits (`"0755"`).
/// Set-id and sticky bits are not part of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode(u32);

impl Mode {
    /// The largest mode: `rwxrwxrwx`.
    pub const MAX: u32 = 0o777;

    /// Accepts permission bits up to `0777`.
    pub fn new(bits: u32) -> Result<Self, NameError> {
        if bits > Self::MAX {
            return Err(NameError::BadMode(format!("{bits:04o}")));
        }
        Ok(Mode(bits))
    }

    /// Keeps only the permission bits of a Unix `st_mode`.
    pub fn from_permissions(st_mode: u32) -> Self {
        Mode(st_mode & Self::MAX)
    }

    /// The permission bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let well_formed = s.len() == 4 && s.starts_with('0') && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
        let bits = if well_formed { u32::from_str_radix(&s, 8).ok() } else { None };
        bits.ok_or_else(|| NameError::BadMode(s.escape_debug().to_string()))
            .and_then(Mode::new)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Permission bits as four octal digits, at most 0777.",
            "type": "string",
            "pattern": "^0[0-7]{3}$"
        })
    }
}
