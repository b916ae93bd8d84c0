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
fn damaged_x86_patches_are_errors_not_panics() {
    let old = x86_program(300, 100, 0);
    let new = x86_program(300, 50, 16);
    let patch = encode_both(&old, &new, 3, true).unwrap().1.unwrap();
    for i in 0..patch.len() {
        let mut p = patch.clone();
        p[i] ^= 0xff;
        if let Ok(out) = decode_x86(&old, &p, new.len() as u64, 27) {
            assert_eq!(out.len(), new.len());
        }
    }
    for cut in 0..patch.len() {
        let _ = decode_x86(&old, &patch[..cut], new.len() as u64, 27);
    }
}
