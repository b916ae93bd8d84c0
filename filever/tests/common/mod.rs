//! Helpers shared by the filever integration tests: where the real test files are (and a
//! skip message when they are absent), and builders for hand-made PE files, resource trees,
//! `VS_VERSIONINFO` blobs and ELF files with notes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The project's shared PE corpus, beside the repository.
pub const CORPUS_PE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/pe-branch-tags");

/// Default unpack location of `tests/fetch-libwine.sh`.
pub const LIBWINE_DEFAULT: &str = "/tmp/hotfix-corpus/libwine/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/";

/// The corpus PE files (`*.dll`, `*.exe`), or `None` after printing why the test skips.
pub fn corpus_pe_files(test: &str) -> Option<Vec<PathBuf>> {
    let dir = Path::new(CORPUS_PE);
    let files = pe_files_in(dir);
    if files.is_empty() {
        println!("SKIP {test}: no PE files in {} (shared corpus absent)", dir.display());
        return None;
    }
    Some(files)
}

/// One named corpus file, or `None` after printing why the test skips.
pub fn corpus_file(test: &str, name: &str) -> Option<Vec<u8>> {
    let path = Path::new(CORPUS_PE).join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            println!("SKIP {test}: cannot read {}: {err}", path.display());
            None
        }
    }
}

/// The libwine PE directory (`FILEVER_LIBWINE_DIR` or the fetch script's default) and its PE
/// files, or `None` after printing how to get them.
pub fn libwine_files(test: &str) -> Option<(PathBuf, Vec<PathBuf>)> {
    let dir =
        std::env::var_os("FILEVER_LIBWINE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(LIBWINE_DEFAULT));
    let files = pe_files_in(&dir);
    if files.is_empty() {
        println!(
            "SKIP {test}: no PE files in {} (run filever/tests/fetch-libwine.sh or set FILEVER_LIBWINE_DIR)",
            dir.display()
        );
        return None;
    }
    Some((dir, files))
}

/// Regular files in `dir` (not recursive) that start with `MZ`, sorted.
pub fn pe_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(read_dir) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = read_dir
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && starts_with_mz(path))
        .collect();
    files.sort();
    files
}

fn starts_with_mz(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"MZ"
}

// ---------------------------------------------------------------------------------------------
// VS_VERSIONINFO blobs

