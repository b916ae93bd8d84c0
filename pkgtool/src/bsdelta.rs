//! The `bsdiff-zstd` blob encoder (FORMAT.md §4.4; the layout and the applier are
//! [`hotfix_reader::bsdelta`]). The matcher is the `qbsdiff` crate's; its bzip2-compressed
//! output is re-encoded as three Zstandard frames here. For executables the same match
//! also gives a `bsdiff-x86-zstd` patch: the differences taken again against the
//! reference with its relative operands translated by the controls' moves
//! ([`hotfix_reader::bsdelta::translate`]), and for x86-64 ELF files a
//! `bsdiff-elf2-zstd` patch: the differences against the reference translated as ELF
//! ([`hotfix_reader::elftables::translate2`]), the extra bytes against the reference.

use std::io::{self, Cursor, Read};

pub use hotfix_reader::bsdelta::decode;
use hotfix_reader::bsdelta::{HEADER_LEN, Moves, decode_int, translate, translate_elf2, varint_controls};
pub use hotfix_reader::bsdelta::{decode_elf, decode_elf2, decode_x86};
use hotfix_schema::Encoding;

fn bz(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    bzip2::read::BzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

fn z(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_checksum(false)?;
    c.include_contentsize(true)?;
    c.compress(data)
}

/// The extra bytes are compressed against the reference where there are at least this
/// many (`_decimal.so`'s 7.7 KB: 1 KB smaller for it; `dig`'s 4 bytes: nothing to gain).
const PREFIX_MIN: usize = 1024;

/// Window of the extra frame compressed against the reference: the format's limit (a
/// blob and its reference fit it, FORMAT.md §4.2 rule 8).
const MAX_WINDOW_LOG: u32 = 27;

/// `data` as one Zstandard frame with `prefix` as its reference prefix (as `zstd-delta`
/// compresses), the window covering both.
fn z_prefix(data: &[u8], prefix: &[u8], level: i32) -> io::Result<Vec<u8>> {
    crate::encode::compress_delta(data, prefix, level, MAX_WINDOW_LOG)
}

/// Encodes `target` against `reference` (`bsdiff-zstd`).
pub fn encode(reference: &[u8], target: &[u8], level: i32) -> io::Result<Vec<u8>> {
    Ok(encode_both(reference, target, level, false)?.0)
}

/// Encodes `target` against `reference` as `bsdiff-zstd` and, with `x86`, also as
/// `bsdiff-x86-zstd` (one match for both: the translation changes only the differences).
pub fn encode_both(reference: &[u8], target: &[u8], level: i32, x86: bool) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let (streams, translated) = streams(reference, &[], target, x86)?;
    let plain = entry(&streams, &streams.1, level, None)?;
    let x86 = match translated.into_iter().find(|(e, _)| *e == Encoding::BsdiffX86Zstd) {
        Some((_, diff)) => Some(entry(&streams, &diff, level, None)?),
        None => None,
    };
    Ok((plain, x86))
}

/// The `bsdiff-elf-zstd` entry of `target` against `reference`, if the reference is an
/// x86-64 ELF file whose tables the translation changes.
pub fn encode_elf(reference: &[u8], target: &[u8], level: i32) -> io::Result<Option<Vec<u8>>> {
    let (streams, translated) = streams(reference, &[], target, true)?;
    match translated.into_iter().find(|(e, _)| *e == Encoding::BsdiffElfZstd) {
        Some((_, diff)) => Ok(Some(entry(&streams, &diff, level, None)?)),
        None => Ok(None),
    }
}

/// The `bsdiff-elf2-zstd` entry of `target` against `reference` (`sizes`: the reference
/// pack's member sizes, empty for one file), if a member of the reference is x86-64 ELF.
pub fn encode_elf2(reference: &[u8], sizes: &[u64], target: &[u8], level: i32) -> io::Result<Option<Vec<u8>>> {
    let (streams, translated) = streams(reference, sizes, target, true)?;
    match translated.into_iter().find(|(e, _)| *e == Encoding::BsdiffElf2Zstd) {
        Some((_, diff)) => Ok(Some(entry(&streams, &diff, level, Some(reference))?)),
        None => Ok(None),
    }
}

