//! Blob encoding for `pkgtool build` (FORMAT.md §4.4): the order blobs are stored in, the
//! delta reference each one gets, and the bytes of each entry — `zstd`, `zstd-delta`
//! (Zstandard with the reference's content as prefix, like `zstd --patch-from`),
//! `bsdiff-zstd` (see [`crate::bsdelta`]) or `stored`, whichever is smallest.
//!
//! Builds of one file differ by a fix or two, so every build of a (component, path) is
//! stored next to the others and delta-encoded against the previous one. References only
//! point backwards, chains and the bytes a streaming reader must hold stay within the
//! format's limits, and each blob is encoded on its own, so the output does not depend on
//! the number of threads.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use hotfix_schema::{Digest, Encoding, Limits, Name, RelPath};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A distinct content, the first file that has it, and the blob it is delta-encoded
/// against, if any.
#[derive(Clone, Debug)]
pub struct BlobSource {
    /// SHA-256 of the content.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// A file with this content.
    pub source: PathBuf,
    /// Index (in the arranged order) of the blob to delta-encode against.
    pub reference: Option<usize>,
}

/// One use of a content: by a component's file at a path.
pub struct Use<'a> {
    /// The component.
    pub component: &'a Name,
    /// The path.
    pub path: &'a RelPath,
    /// The content.
    pub digest: Digest,
}

