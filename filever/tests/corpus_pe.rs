//! The real PE files of the shared corpus (`pe-branch-tags/`): exact fixed versions, strings,
//! branch tags, text and JSON output. Also hand-made PE32 / PE32+ files for what the corpus
//! lacks (PE32, named and multi-language version resources, no resources). Skips, with a
//! message, when the corpus is absent.

mod common;

use common::{ResName, corpus_pe_files, pe_file, rsrc_section, version_blob};
use filever::{BinaryFormat, FileVersionInfo, TagBranch};

fn read(name: &str) -> Option<FileVersionInfo> {
    let path = std::path::Path::new(common::CORPUS_PE).join(name);
    if !path.exists() {
        println!("SKIP: {} absent (shared corpus not beside the repository)", path.display());
        return None;
    }
    match filever::read_path(&path) {
        Ok(info) => Some(info),
        Err(err) => panic!("{err}"),
    }
}

fn strings(version: &str, file_version: &str) -> Vec<(String, String)> {
    [
        ("CompanyName", "Test Corp"),
        ("FileDescription", "Hotfix test DLL"),
        ("FileVersion", file_version),
        ("InternalName", "testdll"),
        ("OriginalFilename", "testdll.dll"),
        ("ProductName", "Test OS"),
        ("ProductVersion", version),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn check_file(name: &str, file_version: &str, tag_text: &str, branch: TagBranch, word: &str, file_type: u32) {
    let Some(info) = read(name) else { return };
    assert_eq!(info.format, BinaryFormat::Pe64, "{name}");
    let Some(fixed) = &info.fixed else { panic!("{name}: no fixed info: {:?}", info.problems) };
    assert_eq!(fixed.file_version, file_version, "{name}");
    assert_eq!(fixed.product_version, "5.2.3790.4354", "{name}");
    assert_eq!(fixed.file_flags, 0, "{name}");
    assert_eq!(fixed.file_flags_mask, 0x3f, "{name}");
    assert!(fixed.file_flag_names.is_empty(), "{name}");
    assert_eq!(fixed.file_os, 0x0004_0004, "{name}");
    assert_eq!(fixed.file_os_name, "VOS_NT_WINDOWS32", "{name}");
    assert_eq!(fixed.file_type, file_type, "{name}");
    assert_eq!(fixed.file_subtype, 0, "{name}");
    let full = format!("{file_version} ({tag_text})");
    assert_eq!(info.string_tables.len(), 1, "{name}");
    let table = info.string_tables.first().map(|t| (t.lang_codepage.clone(), t.entries.clone()));
    assert_eq!(table, Some(("040904b0".to_string(), strings("5.2.3790.4354", &full))), "{name}");
    assert_eq!(info.translations, ["0409 04b0"], "{name}");
    assert_eq!(info.file_version_string.as_deref(), Some(full.as_str()), "{name}");
    let Some(tag) = &info.tag else { panic!("{name}: no tag") };
    assert_eq!(tag.raw, tag_text);
    assert_eq!(tag.lab, "srv03_sp2");
    assert_eq!(tag.baseline.as_deref(), Some("SP2"));
    assert_eq!(tag.branch, branch);
    assert_eq!(tag.branch_word, word);
    assert_eq!(tag.stamp.as_deref(), tag_text.split_once('.').map(|(_, s)| s));
    assert!(info.elf_package_note.is_none() && info.build_id.is_none());
    assert!(info.problems.is_empty(), "{name}: {:?}", info.problems);
}

#[test]
fn testdll_sp2_gdr() {
    check_file("testdll_sp2_gdr.dll", "5.2.3790.4354", "srv03_sp2_gdr.080813-1204", TagBranch::Gdr, "gdr", 2);
}

#[test]
fn testdll_sp2_qfe() {
    check_file("testdll_sp2_qfe.dll", "5.2.3790.4355", "srv03_sp2_qfe.080814-0101", TagBranch::Ldr, "qfe", 2);
}

#[test]
fn app_sp2_gdr() {
    check_file("app_sp2_gdr.exe", "5.2.3790.4354", "srv03_sp2_gdr.080813-1204", TagBranch::Gdr, "gdr", 1);
}

#[test]
fn read_bytes_equals_read_path() {
    let Some(files) = corpus_pe_files("read_bytes_equals_read_path") else { return };
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_eq!(filever::read_path(&path).ok(), Some(filever::read_bytes(&bytes)));
    }
}

#[test]
fn text_output() {
    let Some(info) = read("app_sp2_gdr.exe") else { return };
    let text = filever::render_text("app_sp2_gdr.exe", &info);
    let expected = "\
app_sp2_gdr.exe
  format          PE32+
  file version    5.2.3790.4354  (fixed)
  product version 5.2.3790.4354  (fixed)
  FileVersion     5.2.3790.4354 (srv03_sp2_gdr.080813-1204)
  branch tag      srv03_sp2_gdr.080813-1204: baseline SP2, branch GDR (gdr), build 080813-1204
  flags           none  (mask 0x3f)
  os              VOS_NT_WINDOWS32  (0x40004)
  type            VFT_APP  (0x1), subtype 0x0
  translations    0409 04b0
  [040904b0] CompanyName       Test Corp
  [040904b0] FileDescription   Hotfix test DLL
  [040904b0] FileVersion       5.2.3790.4354 (srv03_sp2_gdr.080813-1204)
  [040904b0] InternalName      testdll
  [040904b0] OriginalFilename  testdll.dll
  [040904b0] ProductName       Test OS
  [040904b0] ProductVersion    5.2.3790.4354
  problems: none
";
    assert_eq!(text, expected);
}

#[test]
fn json_output_is_snake_case_and_stable() {
    let Some(info) = read("testdll_sp2_qfe.dll") else { return };
    let json = serde_json::to_value(&info).unwrap_or_default();
    let keys: Vec<&str> = json.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    let mut expected = vec![
        "build_id",
        "elf_package_note",
        "file_version_string",
        "fixed",
        "format",
        "problems",
        "string_tables",
        "tag",
        "translations",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["format"], "pe64");
    assert_eq!(json["fixed"]["file_version"], "5.2.3790.4355");
    assert_eq!(json["fixed"]["file_os_name"], "VOS_NT_WINDOWS32");
    assert_eq!(json["tag"]["branch"], "ldr");
    assert_eq!(json["tag"]["branch_word"], "qfe");
    assert_eq!(json["tag"]["baseline"], "SP2");
    assert_eq!(json["string_tables"][0]["lang_codepage"], "040904b0");
    assert_eq!(json["string_tables"][0]["entries"][2][0], "FileVersion");
    assert_eq!(json["translations"][0], "0409 04b0");
}

// ---------------------------------------------------------------------------------------------
// Hand-made PE files: what the real corpus does not cover.

fn blob(version: [u16; 4], file_version: &str) -> Vec<u8> {
    version_blob(version, "040904b0", &[("FileVersion", file_version)])
}

#[test]
fn pe32_and_pe32_plus_by_hand() {
    for (pe64, format) in [(false, BinaryFormat::Pe32), (true, BinaryFormat::Pe64)] {
        let rsrc = rsrc_section(&[(
            ResName::Id(1),
            0x409,
            blob([6, 1, 7601, 17514], "6.1.7601.17514 (win7sp1_rtm.101119-1850)"),
        )]);
        let info = filever::read_bytes(&pe_file(pe64, &rsrc));
        assert_eq!(info.format, format);
        assert_eq!(info.fixed.as_ref().map(|f| f.file_version.as_str()), Some("6.1.7601.17514"));
        assert_eq!(info.tag.as_ref().map(|t| (t.baseline.as_deref(), t.branch)), Some((Some("SP1"), TagBranch::Gdr)));
        assert!(info.problems.is_empty(), "{:?}", info.problems);
    }
}

#[test]
fn named_and_non_english_version_resources_are_found() {
    let rsrc = rsrc_section(&[(
        ResName::Name("VERSION".to_string()),
        0x407,
        blob([1, 2, 3, 4], "1.2.3.4 (srv03_sp1_qfe.050301-1519)"),
    )]);
    let info = filever::read_bytes(&pe_file(false, &rsrc));
    assert_eq!(info.fixed.as_ref().map(|f| f.file_version.as_str()), Some("1.2.3.4"));
    assert_eq!(info.tag.as_ref().map(|t| t.branch), Some(TagBranch::Ldr));
    let rsrc = rsrc_section(&[(ResName::Id(7), 0, blob([1, 2, 3, 4], "1.2.3.4"))]);
    let info = filever::read_bytes(&pe_file(true, &rsrc));
    assert_eq!(info.file_version_string.as_deref(), Some("1.2.3.4"));
    assert!(info.problems.is_empty(), "{:?}", info.problems);
}

#[test]
fn several_version_resources_first_is_used_and_rest_reported() {
    let rsrc = rsrc_section(&[
        (ResName::Id(1), 0x409, blob([1, 0, 0, 1], "1.0.0.1")),
        (ResName::Id(2), 0x409, blob([2, 0, 0, 2], "2.0.0.2")),
    ]);
    let info = filever::read_bytes(&pe_file(false, &rsrc));
    assert_eq!(info.fixed.as_ref().map(|f| f.file_version.as_str()), Some("1.0.0.1"));
    assert!(info.problems.iter().any(|p| p.contains("1 more version resource")), "{:?}", info.problems);
    // A broken first one is skipped for a good second one.
    let rsrc =
        rsrc_section(&[(ResName::Id(1), 0x409, vec![0; 8]), (ResName::Id(2), 0x409, blob([2, 0, 0, 2], "2.0.0.2"))]);
    let info = filever::read_bytes(&pe_file(false, &rsrc));
    assert_eq!(info.fixed.as_ref().map(|f| f.file_version.as_str()), Some("2.0.0.2"));
    assert!(!info.problems.is_empty());
}

#[test]
fn no_version_resource_and_mismatches_are_problems_not_errors() {
    let info = filever::read_bytes(&pe_file(false, &rsrc_section(&[])));
    assert_eq!(info.format, BinaryFormat::Pe32);
    assert_eq!(info.problems, ["no version resource"]);
    assert!(info.fixed.is_none() && info.string_tables.is_empty() && info.tag.is_none());

    let rsrc = rsrc_section(&[(ResName::Id(1), 0x409, blob([5, 1, 2600, 2180], "5.01.2600.2180"))]);
    let info = filever::read_bytes(&pe_file(false, &rsrc));
    assert_eq!(info.problems, ["fixed version 5.1.2600.2180 differs from string 5.01.2600.2180"]);

    let rsrc =
        rsrc_section(&[(ResName::Id(1), 0x409, version_blob([1, 0, 0, 0], "040904b0", &[("ProductName", "x")]))]);
    let info = filever::read_bytes(&pe_file(false, &rsrc));
    assert_eq!(info.problems, ["no FileVersion string"]);

    let rsrc =
        rsrc_section(&[(ResName::Id(1), 0x409, version_blob([1, 0, 0, 0], "040704e4", &[("FileVersion", "1.0.0.0")]))]);
    let mut pe = pe_file(false, &rsrc);
    // Point the translation at a language without a table: 0409 instead of 0407.
    if let Some(at) = pe.windows(4).rposition(|w| w == [0x07, 0x04, 0xe4, 0x04]) {
        pe[at] = 0x09;
    }
    let info = filever::read_bytes(&pe);
    assert_eq!(info.problems, ["Translation 0409 04e4 has no string table"]);
}

#[test]
fn not_a_binary_is_not_an_error() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("{err}"),
    };
    let path = dir.path().join("readme.txt");
    std::fs::write(&path, "hello").unwrap_or_default();
    let info = filever::read_path(&path).ok();
    assert_eq!(info.as_ref().map(|i| i.format), Some(BinaryFormat::Unknown));
    assert_eq!(info.map(|i| i.problems), Some(vec!["not a PE or ELF file".to_string()]));
    let missing = filever::read_path(&dir.path().join("missing.dll"));
    assert!(matches!(missing, Err(filever::Error::Io { .. })));
}

#[test]
fn language_choice_neutral_then_en_us_then_english_then_first() {
    let res = |lang: u16, text: &str| (ResName::Id(1), lang, blob([1, 0, 0, 0], text));
    let pick = |resources: &[(ResName, u16, Vec<u8>)]| {
        let info = filever::read_bytes(&pe_file(true, &rsrc_section(resources)));
        assert!(info.problems.iter().all(|p| p.starts_with("fixed version")), "{:?}", info.problems);
        info.file_version_string.unwrap_or_default()
    };
    assert_eq!(pick(&[res(0x407, "de"), res(0x409, "en-us"), res(0, "neutral")]), "neutral");
    assert_eq!(pick(&[res(0x407, "de"), res(0x809, "en-gb"), res(0x409, "en-us")]), "en-us");
    assert_eq!(pick(&[res(0x407, "de"), res(0x809, "en-gb")]), "en-gb");
    assert_eq!(pick(&[res(0x40c, "fr"), res(0x407, "de")]), "fr");
}
