//! The bsdiff-zstd, bsdiff-x86-zstd and bsdiff-elf-zstd appliers. Input: a 16-bit
//! reference length, a 32-bit declared size (its top bit selects the x86 applier, the
//! next the ELF one), the reference, then the patch. Properties: no panic; an accepted
//! patch yields exactly the declared size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = hotfix_fuzz::Cursor(data);
    let ref_len = c.u16() as usize;
    let raw = c.u32();
    let size = u64::from(raw & 0x00ff_ffff);
    let apply = match raw >> 30 {
        2 | 3 => pkgtool::bsdelta::decode_x86,
        1 => pkgtool::bsdelta::decode_elf,
        _ => pkgtool::bsdelta::decode,
    };
    let reference = c.take(ref_len);
    let patch = c.rest();
    if let Ok(out) = apply(reference, patch, size, 27) {
        assert_eq!(out.len() as u64, size, "output is not the declared size");
    }
});