/// Orders the blobs so that every build of one (component, path) is adjacent — ordered by
/// first use within it — and picks each blob's reference, within the chain, window and
/// live-memory limits: the previous build at one of its paths; or, for a first build, a
/// sibling — the nearest earlier first build in the same component and directory of
/// comparable size, which captures what solid archives gain from similar files (the
/// encoder keeps the delta only if it beats a plain frame).
pub fn arrange(mut sources: Vec<BlobSource>, uses: &[Use<'_>], limits: &Limits) -> Vec<BlobSource> {
    let mut first: HashMap<Digest, (&Name, &RelPath, usize)> = HashMap::new();
    let mut paths: HashMap<Digest, Vec<(&Name, &RelPath)>> = HashMap::new();
    for (i, u) in uses.iter().enumerate() {
        first.entry(u.digest).or_insert((u.component, u.path, i));
        paths.entry(u.digest).or_default().push((u.component, u.path));
    }
    sources.sort_by(|a, b| first.get(&a.digest).cmp(&first.get(&b.digest)));

    let window = 1u64 << limits.max_zstd_window_log.min(62);
    let mut last_at: HashMap<(&Name, &RelPath), usize> = HashMap::new();
    let mut depth = vec![0u32; sources.len()];
    // Bytes a streaming reader holds while reading each blob.
    let mut live = vec![0u64; sources.len()];
    // First builds (no reference) by (component, directory), for sibling references.
    let mut firsts: HashMap<(&Name, &str), Vec<usize>> = HashMap::new();
    for k in 0..sources.len() {
        let here = paths.get(&sources[k].digest).map(Vec::as_slice).unwrap_or_default();
        let size = sources[k].size;
        let sibling_key = here.first().map(|(c, p)| (*c, parent_dir(p)));
        let candidate = here.iter().find_map(|p| last_at.get(p).copied()).or_else(|| {
            let comparable = |r: &usize| {
                let rs = sources[*r].size;
                rs <= size.saturating_mul(SIBLING_SIZE_RATIO) && size <= rs.saturating_mul(SIBLING_SIZE_RATIO)
            };
            sibling_key.and_then(|key| firsts.get(&key)).and_then(|v| v.iter().rev().copied().find(comparable))
        });
        if let Some(r) = candidate {
            let size = sources[r].size;
            let fits_window = size.saturating_add(sources[k].size) <= window;
            let fits_chain = depth[r] < limits.max_delta_depth;
            // Held from when `r` is read until `k` is decoded (FORMAT.md §4.3.8).
            let peak = live[r..=k].iter().max().copied().unwrap_or(0);
            let fits_memory = peak.saturating_add(size) <= limits.max_live_reference_bytes;
            if fits_window && fits_chain && fits_memory {
                sources[k].reference = Some(r);
                depth[k] = depth[r] + 1;
                for l in &mut live[r..=k] {
                    *l += size;
                }
            }
        }
        if sources[k].reference.is_none()
            && let Some(key) = sibling_key
        {
            firsts.entry(key).or_default().push(k);
        }
        for p in here {
            last_at.insert(*p, k);
        }
    }
    sources
}

/// The directory part of a path (`""` at the top).
fn parent_dir(path: &RelPath) -> &str {
    path.as_str().rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// A sibling reference is at most this many times larger or smaller than its user: zstd
/// indexes the whole reference for every delta, so a large one would cost more time than
/// a small file can repay.
const SIBLING_SIZE_RATIO: u64 = 4;

/// Bytes of a large blob compressed at [`PROBE_LEVEL`] to decide how to encode it; blobs of
/// at most twice this size are not probed.
const PROBE_BYTES: usize = 1 << 20;
/// A fast Zstandard level for probes, and for content that does not compress.
const PROBE_LEVEL: i32 = 3;
/// A sample that a fast level shrinks by less than 3% is treated as incompressible.
const INCOMPRESSIBLE: f64 = 0.97;
/// A delta is attempted at the full level only if, on the sample, it is at least 10%
/// smaller than a plain frame.
const DELTA_WORTH: f64 = 0.9;

/// Smallest blob for which a bsdiff delta is also tried.
const BSDIFF_MIN_BYTES: usize = 64 << 10;

/// One blob, encoded for its entry.
pub struct Encoded {
    /// The encoding chosen.
    pub encoding: Encoding,
    /// The reference, for `zstd-delta`.
    pub reference: Option<Digest>,
    /// CRC-32 of the content.
    pub crc32: u32,
    /// The entry's bytes.
    pub data: Vec<u8>,
}

fn read_checked(src: &BlobSource) -> Result<Vec<u8>> {
    let data = fs::read(&src.source).map_err(Error::io(&src.source))?;
    if Digest(Sha256::digest(&data).into()) != src.digest {
        return Err(Error::Refused {
            path: src.source.clone(),
            msg: "changed while the package was being built".into(),
        });
    }
    Ok(data)
}

fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_checksum(false)?;
    c.include_contentsize(true)?;
    c.compress(data)
}

/// `zstd --patch-from`: the reference is the prefix, the window covers both, long-distance
/// matching finds the shared parts.
fn compress_delta(data: &[u8], reference: &[u8], level: i32, max_window_log: u32) -> io::Result<Vec<u8>> {
    let total = (data.len() + reference.len()).max(2);
    let window_log = (usize::BITS - (total - 1).leading_zeros()).clamp(10, max_window_log);
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(Vec::with_capacity(data.len() / 4), level, reference)?;
    enc.include_checksum(false)?;
    enc.include_contentsize(true)?;
    enc.set_pledged_src_size(Some(data.len() as u64))?;
    enc.window_log(window_log)?;
    enc.long_distance_matching(true)?;
    enc.write_all(data)?;
    enc.finish()
}

/// Encodes blob `k` of the arranged `all`: a delta when it has a reference and that pays,
/// otherwise plain Zstandard, or the content itself when compression does not shrink it.
fn encode(all: &[BlobSource], k: usize, level: i32, limits: &Limits) -> Result<Encoded> {
    let src = &all[k];
    let data = read_checked(src)?;
    let crc32 = crc32fast::hash(&data);
    let io_err = Error::io(&src.source);
    let mut best: Option<(Encoding, Option<Digest>, Vec<u8>)> = None;
    // Large blobs are probed on a sample at a fast level first, so that level 19 is not
    // spent on content that does not compress or on a reference it does not resemble.
    let sample = data.get(..PROBE_BYTES).filter(|_| data.len() > 2 * PROBE_BYTES);
    let fast = |d: &[u8]| compress(d, PROBE_LEVEL).map(|z| z.len()).map_err(Error::io(&src.source));
    let plain_level = match sample {
        Some(s) if fast(s)? as f64 > s.len() as f64 * INCOMPRESSIBLE => PROBE_LEVEL,
        _ => level,
    };
    let reference = match (src.reference.and_then(|r| all.get(r)), sample) {
        (Some(r), Some(s)) => {
            let reference = read_checked(r)?;
            let delta = compress_delta(s, &reference, PROBE_LEVEL, limits.max_zstd_window_log)
                .map_err(Error::io(&src.source))?
                .len();
            (delta as f64 <= fast(s)? as f64 * DELTA_WORTH).then_some((r, reference))
        }
        (Some(r), None) => Some((r, read_checked(r)?)),
        (None, _) => None,
    };
    if let Some((r, reference)) = reference {
        let z = compress_delta(&data, &reference, level, limits.max_zstd_window_log).map_err(Error::io(&src.source))?;
        best = Some((Encoding::ZstdDelta, Some(r.digest), z));
        // bsdiff pays on executables whose code moved; below this size it rarely matters.
        if data.len() >= BSDIFF_MIN_BYTES {
            let b = crate::bsdelta::encode(&reference, &data, level).map_err(Error::io(&src.source))?;
            if best.as_ref().is_none_or(|(_, _, z)| b.len() < z.len()) {
                best = Some((Encoding::BsdiffZstd, Some(r.digest), b));
            }
        }
    }
    // A delta that saves less than half is worth comparing with a plain frame.
    if best.as_ref().is_none_or(|(_, _, z)| z.len() > data.len() / 2) {
        let z = compress(&data, plain_level).map_err(io_err)?;
        if best.as_ref().is_none_or(|(_, _, d)| z.len() < d.len()) {
            best = Some((Encoding::Zstd, None, z));
        }
    }
    Ok(match best {
        Some((encoding, reference, z)) if z.len() < data.len() => Encoded { encoding, reference, crc32, data: z },
        _ => Encoded { encoding: Encoding::Stored, reference: None, crc32, data },
    })
}

/// Encodes `all[range]` on `threads` threads; results come back in order.
pub fn encode_range(
    all: &[BlobSource],
    range: std::ops::Range<usize>,
    level: i32,
    threads: usize,
    limits: &Limits,
) -> Result<Vec<Encoded>> {
    let next = AtomicUsize::new(range.start);
    let chunks: Vec<Vec<(usize, Result<Encoded>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= range.end {
                            break;
                        }
                        done.push((k, encode(all, k, level, limits)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut results: Vec<Option<Result<Encoded>>> = range.clone().map(|_| None).collect();
    for (k, r) in chunks.into_iter().flatten() {
        results[k - range.start] = Some(r);
    }
    results
        .into_iter()
        .zip(&all[range])
        .map(|(r, src)| {
            r.unwrap_or_else(|| {
                Err(Error::Refused { path: src.source.clone(), msg: "compression thread failed".into() })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(n: u8, size: u64) -> BlobSource {
        BlobSource { digest: Digest([n; 32]), size, source: PathBuf::from(format!("/nowhere/{n}")), reference: None }
    }

    /// Arranges blobs used at (path, digest) in that order by one component; returns each
    /// digest's reference digest, in the arranged order.
    fn plan(files: &[(&str, u8, u64)]) -> Vec<(u8, Option<u8>)> {
        let component = Name::new("c").unwrap();
        let paths: Vec<RelPath> = files.iter().map(|(p, _, _)| RelPath::new(p).unwrap()).collect();
        let uses: Vec<Use<'_>> = files
            .iter()
            .zip(&paths)
            .map(|((_, n, _), path)| Use { component: &component, path, digest: Digest([*n; 32]) })
            .collect();
        let mut sources: Vec<BlobSource> = Vec::new();
        for (_, n, size) in files {
            if !sources.iter().any(|s| s.digest.0[0] == *n) {
                sources.push(src(*n, *size));
            }
        }
        let arranged = arrange(sources, &uses, &Limits::default());
        arranged.iter().map(|s| (s.digest.0[0], s.reference.map(|r| arranged[r].digest.0[0]))).collect()
    }

    #[test]
    fn builds_of_one_path_are_adjacent_and_chained() {
        // gdr a.so (1), gdr b.so (2), ldr a.so (3), ldr b.so (4).
        let got = plan(&[("lib/a.so", 1, 100), ("etc/b.conf", 2, 10), ("lib/a.so", 3, 100), ("etc/b.conf", 4, 10)]);
        assert_eq!(got, vec![(2, None), (4, Some(2)), (1, None), (3, Some(1))]);
    }

    #[test]
    fn a_first_build_references_a_comparable_sibling_in_its_directory() {
        let got =
            plan(&[("gconv/A.so", 1, 100), ("gconv/B.so", 2, 150), ("gconv/HUGE.so", 3, 1000), ("other/C.so", 4, 100)]);
        assert_eq!(got, vec![(1, None), (2, Some(1)), (3, None), (4, None)]);
    }

    #[test]
    fn chains_stop_at_the_depth_limit() {
        let files: Vec<(&str, u8, u64)> = (1..=7).map(|n| ("lib/a.so", n, 100)).collect();
        let got = plan(&files);
        let depth_limit = Limits::default().max_delta_depth as usize;
        assert_eq!(got[depth_limit].1, Some(depth_limit as u8), "the 4th delta is still allowed");
        assert_eq!(got[depth_limit + 1].1, None, "the 5th would be a chain of 5");
    }
}
