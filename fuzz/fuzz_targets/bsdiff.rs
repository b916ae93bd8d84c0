//! The bsdiff-zstd, bsdiff-x86-zstd, bsdiff-elf-zstd, bsdiff-elf2-zstd and
//! bsdiff-elf3-zstd appliers. Input: a 16-bit reference length, a 32-bit declared size
//! (its low 24 bits; its top bit selects the x86 applier, the next the ELF one, the third
//! the ELF2 one and else the fourth the ELF3 one, both with the reference as a pack of
//! two halves), the reference, then the patch. Properties: no panic; an accepted patch
//! yields exactly the declared size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = hotfix_fuzz::Cursor(data);
    let ref_len = c.u16() as usize;
    let raw = c.u32();
    let size = u64::from(raw & 0x00ff_ffff);
    let reference = c.take(ref_len);
    let patch = c.rest();
    let halves = [reference.len() as u64 / 2, reference.len() as u64 - reference.len() as u64 / 2];
    let result = match raw >> 29 {
        4..=7 => pkgtool::bsdelta::decode_x86(reference, patch, size, 27),
        2 | 3 => pkgtool::bsdelta::decode_elf(reference, patch, size, 27),
        1 => pkgtool::bsdelta::decode_elf2(reference, &halves, patch, size, 27),
        0 if raw & 1 << 28 != 0 => pkgtool::bsdelta::decode_elf3(reference, &halves, patch, size, 27),
        _ => pkgtool::bsdelta::decode(reference, patch, size, 27),
    };
    if let Ok(out) = result {
        assert_eq!(out.len() as u64, size, "output is not the declared size");
    }
});
