//! Blob encoding for `pkgtool build` (FORMAT.md §4.4): the order blobs are stored in, the
//! delta reference each one gets, and the bytes of each entry — `zstd`, `zstd-delta`
//! (Zstandard with the reference's content as prefix, like `zstd --patch-from`),
//! `bsdiff-zstd` or `bsdiff-x86-zstd` (see [`crate::bsdelta`]), `lzma`, `lzma-x86` or
//! `stored`, whichever is smallest.
//!
//! Builds of one file differ by a fix or two, so every build of a (component, path) is
//! stored next to the others and delta-encoded against the previous one. References only
//! point backwards, chains and the bytes a streaming reader must hold stay within the
//! format's limits, and each blob is encoded on its own, so the output does not depend on
//! the number of threads.

use std::collections::HashMap;

use hotfix_reader::gz::parse as parse_gzip;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, mpsc};

use hotfix_schema::{Digest, Encoding, Limits, Name, RelPath};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// One blob to write: a distinct content (the first file that has it, and what it is
/// delta-encoded against, if anything) or a pack of several small contents.
#[derive(Clone, Debug)]
pub struct BlobSource {
    /// SHA-256 of the content; for a pack, of its members' concatenation (see
    /// [`seal_packs`]).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// A file with this content; for a pack, its first member's.
    pub source: PathBuf,
    /// The content to delta-encode against.
    pub reference: Option<RefTo>,
    /// For a pack: its members, in order.
    pub members: Vec<PackMember>,
}

impl BlobSource {
    /// A blob of one content, from `source`.
    pub fn single(digest: Digest, size: u64, source: PathBuf) -> Self {
        BlobSource { digest, size, source, reference: None, members: Vec::new() }
    }
}

/// A delta reference: a content of an earlier blob.
#[derive(Clone, Debug)]
pub struct RefTo {
    /// Index (in the arranged order) of the blob that holds it.
    pub blob: usize,
    /// The content's hash.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// A file with this content.
    pub source: PathBuf,
    /// Whether it is a whole pack, `blob` (its hash is known once the pack is sealed).
    pub whole: bool,
    /// Whether it is a *sibling* (another file's first build), not an earlier build of
    /// the same file.
    pub sibling: bool,
}

