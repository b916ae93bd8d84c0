//! A larger real set: every PE file of Debian's `libwine` package (fetched and unpacked by
//! `tests/fetch-libwine.sh`; directory from `FILEVER_LIBWINE_DIR`). Each file must be read
//! without panic; a file carrying a `VS_VERSION_INFO` must report its fixed version and
//! `FileVersion` string, one without must say "no version resource". Skips, with a message,
//! when the files are absent.

mod common;

use filever::BinaryFormat;

/// Whether the `.rsrc` section (found with `object`, independently of filever) contains
/// `needle`. Searching only there keeps the test fast in debug builds.
fn rsrc_has(bytes: &[u8], needle: &[u8]) -> bool {
    use object::{Object, ObjectSection};
    let Ok(file) = object::File::parse(bytes) else { return false };
    let Some(data) = file.section_by_name(".rsrc").and_then(|s| s.data().ok()) else {
        return false;
    };
    data.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_libwine_pe_file_is_read() {
    let Some((dir, files)) = common::libwine_files("every_libwine_pe_file_is_read") else { return };
    let marker = common::utf16z("VS_VERSION_INFO");
    let marker = marker.get(..marker.len() - 2).unwrap_or_default().to_vec();
    let (mut with_version, mut without, mut mismatched) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => panic!("{}: {err}", path.display()),
        };
        let info = filever::read_bytes(&bytes);
        if !matches!(info.format, BinaryFormat::Pe32 | BinaryFormat::Pe64) {
            failures.push(format!("{name}: format {:?}, {:?}", info.format, info.problems));
            continue;
        }
        let _ = filever::render_text(&name, &info);
        if rsrc_has(&bytes, &marker) {
            with_version += 1;
            let Some(fixed) = &info.fixed else {
                failures.push(format!("{name}: has VS_VERSION_INFO but no fixed info: {:?}", info.problems));
                continue;
            };
            if info.file_version_string.is_none() || info.string_tables.is_empty() {
                failures.push(format!("{name}: no FileVersion string: {:?}", info.problems));
            }
            if fixed.file_version == "0.0.0.0" {
                failures.push(format!("{name}: fixed version 0.0.0.0"));
            }
            if info.problems.iter().any(|p| p.starts_with("fixed version")) {
                mismatched += 1;
            }
            let unexpected: Vec<&String> = info.problems.iter().filter(|p| !p.starts_with("fixed version")).collect();
            if !unexpected.is_empty() {
                failures.push(format!("{name}: unexpected problems {unexpected:?}"));
            }
        } else {
            without += 1;
            if info.problems != ["no version resource"] {
                failures.push(format!("{name}: expected only \"no version resource\": {:?}", info.problems));
            }
        }
        match name.as_str() {
            "user32.dll" => {
                assert_eq!(info.problems, ["fixed version 5.1.2600.2180 differs from string 5.01.2600.2180"])
            }
            "riched20.dll" => {
                assert_eq!(info.problems, ["fixed version 5.30.23.1215 differs from string 5,30,23,1215"])
            }
            _ => {}
        }
    }
    println!(
        "libwine: {} PE files read from {}: {with_version} with a version resource \
         ({mismatched} whose FileVersion string is written differently), {without} without",
        files.len(),
        dir.display()
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(with_version > 0);
}
