//! Parser for the `VS_VERSIONINFO` blob of an `RT_VERSION` resource.
//!
//! The blob is a tree of blocks, each `{wLength, wValueLength, wType, szKey (UTF-16, NUL),
//! padding to 4, Value, padding to 4, Children}`:
//!
//! ```text
//! VS_VERSIONINFO "VS_VERSION_INFO"  value: VS_FIXEDFILEINFO (52 bytes)
//! ├── StringFileInfo
//! │   └── StringTable "040904b0"      (one per language / code page)
//! │       └── String "FileVersion"   value: UTF-16 text, wValueLength in characters
//! └── VarFileInfo
//!     └── Var "Translation"          value: pairs of u16 (language, code page)
//! ```
//!
//! The nesting is fixed at four levels by construction (unknown blocks are skipped, never
//! descended into), every block is bounded by its parent and by the buffer, and each step moves
//! forward by at least one whole header, so parsing is linear in the blob's size. A length of 0,
//! one smaller than a header, or one that overflows the parent ends that level with a problem;
//! a block that overflows its parent is still read up to the parent's end ("print what is
//! there"). Alignment is relative to the start of the blob, as in the copy that
//! `GetFileVersionInfo` hands to `VerQueryValue`.

use crate::{FixedFileInfo, StringTable};

/// Size of the `wLength, wValueLength, wType` header.
const HEADER: usize = 6;
/// `VS_FIXEDFILEINFO.dwSignature`.
const FIXED_SIGNATURE: u32 = 0xFEEF_04BD;
/// Size of `VS_FIXEDFILEINFO`.
const FIXED_SIZE: usize = 52;

/// What a `VS_VERSIONINFO` blob holds.
#[derive(Debug, Default)]
pub(crate) struct VersionResource {
    /// False when the blob does not start with a `VS_VERSION_INFO` block.
    pub(crate) valid: bool,
    pub(crate) fixed: Option<FixedFileInfo>,
    pub(crate) string_tables: Vec<StringTable>,
    pub(crate) translations: Vec<String>,
    pub(crate) problems: Vec<String>,
}

/// One block's header and key; offsets are into the blob.
struct Block {
    start: usize,
    /// End of the block, clipped to its parent.
    end: usize,
    value_length: usize,
    key: String,
    value_start: usize,
    /// The declared length ran past the parent: the caller stops after this block.
    overflowed: bool,
}

fn align4(offset: usize) -> usize {
    offset.saturating_add(3) & !3
}

fn u16_at(buf: &[u8], pos: usize) -> Option<u16> {
    let bytes = buf.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]))
}

fn u32_at(buf: &[u8], pos: usize) -> Option<u32> {
    let bytes = buf.get(pos..pos.checked_add(4)?)?;
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    Some(u32::from_le_bytes(word))
}

/// UTF-16LE units of `buf[from..to]` up to the first NUL; also says whether a NUL was found and
/// the offset just after it (or `to`).
fn utf16_until_nul(buf: &[u8], from: usize, to: usize) -> (String, bool, usize) {
    let mut units = Vec::new();
    let mut pos = from;
    while pos.saturating_add(2) <= to {
        let Some(unit) = u16_at(buf, pos) else { break };
        pos += 2;
        if unit == 0 {
            return (String::from_utf16_lossy(&units), true, pos);
        }
        units.push(unit);
    }
    (String::from_utf16_lossy(&units), false, to)
}

