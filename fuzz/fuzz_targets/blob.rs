//! The blob decoders behind the reader (stored, zstd, LZMA, LZMA+x86, PPMd, zstd-delta,
//! bsdiff-zstd, bsdiff-x86-zstd, bsdiff-elf-zstd, bsdiff-elf2-zstd, bsdiff-elf3-zstd, and the five `-gz` encodings) through the same checking reader `verify` uses. Input: an encoding
//! selector, a 16-bit reference length, a 32-bit declared size, a CRC-32, the reference,
//! then the entry's bytes. The declared hash is that of the entry bytes with the selector
//! 0 (stored), so a stored blob can pass. Properties: no panic; nothing accepted yields
//! other than the declared size.
#![no_main]

use hotfix_schema::{Blob, Digest, Encoding, Limits};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};

const ENCODINGS: [Encoding; 16] = [
    Encoding::Stored,
    Encoding::Zstd,
    Encoding::Lzma,
    Encoding::LzmaX86,
    Encoding::ZstdDelta,
    Encoding::BsdiffZstd,
    Encoding::BsdiffX86Zstd,
    Encoding::ZstdGz,
    Encoding::ZstdDeltaGz,
    Encoding::LzmaGz,
    Encoding::LzmaX86Gz,
    Encoding::Ppmd,
    Encoding::PpmdGz,
    Encoding::BsdiffElfZstd,
    Encoding::BsdiffElf2Zstd,
    Encoding::BsdiffElf3Zstd,
];

fuzz_target!(|data: &[u8]| {
    let mut c = hotfix_fuzz::Cursor(data);
    let encoding = ENCODINGS[c.u8() as usize % ENCODINGS.len()];
    let ref_len = c.u16() as usize;
    let size = u64::from(c.u32() & 0x00ff_ffff);
    let crc32 = c.u32();
    let reference = c.take(ref_len);
    let entry = c.rest();
    let blob = Blob {
        sha256: Digest(Sha256::digest(entry).into()),
        size,
        encoding,
        reference: encoding.is_delta().then_some(Digest([0; 32])),
        members: Vec::new(),
    };
    let reference = encoding.is_delta().then_some(reference);
    if let Ok(n) = pkgtool::read::decode_entry_for_fuzzing(entry, crc32, &blob, &Limits::default(), reference) {
        assert_eq!(n, size, "an accepted blob is not its declared size");
    }
});
