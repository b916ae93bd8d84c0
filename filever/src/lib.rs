//! Reads version resources and branch tags from PE and ELF binaries.
//!
//! This is what `pkgtool filever` (and the packager's branch check) use to answer "which build
//! is this file?": for a PE file the `RT_VERSION` resource (`VS_FIXEDFILEINFO`, every
//! `StringFileInfo` table, `VarFileInfo\Translation`), for an ELF file the FDO
//! packaging-metadata note (`.note.package`) and the GNU build id. The branch tag in the
//! `FileVersion` string — `5.2.3790.4354 (srv03_sp2_gdr.080813-1204)` — says which baseline and
//! which branch (GDR or LDR) a build belongs to; [`parse_branch_tag`] decodes it.
//!
//! Parsing is total: [`read_bytes`] never fails and never panics on any input; whatever is
//! missing or malformed is described in [`FileVersionInfo::problems`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod elf;
mod pe;
mod render;
mod tag;
mod versioninfo;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

pub use render::render_text;
pub use tag::parse_branch_tag;

/// Errors of [`read_path`]: only the file itself could not be read.
///
/// A file that is not a PE or ELF binary, or whose version information is missing or broken, is
/// not an error: it is reported in [`FileVersionInfo::problems`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// The kind of binary a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BinaryFormat {
    /// A 32-bit PE file (optional header magic 0x10b).
    Pe32,
    /// A 64-bit PE file, PE32+ (optional header magic 0x20b).
    Pe64,
    /// A 32-bit ELF file.
    Elf32,
    /// A 64-bit ELF file.
    Elf64,
    /// Neither a PE nor an ELF file, or one whose headers could not be read.
    Unknown,
}

impl BinaryFormat {
    /// The name `filever` prints: `PE32`, `PE32+`, `ELF32`, `ELF64` or `unknown`.
    pub fn display_name(self) -> &'static str {
        match self {
            BinaryFormat::Pe32 => "PE32",
            BinaryFormat::Pe64 => "PE32+",
            BinaryFormat::Elf32 => "ELF32",
            BinaryFormat::Elf64 => "ELF64",
            BinaryFormat::Unknown => "unknown",
        }
    }
}

/// The binary part of a version resource, `VS_FIXEDFILEINFO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FixedFileInfo {
    /// `dwFileVersionMS`/`LS` as `a.b.c.d`.
    pub file_version: String,
    /// The four parts of the file version.
    pub file_version_parts: [u16; 4],
    /// `dwProductVersionMS`/`LS` as `a.b.c.d`.
    pub product_version: String,
    /// The four parts of the product version.
    pub product_version_parts: [u16; 4],
    /// `dwFileFlagsMask`: which bits of `file_flags` are meaningful.
    pub file_flags_mask: u32,
    /// `dwFileFlags` as stored.
    pub file_flags: u32,
    /// The names of the bits set in `file_flags` (`DEBUG`, `PRERELEASE`, `PATCHED`,
    /// `PRIVATEBUILD`, `INFOINFERRED`, `SPECIALBUILD`; unknown bits as hex).
    pub file_flag_names: Vec<String>,
    /// `dwFileOS`.
    pub file_os: u32,
    /// `dwFileOS` decoded, e.g. `VOS_NT_WINDOWS32`.
    pub file_os_name: String,
    /// `dwFileType`.
    pub file_type: u32,
    /// `dwFileType` decoded, e.g. `VFT_DLL`.
    pub file_type_name: String,
    /// `dwFileSubtype`.
    pub file_subtype: u32,
    /// `dwFileSubtype` decoded for drivers and fonts, e.g. `VFT2_DRV_SYSTEM`.
    pub file_subtype_name: Option<String>,
    /// `dwFileDateMS` << 32 | `dwFileDateLS` (almost always 0).
    pub file_date: u64,
}

/// One `StringTable` of `StringFileInfo`: the strings for one language and code page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct StringTable {
    /// The table's key: language and code page as eight hex digits, lowercased (`040904b0`);
    /// a key that is not eight hex digits is kept as written.
    pub lang_codepage: String,
    /// The `String` entries, `(key, value)`, in file order (duplicates kept).
    pub entries: Vec<(String, String)>,
}