/// A printable form of a key for problem messages.
fn shown(key: &str) -> String {
    let mut out: String = key.chars().take(40).flat_map(char::escape_debug).collect();
    if key.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Reads the block at `start`, which must end by `limit`. `None` ends the level (a problem is
/// recorded unless the rest is zero padding).
fn read_block(buf: &[u8], start: usize, limit: usize, what: &str, problems: &mut Vec<String>) -> Option<Block> {
    let limit = limit.min(buf.len());
    if start >= limit {
        return None;
    }
    if limit - start < HEADER {
        let rest = buf.get(start..limit).unwrap_or_default();
        if rest.iter().any(|&b| b != 0) {
            problems.push(format!("{} stray bytes at offset {start} after the last {what}", rest.len()));
        }
        return None;
    }
    let length = usize::from(u16_at(buf, start)?);
    let value_length = usize::from(u16_at(buf, start + 2)?);
    if length == 0 {
        problems.push(format!("{what} at offset {start} has length 0"));
        return None;
    }
    if length < HEADER {
        problems.push(format!("{what} at offset {start} has length {length}, shorter than its header"));
        return None;
    }
    let declared_end = start + length;
    let overflowed = declared_end > limit;
    if overflowed {
        problems.push(format!(
            "{what} at offset {start} has length {length}, past the end of its parent ({} bytes left)",
            limit - start
        ));
    }
    let end = declared_end.min(limit);
    let (key, terminated, after_key) = utf16_until_nul(buf, start + HEADER, end);
    if !terminated {
        problems.push(format!("{what} at offset {start}: key \"{}\" has no terminator", shown(&key)));
    }
    Some(Block { start, end, value_length, key, value_start: align4(after_key).min(end), overflowed })
}

/// Walks the children of `parent`, starting at `first`, calling `visit` for each.
fn for_each_child(
    buf: &[u8],
    first: usize,
    parent_end: usize,
    what: &str,
    problems: &mut Vec<String>,
    mut visit: impl FnMut(&Block, &mut Vec<String>),
) {
    let mut offset = align4(first);
    while offset < parent_end {
        let Some(block) = read_block(buf, offset, parent_end, what, problems) else {
            return;
        };
        visit(&block, problems);
        if block.overflowed {
            return;
        }
        // `read_block` guarantees `end >= start + HEADER`, so this always moves forward.
        offset = align4(block.end);
    }
}

/// Parses a `VS_VERSIONINFO` blob. Never panics; everything odd goes into `problems`.
pub(crate) fn parse(buf: &[u8]) -> VersionResource {
    let mut res = VersionResource::default();
    let Some(root) = read_block(buf, 0, buf.len(), "VS_VERSIONINFO", &mut res.problems) else {
        if buf.len() < HEADER {
            res.problems.push(format!("version resource is only {} bytes", buf.len()));
        }
        return res;
    };
    if root.key != "VS_VERSION_INFO" {
        res.problems.push(format!("version resource key is \"{}\", not VS_VERSION_INFO", shown(&root.key)));
        return res;
    }
    res.valid = true;
    let fixed_end = root.value_start.saturating_add(root.value_length);
    if root.value_length == 0 {
        res.problems.push("no VS_FIXEDFILEINFO".to_string());
    } else {
        let bytes = buf.get(root.value_start..fixed_end.min(root.end)).unwrap_or_default();
        match parse_fixed(bytes) {
            Ok(fixed) => res.fixed = Some(fixed),
            Err(problem) => res.problems.push(problem),
        }
        if fixed_end > root.end {
            res.problems
                .push(format!("VS_VERSIONINFO value length {} runs past the end of the block", root.value_length));
        }
    }
    let mut tables = Vec::new();
    let mut translations = Vec::new();
    for_each_child(buf, fixed_end, root.end, "block", &mut res.problems, |block, problems| match block.key.as_str() {
        "StringFileInfo" => parse_string_file_info(buf, block, &mut tables, problems),
        "VarFileInfo" => parse_var_file_info(buf, block, &mut translations, problems),
        other => problems.push(format!(
            "unknown block \"{}\" at offset {} in VS_VERSIONINFO skipped",
            shown(other),
            block.start
        )),
    });
    res.string_tables = tables;
    res.translations = translations;
    res
}

fn parse_string_file_info(buf: &[u8], sfi: &Block, tables: &mut Vec<StringTable>, problems: &mut Vec<String>) {
    if sfi.value_length != 0 {
        problems.push(format!("StringFileInfo has a value of length {}, ignored", sfi.value_length));
    }
    for_each_child(buf, sfi.value_start, sfi.end, "StringTable", problems, |table, problems| {
        let mut entries = Vec::new();
        for_each_child(buf, table.value_start, table.end, "String", problems, |string, _| {
            // wValueLength counts UTF-16 characters (usually with the NUL); read up to the first
            // NUL, never past the block.
            let value_end = string.value_start.saturating_add(string.value_length.saturating_mul(2)).min(string.end);
            let (value, _, _) = utf16_until_nul(buf, string.value_start, value_end);
            entries.push((string.key.clone(), value));
        });
        tables.push(StringTable { lang_codepage: normalise_lang_codepage(&table.key), entries });
    });
}

fn normalise_lang_codepage(key: &str) -> String {
    if key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        key.to_ascii_lowercase()
    } else {
        key.to_string()
    }
}

fn parse_var_file_info(buf: &[u8], vfi: &Block, translations: &mut Vec<String>, problems: &mut Vec<String>) {
    for_each_child(buf, vfi.value_start, vfi.end, "Var", problems, |var, problems| {
        if var.key != "Translation" {
            problems.push(format!("unknown Var \"{}\" at offset {} skipped", shown(&var.key), var.start));
            return;
        }
        // wValueLength counts bytes here: pairs of (language, code page).
        let value_end = var.value_start.saturating_add(var.value_length).min(var.end);
        let mut pos = var.value_start;
        while pos.saturating_add(4) <= value_end {
            if let (Some(lang), Some(codepage)) = (u16_at(buf, pos), u16_at(buf, pos + 2)) {
                translations.push(format!("{lang:04x} {codepage:04x}"));
            }
            pos += 4;
        }
        if !var.value_length.is_multiple_of(4) || var.value_start.saturating_add(var.value_length) > var.end {
            problems.push(format!(
                "Translation at offset {} has a value of {} bytes, not whole pairs inside the block",
                var.start, var.value_length
            ));
        }
    });
}

fn version_parts(ms: u32, ls: u32) -> [u16; 4] {
    let [a, b] = [(ms >> 16) as u16, ms as u16];
    let [c, d] = [(ls >> 16) as u16, ls as u16];
    [a, b, c, d]
}

/// `a.b.c.d`.
pub(crate) fn dotted(parts: [u16; 4]) -> String {
    let [a, b, c, d] = parts;
    format!("{a}.{b}.{c}.{d}")
}

fn parse_fixed(bytes: &[u8]) -> Result<FixedFileInfo, String> {
    if bytes.len() < FIXED_SIZE {
        return Err(format!("VS_FIXEDFILEINFO is {} bytes, expected {FIXED_SIZE}", bytes.len()));
    }
    let field = |index: usize| u32_at(bytes, index * 4).unwrap_or_default();
    let signature = field(0);
    if signature != FIXED_SIGNATURE {
        return Err(format!("VS_FIXEDFILEINFO signature is {signature:#010x}, expected {FIXED_SIGNATURE:#010x}"));
    }
    let file_version_parts = version_parts(field(2), field(3));
    let product_version_parts = version_parts(field(4), field(5));
    let file_flags = field(7);
    let file_type = field(9);
    let file_subtype = field(10);
    Ok(FixedFileInfo {
        file_version: dotted(file_version_parts),
        file_version_parts,
        product_version: dotted(product_version_parts),
        product_version_parts,
        file_flags_mask: field(6),
        file_flags,
        file_flag_names: flag_names(file_flags),
        file_os: field(8),
        file_os_name: os_name(field(8)),
        file_type,
        file_type_name: type_name(file_type),
        file_subtype,
        file_subtype_name: subtype_name(file_type, file_subtype),
        file_date: (u64::from(field(11)) << 32) | u64::from(field(12)),
    })
}

fn flag_names(flags: u32) -> Vec<String> {
    const NAMES: [(u32, &str); 6] = [
        (0x01, "DEBUG"),
        (0x02, "PRERELEASE"),
        (0x04, "PATCHED"),
        (0x08, "PRIVATEBUILD"),
        (0x10, "INFOINFERRED"),
        (0x20, "SPECIALBUILD"),
    ];
    let mut names: Vec<String> =
        NAMES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, name)| (*name).to_string()).collect();
    let unknown = flags & !0x3f;
    if unknown != 0 {
        names.push(format!("{unknown:#x}"));
    }
    names
}