/// The smallest bsdiff entry of `target` against `reference` (`sizes`: the reference
/// pack's member sizes, empty for one file), with its encoding: `bsdiff-zstd`, or with
/// `x86` also `bsdiff-x86-zstd` and, for an x86-64 ELF reference (or pack member),
/// `bsdiff-elf-zstd` and `bsdiff-elf2-zstd`. The difference and extra streams are
/// compared at a fast level, and only the smallest is compressed at `level` (a difference
/// stream is as long as the target).
pub fn encode_best(
    reference: &[u8],
    sizes: &[u64],
    target: &[u8],
    level: i32,
    x86: bool,
) -> io::Result<(Encoding, Vec<u8>)> {
    let (streams, translated) = streams(reference, sizes, target, x86)?;
    let extra = extra_frame(&streams.2, None, FAST_LEVEL)?.len() + z(&streams.0, FAST_LEVEL)?.len();
    let mut best = (Encoding::BsdiffZstd, z(&streams.1, FAST_LEVEL)?.len() + extra, None);
    for (encoding, diff) in translated {
        let extra = match encoding {
            Encoding::BsdiffElf2Zstd => {
                extra_frame(&streams.2, Some(reference), FAST_LEVEL)?.len()
                    + z(&varint_controls(controls(&streams.0)), FAST_LEVEL)?.len()
            }
            _ => extra,
        };
        let n = z(&diff, FAST_LEVEL)?.len() + extra;
        if n < best.1 {
            best = (encoding, n, Some(diff));
        }
    }
    let diff = best.2.as_deref().unwrap_or(&streams.1);
    let prefix = (best.0 == Encoding::BsdiffElf2Zstd).then_some(reference);
    Ok((best.0, entry(&streams, diff, level, prefix)?))
}

/// The level the two difference streams are compared at.
const FAST_LEVEL: i32 = 3;

/// A patch's three streams, uncompressed: controls, differences, extra bytes.
type Streams = (Vec<u8>, Vec<u8>, Vec<u8>);
/// A difference stream against a translated reference, with the encoding it makes.
type Translated = (Encoding, Vec<u8>);

/// The controls of a BSDIFF40 control stream.
fn controls(ctrl: &[u8]) -> impl Iterator<Item = (i64, i64, i64)> + '_ {
    ctrl.chunks_exact(24).map(|c| (decode_int(&c[0..8]), decode_int(&c[8..16]), decode_int(&c[16..24])))
}

/// The extra frame: against `prefix` (a `bsdiff-elf2-zstd` entry's reference) where there
/// are extra bytes enough for it to pay — level 19 indexes the reference in about 50 ms a
/// MB (47 ms for psql's 800 KB), which a few bytes do not repay. A frame without the prefix
/// decodes the same with it, so the smaller is kept. The writer's comparison of candidates
/// and the entry it writes both come through here.
fn extra_frame(extra: &[u8], prefix: Option<&[u8]>, level: i32) -> io::Result<Vec<u8>> {
    let plain = z(extra, level)?;
    Ok(match prefix {
        Some(p) if extra.len() >= PREFIX_MIN => {
            Some(z_prefix(extra, p, level)?).filter(|z| z.len() < plain.len()).unwrap_or(plain)
        }
        _ => plain,
    })
}

/// An entry of `streams` with `diff` as its difference stream; with `prefix` (the
/// reference of a `bsdiff-elf2-zstd` entry) the extra frame compressed against it and the
/// controls written as LEB128 integers.
fn entry(streams: &Streams, diff: &[u8], level: i32, prefix: Option<&[u8]>) -> io::Result<Vec<u8>> {
    let bad = || io::Error::other("a patch stream over 4 GiB");
    let ze = extra_frame(&streams.2, prefix, level)?;
    let zc = match prefix {
        Some(_) => z(&varint_controls(controls(&streams.0)), level)?,
        None => z(&streams.0, level)?,
    };
    let zd = z(diff, level)?;
    let mut out = Vec::with_capacity(HEADER_LEN + zc.len() + zd.len() + ze.len());
    out.extend_from_slice(&u32::try_from(zc.len()).map_err(|_| bad())?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(zd.len()).map_err(|_| bad())?.to_le_bytes());
    out.extend_from_slice(&zc);
    out.extend_from_slice(&zd);
    out.extend_from_slice(&ze);
    Ok(out)
}