impl StringTable {
    /// The value of the first entry named `key` (exact, case-sensitive match).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Which servicing branch a build belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TagBranch {
    /// General distribution release: `gdr`, and `rtm` (a release build counts as GDR).
    Gdr,
    /// Limited distribution release: `qfe` or `ldr`.
    Ldr,
}

impl TagBranch {
    /// `GDR` or `LDR`.
    pub fn as_str(self) -> &'static str {
        match self {
            TagBranch::Gdr => "GDR",
            TagBranch::Ldr => "LDR",
        }
    }
}

/// A build lab / branch tag such as `srv03_sp2_gdr.080813-1204`, decoded by [`parse_branch_tag`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub struct BranchTag {
    /// The tag as written inside the parentheses.
    pub raw: String,
    /// The build lab: the part before the branch word (`srv03_sp2`).
    pub lab: String,
    /// The baseline the lab names, uppercased (`SP2`, `SP1`, `RTM`), if it names one.
    pub baseline: Option<String>,
    /// GDR or LDR.
    pub branch: TagBranch,
    /// The branch word as written: `gdr`, `qfe`, `ldr` or `rtm` (case kept).
    pub branch_word: String,
    /// The build stamp after the first `.` (`080813-1204`), if any.
    pub stamp: Option<String>,
}

/// Everything a binary says about its own version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileVersionInfo {
    /// What kind of binary this is.
    pub format: BinaryFormat,
    /// `VS_FIXEDFILEINFO`, if the file has a version resource with one.
    pub fixed: Option<FixedFileInfo>,
    /// Every `StringFileInfo` table, all languages, in file order.
    pub string_tables: Vec<StringTable>,
    /// `VarFileInfo\Translation` pairs as `0409 04b0`.
    pub translations: Vec<String>,
    /// `FileVersion` from the first string table that has it (PE), or the FDO note's
    /// `fileVersion` (ELF).
    pub file_version_string: Option<String>,
    /// The branch tag in `file_version_string`, if it has a recognisable one.
    pub tag: Option<BranchTag>,
    /// The ELF FDO packaging-metadata note (owner `FDO`, type 0xcafe1a7e), a JSON object.
    pub elf_package_note: Option<serde_json::Value>,
    /// The ELF GNU build id (`NT_GNU_BUILD_ID`), lowercase hex.
    pub build_id: Option<String>,
    /// What is missing or malformed, e.g. `no version resource`. Reported, never fatal.
    pub problems: Vec<String>,
}

impl FileVersionInfo {
    fn empty(format: BinaryFormat) -> Self {
        FileVersionInfo {
            format,
            fixed: None,
            string_tables: Vec::new(),
            translations: Vec::new(),
            file_version_string: None,
            tag: None,
            elf_package_note: None,
            build_id: None,
            problems: Vec::new(),
        }
    }
}

/// At most this many problems are reported for one file (a hostile file can have thousands).
const MAX_PROBLEMS: usize = 64;

/// Reads a file and describes its version information (see [`read_bytes`]).
///
/// Fails only when the file cannot be read; a file that is not a PE or ELF binary gives
/// [`BinaryFormat::Unknown`] with a problem saying so.
pub fn read_path(path: &Path) -> Result<FileVersionInfo, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(read_bytes(&data))
}

/// Describes the version information in the bytes of a PE or ELF file.
///
/// Never fails and never panics: what is missing or broken goes into
/// [`FileVersionInfo::problems`].
pub fn read_bytes(data: &[u8]) -> FileVersionInfo {
    let mut info = if data.starts_with(b"MZ") {
        pe::read(data)
    } else if data.starts_with(b"\x7fELF") {
        elf::read(data)
    } else {
        let mut info = FileVersionInfo::empty(BinaryFormat::Unknown);
        info.problems.push("not a PE or ELF file".to_string());
        info
    };
    if info.problems.len() > MAX_PROBLEMS {
        let more = info.problems.len() - MAX_PROBLEMS;
        info.problems.truncate(MAX_PROBLEMS);
        info.problems.push(format!("... and {more} more problems"));
    }
    info
}
