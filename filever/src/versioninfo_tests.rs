//! Unit tests of the `VS_VERSIONINFO` parser with hand-made blobs: well-formed ones, and
//! malicious ones (zero lengths, lengths beyond the buffer, deep nesting, odd alignment,
//! missing terminators), plus random bytes and mutations.

use super::*;
use proptest::prelude::*;

fn utf16z(text: &str) -> Vec<u8> {
    text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

fn pad4(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

/// A block placed at a 4-aligned offset: header, key, padding, value, children.
fn block(key: &str, value_length: u16, kind: u16, value: &[u8], children: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    out.extend(utf16z(key));
    pad4(&mut out);
    out.extend_from_slice(value);
    for child in children {
        pad4(&mut out);
        out.extend_from_slice(child);
    }
    let length = u16::try_from(out.len()).unwrap_or(u16::MAX).to_le_bytes();
    out.splice(0..2, length);
    out.splice(2..4, value_length.to_le_bytes());
    out.splice(4..6, kind.to_le_bytes());
    out
}

fn string(key: &str, value: &str) -> Vec<u8> {
    let chars = value.encode_utf16().count() + 1;
    block(key, chars as u16, 1, &utf16z(value), &[])
}

fn fixed(ms: u32, ls: u32, flags: u32) -> Vec<u8> {
    let fields = [0xFEEF_04BD, 0x0001_0000, ms, ls, ms, ls, 0x3f, flags, 0x0004_0004, 2, 0, 0, 0];
    fields.iter().flat_map(|f: &u32| f.to_le_bytes()).collect()
}

fn good_blob() -> Vec<u8> {
    let table_en = block(
        "040904B0",
        0,
        1,
        &[],
        &[
            string("CompanyName", "Test Corp"),
            string("FileVersion", "5.2.3790.4354 (srv03_sp2_gdr.080813-1204)"),
            string("Odd", "x"),
            string("Empty", ""),
        ],
    );
    let table_de = block("040704b0", 0, 1, &[], &[string("FileVersion", "5.2.3790.4354 (deutsch)")]);
    let sfi = block("StringFileInfo", 0, 1, &[], &[table_en, table_de]);
    let translation = block("Translation", 8, 0, &[0x09, 0x04, 0xb0, 0x04, 0x07, 0x04, 0xb0, 0x04], &[]);
    let vfi = block("VarFileInfo", 0, 1, &[], &[translation]);
    block("VS_VERSION_INFO", 52, 0, &fixed(0x0005_0002, 0x0ECE_1102, 0x21), &[sfi, vfi])
}

fn entries(res: &VersionResource, table: usize) -> Vec<(String, String)> {
    res.string_tables.get(table).map(|t| t.entries.clone()).unwrap_or_default()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn set_u16(blob: &mut [u8], at: usize, value: u16) {
    if let Some(slot) = blob.get_mut(at..at + 2) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

/// Offset of the block whose key is `key` (searching for the UTF-16 key, minus the header).
fn offset_of(blob: &[u8], key: &str) -> usize {
    let needle = utf16z(key);
    let at = blob.windows(needle.len()).position(|w| w == needle.as_slice());
    at.map(|at| at - 6).unwrap_or_else(|| panic!("{key} not in blob"))
}

#[test]
fn well_formed_blob() {
    let res = parse(&good_blob());
    assert!(res.valid);
    assert!(res.problems.is_empty(), "{:?}", res.problems);
    let fixed = res.fixed.as_ref().map(|f| (f.file_version.clone(), f.file_flag_names.clone()));
    assert_eq!(fixed, Some(("5.2.3790.4354".to_string(), vec!["DEBUG".to_string(), "SPECIALBUILD".to_string()])));
    assert_eq!(res.string_tables.len(), 2);
    assert_eq!(res.string_tables.first().map(|t| t.lang_codepage.as_str()), Some("040904b0"));
    assert_eq!(
        entries(&res, 0),
        pairs(&[
            ("CompanyName", "Test Corp"),
            ("FileVersion", "5.2.3790.4354 (srv03_sp2_gdr.080813-1204)"),
            ("Odd", "x"),
            ("Empty", ""),
        ])
    );
    assert_eq!(entries(&res, 1), pairs(&[("FileVersion", "5.2.3790.4354 (deutsch)")]));
    assert_eq!(res.translations, ["0409 04b0", "0407 04b0"]);
}

#[test]
fn zero_length_child_ends_its_level() {
    let mut blob = good_blob();
    let at = offset_of(&blob, "Odd");
    set_u16(&mut blob, at, 0);
    let res = parse(&blob);
    assert!(res.problems.iter().any(|p| p.contains("length 0")), "{:?}", res.problems);
    // Entries before the broken one are kept, the next table and VarFileInfo still read.
    assert_eq!(entries(&res, 0).len(), 2);
    assert_eq!(res.string_tables.len(), 2);
    assert_eq!(res.translations.len(), 2);
}

#[test]
fn zero_length_root() {
    let mut blob = good_blob();
    set_u16(&mut blob, 0, 0);
    let res = parse(&blob);
    assert!(!res.valid);
    assert!(res.problems.iter().any(|p| p.contains("length 0")), "{:?}", res.problems);
}

#[test]
fn lengths_shorter_than_a_header() {
    for length in 1..6 {
        let mut blob = good_blob();
        let at = offset_of(&blob, "CompanyName");
        set_u16(&mut blob, at, length);
        let res = parse(&blob);
        assert!(res.problems.iter().any(|p| p.contains("shorter than its header")), "{:?}", res.problems);
        assert!(entries(&res, 0).is_empty());
    }
}

#[test]
fn root_longer_than_buffer_is_read_as_far_as_it_goes() {
    let mut blob = good_blob();
    let at = offset_of(&blob, "040704b0");
    blob.truncate(at + 40);
    let res = parse(&blob);
    assert!(res.valid);
    assert!(res.problems.iter().any(|p| p.contains("past the end")), "{:?}", res.problems);
    assert_eq!(entries(&res, 0).len(), 4);
    assert!(res.translations.is_empty());
}

#[test]
fn child_overflowing_parent_is_clipped_and_ends_level() {
    let mut blob = good_blob();
    let at = offset_of(&blob, "FileVersion");
    set_u16(&mut blob, at, 0xfff0);
    let res = parse(&blob);
    assert!(res.problems.iter().any(|p| p.contains("past the end of its parent")), "{:?}", res.problems);
    let first = entries(&res, 0);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first.get(1).map(|(k, _)| k.as_str()), Some("FileVersion"), "the clipped entry is still read");
}

#[test]
fn huge_value_lengths_stay_inside_the_block() {
    let mut blob = good_blob();
    for key in ["CompanyName", "Translation", "StringFileInfo", "040904B0"] {
        let at = offset_of(&blob, key);
        set_u16(&mut blob, at + 2, 0xffff);
    }
    let res = parse(&blob);
    assert_eq!(entries(&res, 0).first().map(|(_, v)| v.as_str()), Some("Test Corp"));
    assert!(!res.translations.is_empty());
    // The fixed info with a huge value length swallows the children, reported, not a panic.
    let mut blob = good_blob();
    set_u16(&mut blob, 2, 0xffff);
    let res = parse(&blob);
    assert!(res.fixed.is_some());
}

#[test]
fn value_without_terminator_and_byte_counted_value_lengths() {
    // No NUL: the value runs to the end of the block.
    let no_nul: Vec<u8> = "abc".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let s1 = block("K1", 3, 1, &no_nul, &[]);
    // wValueLength in bytes (twice the characters): stops at the NUL.
    let s2 = block("K2", 8, 1, &utf16z("xyz"), &[]);
    // wValueLength 0: empty value.
    let s3 = block("K3", 0, 1, &utf16z("ignored"), &[]);
    // Odd-length value area.
    let mut odd = utf16z("ab");
    odd.push(0x41);
    let s4 = block("K4", 10, 1, &odd, &[]);
    let table = block("000004e4", 0, 1, &[], &[s1, s2, s3, s4]);
    let sfi = block("StringFileInfo", 0, 1, &[], &[table]);
    let res = parse(&block("VS_VERSION_INFO", 0, 0, &[], &[sfi]));
    assert_eq!(entries(&res, 0), pairs(&[("K1", "abc"), ("K2", "xyz"), ("K3", ""), ("K4", "ab")]));
    assert!(res.problems.iter().any(|p| p == "no VS_FIXEDFILEINFO"));
}

#[test]
fn odd_key_lengths_and_unknown_blocks() {
    let s = string("A", "1");
    let s2 = string("BB", "22");
    let s3 = string("CCC", "333");
    let table = block("x", 0, 1, &[], &[s, s2, s3]);
    let sfi = block("StringFileInfo", 0, 1, &[], &[table]);
    let other = block("Something", 0, 1, &[], &[string("Q", "q")]);
    let var = block("Other", 4, 0, &[1, 2, 3, 4], &[]);
    let vfi = block("VarFileInfo", 0, 1, &[], &[var]);
    let res = parse(&block("VS_VERSION_INFO", 52, 0, &fixed(1, 2, 0), &[other, sfi, vfi]));
    assert_eq!(entries(&res, 0), pairs(&[("A", "1"), ("BB", "22"), ("CCC", "333")]));
    assert_eq!(res.string_tables.first().map(|t| t.lang_codepage.as_str()), Some("x"));
    assert!(res.problems.iter().any(|p| p.contains("unknown block \"Something\"")));
    assert!(res.problems.iter().any(|p| p.contains("unknown Var \"Other\"")));
}

#[test]
fn key_without_terminator() {
    let mut blob = vec![0u8; 6];
    blob.extend("VS_VERSION_INFO".encode_utf16().flat_map(u16::to_le_bytes));
    let length = blob.len() as u16;
    set_u16(&mut blob, 0, length);
    let res = parse(&blob);
    assert!(res.problems.iter().any(|p| p.contains("no terminator")), "{:?}", res.problems);
}

#[test]
fn bad_fixed_info() {
    let mut bad_signature = fixed(1, 2, 0);
    bad_signature[0] = 0;
    let res = parse(&block("VS_VERSION_INFO", 52, 0, &bad_signature, &[]));
    assert!(res.fixed.is_none());
    assert!(res.problems.iter().any(|p| p.contains("signature")));
    let res = parse(&block("VS_VERSION_INFO", 20, 0, &fixed(1, 2, 0)[..20], &[]));
    assert!(res.problems.iter().any(|p| p.contains("20 bytes")), "{:?}", res.problems);
}

#[test]
fn not_a_version_info() {
    let res = parse(&block("SOMETHING_ELSE", 0, 0, &[], &[]));
    assert!(!res.valid);
    for short in [&[][..], &[1][..], &[8, 0, 0, 0, 0][..]] {
        let res = parse(short);
        assert!(!res.valid);
        assert!(!res.problems.is_empty());
    }
}

#[test]
fn deep_nesting_is_not_descended() {
    let mut inner = string("FileVersion", "1.0");
    for _ in 0..1500 {
        inner = block("StringFileInfo", 0, 1, &[], &[inner]);
        if inner.len() > 60_000 {
            break;
        }
    }
    let res = parse(&block("VS_VERSION_INFO", 0, 0, &[], &[inner]));
    assert!(res.valid);
    // Level 3 holds a StringFileInfo where a String belongs: read as a (useless) entry.
    assert!(res.string_tables.len() <= 1);
}

#[test]
fn many_tiny_blocks() {
    let strings: Vec<Vec<u8>> = (0..2000).map(|_| block("", 0, 1, &[], &[])).collect();
    let table = block("040904b0", 0, 1, &[], &strings);
    let sfi = block("StringFileInfo", 0, 1, &[], &[table]);
    let res = parse(&block("VS_VERSION_INFO", 0, 0, &[], &[sfi]));
    assert_eq!(entries(&res, 0).len(), 2000);
}

#[test]
fn every_truncation_of_a_good_blob() {
    let blob = good_blob();
    for len in 0..blob.len() {
        let res = parse(blob.get(..len).unwrap_or_default());
        assert!(len < 40 || res.valid, "{len}");
    }
}

#[test]
fn stray_bytes_after_last_block() {
    let mut blob = good_blob();
    let length = blob.len();
    blob.extend_from_slice(&[1, 2, 3]);
    set_u16(&mut blob, 0, (length + 3) as u16);
    let res = parse(&blob);
    assert!(res.problems.iter().any(|p| p.contains("stray bytes")), "{:?}", res.problems);
    assert_eq!(res.translations.len(), 2);
}

#[test]
fn os_type_and_flag_names() {
    assert_eq!(os_name(0x0004_0004), "VOS_NT_WINDOWS32");
    assert_eq!(os_name(4), "VOS__WINDOWS32");
    assert_eq!(os_name(0x0004_0000), "VOS_NT");
    assert_eq!(os_name(0), "VOS_UNKNOWN");
    assert_eq!(os_name(0x0009_0000), "0x90000");
    assert_eq!(type_name(1), "VFT_APP");
    assert_eq!(type_name(99), "0x63");
    assert_eq!(subtype_name(3, 7).as_deref(), Some("VFT2_DRV_SYSTEM"));
    assert_eq!(subtype_name(4, 3).as_deref(), Some("VFT2_FONT_TRUETYPE"));
    assert_eq!(subtype_name(2, 7), None);
    assert_eq!(flag_names(0x0c), ["PATCHED", "PRIVATEBUILD"]);
    assert_eq!(flag_names(0x102), ["PRERELEASE", "0x100"]);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn random_blob_mutations_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut blob = good_blob();
        for (index, byte) in &edits {
            let at = index.index(blob.len());
            if let Some(slot) = blob.get_mut(at) {
                *slot = *byte;
            }
        }
        let len = cut.index(blob.len() + 1);
        let res = parse(blob.get(..len).unwrap_or_default());
        prop_assert!(res.string_tables.len() <= blob.len() / 6);
    }
}
