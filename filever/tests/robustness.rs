//! Robustness: `read_bytes` must never panic and must finish quickly on random bytes, random
//! truncations and byte mutations of the real corpus PE files (mutations aimed at the resource
//! section half of the time), mutations of hand-made ELF files, and hand-made malicious
//! resource trees (loops, huge sizes, RVAs outside the file). A few hundred cases by default;
//! set `PROPTEST_CASES` for more.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Note, ResName, elf_file, pe_file, rsrc_section, version_blob};
use proptest::prelude::*;

/// Generous for a debug build on a loaded machine; a hang or quadratic walk blows through it.
const LIMIT: Duration = Duration::from_secs(3);

fn timed_read(bytes: &[u8]) -> filever::FileVersionInfo {
    let start = Instant::now();
    let info = filever::read_bytes(bytes);
    let _ = filever::render_text("x", &info);
    let _ = serde_json::to_string(&info);
    assert!(start.elapsed() < LIMIT, "took {:?}", start.elapsed());
    info
}

/// The corpus PE files and the file range of each one's `.rsrc` section (empty when absent).
fn corpus() -> &'static [(Vec<u8>, std::ops::Range<usize>)] {
    static CORPUS: OnceLock<Vec<(Vec<u8>, std::ops::Range<usize>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out = Vec::new();
        for path in common::corpus_pe_files("robustness (corpus mutations)").unwrap_or_default() {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let range = rsrc_range(&bytes).unwrap_or(0..0);
            out.push((bytes, range));
        }
        out.push((hand_made_pe(), rsrc_range(&hand_made_pe()).unwrap_or(0..0)));
        out
    })
}

fn rsrc_range(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(bytes).ok()?;
    let (start, size) = file.section_by_name(".rsrc")?.file_range()?;
    Some(usize::try_from(start).ok()?..usize::try_from(start + size).ok()?)
}

fn hand_made_pe() -> Vec<u8> {
    let blob = version_blob([5, 2, 3790, 4354], "040904b0", &[("FileVersion", "5.2.3790.4354 (srv03_sp2_gdr.1)")]);
    pe_file(false, &rsrc_section(&[(ResName::Id(1), 0x409, blob)]))
}

fn hand_made_elf() -> Vec<u8> {
    let json = br#"{"type":"deb","name":"x","version":"1","fileVersion":"1 (srv03_sp2_gdr.1)"}"#;
    let notes =
        [Note { owner: "GNU", kind: 3, desc: &[1, 2, 3, 4] }, Note { owner: "FDO", kind: 0xcafe_1a7e, desc: json }];
    elf_file(true, &notes, true)
}

