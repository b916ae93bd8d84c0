//! ELF files: binaries linked here with `gcc` and GNU ld's `--package-metadata` (the FDO
//! `.note.package` note) — a GDR tag, a QFE tag, and one without a note — plus hand-made ELF32
//! and ELF64 files (notes found through sections and through `PT_NOTE` segments alone).
//! The gcc tests skip, with a message, when gcc or a linker with `--package-metadata` is absent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Note, elf_file};
use filever::{BinaryFormat, TagBranch};

const GDR_NOTE: &str = r#"{"type":"deb","name":"contoso-kernel","version":"5.2.3790.4354","fileVersion":"5.2.3790.4354 (srv03_sp2_gdr.080813-1204)"}"#;
const QFE_NOTE: &str = r#"{"type":"deb","name":"contoso-kernel","version":"5.2.3790.4355","fileVersion":"5.2.3790.4355 (srv03_sp2_qfe.080814-0101)"}"#;

/// Links `main.c` in `dir` into `name` with the extra linker arguments; `None` (with a printed
/// reason) when the toolchain cannot.
fn link(dir: &Path, name: &str, extra: &[String]) -> Option<PathBuf> {
    let source = dir.join("main.c");
    if std::fs::write(&source, "int main(void) { return 0; }\n").is_err() {
        println!("SKIP: cannot write {}", source.display());
        return None;
    }
    let out = dir.join(name);
    let result = Command::new("gcc").arg("-o").arg(&out).arg(&source).args(extra).output();
    match result {
        Ok(output) if output.status.success() => Some(out),
        Ok(output) => {
            println!(
                "SKIP: gcc {extra:?} failed (linker without --package-metadata?): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            None
        }
        Err(err) => {
            println!("SKIP: gcc not available: {err}");
            None
        }
    }
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("tempdir: {err}"),
    }
}

fn metadata(json: &str) -> Vec<String> {
    vec!["-Wl,--build-id=sha1".to_string(), "-Xlinker".to_string(), format!("--package-metadata={json}")]
}

#[test]
fn gcc_gdr_and_qfe_notes() {
    let dir = tempdir();
    let Some(gdr) = link(dir.path(), "kernel_gdr", &metadata(GDR_NOTE)) else { return };
    let Some(qfe) = link(dir.path(), "kernel_qfe", &metadata(QFE_NOTE)) else { return };
    for (path, note, version, tag, branch) in [
        (&gdr, GDR_NOTE, "5.2.3790.4354", "srv03_sp2_gdr.080813-1204", TagBranch::Gdr),
        (&qfe, QFE_NOTE, "5.2.3790.4355", "srv03_sp2_qfe.080814-0101", TagBranch::Ldr),
    ] {
        let info = match filever::read_path(path) {
            Ok(info) => info,
            Err(err) => panic!("{err}"),
        };
        assert!(matches!(info.format, BinaryFormat::Elf64 | BinaryFormat::Elf32));
        let expected: serde_json::Value = serde_json::from_str(note).unwrap_or_default();
        assert_eq!(info.elf_package_note.as_ref(), Some(&expected));
        assert_eq!(info.file_version_string.as_deref(), Some(format!("{version} ({tag})").as_str()));
        let Some(found) = &info.tag else { panic!("no tag in {}", path.display()) };
        assert_eq!(found.raw, tag);
        assert_eq!(found.branch, branch);
        assert_eq!(found.baseline.as_deref(), Some("SP2"));
        let id = info.build_id.clone().unwrap_or_default();
        assert_eq!(id.len(), 40, "sha1 build id: {id:?}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(info.fixed.is_none() && info.string_tables.is_empty());
        assert!(info.problems.is_empty(), "{:?}", info.problems);
        let text = filever::render_text("kernel", &info);
        assert!(text.contains(&format!("  note fileVersion {version} ({tag})\n")), "{text}");
        assert!(text.contains(&format!("  build id        {id}\n")), "{text}");
    }
}

#[test]
fn gcc_without_note_or_build_id() {
    let dir = tempdir();
    let Some(plain) = link(dir.path(), "plain", &["-Wl,--build-id=none".to_string()]) else { return };
    let info = match filever::read_path(&plain) {
        Ok(info) => info,
        Err(err) => panic!("{err}"),
    };
    assert!(info.elf_package_note.is_none() && info.tag.is_none() && info.build_id.is_none());
    assert_eq!(info.problems, ["no package metadata note (.note.package)"]);
    let Some(with_id) = link(dir.path(), "with_id", &["-Wl,--build-id=md5".to_string()]) else { return };
    let info = filever::read_path(&with_id).ok();
    assert_eq!(info.and_then(|i| i.build_id).map(|id| id.len()), Some(32));
}

#[test]
fn gcc_note_found_without_section_headers() {
    let dir = tempdir();
    let Some(path) = link(dir.path(), "kernel", &metadata(GDR_NOTE)) else { return };
    let mut bytes = std::fs::read(&path).unwrap_or_default();
    // Drop the section headers (e_shoff, e_shnum, e_shstrndx of ELF64): only PT_NOTE is left.
    if bytes.get(4) != Some(&2) || bytes.len() < 64 {
        println!("SKIP: not an ELF64 file");
        return;
    }
    bytes.splice(40..48, [0; 8]);
    bytes.splice(60..64, [0; 4]);
    let info = filever::read_bytes(&bytes);
    assert_eq!(info.tag.map(|t| t.branch), Some(TagBranch::Gdr));
    assert!(info.build_id.is_some());
}

#[test]
fn hand_made_elf32_and_elf64() {
    let desc = format!("{GDR_NOTE}\0");
    let id = [0xde, 0xad, 0xbe, 0xef];
    for elf64 in [false, true] {
        for with_sections in [false, true] {
            let notes = [
                Note { owner: "GNU", kind: 1, desc: &[0; 16] },
                Note { owner: "GNU", kind: 3, desc: &id },
                Note { owner: "FDO", kind: 0xcafe_1a7e, desc: desc.as_bytes() },
            ];
            let info = filever::read_bytes(&elf_file(elf64, &notes, with_sections));
            let format = if elf64 { BinaryFormat::Elf64 } else { BinaryFormat::Elf32 };
            assert_eq!(info.format, format);
            assert_eq!(info.build_id.as_deref(), Some("deadbeef"));
            assert_eq!(info.tag.map(|t| t.branch_word), Some("gdr".to_string()));
            assert!(info.problems.is_empty(), "{:?}", info.problems);
        }
    }
}

#[test]
fn broken_package_notes_are_problems() {
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "is not JSON"),
        (b"[1,2]", "not a JSON object"),
        (br#"{"type":"deb"}"#, "no fileVersion"),
        (br#"{"fileVersion":5}"#, "fileVersion is not a string"),
        (b"{\"fileVersion\":\"1 (a_gdr)\"}\0junk", "bytes after its NUL"),
    ];
    for (desc, expected) in cases {
        let notes = [Note { owner: "FDO", kind: 0xcafe_1a7e, desc }];
        let info = filever::read_bytes(&elf_file(true, &notes, true));
        assert!(info.problems.iter().any(|p| p.contains(expected)), "{expected}: {:?}", info.problems);
    }
    // Another owner or type is not the package note.
    let notes = [Note { owner: "FDX", kind: 0xcafe_1a7e, desc: b"{}" }, Note { owner: "FDO", kind: 1, desc: b"{}" }];
    let info = filever::read_bytes(&elf_file(true, &notes, false));
    assert!(info.elf_package_note.is_none());
}
