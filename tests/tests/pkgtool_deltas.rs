//! The `bsdiff-x86-zstd` encoder and applier through the library, on two builds of an
//! x86-64 program that differ by an insertion (`fixtures::x86_program`); the package-level
//! round trip through the binary is `pkgtool_cli`'s.

use hotfix_tests::fixtures::x86_program;
use pkgtool::bsdelta::{decode, decode_x86, encode_both};

#[test]
fn translated_operands_make_an_insertion_cheap_and_round_trip() {
    let old = x86_program(2000, 1000, 0);
    let new = x86_program(2000, 10, 48);
    let (plain, x86) = encode_both(&old, &new, 19, true).unwrap();
    let x86 = x86.unwrap();
    assert_eq!(decode(&old, &plain, new.len() as u64, 27).unwrap(), new);
    assert_eq!(decode_x86(&old, &x86, new.len() as u64, 27).unwrap(), new);
    // Every call and lea that crosses the insertion changed; translated, none did.
    assert!(x86.len() * 2 < plain.len(), "x86 {} plain {}", x86.len(), plain.len());
    // The other applier gets the content wrong, not a panic.
    assert_ne!(decode(&old, &x86, new.len() as u64, 27).ok(), Some(new.clone()));
}

#[test]
fn damaged_x86_and_elf_patches_are_errors_not_panics() {
    use hotfix_tests::fixtures::elf_program;
    let (old, new) = (x86_program(300, 100, 0), x86_program(300, 50, 16));
    let x86 = encode_both(&old, &new, 3, true).unwrap().1.unwrap();
    let (old_elf, new_elf) = (elf_program(300, 100, 0), elf_program(300, 50, 16));
    let elf = pkgtool::bsdelta::encode_elf(&old_elf, &new_elf, 3).unwrap().unwrap();
    let (old_elf2, new_elf2) = (hotfix_tests::fixtures::elf2_program(300, 100, 0), elf2_program_next());
    let elf2 = pkgtool::bsdelta::encode_elf2(&old_elf2, &[], &new_elf2, 3).unwrap().unwrap();
    type Apply = fn(&[u8], &[u8], u64, u32) -> Result<Vec<u8>, String>;
    let cases = [
        (&old[..], &new[..], &x86[..], decode_x86 as Apply),
        (&old_elf[..], &new_elf[..], &elf[..], pkgtool::bsdelta::decode_elf as Apply),
        (&old_elf2[..], &new_elf2[..], &elf2[..], |r: &[u8], p: &[u8], s, w| {
            pkgtool::bsdelta::decode_elf2(r, &[], p, s, w)
        }),
    ];
    for (old, new, patch, apply) in cases {
        for i in 0..patch.len() {
            let mut p = patch.to_vec();
            p[i] ^= 0xff;
            if let Ok(out) = apply(old, &p, new.len() as u64, 27) {
                assert_eq!(out.len(), new.len());
            }
        }
        for cut in 0..patch.len() {
            let _ = apply(old, &patch[..cut], new.len() as u64, 27);
        }
    }
}

fn elf2_program_next() -> Vec<u8> {
    hotfix_tests::fixtures::elf2_program(300, 50, 16)
}

/// A pack of small executables whose next builds' code moved: its next pack is compared
/// with bsdiff whatever its exact-match delta makes, and bsdiff with translated operands
/// wins. Built and extracted through the binary.
#[test]
fn a_pack_of_executables_whose_code_moved_is_a_bsdiff_x86_delta() {
    use std::fs;
    let t = tempfile::tempdir().unwrap();
    hotfix_tests::fixtures::modules(t.path(), x86_program);
    let spec = hotfix_tests::fixtures::x86_update(t.path());
    let (_, _, key) = hotfix_tests::fixtures::key_pair(t.path(), "vendor", 7);
    let pkg = t.path().join("mods.pkg");
    pkgtool::build::build(&spec, &key, &pkg, &Default::default()).unwrap();
    let raw = hotfix_tests::craft::RawPackage::parse(&fs::read(&pkg).unwrap());
    let m = raw.manifest();
    let packs = hotfix_tests::fixtures::pack_encodings(&m);
    assert_eq!(packs.len(), 2, "{m}");
    assert_eq!(packs[1], "bsdiff-x86-zstd", "{packs:?}");
}

/// A shared library whose code moved: with its unwind tables and symbols translated too,
/// the patch is a fifth smaller than the x86-only one, and each applier needs its own encoding.
#[test]
fn translated_elf_tables_make_a_moved_librarys_tables_cheap_and_round_trip() {
    use hotfix_tests::fixtures::elf_program;
    use pkgtool::bsdelta::{decode_elf, encode_elf};
    let old = elf_program(2000, 1000, 0);
    let new = elf_program(2000, 10, 48);
    let (_, x86) = encode_both(&old, &new, 19, true).unwrap();
    let x86 = x86.unwrap();
    let elf = encode_elf(&old, &new, 19).unwrap().expect("an ELF reference");
    assert_eq!(decode_elf(&old, &elf, new.len() as u64, 27).unwrap(), new);
    // The regular +48 of a thousand entries compresses well either way; translated, it is gone.
    assert!(elf.len() * 10 < x86.len() * 8, "elf {} x86 {}", elf.len(), x86.len());
    assert_ne!(decode_x86(&old, &elf, new.len() as u64, 27).ok(), Some(new.clone()));
    // Not ELF (the x86 program alone): no ELF variant.
    assert!(encode_elf(&x86_program(300, 100, 0), &x86_program(300, 50, 16), 3).unwrap().is_none());
}

