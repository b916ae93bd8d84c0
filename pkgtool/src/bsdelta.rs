//! The `bsdiff-zstd` blob encoder (FORMAT.md §4.4; the layout and the applier are
//! [`hotfix_reader::bsdelta`]). The matcher is the `qbsdiff` crate's; its bzip2-compressed
//! output is re-encoded as three Zstandard frames here. For executables the same match
//! also gives a `bsdiff-x86-zstd` patch: the differences taken again against the
//! reference with its relative operands translated by the controls' moves
//! ([`hotfix_reader::bsdelta::translate`]), and for x86-64 ELF files a
//! `bsdiff-elf2-zstd` patch: the differences against the reference translated as ELF
//! ([`hotfix_reader::elftables::translate2`]), the extra bytes against the reference; and
//! a `bsdiff-elf3-zstd` patch: the same with each relative value predicted from the last
//! one decoded with its target ([`hotfix_reader::bsdelta::Learner`]) and the extra bytes'
//! operands absolute. Where the first match leaves many extra bytes, ELF targets are
//! matched a second time, against the translated reference.

use std::io::{self, Cursor, Read};

pub use hotfix_reader::bsdelta::decode;
use hotfix_reader::bsdelta::{
    HEADER_LEN, Learner, Moves, absolute_operands, absolute_prefix, decode_int, translate, translate_elf2,
    translate_elf3, varint_controls,
};
pub use hotfix_reader::bsdelta::{decode_elf, decode_elf2, decode_elf3, decode_x86};
use hotfix_reader::elftables::Site;
use hotfix_schema::Encoding;

use crate::encode::both;

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

/// An ELF target whose first match leaves at least this many extra bytes is matched
/// again against the translated reference (python3.11's 715 KB of extra bytes: 532 KB,
/// its entry 647 → 577 KB, for a second match of 0.5 s; dig's none: nothing to gain).
const REMATCH_MIN: usize = 1024;

/// The second match (against the translated reference) starts matches only from exact
/// matches longer than this (bsdiff's own is 12): there, true matches run long, and a
/// short one saves fewer bytes than its control costs (python3.11's elf3 entry 9 KB
/// smaller than at 12, postgresql's and libperl's a few hundred bytes; bind9-libs' 300
/// bytes larger).
const SECOND_SEED: usize = 16;

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
    let (streams, candidates) = streams(reference, &[], target, x86, false)?;
    let plain = entry(&streams.0, &streams.1, &streams.2, level, None)?;
    let x86 = match candidates.iter().find(|c| c.encoding == Encoding::BsdiffX86Zstd) {
        Some(c) => Some(c.entry(&streams, level, reference)?),
        None => None,
    };
    Ok((plain, x86))
}

/// The `bsdiff-elf-zstd` entry of `target` against `reference`, if the reference is an
/// x86-64 ELF file whose tables the translation changes.
pub fn encode_elf(reference: &[u8], target: &[u8], level: i32) -> io::Result<Option<Vec<u8>>> {
    let (streams, candidates) = streams(reference, &[], target, true, false)?;
    match candidates.iter().find(|c| c.encoding == Encoding::BsdiffElfZstd) {
        Some(c) => Ok(Some(c.entry(&streams, level, reference)?)),
        None => Ok(None),
    }
}

/// The smallest `bsdiff-elf2-zstd` entry of `target` against `reference` (`sizes`: the
/// reference pack's member sizes, empty for one file), if a member of the reference is
/// x86-64 ELF: from the first match, or from the second against the translated reference
/// where the first left extra bytes enough.
pub fn encode_elf2(reference: &[u8], sizes: &[u64], target: &[u8], level: i32) -> io::Result<Option<Vec<u8>>> {
    encode_elf2_matched(reference, sizes, target, level, true)
}

/// [`encode_elf2`], with `again` false from the first match alone (what a second match
/// gains is measured against it).
pub fn encode_elf2_matched(
    reference: &[u8],
    sizes: &[u64],
    target: &[u8],
    level: i32,
    again: bool,
) -> io::Result<Option<Vec<u8>>> {
    let (streams, candidates) = streams(reference, sizes, target, true, again)?;
    let mut best: Option<(usize, &Candidate)> = None;
    for c in candidates.iter().filter(|c| c.encoding == Encoding::BsdiffElf2Zstd) {
        let n = c.fast_size(&streams, reference)?;
        if best.is_none_or(|b| n < b.0) {
            best = Some((n, c));
        }
    }
    best.map(|(_, c)| c.entry(&streams, level, reference)).transpose()
}