pub fn utf16z(text: &str) -> Vec<u8> {
    text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

fn pad4(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
}

/// A version block: header, key, padding, value, children (each 4-aligned).
pub fn block(key: &str, value_length: u16, kind: u16, value: &[u8], children: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    out.extend(utf16z(key));
    pad4(&mut out);
    out.extend_from_slice(value);
    for child in children {
        pad4(&mut out);
        out.extend_from_slice(child);
    }
    let length = u16::try_from(out.len()).unwrap_or(u16::MAX);
    out.splice(0..2, length.to_le_bytes());
    out.splice(2..4, value_length.to_le_bytes());
    out.splice(4..6, kind.to_le_bytes());
    out
}

/// A `String` block with `wValueLength` in characters including the NUL.
pub fn string(key: &str, value: &str) -> Vec<u8> {
    let chars = u16::try_from(value.encode_utf16().count() + 1).unwrap_or(u16::MAX);
    block(key, chars, 1, &utf16z(value), &[])
}

/// A complete `VS_VERSIONINFO` with fixed version `a.b.c.d` and one string table.
pub fn version_blob(fixed: [u16; 4], lang_codepage: &str, strings: &[(&str, &str)]) -> Vec<u8> {
    let [a, b, c, d] = fixed.map(u32::from);
    let (ms, ls) = ((a << 16) | b, (c << 16) | d);
    let fields: [u32; 13] = [0xFEEF_04BD, 0x0001_0000, ms, ls, ms, ls, 0x3f, 0, 0x0004_0004, 1, 0, 0, 0];
    let fixed_bytes: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
    let entries: Vec<Vec<u8>> = strings.iter().map(|(k, v)| string(k, v)).collect();
    let table = block(lang_codepage, 0, 1, &[], &entries);
    let sfi = block("StringFileInfo", 0, 1, &[], &[table]);
    let lang = u16::from_str_radix(lang_codepage.get(..4).unwrap_or("0409"), 16).unwrap_or(0x409);
    let cp = u16::from_str_radix(lang_codepage.get(4..).unwrap_or("04b0"), 16).unwrap_or(0x4b0);
    let mut pair = lang.to_le_bytes().to_vec();
    pair.extend(cp.to_le_bytes());
    let vfi = block("VarFileInfo", 0, 1, &[], &[block("Translation", 4, 0, &pair, &[])]);
    block("VS_VERSION_INFO", 52, 0, &fixed_bytes, &[sfi, vfi])
}

// ---------------------------------------------------------------------------------------------
// PE files

/// The RVA where the hand-made PE's only section (`.rsrc`) is mapped.
pub const RSRC_RVA: u32 = 0x1000;
/// The file offset of that section.
pub const RSRC_FILE_OFFSET: usize = 0x200;

/// A resource name: numeric id or string.
#[derive(Clone)]
pub enum ResName {
    Id(u16),
    Name(String),
}

/// Builds a `.rsrc` section holding one `RT_VERSION` (type 16) directory, plus an unrelated
/// `RT_ICON` (type 3) entry before it. Resources with the same name share one name entry
/// (one language entry each), in order of first appearance.
/// Layout: root table at 0 (2 entries), name table at 32, then the language tables, the data
/// entries (the icon's last), names and blobs. For one resource: name entry at 48, language
/// table at 56 with its entry at 72, data entry at 80.
pub fn rsrc_section(resources: &[(ResName, u16, Vec<u8>)]) -> Vec<u8> {
    let same = |a: &ResName, b: &ResName| match (a, b) {
        (ResName::Id(x), ResName::Id(y)) => x == y,
        (ResName::Name(x), ResName::Name(y)) => x == y,
        _ => false,
    };
    // Groups: (name, indices into `resources`).
    let mut groups: Vec<(ResName, Vec<usize>)> = Vec::new();
    for (i, (name, _, _)) in resources.iter().enumerate() {
        match groups.iter_mut().find(|(n, _)| same(n, name)) {
            Some((_, members)) => members.push(i),
            None => groups.push((name.clone(), vec![i])),
        }
    }
    let n = resources.len();
    let names_at = 32usize;
    let langs_at = names_at + 16 + groups.len() * 8;
    let data_at = langs_at + groups.len() * 16 + n * 8;
    let strings_at = data_at + (n + 1) * 16;
    let mut out = vec![0u8; strings_at];
    let put16 = |out: &mut Vec<u8>, at: usize, v: u16| out.splice(at..at + 2, v.to_le_bytes()).for_each(drop);
    let put32 = |out: &mut Vec<u8>, at: usize, v: u32| out.splice(at..at + 4, v.to_le_bytes()).for_each(drop);
    let as32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let as16 = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
    // Root: RT_ICON (3) -> the last data entry (an empty icon), RT_VERSION (16) -> name table.
    put16(&mut out, 14, 2);
    put32(&mut out, 16, 3);
    put32(&mut out, 20, as32(data_at + n * 16));
    put32(&mut out, 24, 16);
    put32(&mut out, 28, 0x8000_0000 | as32(names_at));
    let named = groups.iter().filter(|(name, _)| matches!(name, ResName::Name(_))).count();
    put16(&mut out, names_at + 12, as16(named));
    put16(&mut out, names_at + 14, as16(groups.len() - named));
    let mut lang_table = langs_at;
    for (g, (name, members)) in groups.iter().enumerate() {
        let entry = names_at + 16 + g * 8;
        let name_field = match name {
            ResName::Id(id) => u32::from(*id),
            ResName::Name(text) => {
                let at = out.len();
                let units: Vec<u16> = text.encode_utf16().collect();
                out.extend(as16(units.len()).to_le_bytes());
                out.extend(units.iter().flat_map(|u| u.to_le_bytes()));
                0x8000_0000 | as32(at)
            }
        };
        put32(&mut out, entry, name_field);
        put32(&mut out, entry + 4, 0x8000_0000 | as32(lang_table));
        put16(&mut out, lang_table + 14, as16(members.len()));
        for (k, &i) in members.iter().enumerate() {
            let lang = resources.get(i).map_or(0, |(_, lang, _)| *lang);
            put32(&mut out, lang_table + 16 + k * 8, u32::from(lang));
            put32(&mut out, lang_table + 16 + k * 8 + 4, as32(data_at + i * 16));
        }
        lang_table += 16 + members.len() * 8;
    }
    for (i, (_, _, blob)) in resources.iter().enumerate() {
        pad4(&mut out);
        let blob_at = out.len();
        out.extend_from_slice(blob);
        put32(&mut out, data_at + i * 16, RSRC_RVA + as32(blob_at));
        put32(&mut out, data_at + i * 16 + 4, as32(blob.len()));
    }
    // The icon's data entry: RVA of the section start, size 0.
    put32(&mut out, data_at + n * 16, RSRC_RVA);
    out
}

/// A minimal PE32 (`pe64 == false`) or PE32+ file whose only section is `rsrc`.
pub fn pe_file(pe64: bool, rsrc: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; RSRC_FILE_OFFSET];
    let put16 = |out: &mut Vec<u8>, at: usize, v: u16| out.splice(at..at + 2, v.to_le_bytes()).for_each(drop);
    let put32 = |out: &mut Vec<u8>, at: usize, v: u32| out.splice(at..at + 4, v.to_le_bytes()).for_each(drop);
    let as32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    out.splice(0..2, *b"MZ");
    put32(&mut out, 0x3c, 0x40);
    out.splice(0x40..0x44, *b"PE\0\0");
    let coff = 0x44;
    let optional_size: usize = if pe64 { 240 } else { 224 };
    put16(&mut out, coff, if pe64 { 0x8664 } else { 0x14c });
    put16(&mut out, coff + 2, 1);
    put16(&mut out, coff + 16, u16::try_from(optional_size).unwrap_or(0));
    put16(&mut out, coff + 18, 0x2022);
    let opt = coff + 20;
    put16(&mut out, opt, if pe64 { 0x20b } else { 0x10b });
    // SectionAlignment, FileAlignment, SizeOfImage, SizeOfHeaders, NumberOfRvaAndSizes.
    put32(&mut out, opt + 32, 0x1000);
    put32(&mut out, opt + 36, 0x200);
    let raw_size = rsrc.len().div_ceil(0x200) * 0x200;
    put32(&mut out, opt + 56, RSRC_RVA + as32(rsrc.len().div_ceil(0x1000) * 0x1000));
    put32(&mut out, opt + 60, as32(RSRC_FILE_OFFSET));
    let dirs = opt + if pe64 { 112 } else { 96 };
    put32(&mut out, dirs - 4, 16);
    // Data directory 2: resources.
    put32(&mut out, dirs + 2 * 8, RSRC_RVA);
    put32(&mut out, dirs + 2 * 8 + 4, as32(rsrc.len()));
    let section = opt + optional_size;
    out.splice(section..section + 8, *b".rsrc\0\0\0");
    put32(&mut out, section + 8, as32(rsrc.len()));
    put32(&mut out, section + 12, RSRC_RVA);
    put32(&mut out, section + 16, as32(raw_size));
    put32(&mut out, section + 20, as32(RSRC_FILE_OFFSET));
    put32(&mut out, section + 36, 0x4000_0040);
    out.extend_from_slice(rsrc);
    out.resize(RSRC_FILE_OFFSET + raw_size, 0);
    out
}