/// An executable whose code moved, with conditional jumps across the move: translated as
/// ELF (its jumps too), the patch is smaller than `bsdiff-elf-zstd`'s, and only its own
/// applier gets the content right.
#[test]
fn translated_conditional_jumps_make_an_elf2_patch_smaller_and_round_trip() {
    use hotfix_tests::fixtures::elf2_program;
    use pkgtool::bsdelta::{decode_elf, decode_elf2, encode_elf, encode_elf2};
    let old = elf2_program(2000, 1000, 0);
    let new = elf2_program(2000, 10, 48);
    let elf = encode_elf(&old, &new, 19).unwrap().expect("an ELF reference");
    let elf2 = encode_elf2(&old, &[], &new, 19).unwrap().expect("an ELF reference");
    assert_eq!(decode_elf2(&old, &[], &elf2, new.len() as u64, 27).unwrap(), new);
    assert_eq!(decode_elf(&old, &elf, new.len() as u64, 27).unwrap(), new);
    assert!(elf2.len() * 2 < elf.len(), "elf2 {} elf {}", elf2.len(), elf.len());
    assert_ne!(decode_elf(&old, &elf2, new.len() as u64, 27).ok(), Some(new.clone()));
    // Not ELF: nothing to translate, no such entry.
    assert!(encode_elf2(&x86_program(300, 100, 0), &[], &x86_program(300, 50, 16), 3).unwrap().is_none());
}

/// A pack of two executables: each member of the reference pack is translated on its own
/// (the second's addresses are its own, not the pack's), so the patch is far smaller
/// than one that sees only the first member.
#[test]
fn each_member_of_a_reference_pack_is_translated_on_its_own() {
    use hotfix_tests::fixtures::elf2_program;
    use pkgtool::bsdelta::{decode_elf2, encode_elf2};
    let (a_old, b_old) = (elf2_program(700, 600, 0), elf2_program(900, 800, 0));
    let (a_new, b_new) = (elf2_program(700, 5, 32), elf2_program(900, 7, 48));
    let old = [a_old.clone(), b_old.clone()].concat();
    let new = [a_new, b_new].concat();
    let sizes = [a_old.len() as u64, b_old.len() as u64];
    let both = encode_elf2(&old, &sizes, &new, 19).unwrap().unwrap();
    let first = encode_elf2(&old, &[], &new, 19).unwrap().unwrap();
    assert_eq!(decode_elf2(&old, &sizes, &both, new.len() as u64, 27).unwrap(), new);
    assert_eq!(decode_elf2(&old, &[], &first, new.len() as u64, 27).unwrap(), new);
    assert!(both.len() * 3 < first.len() * 2, "members {} first only {}", both.len(), first.len());
    // Sizes that do not add up: the members that fit are translated, the rest is not.
    let _ = decode_elf2(&old, &[sizes[0], sizes[1] + 1], &both, new.len() as u64, 27);
}

/// Calls to functions the build rewrote where no move places them: `bsdiff-elf2-zstd`
/// pays for every one, `bsdiff-elf3-zstd` for the first to each (and its extra bytes'
/// branches are absolute); only its own applier gets the content right.
#[test]
fn learned_call_targets_make_an_elf3_patch_smaller_than_elf2_and_round_trip() {
    use hotfix_tests::fixtures::elf3_program;
    use pkgtool::bsdelta::{decode_elf2, decode_elf3, encode_best, encode_elf2};
    let old = elf3_program(300, 300, 0);
    let new = elf3_program(300, 287, 37);
    let (encoding, elf3) = encode_best(&old, &[], &new, 19, true).unwrap();
    assert_eq!(encoding, hotfix_schema::Encoding::BsdiffElf3Zstd);
    let elf2 = encode_elf2(&old, &[], &new, 19).unwrap().expect("an ELF reference");
    assert!(elf3.len() * 3 < elf2.len() * 2, "elf3 {} elf2 {}", elf3.len(), elf2.len());
    assert_eq!(decode_elf3(&old, &[], &elf3, new.len() as u64, 27).unwrap(), new);
    assert_ne!(decode_elf2(&old, &[], &elf3, new.len() as u64, 27).ok(), Some(new.clone()));
    assert_ne!(decode_elf3(&old, &[], &elf2, new.len() as u64, 27).ok(), Some(new.clone()));
}

/// A damaged elf3 patch (any byte flipped, any length cut) is an error or other bytes of
/// the declared size, never a panic.
#[test]
fn damaged_elf3_patches_are_errors_not_panics() {
    use hotfix_tests::fixtures::elf3_program;
    use pkgtool::bsdelta::{decode_elf3, encode_best};
    let old = elf3_program(40, 40, 0);
    let new = elf3_program(40, 27, 21);
    let (_, patch) = encode_best(&old, &[], &new, 3, true).unwrap();
    assert_eq!(decode_elf3(&old, &[], &patch, new.len() as u64, 27).unwrap(), new);
    for i in 0..patch.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut p = patch.clone();
            p[i] ^= flip;
            if let Ok(out) = decode_elf3(&old, &[], &p, new.len() as u64, 27) {
                assert_eq!(out.len(), new.len());
            }
        }
    }
    for cut in 0..patch.len() {
        assert!(decode_elf3(&old, &[], &patch[..cut], new.len() as u64, 27).is_err());
    }
}
