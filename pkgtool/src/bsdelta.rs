//! The `bsdiff-zstd` blob encoder (FORMAT.md §4.4; the layout and the applier are
//! [`hotfix_reader::bsdelta`]). The matcher is the `qbsdiff` crate's; its bzip2-compressed
//! output is re-encoded as three Zstandard frames here.

use std::io::{self, Cursor, Read};

pub use hotfix_reader::bsdelta::decode;
use hotfix_reader::bsdelta::{HEADER_LEN, decode_int};

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

/// Encodes `target` against `reference`.
pub fn encode(reference: &[u8], target: &[u8], level: i32) -> io::Result<Vec<u8>> {
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
        patch.get(32..ctrl_end).ok_or_else(bad)?,
        patch.get(ctrl_end..diff_end).ok_or_else(bad)?,
        patch.get(diff_end..).ok_or_else(bad)?,
    );
    let (ctrl, diff, extra) = (z(&bz(ctrl)?, level)?, z(&bz(diff)?, level)?, z(&bz(extra)?, level)?);
    let mut out = Vec::with_capacity(HEADER_LEN + ctrl.len() + diff.len() + extra.len());
    out.extend_from_slice(&u32::try_from(ctrl.len()).map_err(|_| bad())?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(diff.len()).map_err(|_| bad())?.to_le_bytes());
    out.extend_from_slice(&ctrl);
    out.extend_from_slice(&diff);
    out.extend_from_slice(&extra);
    Ok(out)
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