/// One match of `target` against `reference`: its three streams and, with `x86`, the
/// differences again against the reference translated by the controls' moves — its x86
/// operands (`bsdiff-x86-zstd`), and its ELF tables too where that changes anything
/// (`bsdiff-elf-zstd`), and against the reference translated as ELF where a member of it
/// is (`bsdiff-elf2-zstd`).
fn streams(reference: &[u8], sizes: &[u64], target: &[u8], x86: bool) -> io::Result<(Streams, Vec<Translated>)> {
    let mut patch = Vec::new();
    qbsdiff::Bsdiff::new(reference, target).compression_level(1).compare(Cursor::new(&mut patch))?;
    let bad = || io::Error::other("unexpected bsdiff output");
    if patch.len() < 32 || &patch[..8] != b"BSDIFF40" {
        return Err(bad());
    }
    let len = |at: usize| usize::try_from(decode_int(&patch[at..at + 8])).map_err(|_| bad());
    let (csize, dsize) = (len(8)?, len(16)?);
    let ctrl_end = 32usize.checked_add(csize).ok_or_else(bad)?;
    let diff_end = ctrl_end.checked_add(dsize).ok_or_else(bad)?;
    let (ctrl, diff, extra) = (
        bz(patch.get(32..ctrl_end).ok_or_else(bad)?)?,
        bz(patch.get(ctrl_end..diff_end).ok_or_else(bad)?)?,
        bz(patch.get(diff_end..).ok_or_else(bad)?)?,
    );
    if !x86 {
        return Ok(((ctrl, diff, extra), Vec::new()));
    }
    let controls: Vec<(i64, i64, i64)> =
        ctrl.chunks_exact(24).map(|c| (decode_int(&c[0..8]), decode_int(&c[8..16]), decode_int(&c[16..24]))).collect();
    let moves = Moves::from_controls(controls.iter().copied(), reference.len());
    let translated = translate(reference, &moves);
    let mut elf = translated.clone();
    hotfix_reader::elftables::translate(reference, &moves, &mut elf);
    // The differences again, against each translated reference, under the same controls.
    let differences = |translated: &[u8]| -> io::Result<Vec<u8>> {
        let mut diff2 = Vec::with_capacity(diff.len());
        let (mut old, mut new) = (0i64, 0usize);
        for &(add, copy, seek) in &controls {
            let add = usize::try_from(add).map_err(|_| bad())?;
            let copy = usize::try_from(copy).map_err(|_| bad())?;
            for k in 0..add {
                let r = usize::try_from(old + k as i64).ok().and_then(|p| translated.get(p)).copied().unwrap_or(0);
                diff2.push(target.get(new + k).ok_or_else(bad)?.wrapping_sub(r));
            }
            old += add as i64 + seek;
            new += add + copy;
        }
        if diff2.len() != diff.len() {
            return Err(bad());
        }
        Ok(diff2)
    };
    let mut out = vec![(Encoding::BsdiffX86Zstd, differences(&translated)?)];
    if elf != translated {
        out.push((Encoding::BsdiffElfZstd, differences(&elf)?));
    }
    drop((translated, elf));
    let clipped = Moves::from_controls_clipped(controls.iter().copied(), reference.len());
    let elf2 = translate_elf2(reference, sizes, &clipped);
    if elf2 != reference {
        out.push((Encoding::BsdiffElf2Zstd, differences(&elf2)?));
    }
    Ok(((ctrl, diff, extra), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8 & 0x0f
            })
            .collect()
    }

    #[test]
    fn a_patch_round_trips_and_is_small_for_a_small_change() {
        let old = build(200_000, 1);
        let mut new = old.clone();
        new.splice(1000..1000, b"inserted fix".iter().copied());
        for b in new.iter_mut().skip(50_000).step_by(4096) {
            *b ^= 0x20;
        }
        let patch = encode(&old, &new, 19).unwrap();
        assert!(patch.len() < 2_000, "patch is {} bytes", patch.len());
        assert_eq!(decode(&old, &patch, new.len() as u64, 27).unwrap(), new);
    }

    /// An elf2 entry's extra bytes that the reference holds cost next to nothing: they are
    /// compressed against it, and its controls are LEB128. The plain applier (24-byte
    /// controls, no prefix) cannot read it.
    #[test]
    fn elf2_extra_bytes_are_compressed_against_the_reference() {
        let mut x = 7u32;
        let reference: Vec<u8> = (0..65_536)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect();
        let target = [&reference[..32_768], &reference[40_000..48_192]].concat();
        let int = |v: i64| -> [u8; 8] { (v.unsigned_abs() | if v < 0 { 1 << 63 } else { 0 }).to_le_bytes() };
        let ctrl = [int(32_768), int(8192), int(0)].concat();
        let streams = (ctrl, vec![0u8; 32_768], target[32_768..].to_vec());
        let with = entry(&streams, &streams.1, 19, Some(&reference)).unwrap();
        let without = entry(&streams, &streams.1, 19, None).unwrap();
        assert!(with.len() < 300 && without.len() > 8192, "with {} without {}", with.len(), without.len());
        assert_eq!(decode_elf2(&reference, &[], &with, target.len() as u64, 27).unwrap(), target);
        assert!(decode(&reference, &with, target.len() as u64, 27).is_err());
        // The other way round: 24-byte controls read as LEB128 make other controls.
        assert_ne!(decode_elf2(&reference, &[], &without, target.len() as u64, 27).ok(), Some(target));
    }

    #[test]
    fn a_patch_that_claims_more_than_the_declared_size_is_refused() {
        let old = build(10_000, 2);
        let new = build(10_000, 3);
        let patch = encode(&old, &new, 3).unwrap();
        assert!(decode(&old, &patch, new.len() as u64 - 1, 27).unwrap_err().contains("declared"));
        assert!(decode(&old, &patch, new.len() as u64 + 1, 27).is_err());
    }

    #[test]
    fn damaged_patches_are_errors_not_panics() {
        let old = build(20_000, 4);
        let mut new = old.clone();
        new[100] = 7;
        let patch = encode(&old, &new, 3).unwrap();
        for i in 0..patch.len() {
            let mut p = patch.clone();
            p[i] ^= 0xff;
            if let Ok(out) = decode(&old, &p, new.len() as u64, 27) {
                assert_eq!(out.len(), new.len());
            }
        }
        for cut in 0..patch.len() {
            let _ = decode(&old, &patch[..cut], new.len() as u64, 27);
        }
    }
}