proptest! {
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096), prefix in 0u8..3) {
        // Give the random bytes a PE or ELF magic two times out of three.
        let mut data = match prefix {
            0 => b"MZ".to_vec(),
            1 => b"\x7fELF".to_vec(),
            _ => Vec::new(),
        };
        data.extend(bytes);
        timed_read(&data);
    }

    #[test]
    fn truncated_corpus_files(pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let files = corpus();
        let (bytes, _) = pick.get(files);
        let len = cut.index(bytes.len() + 1);
        let info = timed_read(bytes.get(..len).unwrap_or_default());
        prop_assert!(len > 0x40 || info.fixed.is_none());
    }

    #[test]
    fn mutated_corpus_files(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (original, rsrc) = pick.get(corpus());
        let mut bytes = original.clone();
        for (in_rsrc, index, byte) in &edits {
            let at = if *in_rsrc && !rsrc.is_empty() {
                rsrc.start + index.index(rsrc.len())
            } else {
                index.index(bytes.len())
            };
            if let Some(slot) = bytes.get_mut(at) {
                *slot = *byte;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        timed_read(&bytes);
    }

    #[test]
    fn mutated_elf_files(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = hand_made_elf();
        for (index, byte) in &edits {
            let at = index.index(bytes.len());
            if let Some(slot) = bytes.get_mut(at) {
                *slot = *byte;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        timed_read(&bytes);
    }
}

fn put32(bytes: &mut [u8], at: usize, value: u32) {
    if let Some(slot) = bytes.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

/// Offsets inside `rsrc_section` for one resource: root entry for RT_VERSION at 24, name
/// table at 32 with its entry at 48, language table at 56 with its entry at 72, data entries
/// at 80 (version) and 96 (icon).
const RT_VERSION_ENTRY: usize = 24;
const NAME_ENTRY: usize = 48;
const LANG_ENTRY: usize = 72;
const DATA_ENTRY: usize = 80;

fn malicious(edit: impl Fn(&mut Vec<u8>)) -> filever::FileVersionInfo {
    let blob = version_blob([1, 2, 3, 4], "040904b0", &[("FileVersion", "1.2.3.4")]);
    let mut rsrc = rsrc_section(&[(ResName::Id(1), 0x409, blob)]);
    edit(&mut rsrc);
    timed_read(&pe_file(true, &rsrc))
}

#[test]
fn layout_assumed_by_the_malicious_cases() {
    let info = malicious(|_| {});
    assert_eq!(info.fixed.map(|f| f.file_version), Some("1.2.3.4".to_string()));
    assert!(info.problems.is_empty(), "{:?}", info.problems);
}

#[test]
fn resource_tree_loops() {
    // The name level points back at the root, and the language level at the name table.
    let info = malicious(|r| put32(r, NAME_ENTRY + 4, 0x8000_0000));
    assert!(info.fixed.is_none());
    assert!(!info.problems.is_empty());
    let info = malicious(|r| put32(r, LANG_ENTRY + 4, 0x8000_0000 | 32));
    assert!(info.problems.iter().any(|p| p.contains("directory, not data")), "{:?}", info.problems);
    // RT_VERSION pointing at itself.
    let info = malicious(|r| put32(r, RT_VERSION_ENTRY + 4, 0x8000_0000));
    assert!(info.fixed.is_none());
}

#[test]
fn huge_counts_and_shared_tables() {
    // The name table claims 0xffff entries: the walk stays bounded by the data and the budget.
    let info = malicious(|r| {
        if let Some(count) = r.get_mut(32 + 14..32 + 16) {
            count.copy_from_slice(&0xffffu16.to_le_bytes());
        }
    });
    assert!(!info.problems.is_empty());
    // A big section of entries that all point at one shared table: the budget ends the walk.
    let mut rsrc = vec![0u8; 16 + 8 * 4000];
    if let Some(count) = rsrc.get_mut(14..16) {
        count.copy_from_slice(&4000u16.to_le_bytes());
    }
    for i in 0..4000 {
        put32(&mut rsrc, 16 + i * 8, 16);
        put32(&mut rsrc, 16 + i * 8 + 4, 0x8000_0000);
    }
    let info = timed_read(&pe_file(false, &rsrc));
    assert!(info.problems.iter().any(|p| p.contains("rest skipped")), "{:?}", info.problems);
}

#[test]
fn huge_sizes_and_bad_rvas() {
    let info = malicious(|r| put32(r, DATA_ENTRY + 4, u32::MAX));
    assert!(info.problems.iter().any(|p| p.contains("truncated")), "{:?}", info.problems);
    assert!(info.fixed.is_some(), "what is there is still read");
    let info = malicious(|r| put32(r, DATA_ENTRY, 0xffff_fff0));
    assert!(info.problems.iter().any(|p| p.contains("not in the file")), "{:?}", info.problems);
    let info = malicious(|r| put32(r, DATA_ENTRY, 0));
    assert!(info.fixed.is_none());
    let info = malicious(|r| put32(r, NAME_ENTRY + 4, 0x8fff_ffff));
    assert!(!info.problems.is_empty());
    // Data at the type level instead of a directory.
    let info = malicious(|r| put32(r, RT_VERSION_ENTRY + 4, DATA_ENTRY as u32));
    assert!(info.problems.iter().any(|p| p.contains("data, not a directory")), "{:?}", info.problems);
}

#[test]
fn truncated_hand_made_pe_every_length() {
    let bytes = hand_made_pe();
    for len in 0..=bytes.len() {
        let _ = timed_read(bytes.get(..len).unwrap_or_default());
    }
    let bytes = hand_made_elf();
    for len in 0..=bytes.len() {
        let _ = timed_read(bytes.get(..len).unwrap_or_default());
    }
}