// ---------------------------------------------------------------------------------------------
// ELF files

/// One ELF note: owner, type, descriptor.
pub struct Note<'a> {
    pub owner: &'a str,
    pub kind: u32,
    pub desc: &'a [u8],
}

fn note_bytes(notes: &[Note<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for note in notes {
        let mut name = note.owner.as_bytes().to_vec();
        name.push(0);
        out.extend(u32::try_from(name.len()).unwrap_or(0).to_le_bytes());
        out.extend(u32::try_from(note.desc.len()).unwrap_or(0).to_le_bytes());
        out.extend(note.kind.to_le_bytes());
        out.extend(&name);
        pad4(&mut out);
        out.extend(note.desc);
        pad4(&mut out);
    }
    out
}

/// A little-endian ELF (32- or 64-bit) with the notes in one `SHT_NOTE` section (when
/// `with_sections`) and one `PT_NOTE` segment.
pub fn elf_file(elf64: bool, notes: &[Note<'_>], with_sections: bool) -> Vec<u8> {
    let notes = note_bytes(notes);
    let (ehsize, phentsize, shentsize) = if elf64 { (64usize, 56usize, 64usize) } else { (52, 32, 40) };
    let phoff = ehsize;
    let notes_at = phoff + phentsize;
    let shoff = (notes_at + notes.len()).div_ceil(8) * 8;
    let shnum = if with_sections { 2 } else { 0 };
    let mut out = vec![0u8; shoff + shnum * shentsize];
    let put16 = |out: &mut Vec<u8>, at: usize, v: u16| out.splice(at..at + 2, v.to_le_bytes()).for_each(drop);
    let put32 = |out: &mut Vec<u8>, at: usize, v: u32| out.splice(at..at + 4, v.to_le_bytes()).for_each(drop);
    let put64 = |out: &mut Vec<u8>, at: usize, v: u64| out.splice(at..at + 8, v.to_le_bytes()).for_each(drop);
    let word = |out: &mut Vec<u8>, at: usize, v: usize| {
        if elf64 {
            put64(out, at, v as u64);
        } else {
            put32(out, at, u32::try_from(v).unwrap_or(u32::MAX));
        }
    };
    out.splice(0..4, *b"\x7fELF");
    out.splice(4..7, [if elf64 { 2 } else { 1 }, 1, 1]);
    put16(&mut out, 16, 2); // ET_EXEC
    put16(&mut out, 18, if elf64 { 62 } else { 3 });
    put32(&mut out, 20, 1);
    let w = if elf64 { 8 } else { 4 };
    // e_entry, e_phoff, e_shoff follow e_version.
    word(&mut out, 24 + w, phoff);
    word(&mut out, 24 + 2 * w, if with_sections { shoff } else { 0 });
    let after = 24 + 3 * w + 4; // e_flags
    put16(&mut out, after, u16::try_from(ehsize).unwrap_or(0));
    put16(&mut out, after + 2, u16::try_from(phentsize).unwrap_or(0));
    put16(&mut out, after + 4, 1);
    put16(&mut out, after + 6, u16::try_from(shentsize).unwrap_or(0));
    put16(&mut out, after + 8, u16::try_from(shnum).unwrap_or(0));
    put16(&mut out, after + 10, 0);
    // Program header: PT_NOTE.
    put32(&mut out, phoff, 4);
    if elf64 {
        put64(&mut out, phoff + 8, notes_at as u64);
        put64(&mut out, phoff + 32, notes.len() as u64);
        put64(&mut out, phoff + 40, notes.len() as u64);
        put64(&mut out, phoff + 48, 4);
    } else {
        put32(&mut out, phoff + 4, u32::try_from(notes_at).unwrap_or(0));
        put32(&mut out, phoff + 16, u32::try_from(notes.len()).unwrap_or(0));
        put32(&mut out, phoff + 20, u32::try_from(notes.len()).unwrap_or(0));
        put32(&mut out, phoff + 28, 4);
    }
    out.splice(notes_at..notes_at + notes.len(), notes.iter().copied());
    if with_sections {
        // Section 0 is the null section; section 1 is SHT_NOTE.
        let sh = shoff + shentsize;
        put32(&mut out, sh + 4, 7);
        if elf64 {
            put64(&mut out, sh + 24, notes_at as u64);
            put64(&mut out, sh + 32, notes.len() as u64);
            put64(&mut out, sh + 48, 4);
        } else {
            put32(&mut out, sh + 16, u32::try_from(notes_at).unwrap_or(0));
            put32(&mut out, sh + 20, u32::try_from(notes.len()).unwrap_or(0));
            put32(&mut out, sh + 32, 4);
        }
    }
    out
}