/// The smallest bsdiff entry of `target` against `reference` (`sizes`: the reference
/// pack's member sizes, empty for one file), with its encoding: `bsdiff-zstd`, or with
/// `x86` also `bsdiff-x86-zstd` and, for an x86-64 ELF reference (or pack member),
/// `bsdiff-elf-zstd` and `bsdiff-elf2-zstd`. The candidates are compared at a fast level,
/// and only the smallest is compressed at `level` (a difference stream is as long as the
/// target).
pub fn encode_best(
    reference: &[u8],
    sizes: &[u64],
    target: &[u8],
    level: i32,
    x86: bool,
) -> io::Result<(Encoding, Vec<u8>)> {
    let (streams, candidates) = streams(reference, sizes, target, x86, true)?;
    let plain = z(&streams.0, FAST_LEVEL)?.len()
        + z(&streams.1, FAST_LEVEL)?.len()
        + extra_frame(&streams.2, None, FAST_LEVEL)?.len();
    let mut best: (usize, Option<&Candidate>) = (plain, None);
    for c in &candidates {
        let n = c.fast_size(&streams, reference)?;
        if n < best.0 {
            best = (n, Some(c));
        }
    }
    match best.1 {
        Some(c) => Ok((c.encoding, c.entry(&streams, level, reference)?)),
        None => Ok((Encoding::BsdiffZstd, entry(&streams.0, &streams.1, &streams.2, level, None)?)),
    }
}

/// An entry other than `bsdiff-zstd` the match can make: its encoding, its difference
/// stream against the translated reference, and its own controls (where it was matched
/// again), extra bytes (matched again, or transformed) and extra frame prefix (elf3), else
/// the match's and the reference.
struct Candidate {
    encoding: Encoding,
    diff: Vec<u8>,
    ctrl: Option<Vec<u8>>,
    extra: Option<Vec<u8>>,
    prefix: Option<Vec<u8>>,
}

impl Candidate {
    /// Its controls and extra bytes.
    fn parts<'a>(&'a self, streams: &'a Streams) -> (&'a [u8], &'a [u8]) {
        (self.ctrl.as_deref().unwrap_or(&streams.0), self.extra.as_deref().unwrap_or(&streams.2))
    }

    /// What elf2 and elf3 entries do differently: a prefix for the extra frame (and
    /// LEB128 controls).
    fn prefix<'a>(&'a self, reference: &'a [u8]) -> Option<&'a [u8]> {
        match self.encoding {
            Encoding::BsdiffElf2Zstd => Some(reference),
            Encoding::BsdiffElf3Zstd => self.prefix.as_deref(),
            _ => None,
        }
    }

    /// Its size with every frame at the fast level.
    fn fast_size(&self, streams: &Streams, reference: &[u8]) -> io::Result<usize> {
        let (ctrl, extra) = self.parts(streams);
        let prefix = self.prefix(reference);
        let ctrl = match prefix {
            Some(_) => z(&varint_controls(controls(ctrl)), FAST_LEVEL)?.len(),
            None => z(ctrl, FAST_LEVEL)?.len(),
        };
        Ok(ctrl + z(&self.diff, FAST_LEVEL)?.len() + extra_frame(extra, prefix, FAST_LEVEL)?.len())
    }

    /// Its entry, every frame at `level`.
    fn entry(&self, streams: &Streams, level: i32, reference: &[u8]) -> io::Result<Vec<u8>> {
        let (ctrl, extra) = self.parts(streams);
        entry(ctrl, &self.diff, extra, level, self.prefix(reference))
    }
}

/// The level the two difference streams are compared at.
const FAST_LEVEL: i32 = 3;

/// A patch's three streams, uncompressed: controls, differences, extra bytes.
type Streams = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The controls of a BSDIFF40 control stream.
fn controls(ctrl: &[u8]) -> impl Iterator<Item = (i64, i64, i64)> + '_ {
    ctrl.chunks_exact(24).map(|c| (decode_int(&c[0..8]), decode_int(&c[8..16]), decode_int(&c[16..24])))
}

/// The extra frame: against `prefix` (a `bsdiff-elf2-zstd` entry's reference, a
/// `bsdiff-elf3-zstd` entry's reference with its operands absolute) where there
/// are extra bytes enough for it to pay — level 19 indexes the reference in about 50 ms a
/// MB (47 ms for psql's 800 KB), which a few bytes do not repay. A frame without the prefix
/// decodes the same with it, so the one that is smaller at the fast level is made. The
/// writer's comparison of candidates and the entry it writes both come through here.
fn extra_frame(extra: &[u8], prefix: Option<&[u8]>, level: i32) -> io::Result<Vec<u8>> {
    let prefix = match prefix {
        Some(p) if extra.len() >= PREFIX_MIN => {
            // Which is smaller is decided at the fast level: at level 19, indexing the
            // reference is most of the time, and one frame is made.
            let (with, plain) = both(|| z_prefix(extra, p, FAST_LEVEL), || z(extra, FAST_LEVEL));
            let (with, plain) = (with?, plain?);
            if level <= FAST_LEVEL {
                return Ok(if with.len() < plain.len() { with } else { plain });
            }
            Some(p).filter(|_| with.len() < plain.len())
        }
        _ => None,
    };
    match prefix {
        Some(p) => z_prefix(extra, p, level),
        None => z(extra, level),
    }
}