fn os_name(os: u32) -> String {
    let high = match os & 0xffff_0000 {
        0 => None,
        0x0001_0000 => Some("DOS"),
        0x0002_0000 => Some("OS216"),
        0x0003_0000 => Some("OS232"),
        0x0004_0000 => Some("NT"),
        0x0005_0000 => Some("WINCE"),
        _ => return format!("{os:#x}"),
    };
    let low = match os & 0xffff {
        0 => None,
        1 => Some("WINDOWS16"),
        2 => Some("PM16"),
        3 => Some("PM32"),
        4 => Some("WINDOWS32"),
        _ => return format!("{os:#x}"),
    };
    match (high, low) {
        (None, None) => "VOS_UNKNOWN".to_string(),
        (Some(h), None) => format!("VOS_{h}"),
        (None, Some(l)) => format!("VOS__{l}"),
        (Some(h), Some(l)) => format!("VOS_{h}_{l}"),
    }
}

fn type_name(file_type: u32) -> String {
    match file_type {
        0 => "VFT_UNKNOWN".to_string(),
        1 => "VFT_APP".to_string(),
        2 => "VFT_DLL".to_string(),
        3 => "VFT_DRV".to_string(),
        4 => "VFT_FONT".to_string(),
        5 => "VFT_VXD".to_string(),
        7 => "VFT_STATIC_LIB".to_string(),
        other => format!("{other:#x}"),
    }
}

fn subtype_name(file_type: u32, subtype: u32) -> Option<String> {
    let name = match (file_type, subtype) {
        (3 | 4, 0) => "VFT2_UNKNOWN",
        (3, 1) => "VFT2_DRV_PRINTER",
        (3, 2) => "VFT2_DRV_KEYBOARD",
        (3, 3) => "VFT2_DRV_LANGUAGE",
        (3, 4) => "VFT2_DRV_DISPLAY",
        (3, 5) => "VFT2_DRV_MOUSE",
        (3, 6) => "VFT2_DRV_NETWORK",
        (3, 7) => "VFT2_DRV_SYSTEM",
        (3, 8) => "VFT2_DRV_INSTALLABLE",
        (3, 9) => "VFT2_DRV_SOUND",
        (3, 10) => "VFT2_DRV_COMM",
        (3, 11) => "VFT2_DRV_INPUTMETHOD",
        (3, 12) => "VFT2_DRV_VERSIONED_PRINTER",
        (4, 1) => "VFT2_FONT_RASTER",
        (4, 2) => "VFT2_FONT_VECTOR",
        (4, 3) => "VFT2_FONT_TRUETYPE",
        _ => return None,
    };
    Some(name.to_string())
}

#[cfg(test)]
#[path = "versioninfo_tests.rs"]
mod tests;
