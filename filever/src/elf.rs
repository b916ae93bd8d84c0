//! ELF files: the FDO packaging-metadata note and the GNU build id.
//!
//! The FDO note (owner `FDO`, type 0xcafe1a7e, usually in section `.note.package`, which GNU ld
//! writes for `--package-metadata=JSON`) carries a JSON object such as
//! `{"type":"deb","name":"contoso-kernel","version":"5.2.3790.4354","fileVersion":"5.2.3790.4354
//! (srv03_sp2_gdr.080813-1204)"}`; its `fileVersion` carries the same branch tag as a PE
//! `FileVersion` string. Notes are looked for in every `SHT_NOTE` section and every `PT_NOTE`
//! segment (so stripped section headers do not hide them), with a budget on the number of notes
//! visited.

use object::Endianness;
use object::elf::{ELF_NOTE_GNU, NT_GNU_BUILD_ID};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader, SectionHeader};

use crate::{BinaryFormat, FileVersionInfo};

/// Owner name of the packaging-metadata note.
const FDO_OWNER: &[u8] = b"FDO";
/// `NT_FDO_PACKAGING_METADATA`.
const FDO_PACKAGING_METADATA: object::elf::NoteType = object::elf::NoteType(0xcafe_1a7e);
/// At most this many notes are looked at in one file.
const MAX_NOTES: usize = 100_000;

/// Reads a file that starts with `\x7fELF`.
pub(crate) fn read(data: &[u8]) -> FileVersionInfo {
    match data.get(4) {
        Some(1) => read_as::<object::elf::FileHeader32<Endianness>>(data, BinaryFormat::Elf32),
        Some(2) => read_as::<object::elf::FileHeader64<Endianness>>(data, BinaryFormat::Elf64),
        _ => {
            let mut info = FileVersionInfo::empty(BinaryFormat::Unknown);
            info.problems.push("ELF file of unknown class".to_string());
            info
        }
    }
}

/// What the notes of a file said.
#[derive(Default)]
struct Found {
    package: Option<Vec<u8>>,
    build_id: Option<Vec<u8>>,
    visited: usize,
}

impl Found {
    fn done(&self) -> bool {
        (self.package.is_some() && self.build_id.is_some()) || self.visited >= MAX_NOTES
    }

    fn scan<Elf: FileHeader>(&mut self, notes: NoteIterator<'_, Elf>, endian: Elf::Endian, problems: &mut Vec<String>) {
        for note in notes {
            if self.done() {
                return;
            }
            self.visited += 1;
            let note = match note {
                Ok(note) => note,
                Err(err) => {
                    problems.push(format!("ELF note: {err}"));
                    return;
                }
            };
            let kind = note.n_type(endian);
            if note.name() == FDO_OWNER && kind == FDO_PACKAGING_METADATA && self.package.is_none() {
                self.package = Some(note.desc().to_vec());
            } else if note.name() == ELF_NOTE_GNU && kind == NT_GNU_BUILD_ID && self.build_id.is_none() {
                self.build_id = Some(note.desc().to_vec());
            }
        }
    }
}

fn read_as<Elf: FileHeader<Endian = Endianness>>(data: &[u8], format: BinaryFormat) -> FileVersionInfo {
    let mut info = FileVersionInfo::empty(format);
    let header = match Elf::parse(data) {
        Ok(header) => header,
        Err(err) => {
            info.problems.push(format!("ELF header: {err}"));
            return info;
        }
    };
    let endian = match header.endian() {
        Ok(endian) => endian,
        Err(err) => {
            info.problems.push(format!("ELF header: {err}"));
            return info;
        }
    };
    let mut found = Found::default();
    match header.section_headers(endian, data) {
        Ok(sections) => {
            for section in sections {
                if found.done() {
                    break;
                }
                match section.notes(endian, data) {
                    Ok(Some(notes)) => found.scan(notes, endian, &mut info.problems),
                    Ok(None) => {}
                    Err(err) => info.problems.push(format!("ELF note section: {err}")),
                }
            }
        }
        Err(err) => info.problems.push(format!("ELF section headers: {err}")),
    }
    match header.program_headers(endian, data) {
        Ok(segments) => {
            for segment in segments {
                if found.done() {
                    break;
                }
                match segment.notes(endian, data) {
                    Ok(Some(notes)) => found.scan(notes, endian, &mut info.problems),
                    Ok(None) => {}
                    Err(err) => info.problems.push(format!("ELF note segment: {err}")),
                }
            }
        }
        Err(err) => info.problems.push(format!("ELF program headers: {err}")),
    }
    if found.visited >= MAX_NOTES {
        info.problems.push(format!("more than {MAX_NOTES} ELF notes; rest skipped"));
    }
    info.build_id = found.build_id.map(|id| id.iter().map(|b| format!("{b:02x}")).collect());
    match found.package {
        Some(desc) => package_note(&desc, &mut info),
        None => info.problems.push("no package metadata note (.note.package)".to_string()),
    }
    info
}

fn package_note(desc: &[u8], info: &mut FileVersionInfo) {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    let json = desc.get(..end).unwrap_or(desc);
    if desc.get(end..).is_some_and(|rest| rest.iter().any(|&b| b != 0)) {
        info.problems.push("package metadata note has bytes after its NUL terminator".to_string());
    }
    let value: serde_json::Value = match serde_json::from_slice(json) {
        Ok(value) => value,
        Err(err) => {
            info.problems.push(format!("package metadata note is not JSON: {err}"));
            return;
        }
    };
    if !value.is_object() {
        info.problems.push("package metadata note is not a JSON object".to_string());
        return;
    }
    match value.get("fileVersion") {
        Some(serde_json::Value::String(text)) => {
            info.tag = crate::parse_branch_tag(text);
            info.file_version_string = Some(text.clone());
        }
        Some(_) => info.problems.push("package metadata fileVersion is not a string".to_string()),
        None => info.problems.push("package metadata note has no fileVersion".to_string()),
    }
    info.elf_package_note = Some(value);
}