/// An entry of these streams; with `prefix` (an elf2 or elf3 entry's) the extra frame
/// compressed against it and the controls written as LEB128 integers.
fn entry(ctrl: &[u8], diff: &[u8], extra: &[u8], level: i32, prefix: Option<&[u8]>) -> io::Result<Vec<u8>> {
    let bad = || io::Error::other("a patch stream over 4 GiB");
    // The extra frame beside the other two (a large reference makes it the slowest).
    let (ze, zcd) = both(
        || extra_frame(extra, prefix, level),
        || -> io::Result<(Vec<u8>, Vec<u8>)> {
            let zc = match prefix {
                Some(_) => z(&varint_controls(controls(ctrl)), level)?,
                None => z(ctrl, level)?,
            };
            Ok((zc, z(diff, level)?))
        },
    );
    let (ze, (zc, zd)) = (ze?, zcd?);
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
/// is (`bsdiff-elf2-zstd`, `bsdiff-elf3-zstd`; with `again`, from a second match too
/// where the first left [`REMATCH_MIN`] extra bytes).
fn streams(
    reference: &[u8],
    sizes: &[u64],
    target: &[u8],
    x86: bool,
    again: bool,
) -> io::Result<(Streams, Vec<Candidate>)> {
    let (ctrl, diff, extra) = matched(reference, target, qbsdiff::bsdiff::SMALL_MATCH)?;
    if !x86 {
        return Ok(((ctrl, diff, extra), Vec::new()));
    }
    let controls: Vec<(i64, i64, i64)> = controls(&ctrl).collect();
    let moves = Moves::from_controls(controls.iter().copied(), reference.len());
    let translated = translate(reference, &moves);
    let mut elf = translated.clone();
    hotfix_reader::elftables::translate(reference, &moves, &mut elf);
    let candidate = |encoding, diff| Candidate { encoding, diff, ctrl: None, extra: None, prefix: None };
    let mut out = vec![candidate(Encoding::BsdiffX86Zstd, differences(&controls, &translated, target, diff.len())?)];
    if elf != translated {
        out.push(candidate(Encoding::BsdiffElfZstd, differences(&controls, &elf, target, diff.len())?));
    }
    drop((translated, elf));
    let clipped = Moves::from_controls_clipped(controls.iter().copied(), reference.len());
    let elf2 = translate_elf2(reference, sizes, &clipped);
    if elf2 != reference {
        out.extend(elf_candidates(&controls, &clipped, reference, sizes, &elf2, target, None)?);
        if again && extra.len() >= REMATCH_MIN {
            // Matched again, against the reference as translated: its operands already
            // say what the target's do, so matches run through them. The applier derives
            // its translation from the new controls, so the differences are taken against
            // that (it differs from `elf2` only where the moves did).
            let (ctrl2, _, extra2) = matched(&elf2, target, SECOND_SEED)?;
            drop(elf2);
            let controls2: Vec<(i64, i64, i64)> = self::controls(&ctrl2).collect();
            let clipped2 = Moves::from_controls_clipped(controls2.iter().copied(), reference.len());
            let against = translate_elf2(reference, sizes, &clipped2);
            out.extend(elf_candidates(
                &controls2,
                &clipped2,
                reference,
                sizes,
                &against,
                target,
                Some((ctrl2, extra2)),
            )?);
        }
    }
    Ok(((ctrl, diff, extra), out))
}

/// The `bsdiff-elf2-zstd` and `bsdiff-elf3-zstd` candidates of one match (`own`: its
/// controls and extra bytes, if not the first match's), `elf2` being the reference as
/// `bsdiff-elf2-zstd` translates it under `controls` (whose moves are `moves`).
fn elf_candidates(
    controls: &[(i64, i64, i64)],
    moves: &Moves,
    reference: &[u8],
    sizes: &[u64],
    elf2: &[u8],
    target: &[u8],
    own: Option<(Vec<u8>, Vec<u8>)>,
) -> io::Result<[Candidate; 2]> {
    let bad = || io::Error::other("unexpected bsdiff output");
    let len = controls.iter().try_fold(0usize, |n, c| usize::try_from(c.0).ok().and_then(|a| n.checked_add(a)));
    let len = len.ok_or_else(bad)?;
    let diff = differences(controls, elf2, target, len)?;
    let (mut sites, mut code) = (Vec::new(), Vec::new());
    let elf3 = translate_elf3(reference, sizes, moves, &mut sites, &mut code);
    let learned = learned_differences(controls, differences(controls, &elf3, target, len)?, &sites, target)?;
    // The extra bytes with their relative operands absolute, run by run.
    let mut extra = Vec::new();
    let mut new = 0usize;
    for &(add, copy, _) in controls {
        let start = new.checked_add(usize::try_from(add).map_err(|_| bad())?).ok_or_else(bad)?;
        new = start.checked_add(usize::try_from(copy).map_err(|_| bad())?).ok_or_else(bad)?;
        let at = extra.len();
        extra.extend_from_slice(target.get(start..new).ok_or_else(bad)?);
        absolute_operands(&mut extra[at..], start, true);
    }
    let (ctrl, own_extra) = match own {
        Some((c, e)) => (Some(c), Some(e)),
        None => (None, None),
    };
    Ok([
        Candidate { encoding: Encoding::BsdiffElf2Zstd, diff, ctrl: ctrl.clone(), extra: own_extra, prefix: None },
        Candidate {
            encoding: Encoding::BsdiffElf3Zstd,
            diff: learned,
            ctrl,
            extra: Some(extra),
            prefix: Some(absolute_prefix(&elf3, &code, moves)),
        },
    ])
}

/// `bsdiff-elf3-zstd`'s differences: `diff` (against the translation) with each site the
/// [`Learner`] predicts taken against its prediction instead, learning from the target as
/// the applier will from its output.
fn learned_differences(
    controls: &[(i64, i64, i64)],
    mut diff: Vec<u8>,
    sites: &[Site],
    target: &[u8],
) -> io::Result<Vec<u8>> {
    let bad = || io::Error::other("unexpected bsdiff output");
    let mut learner = Learner::new(sites);
    let (mut old, mut new, mut at) = (0i64, 0usize, 0usize);
    for &(add, copy, seek) in controls {
        let add = usize::try_from(add).map_err(|_| bad())?;
        let copy = usize::try_from(copy).map_err(|_| bad())?;
        let run_diff = diff.get_mut(at..at + add).ok_or_else(bad)?;
        let run_target = target.get(new..new + add).ok_or_else(bad)?;
        learner.run(old, new, add, |offset, predicted| {
            let t = [run_target[offset], run_target[offset + 1], run_target[offset + 2], run_target[offset + 3]];
            if let Some(p) = predicted {
                for i in 0..4 {
                    run_diff[offset + i] = t[i].wrapping_sub(p[i]);
                }
            }
            t
        });
        at += add;
        old += add as i64 + seek;
        new += add + copy;
    }
    Ok(diff)
}

/// bsdiff's match of `target` against `reference`: its three streams, uncompressed (`seed`:
/// exact matches this long or shorter do not start a match).
fn matched(reference: &[u8], target: &[u8], seed: usize) -> io::Result<Streams> {
    let mut patch = Vec::new();
    qbsdiff::Bsdiff::new(reference, target).small_match(seed).compression_level(1).compare(Cursor::new(&mut patch))?;
    let bad = || io::Error::other("unexpected bsdiff output");
    if patch.len() < 32 || &patch[..8] != b"BSDIFF40" {
        return Err(bad());
    }
    let len = |at: usize| usize::try_from(decode_int(&patch[at..at + 8])).map_err(|_| bad());
    let (csize, dsize) = (len(8)?, len(16)?);
    let ctrl_end = 32usize.checked_add(csize).ok_or_else(bad)?;
    let diff_end = ctrl_end.checked_add(dsize).ok_or_else(bad)?;
    Ok((
        bz(patch.get(32..ctrl_end).ok_or_else(bad)?)?,
        bz(patch.get(ctrl_end..diff_end).ok_or_else(bad)?)?,
        bz(patch.get(diff_end..).ok_or_else(bad)?)?,
    ))
}

/// The difference stream of `target` against `translated` under `controls` (`len` bytes).
fn differences(controls: &[(i64, i64, i64)], translated: &[u8], target: &[u8], len: usize) -> io::Result<Vec<u8>> {
    let bad = || io::Error::other("unexpected bsdiff output");
    let mut diff2 = Vec::with_capacity(len);
    let (mut old, mut new) = (0i64, 0usize);
    for &(add, copy, seek) in controls {
        let add = usize::try_from(add).map_err(|_| bad())?;
        let copy = usize::try_from(copy).map_err(|_| bad())?;
        for k in 0..add {
            let r = usize::try_from(old + k as i64).ok().and_then(|p| translated.get(p)).copied().unwrap_or(0);
            diff2.push(target.get(new + k).ok_or_else(bad)?.wrapping_sub(r));
        }
        old += add as i64 + seek;
        new += add + copy;
    }
    if diff2.len() != len {
        return Err(bad());
    }
    Ok(diff2)
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
        let with = entry(&streams.0, &streams.1, &streams.2, 19, Some(&reference)).unwrap();
        let without = entry(&streams.0, &streams.1, &streams.2, 19, None).unwrap();
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