/// One content of a pack.
#[derive(Clone, Debug)]
pub struct PackMember {
    /// SHA-256 of the content.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// A file with this content.
    pub source: PathBuf,
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
/// first use within it — packs small first builds, and picks each blob's reference,
/// within the chain, window and live-memory limits.
///
/// * First builds (contents whose paths have no earlier build) of at most
///   [`PACK_MEMBER_MAX`] bytes are packed per component, up to [`PACK_TARGET`] bytes a
///   pack, when `pack` is set: compressed together they share one context, which is what
///   solid archives gain on many similar small files. A pack stands where its first
///   member stood, so later builds of its members still reference backwards.
/// * Every other blob references the previous build at one of its paths; or, for a first
///   build, a sibling — the nearest earlier unpacked first build in the same component
///   and directory of comparable size (the encoder keeps the delta only if it beats a
///   plain encoding).
pub fn arrange(mut sources: Vec<BlobSource>, uses: &[Use<'_>], limits: &Limits, pack: bool) -> Vec<BlobSource> {
    let mut first: HashMap<Digest, (&Name, &RelPath, usize)> = HashMap::new();
    let mut paths: HashMap<Digest, Vec<(&Name, &RelPath)>> = HashMap::new();
    for (i, u) in uses.iter().enumerate() {
        first.entry(u.digest).or_insert((u.component, u.path, i));
        paths.entry(u.digest).or_default().push((u.component, u.path));
    }
    sources.sort_by(|a, b| first.get(&a.digest).cmp(&first.get(&b.digest)));
    if pack {
        sources = pack_small(sources, &paths, limits);
    }

    let window = 1u64 << limits.max_zstd_window_log.min(62);
    // Where the latest build at each path is: (blob index, content, size, file).
    let mut last_at: HashMap<(&Name, &RelPath), (usize, Digest, u64, PathBuf)> = HashMap::new();
    let mut depth = vec![0u32; sources.len()];
    // Bytes a streaming reader holds while reading each blob.
    let mut live = vec![0u64; sources.len()];
    // Unpacked first builds by (component, directory), for sibling references.
    let mut firsts: HashMap<(&Name, &str), Vec<usize>> = HashMap::new();
    for k in 0..sources.len() {
        if !sources[k].members.is_empty() {
            if let Some(r) = sources[k].reference.clone() {
                let fits_window = r.size.saturating_add(sources[k].size) <= window;
                let fits_chain = depth[r.blob] < limits.max_delta_depth;
                let peak = live[r.blob..=k].iter().max().copied().unwrap_or(0);
                if fits_window && fits_chain && peak.saturating_add(r.size) <= limits.max_live_reference_bytes {
                    depth[k] = depth[r.blob] + 1;
                    for l in &mut live[r.blob..=k] {
                        *l += r.size;
                    }
                } else {
                    sources[k].reference = None;
                }
            }
            let members: Vec<(Digest, u64, PathBuf)> =
                sources[k].members.iter().map(|m| (m.digest, m.size, m.source.clone())).collect();
            for (d, size, source) in members {
                for p in paths.get(&d).map(Vec::as_slice).unwrap_or_default() {
                    last_at.insert(*p, (k, d, size, source.clone()));
                }
            }
            continue;
        }
        let here = paths.get(&sources[k].digest).map(Vec::as_slice).unwrap_or_default();
        let size = sources[k].size;
        let sibling_key = here.first().map(|(c, p)| (*c, parent_dir(p)));
        let name = here.first().map_or("", |(_, p)| file_name(p));
        let own = here.iter().find_map(|p| last_at.get(p).cloned());
        let sibling = own.is_none();
        let candidate = own.or_else(|| {
            let comparable = |r: &usize| {
                let rs = sources[*r].size;
                rs <= size.saturating_mul(SIBLING_SIZE_RATIO) && size <= rs.saturating_mul(SIBLING_SIZE_RATIO)
            };
            // The sibling whose file name shares the longest start with this one's (a
            // renamed build: libisc-9.18.49-1~deb12u3-Debian.so after …u1…), the nearest
            // of those.
            let likeness = |r: usize| {
                let other = paths.get(&sources[r].digest).and_then(|v| v.first()).map_or("", |(_, p)| file_name(p));
                common_prefix(name, other)
            };
            // A sibling leaves one link of the chain for this build's own later builds
            // (its LDR or service-pack build references it in turn).
            let leaves_room = |r: &usize| depth[*r] + 2 <= limits.max_delta_depth;
            sibling_key
                .and_then(|key| firsts.get(&key))
                .and_then(|v| {
                    v.iter().rev().copied().filter(comparable).filter(leaves_room).max_by_key(|&r| (likeness(r), r))
                })
                .map(|r| (r, sources[r].digest, sources[r].size, sources[r].source.clone()))
        });
        if let Some((r, digest, ref_size, source)) = candidate {
            let fits_window = ref_size.saturating_add(size) <= window;
            let fits_chain = depth[r] < limits.max_delta_depth;
            // Held from when `r` is read until `k` is decoded (FORMAT.md §4.3.8).
            let peak = live[r..=k].iter().max().copied().unwrap_or(0);
            let fits_memory = peak.saturating_add(ref_size) <= limits.max_live_reference_bytes;
            if fits_window && fits_chain && fits_memory {
                sources[k].reference = Some(RefTo { blob: r, digest, size: ref_size, source, whole: false, sibling });
                depth[k] = depth[r] + 1;
                for l in &mut live[r..=k] {
                    *l += ref_size;
                }
            }
        }
        // A first build at its path is a sibling for later first builds, whether or not it
        // has a reference itself (the chain limit bounds what follows from that).
        if here.iter().all(|p| !last_at.contains_key(p))
            && let Some(key) = sibling_key
        {
            firsts.entry(key).or_default().push(k);
        }
        for p in here {
            last_at.insert(*p, (k, sources[k].digest, size, sources[k].source.clone()));
        }
    }
    sources
}

/// Contents of at most this many bytes are packed when they are first builds.
pub const PACK_MEMBER_MAX: u64 = 256 << 10;
/// Packs are closed at this many bytes: reading one member decodes at most this much.
pub const PACK_TARGET: u64 = 8 << 20;

/// Replaces small contents by packs of them, each pack where its first member was.
///
/// A small first build goes into its component's current pack of first builds. A small
/// later build whose previous build is in pack *P* goes into a pack of *P*'s successors,
/// which is delta-encoded against *P* as a whole: both list their files in the same
/// order, so one delta captures what per-file deltas would, without a frame per file.
fn pack_small(
    sources: Vec<BlobSource>,
    paths: &HashMap<Digest, Vec<(&Name, &RelPath)>>,
    limits: &Limits,
) -> Vec<BlobSource> {
    let target = PACK_TARGET.min(limits.max_pack_bytes);
    // The pack holding the latest build at each path.
    let mut pack_at: HashMap<(&Name, &RelPath), usize> = HashMap::new();
    let mut seen_paths: std::collections::HashSet<(&Name, &RelPath)> = std::collections::HashSet::new();
    // Each pack's members (source indexes), bytes, and the pack its members follow.
    let mut packs: Vec<(Vec<usize>, u64, Option<usize>)> = Vec::new();
    let mut assigned: Vec<Option<usize>> = vec![None; sources.len()];
    // The open pack for each (component, pack followed, whether it holds prose).
    let mut open: HashMap<(&Name, Option<usize>, bool), usize> = HashMap::new();
    for (k, s) in sources.iter().enumerate() {
        let here = paths.get(&s.digest).map(Vec::as_slice).unwrap_or_default();
        let first_build = here.iter().all(|p| !seen_paths.contains(p));
        let follows = here.iter().find_map(|p| pack_at.get(p).copied());
        seen_paths.extend(here.iter().copied());
        let Some((component, _)) = here.first() else { continue };
        let packable = s.size <= PACK_MEMBER_MAX && s.size <= target && (first_build || follows.is_some());
        if !packable {
            for p in here {
                pack_at.remove(p);
            }
            continue;
        }
        // First builds of text (prose, source code) and of the rest go to different packs:
        // PPMd compresses the one a tenth tighter than LZMA, LZMA the other (FORMAT.md §4.4).
        let key = if first_build { (*component, None, is_prose_file(&s.source)) } else { (*component, follows, false) };
        let at = match open.get(&key) {
            Some(&p) if packs[p].1 + s.size <= target => p,
            _ => {
                packs.push((Vec::new(), 0, key.1));
                open.insert(key, packs.len() - 1);
                packs.len() - 1
            }
        };
        packs[at].0.push(k);
        packs[at].1 += s.size;
        assigned[k] = Some(at);
        for p in here {
            pack_at.insert(*p, at);
        }
    }
    // Packs of one member are not worth one; their member stays a blob of its own.
    let real = |p: usize| packs[p].0.len() >= 2;
    let mut out = Vec::with_capacity(sources.len());
    let mut out_index: Vec<Option<usize>> = vec![None; packs.len()];
    for (k, s) in sources.iter().enumerate() {
        match assigned[k] {
            Some(p) if real(p) => {
                if out_index[p].is_some() {
                    continue;
                }
                out_index[p] = Some(out.len());
                let members: Vec<PackMember> = packs[p]
                    .0
                    .iter()
                    .map(|&m| PackMember {
                        digest: sources[m].digest,
                        size: sources[m].size,
                        source: sources[m].source.clone(),
                    })
                    .collect();
                // The pack it follows is earlier: it stands where its first member stood.
                let reference = packs[p].2.filter(|&q| real(q)).and_then(|q| {
                    out_index[q].map(|at| RefTo {
                        blob: at,
                        digest: Digest([0; 32]),
                        size: packs[q].1,
                        source: s.source.clone(),
                        whole: true,
                        sibling: false,
                    })
                });
                out.push(BlobSource {
                    digest: Digest([0; 32]),
                    size: packs[p].1,
                    source: s.source.clone(),
                    reference,
                    members,
                });
            }
            _ => out.push(s.clone()),
        }
    }
    out
}

/// Computes each pack's hash — of its members' contents, concatenated — reading the
/// members' files again and checking that they did not change; then fills it into the
/// references to whole packs.
pub fn seal_packs(sources: &mut [BlobSource]) -> Result<()> {
    for s in sources.iter_mut().filter(|s| !s.members.is_empty()) {
        s.digest = Digest(Sha256::digest(read_pack(s)?).into());
    }
    for k in 0..sources.len() {
        if let Some(r) = sources[k].reference.as_ref().filter(|r| r.whole).map(|r| r.blob) {
            let digest = sources[r].digest;
            if let Some(r) = sources[k].reference.as_mut() {
                r.digest = digest;
            }
        }
    }
    Ok(())
}

/// A pack's content: its members' files, checked, concatenated.
fn read_pack(s: &BlobSource) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(usize::try_from(s.size).unwrap_or(0));
    for m in &s.members {
        data.extend_from_slice(&read_checked(&m.source, &m.digest)?);
    }
    Ok(data)
}

/// The file name part of a path.
fn file_name(path: &RelPath) -> &str {
    path.as_str().rsplit_once('/').map_or(path.as_str(), |(_, name)| name)
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
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
/// A pack delta over this fraction (1/n) of the pack is compared with bsdiff.
const PACK_BSDIFF: usize = 5;
/// A pack of executables against a reference of at most this many bytes is compared with
/// bsdiff whatever its delta (bsdiff's suffix sort of larger ones costs more than it saves).
const PACK_BSDIFF_CODE_BYTES: usize = 4 << 20;

/// The sample an executable's codecs are compared on.
const X86_PROBE_BYTES: usize = 128 << 10;
/// A fast Zstandard level for probes, and for content that does not compress.
const PROBE_LEVEL: i32 = 3;
/// A sample that a fast level shrinks by less than 3% is treated as incompressible.
const INCOMPRESSIBLE: f64 = 0.97;
/// A delta is attempted at the full level only if, on the sample, it is at least 10%
/// smaller than a plain frame.
const DELTA_WORTH: f64 = 0.9;
/// A delta against a sibling, only if it is at least 25% smaller: LZMA with the x86
/// filter takes a tenth or more off a plain frame of an executable, so a sibling that
/// saves less at the fast level loses to it at the full one.
const SIBLING_WORTH: f64 = 0.75;
/// A sibling whose delta is under half a plain frame at the fast level is taken for
/// an earlier build of the same file under a new name.
const RENAMED_WORTH: f64 = 0.5;

/// Whether a plain encoding of `data` is worth comparing with a delta of `delta` bytes:
/// when the delta is over a tenth of the content and over half of what Zstandard's fast
/// level makes of it. A delta against a *sibling* (another library of the same package)
/// can save two thirds and still lose to LZMA with the x86 filter (libnss3.so: 447 KB
/// against a sibling, 379 KB on its own); a next build's delta is a few percent, or a
/// third of a fast frame when much of the code changed (python3.11: 799 KB of 6.8 MB,
/// where LZMA makes 1.9 MB), and the plain encoding is not spent on it.
fn plain_worth_trying(data: &[u8], delta: usize) -> io::Result<bool> {
    Ok(delta > data.len() / 10 && delta > compress(data, PROBE_LEVEL)?.len() / 2)
}

/// Smallest blob for which a bsdiff delta is also tried.
const BSDIFF_MIN_BYTES: usize = 64 << 10;

/// LZMA is kept only when it is at least 3% smaller than Zstandard: it decodes about ten
/// times slower.
const LZMA_WORTH: f64 = 0.97;
/// Zstandard's levels from this one on (its optimal parsers) cost several times level
/// [`ESTIMATE_LEVEL`]'s time for [`ESTIMATE_RATIO`] of its size.
const SLOW_LEVELS: i32 = 16;
/// The level whose size estimates level 19's.
const ESTIMATE_LEVEL: i32 = 9;
/// Level 19 makes at least this share of level 9's size (0.85–0.89 measured on text,
/// tables, executables): where LZMA or PPMd beats that bound by [`LZMA_WORTH`], level 19
/// is taken not to win, and is not run. (Content where it beats level 9 by more may get
/// LZMA where level 19 would just have kept Zstandard: a smaller blob, decoded slower.)
const ESTIMATE_RATIO: f64 = 0.85;

/// One blob, encoded for its entry.
pub struct Encoded {
    /// The blob's hash (a pack's is known once its members are read).
    pub digest: Digest,
    /// The encoding chosen.
    pub encoding: Encoding,
    /// The reference, for delta encodings.
    pub reference: Option<Digest>,
    /// CRC-32 of the content.
    pub crc32: u32,
    /// The entry's bytes.
    pub data: Vec<u8>,
    /// For an LZMA blob: how many bytes smaller it is than Zstandard would have made it
    /// (estimated from a sample for large blobs).
    pub lzma_saving: u64,
}

fn read_checked(source: &std::path::Path, digest: &Digest) -> Result<Vec<u8>> {
    let data = fs::read(source).map_err(Error::io(source))?;
    if Digest(Sha256::digest(&data).into()) != *digest {
        return Err(Error::Refused {
            path: source.to_path_buf(),
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
pub(crate) fn compress_delta(data: &[u8], reference: &[u8], level: i32, max_window_log: u32) -> io::Result<Vec<u8>> {
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

/// A delta of a pack, or of a `-gz` entry's inflated content, against its predecessor's:
/// the fast level's when that is already below 1/[`NEAR_SAME`] of the content (the builds
/// are nearly the same, and level 19 would spend a search over the whole reference to
/// save a few hundred bytes: bind9-dnsutils' 448 KB pack, 872 bytes at level 3, 709 at
/// level 19 in 0.05–0.1 s, most of its build), otherwise the smaller of it and `level`'s.
fn pack_delta(data: &[u8], reference: &[u8], level: i32, limits: &Limits) -> io::Result<Vec<u8>> {
    let fast = compress_delta(data, reference, PROBE_LEVEL, limits.max_zstd_window_log)?;
    if level <= PROBE_LEVEL || fast.len().saturating_mul(NEAR_SAME) < data.len() {
        return Ok(fast);
    }
    let z = compress_delta(data, reference, level, limits.max_zstd_window_log)?;
    Ok(if z.len() <= fast.len() { z } else { fast })
}

/// See [`pack_delta`].
const NEAR_SAME: usize = 200;

/// Whether `data` is an x86 or x86-64 executable (ELF or PE), whose code the x86 branch
/// filter helps.
fn is_x86_executable(data: &[u8]) -> bool {
    let u16_at = |at: usize| data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    if data.starts_with(b"\x7fELF") {
        // e_machine: EM_386 or EM_X86_64 (little-endian files only).
        return data.get(5) == Some(&1) && matches!(u16_at(18), Some(3 | 62));
    }
    if data.starts_with(b"MZ") {
        let pe = data.get(0x3c..0x40).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        return pe.is_some_and(|at| {
            data.get(at..at + 4) == Some(b"PE\0\0") && matches!(u16_at(at + 4), Some(0x14c | 0x8664))
        });
    }
    false
}

/// Bytes of a file read to decide which pack it joins.
const CLASS_SAMPLE: u64 = 16 << 10;
/// Text with more digits than this is a table (Unicode's, time zones'): LZMA's.
const TABLE_DIGITS: f64 = 0.15;

/// Whether `data` is text PPMd may suit: at most 1% control bytes (NUL included), which
/// leaves room for the gzip headers of a `-gz` entry's manual pages but not for a binary.
fn is_text(data: &[u8]) -> bool {
    let controls = data.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)).count();
    controls * 100 <= data.len()
}

/// Whether the small file at `path` is prose or source code rather than a table or a
/// binary, judged on its start — a gzip file (a manual page) on what it inflates to, as
/// the `-gz` encodings store it; unreadable files are not (the encoder names the error).
fn is_prose_file(path: &std::path::Path) -> bool {
    let mut sample = Vec::with_capacity(CLASS_SAMPLE as usize);
    let read =
        fs::File::open(path).and_then(|f| io::Read::read_to_end(&mut io::Read::take(f, CLASS_SAMPLE), &mut sample));
    if sample.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut inflated = Vec::with_capacity(CLASS_SAMPLE as usize);
        let gz = fs::File::open(path).map(io::BufReader::new).map(flate2::bufread::GzDecoder::new);
        let inflate = gz.and_then(|d| io::Read::read_to_end(&mut io::Read::take(d, CLASS_SAMPLE), &mut inflated));
        if inflate.is_err() {
            return false;
        }
        sample = inflated;
    }
    let digits = sample.iter().filter(|b| b.is_ascii_digit()).count();
    read.is_ok() && !sample.is_empty() && is_text(&sample) && (digits as f64) <= sample.len() as f64 * TABLE_DIGITS
}

/// What share of a pack's bytes are x86 executables (`sizes`: its members'), which
/// decides whether LZMA gets the x86 filter: none, or at least [`X86_SHARE`], decide it;
/// in between a fast probe does.
fn x86_share(data: &[u8], sizes: &[u64]) -> f64 {
    let (mut at, mut code) = (0usize, 0usize);
    for &size in sizes {
        let n = usize::try_from(size).unwrap_or(usize::MAX).min(data.len() - at);
        if is_x86_executable(&data[at..at + n]) {
            code += n;
        }
        at += n;
    }
    code as f64 / data.len().max(1) as f64
}

/// A pack at least this much x86 code gets LZMA's x86 filter without a probe.
const X86_SHARE: f64 = 0.3;

/// The smallest plain (non-delta) encoding of `data`: Zstandard at `level`, or — when it
/// is worth its slower decoding — LZMA (with the x86 filter for executables, or as a
/// probe decides for a pack of mixed files) or, for text when `ppmd` gives the memory
/// limit, PPMd. With the encoding, what it saves against Zstandard.
fn encode_plain(
    data: &[u8],
    level: i32,
    pack: Option<f64>,
    lzma: bool,
    ppmd: Option<u32>,
) -> io::Result<(Encoding, Vec<u8>, u64)> {
    if !lzma || level <= PROBE_LEVEL {
        return Ok((Encoding::Zstd, compress(data, level)?, 0));
    }
    // A pack mixes files: by the share of its bytes that are executables, or where that
    // is not clear by a sample at a fast preset, which predicts the full encoding's winner.
    let x86 = if pack.is_some_and(|s| s > 0.0 && s < X86_SHARE) {
        let sample = &data[..data.len().min(2 * PROBE_BYTES)];
        let (with, without) =
            both(|| crate::lzma::encode_preset(sample, true, 1), || crate::lzma::encode_preset(sample, false, 1));
        with?.len() < without?.len()
    } else if let Some(share) = pack {
        share >= X86_SHARE
    } else {
        is_x86_executable(data)
    };
    let pack = pack.is_some();
    let lzma_encoding = if x86 { Encoding::LzmaX86 } else { Encoding::Lzma };
    // PPMd's model memory must fit the limit, and it is tried on text only.
    let ppmd = ppmd.filter(|&log| log >= 20 && !x86 && is_text(data));
    let ppmd_of = |d: &[u8]| ppmd.map(|log| crate::ppmd::encode(d, log)).transpose();
    // A large blob is encoded every way only on its middle MiB, an executable of 512 KiB
    // or more on its middle 128 KiB; the winner there encodes the whole (the codecs'
    // ratios are steady across one file: about 10% between Zstandard and LZMA on code).
    let probe = if data.len() > 2 * PROBE_BYTES {
        PROBE_BYTES
    } else if x86 && !pack && data.len() >= 4 * X86_PROBE_BYTES {
        X86_PROBE_BYTES
    } else {
        0
    };
    // Zstandard is first run at a cheap level; its slow level only where that leaves the
    // choice open.
    let (first_level, ratio) = if level >= SLOW_LEVELS { (ESTIMATE_LEVEL, ESTIMATE_RATIO) } else { (level, 1.0) };
    let sample = if probe > 0 { &data[data.len() / 2 - probe / 2..][..probe] } else { data };
    let ((z, l), p) =
        both(|| both(|| compress(sample, first_level), || crate::lzma::encode(sample, x86)), || ppmd_of(sample));
    let (z, l, p) = (z?, l?, p?);
    // The smaller of LZMA and PPMd where it is worth its decoding speed against `zstd`
    // bytes of Zstandard.
    let slow = |zstd: f64| {
        [(lzma_encoding, Some(&l)), (Encoding::Ppmd, p.as_ref())]
            .into_iter()
            .filter_map(|(e, c)| c.filter(|c| c.len() as f64 <= zstd * LZMA_WORTH).map(|c| (e, c.len())))
            .min_by_key(|&(_, n)| n)
    };
    let mut zstd_bytes = z.len() as f64 * ratio;
    let mut chosen = slow(zstd_bytes);
    // The frame at `level`, once made (at a level below the slow ones it was the first).
    let mut full_zstd = (ratio >= 1.0).then_some(z);
    if chosen.is_none() && ratio < 1.0 {
        let z = compress(sample, level)?;
        zstd_bytes = z.len() as f64;
        chosen = slow(zstd_bytes);
        full_zstd = Some(z);
    }
    let saving = |full: usize, part: usize| (full as f64 * (zstd_bytes / part.max(1) as f64 - 1.0)).max(0.0) as u64;
    Ok(match chosen {
        Some((encoding, n)) => {
            // Without a probe the sample was the content: its encoding is the entry.
            let full = match (encoding, probe, p) {
                (Encoding::Ppmd, 0, Some(p)) => p,
                (Encoding::Ppmd, _, _) => crate::ppmd::encode(data, ppmd.unwrap_or(20))?,
                (_, 0, _) => l,
                _ => crate::lzma::encode(data, x86)?,
            };
            let saving = saving(full.len(), n);
            (encoding, full, saving)
        }
        None => match full_zstd.filter(|_| probe == 0) {
            Some(z) => (Encoding::Zstd, z, 0),
            None => (Encoding::Zstd, compress(data, level)?, 0),
        },
    })
}

/// `a` and `b` run at once, `b` on a thread of its own: the two codecs of one blob. Blobs
/// are encoded on a pool of threads too; this keeps the last blob from running alone on
/// one core while the other idles (what a package of two large blobs spends most of its
/// time on). The results are the same whichever finishes first.
pub(crate) fn both<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let first = a();
        match other.join() {
            Ok(second) => (first, second),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The codecs a package may use beyond those every reader has: the installer stub is
/// built without them (its size), so a self-contained installer uses neither.
#[derive(Clone, Copy, Debug)]
pub struct Optional {
    /// gzip files another deflate made, rebuilt by preflate (`-gz` records of level 0).
    pub preflate: bool,
    /// PPMd (`ppmd`, `ppmd-gz`) for text.
    pub ppmd: bool,
}

/// The smallest `-gz` entry of `data` (members `sizes`) if any member is a gzip file zlib
/// reproduces: the content with those files inflated, encoded as a blob would be — a
/// `zstd-delta` against the reference's content with its gzip files inflated
/// (`reference`: its content and its members' sizes, empty for one content), and a plain
/// encoding where that saves less than nine tenths. With the encoding, its LZMA saving.
fn encode_gz(
    data: &[u8],
    sizes: &[u64],
    reference: Option<(&[u8], &[u64])>,
    level: i32,
    lzma: bool,
    optional: Optional,
    limits: &Limits,
) -> io::Result<Option<(Encoding, Vec<u8>, u64)>> {
    let limit = 1usize << limits.max_zstd_window_log.min(usize::BITS - 2);
    let Some((records, expanded)) = crate::gz::plan(data, sizes, limit, optional.preflate) else {
        return Ok(None);
    };
    let mut best: Option<(Encoding, Vec<u8>, u64)> = None;
    if let Some((r, r_sizes)) = reference {
        let prefix = crate::gz::expand_reference(r, r_sizes, limit);
        if prefix.len() + expanded.len() <= limit {
            let frame = pack_delta(&expanded, &prefix, level, limits)?;
            best = Some((Encoding::ZstdDeltaGz, frame, 0));
        }
    }
    if best.as_ref().map_or(Ok(true), |(_, z, _)| plain_worth_trying(&expanded, z.len()))? {
        let pack = (sizes.len() > 1).then(|| x86_share(data, sizes));
        let ppmd = optional.ppmd.then_some(limits.max_zstd_window_log);
        let (encoding, z, saving) = encode_plain(&expanded, level, pack, lzma, ppmd)?;
        let encoding = match encoding {
            Encoding::Lzma => Encoding::LzmaGz,
            Encoding::LzmaX86 => Encoding::LzmaX86Gz,
            Encoding::Ppmd => Encoding::PpmdGz,
            _ => Encoding::ZstdGz,
        };
        if best.as_ref().is_none_or(|(_, d, _)| z.len() < d.len()) {
            best = Some((encoding, z, saving));
        }
    }
    Ok(best.map(|(encoding, z, saving)| (encoding, crate::gz::entry(&records, &z), saving)))
}

/// Encodes blob `k` of the arranged `all`: a pack as the smallest plain encoding of its
/// members' concatenation; another blob as a delta when it has a reference and that pays,
/// otherwise the smallest plain encoding, or the content itself when nothing shrinks it.
fn encode(
    all: &[BlobSource],
    k: usize,
    level: i32,
    lzma: bool,
    optional: Optional,
    limits: &Limits,
) -> Result<Encoded> {
    let ppmd = optional.ppmd.then_some(limits.max_zstd_window_log);
    let src = &all[k];
    if !src.members.is_empty() {
        let data = read_pack(src)?;
        let digest = Digest(Sha256::digest(&data).into());
        let crc32 = crc32fast::hash(&data);
        let reference = match src.reference.as_ref().and_then(|r| all.get(r.blob).map(|p| (r, p))) {
            Some((r, p)) => Some((r, read_pack(p)?, p.members.iter().map(|m| m.size).collect::<Vec<u64>>())),
            None => None,
        };
        // Gzip members (manual pages, changelogs) are compressed inflated; the other
        // candidates would see the same bytes with deflate in the way, and are not tried.
        let sizes: Vec<u64> = src.members.iter().map(|m| m.size).collect();
        let gz = encode_gz(
            &data,
            &sizes,
            reference.as_ref().map(|(_, c, s)| (&c[..], &s[..])),
            level,
            lzma,
            optional,
            limits,
        )
        .map_err(Error::io(&src.source))?;
        if let Some((encoding, z, lzma_saving)) = gz.filter(|(_, z, _)| z.len() < data.len()) {
            let reference = reference.filter(|_| encoding.is_delta()).map(|(r, _, _)| r.digest);
            return Ok(Encoded { digest, encoding, reference, crc32, data: z, lzma_saving });
        }
        let mut lzma_saving = 0;
        let mut best = match reference {
            Some((r, reference, ref_sizes)) => {
                let z = pack_delta(&data, &reference, level, limits).map_err(Error::io(&src.source))?;
                let mut best = (Encoding::ZstdDelta, Some(r.digest), z);
                // Exact matches miss code whose addresses shifted; bsdiff is tried where
                // they left more than a fifth of the pack, or on a pack of executables
                // (with the operands translated too).
                let code = x86_share(&data, &sizes) >= X86_SHARE && reference.len() <= PACK_BSDIFF_CODE_BYTES;
                if (code || best.2.len() > data.len() / PACK_BSDIFF) && data.len() >= BSDIFF_MIN_BYTES {
                    let (encoding, b) = crate::bsdelta::encode_best(&reference, &ref_sizes, &data, level, true)
                        .map_err(Error::io(&src.source))?;
                    if b.len() < best.2.len() {
                        best = (encoding, Some(r.digest), b);
                    }
                }
                Some(best)
            }
            None => None,
        };
        if best
            .as_ref()
            .map_or(Ok(true), |(_, _, z)| plain_worth_trying(&data, z.len()))
            .map_err(Error::io(&src.source))?
        {
            let share = x86_share(&data, &sizes);
            let (encoding, z, saving) =
                encode_plain(&data, level, Some(share), lzma, ppmd).map_err(Error::io(&src.source))?;
            if best.as_ref().is_none_or(|(_, _, d)| z.len() < d.len()) {
                best = Some((encoding, None, z));
                lzma_saving = saving;
            }
        }
        return Ok(match best {
            Some((encoding, reference, z)) if z.len() < data.len() => {
                Encoded { digest, encoding, reference, crc32, data: z, lzma_saving }
            }
            _ => Encoded { digest, encoding: Encoding::Stored, reference: None, crc32, data, lzma_saving: 0 },
        });
    }
    let data = read_checked(&src.source, &src.digest)?;
    let crc32 = crc32fast::hash(&data);
    // A gzip file is compressed inflated, a PEM file decoded (and nothing else is tried,
    // as for a pack).
    if parse_gzip(&data).is_some() || hotfix_reader::gz::parse_pem(&data).is_some() {
        let reference = match &src.reference {
            Some(r) => Some((r.digest, read_checked(&r.source, &r.digest)?)),
            None => None,
        };
        let one = [data.len() as u64];
        let gz =
            encode_gz(&data, &one, reference.as_ref().map(|(_, c)| (&c[..], &[][..])), level, lzma, optional, limits)
                .map_err(Error::io(&src.source))?;
        if let Some((encoding, z, lzma_saving)) = gz.filter(|(_, z, _)| z.len() < data.len()) {
            let reference = reference.filter(|_| encoding.is_delta()).map(|(d, _)| d);
            return Ok(Encoded { digest: src.digest, encoding, reference, crc32, data: z, lzma_saving });
        }
    }
    let mut lzma_saving = 0;
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
    // A sibling is probed too, on the content's first MiB: what a sibling shares with it
    // must beat a plain encoding by a quarter at the fast level to be worth level 19.
    let probe =
        sample.or_else(|| src.reference.as_ref().filter(|r| r.sibling).map(|_| &data[..data.len().min(PROBE_BYTES)]));
    // A sibling that shares most of it is an earlier build under another name (bind9
    // puts its version in its libraries' names), and gets bsdiff too.
    let mut renamed = false;
    let reference = match (&src.reference, probe) {
        (Some(r), Some(s)) => {
            let reference = read_checked(&r.source, &r.digest)?;
            let delta = compress_delta(s, &reference, PROBE_LEVEL, limits.max_zstd_window_log)
                .map_err(Error::io(&src.source))?
                .len() as f64;
            let plain = fast(s)? as f64;
            renamed = r.sibling && delta <= plain * RENAMED_WORTH;
            (delta <= plain * if r.sibling { SIBLING_WORTH } else { DELTA_WORTH }).then_some((r, reference))
        }
        (Some(r), None) => Some((r, read_checked(&r.source, &r.digest)?)),
        (None, _) => None,
    };
    if let Some((r, reference)) = reference {
        // bsdiff pays on executables whose code moved; below this size it rarely matters,
        // and against a sibling (other code, unless renamed) it does not.
        let x86 = is_x86_executable(&data) && is_x86_executable(&reference);
        if data.len() >= BSDIFF_MIN_BYTES && (!r.sibling || renamed) {
            // For executables the same match is also tried against the reference with its
            // relative operands translated (`bsdiff-x86-zstd`).
            let (encoding, b) =
                crate::bsdelta::encode_best(&reference, &[], &data, level, x86).map_err(Error::io(&src.source))?;
            if best.as_ref().is_none_or(|(_, _, z)| b.len() < z.len()) {
                best = Some((encoding, Some(r.digest), b));
            }
        }
        // On an executable's next build bsdiff wins unless the builds are nearly the same;
        // a level-19 delta against megabytes of reference costs more than the bsdiff, so
        // it is made only where the fast one comes within a tenth of the bsdiff.
        let try_zstd = match &best {
            Some((_, _, b)) if x86 => {
                let fast = compress_delta(&data, &reference, PROBE_LEVEL, limits.max_zstd_window_log)
                    .map_err(Error::io(&src.source))?;
                (fast.len() as f64) < b.len() as f64 * 1.1
            }
            _ => true,
        };
        if try_zstd {
            let z =
                compress_delta(&data, &reference, level, limits.max_zstd_window_log).map_err(Error::io(&src.source))?;
            if best.as_ref().is_none_or(|(_, _, b)| z.len() <= b.len()) {
                best = Some((Encoding::ZstdDelta, Some(r.digest), z));
            }
        }
    }
    // A delta that saves less than nine tenths is compared with a plain encoding.
    if best.as_ref().map_or(Ok(true), |(_, _, z)| plain_worth_trying(&data, z.len())).map_err(Error::io(&src.source))? {
        let (encoding, z, saving) = encode_plain(&data, plain_level, None, lzma, ppmd).map_err(io_err)?;
        if best.as_ref().is_none_or(|(_, _, d)| z.len() < d.len()) {
            best = Some((encoding, None, z));
            lzma_saving = saving;
        }
    }

    let digest = src.digest;
    Ok(match best {
        Some((encoding, reference, z)) if z.len() < data.len() => {
            Encoded { digest, encoding, reference, crc32, data: z, lzma_saving }
        }
        _ => Encoded { digest, encoding: Encoding::Stored, reference: None, crc32, data, lzma_saving: 0 },
    })
}

/// Input bytes being encoded or waiting to be written, at most (one blob may exceed it).
const IN_FLIGHT_BYTES: u64 = 256 << 20;

/// Encodes every blob of `all` on `threads` threads and hands each to `sink` in order.
///
/// Workers take blobs in order as long as the bytes taken but not yet handed over stay
/// within [`IN_FLIGHT_BYTES`], so a large blob keeps one thread busy while the others
/// go on with the blobs after it (no barrier), and memory stays bounded. Each blob is
/// encoded on its own, so the output does not depend on the number of threads.
pub fn encode_all(
    all: &[BlobSource],
    level: i32,
    lzma: bool,
    optional: Optional,
    threads: usize,
    limits: &Limits,
    mut sink: impl FnMut(usize, Encoded) -> Result<()>,
) -> Result<()> {
    struct Queue {
        next: usize,
        in_flight: u64,
        stop: bool,
    }
    let queue = Mutex::new(Queue { next: 0, in_flight: 0, stop: false });
    let ready = Condvar::new();
    let lock = || queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Encoded>)>();
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (queue, ready) = (&queue, &ready);
            s.spawn(move || {
                loop {
                    let k = {
                        let mut q = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        loop {
                            if q.stop || q.next >= all.len() {
                                return;
                            }
                            let size = all[q.next].size;
                            if q.in_flight == 0 || q.in_flight.saturating_add(size) <= IN_FLIGHT_BYTES {
                                q.in_flight += size;
                                q.next += 1;
                                break q.next - 1;
                            }
                            q = ready.wait(q).unwrap_or_else(std::sync::PoisonError::into_inner);
                        }
                    };
                    if tx.send((k, encode(all, k, level, lzma, optional, limits))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting: std::collections::BTreeMap<usize, Result<Encoded>> = std::collections::BTreeMap::new();
        let mut cursor = 0;
        let outcome = (|| -> Result<()> {
            while cursor < all.len() {
                let Some(done) = waiting.remove(&cursor) else {
                    match rx.recv() {
                        Ok((k, r)) => {
                            waiting.insert(k, r);
                            continue;
                        }
                        Err(_) => {
                            return Err(Error::Refused {
                                path: all[cursor].source.clone(),
                                msg: "compression thread failed".into(),
                            });
                        }
                    }
                };
                sink(cursor, done?)?;
                lock().in_flight -= all[cursor].size;
                ready.notify_all();
                cursor += 1;
            }
            Ok(())
        })();
        // On an error, let the workers finish the blob they hold and stop.
        lock().stop = true;
        ready.notify_all();
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that compress poorly: an LCG's high bytes.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (x >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn a_nearly_unchanged_pack_keeps_its_fast_delta_and_a_changed_one_gets_the_smaller() {
        let limits = Limits::default();
        let reference = noise(1, 400_000);
        // One byte changed: the fast delta is far below 1/200 of the pack, and kept.
        let mut near = reference.clone();
        near[200_000] ^= 1;
        let fast = compress_delta(&near, &reference, PROBE_LEVEL, limits.max_zstd_window_log).expect("fast");
        assert!(fast.len() * NEAR_SAME < near.len(), "{}", fast.len());
        assert_eq!(pack_delta(&near, &reference, 19, &limits).expect("delta"), fast);
        // A quarter new: level 19 is tried, and the result is never larger than the fast one.
        let mut changed = reference.clone();
        changed[..100_000].copy_from_slice(&noise(2, 100_000));
        let fast = compress_delta(&changed, &reference, PROBE_LEVEL, limits.max_zstd_window_log).expect("fast");
        let best = pack_delta(&changed, &reference, 19, &limits).expect("delta");
        assert!(best.len() <= fast.len());
        let mut d = zstd::stream::read::Decoder::with_ref_prefix(&best[..], &reference[..]).expect("decoder");
        d.window_log_max(limits.max_zstd_window_log).expect("window");
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut decoded).expect("decodes against the reference");
        assert_eq!(decoded, changed);
    }

    fn src(n: u8, size: u64) -> BlobSource {
        BlobSource::single(Digest([n; 32]), size, PathBuf::from(format!("/nowhere/{n}")))
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
        let arranged = arrange(sources, &uses, &Limits::default(), false);
        arranged.iter().map(|s| (s.digest.0[0], s.reference.as_ref().map(|r| r.digest.0[0]))).collect()
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
    fn a_renamed_build_references_the_sibling_with_the_most_similar_name() {
        // gdr: libdns-u1.so (1), libisc-u1.so (2); ldr: renamed libdns-u3.so (3),
        // libisc-u3.so (4). Arranged by path; each renamed build takes its own predecessor
        // (the longest common name start), not the nearest sibling — even when that
        // predecessor has a reference of its own.
        let got = plan(&[
            ("lib/libdns-9.18-u1.so", 1, 2000),
            ("lib/libisc-9.18-u1.so", 2, 600),
            ("lib/libdns-9.18-u3.so", 3, 2000),
            ("lib/libisc-9.18-u3.so", 4, 600),
        ]);
        assert_eq!(got, vec![(1, None), (3, Some(1)), (2, Some(3)), (4, Some(2))]);
    }

    #[test]
    fn sibling_chains_leave_room_for_each_file_s_next_build() {
        // Five first builds in one directory, each a sibling of the one before, then each
        // file's next build: every next build still deltas against its own predecessor.
        let names = ["d/a.so", "d/b.so", "d/c.so", "d/e.so", "d/f.so"];
        let mut files: Vec<(&str, u8, u64)> = names.iter().zip(1u8..).map(|(p, n)| (*p, n, 100)).collect();
        files.extend(names.iter().zip(11u8..).map(|(p, n)| (*p, n, 100)));
        let got = plan(&files);
        for n in 11u8..=15 {
            let reference = got.iter().find(|(d, _)| *d == n).and_then(|(_, r)| *r);
            assert_eq!(reference, Some(n - 10), "{n}: {got:?}");
        }
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
