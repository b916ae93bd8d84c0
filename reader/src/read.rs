//! Reading packages in two passes over one open file (FORMAT.md §8). The authentication
//! pass ([`verify`]) hashes every byte and checks the signature, comparing the local
//! headers and keeping the manifest's stored bytes on the way but decoding nothing; only
//! then is the manifest decoded and checked. The decode pass ([`Verified::decode_into`])
//! decodes every blob of the authenticated manifest and checks it against that manifest's
//! sizes and hashes, handing the contents to a sink (the runtime's store, an extraction).
//! Nothing is decompressed before the signature checked out, and nothing is written by
//! this module at all.
//!
//! Each pass reads the file front to back once after the small tail and central
//! directory; memory stays bounded by the manifest limit, the decoder window and what the
//! decode pass holds for its threads (a blob of at most 8 MiB being decoded ahead, 4 MiB
//! waiting or one blob, one LZMA entry's stored bytes of at most 16 MiB), never by the
//! package's size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotfix_schema::sigblock::{SIGNATURE_LEN, key_id_hex, signed_message};
use hotfix_schema::{BLOB_PREFIX, Blob, ContentLoc, Digest, Encoding, Limits, Manifest, ManifestError, Member};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Integrity, Result};
use crate::keys::TrustedKey;
use crate::zipfmt::{Archive, CentralEntry, METHOD_DEFLATE, METHOD_STORED, METHOD_ZSTD, ReadError};

const BUF: usize = 1 << 20;
/// Largest LZMA entry [`Verified::decode_into`] decodes on its third thread (it is held in memory).
const OFFLOAD_MAX_BYTES: u64 = 16 << 20;
/// Largest blob [`Verified::decode_into`] decodes ahead on its second thread: decoded, it
/// is held in memory, with others up to [`PREFETCH_BUDGET_BYTES`].
/// Packs are at most 8 MiB as `pkgtool` writes them.
const PREFETCH_MAX_BYTES: u64 = 8 << 20;
/// How many decoded bytes may wait between the two threads of the decode pass.
const PREFETCH_BUDGET_BYTES: u64 = 4 << 20;
/// What a blob decoded ahead counts against [`PREFETCH_BUDGET_BYTES`] at least.
const PREFETCH_MIN_CHARGE: u64 = 4 << 10;

/// The decoded bytes between the two threads of [`Verified::decode_into`], counted from
/// when a blob's decoding ahead starts until this thread takes it off the channel (before
/// the sink reads it): at most `max`, or one blob.
struct Budget {
    /// Bytes waiting, and whether the decode pass stopped.
    state: std::sync::Mutex<(u64, bool)>,
    changed: std::sync::Condvar,
    max: u64,
}

impl Budget {
    fn new(max: u64) -> Budget {
        Budget { state: std::sync::Mutex::new((0, false)), changed: std::sync::Condvar::new(), max }
    }

    /// Waits until `n` more bytes fit, and counts them; false once the pass stopped.
    fn take(&self, n: u64) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        loop {
            if state.1 {
                return false;
            }
            if state.0 == 0 || state.0.saturating_add(n) <= self.max {
                state.0 += n;
                return true;
            }
            state = match self.changed.wait(state) {
                Ok(state) => state,
                Err(_) => return false,
            };
        }
    }

    /// `n` bytes were taken off the queue.
    fn give(&self, n: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = state.0.saturating_sub(n);
        }
        self.changed.notify_all();
    }

    /// A guard that marks the pass stopped when dropped, waking the thread ahead.
    fn closing(&self) -> impl Drop + '_ {
        struct Closing<'b>(&'b Budget);
        impl Drop for Closing<'_> {
            fn drop(&mut self) {
                if let Ok(mut state) = self.0.state.lock() {
                    state.1 = true;
                }
                self.0.changed.notify_all();
            }
        }
        Closing(self)
    }
}

/// A package whose every byte was checked against a trusted signature, and whose manifest
/// and structure passed their checks (FORMAT.md §8 steps 1–13). Its blobs are not decoded
/// yet: [`Verified::decode_into`] does that, from the same open file.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The package file.
    pub path: PathBuf,
    /// Its manifest, decoded from the authenticated bytes.
    pub manifest: Manifest,
    /// Its archive structure.
    pub archive: Archive,
    /// The key that signed it.
    pub signer: TrustedKey,
    /// Where each content is (see [`Manifest::content_index`]).
    contents: HashMap<Digest, ContentLoc>,
    /// The file the authentication pass read, held open for the decode pass.
    file: Arc<File>,
}

/// A package read without checking its signature: for `inspect` without `--trust`.
#[derive(Clone, Debug)]
pub struct Unverified {
    /// Its manifest (validated against the format's rules, but not authenticated).
    pub manifest: Manifest,
    /// Its archive structure.
    pub archive: Archive,
}

/// Counts and hashes every byte read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pos: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for HashingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let n = amt.min(buf.len());
            self.hasher.update(&buf[..n]);
            self.pos += n as u64;
        }
        self.inner.consume(amt);
    }
}

/// An integrity failure carried through `io::Read`, so that a verifying reader can be used
/// with `io::copy`; [`integrity_of`] gets it back.
#[derive(Debug)]
struct IntegrityIo(Integrity);

impl std::fmt::Display for IntegrityIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for IntegrityIo {}

fn integrity_io(kind: Integrity) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, IntegrityIo(kind))
}

/// The integrity failure inside an `io::Error` from a [`BlobReader`], if that is what it is.
pub fn integrity_of(e: &io::Error) -> Option<Integrity> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<IntegrityIo>()).map(|i| i.0.clone())
}

enum Decode<'p, R: BufRead> {
    Stored(Take<R>),
    Zstd(Box<zstd::stream::read::Decoder<'p, Take<R>>>),
    Lzma(Box<liblzma::bufread::XzDecoder<Take<R>>>),
    Ppmd(Box<crate::ppmd::Decoder<Take<R>>>),
    /// Content decoded in memory (a bsdiff delta), still to be checked as it is read.
    Memory(io::Cursor<Vec<u8>>),
}

/// Decodes one blob and checks, as the bytes flow, that it never exceeds its declared size;
/// at the end, that its size, CRC-32 and SHA-256 are the declared ones. A mismatch is an
/// `io::Error` holding an [`Integrity`] (see [`integrity_of`]).
pub struct BlobReader<'p, R: BufRead> {
    decode: Decode<'p, R>,
    blob: Blob,
    crc_expected: u32,
    seen: u64,
    sha: Sha256,
    crc: crc32fast::Hasher,
    done: bool,
}

impl<'p, R: BufRead> BlobReader<'p, R> {
    /// A reader of `blob`'s entry data from `inner`; a delta blob needs its reference's
    /// decoded content as `prefix`, and a `zstd-delta-gz` one the sizes of the reference's
    /// members too (`ref_sizes`; empty for a reference that is not a pack).
    fn new(
        inner: R,
        entry: &CentralEntry,
        blob: &Blob,
        limits: &Limits,
        prefix: Option<&'p [u8]>,
        ref_sizes: &[u64],
    ) -> io::Result<Self> {
        let take = inner.take(entry.compressed);
        let decode = match (blob.encoding, prefix) {
            (Encoding::Stored, _) => Decode::Stored(take),
            (Encoding::Zstd, _) => {
                let mut d = zstd::stream::read::Decoder::with_buffer(take)?.single_frame();
                d.window_log_max(limits.max_zstd_window_log)?;
                Decode::Zstd(Box::new(d))
            }
            (Encoding::Lzma | Encoding::LzmaX86, _) => {
                match crate::lzma::decoder(take, blob.encoding == Encoding::LzmaX86, limits.max_zstd_window_log)? {
                    Ok(d) => Decode::Lzma(Box::new(d)),
                    Err(why) => {
                        let entry = format!("{BLOB_PREFIX}{}", blob.sha256);
                        return Err(integrity_io(Integrity::BadCompressedData { entry, why }));
                    }
                }
            }
            (Encoding::Ppmd, _) => match crate::ppmd::decoder(take, limits.max_zstd_window_log)? {
                Ok(d) => Decode::Ppmd(Box::new(d)),
                Err(why) => {
                    let entry = format!("{BLOB_PREFIX}{}", blob.sha256);
                    return Err(integrity_io(Integrity::BadCompressedData { entry, why }));
                }
            },
            (Encoding::ZstdDelta, Some(prefix)) => {
                let mut d = zstd::stream::read::Decoder::with_ref_prefix(take, prefix)?.single_frame();
                d.window_log_max(limits.max_zstd_window_log)?;
                Decode::Zstd(Box::new(d))
            }
            (
                Encoding::BsdiffZstd
                | Encoding::BsdiffX86Zstd
                | Encoding::BsdiffElfZstd
                | Encoding::BsdiffElf2Zstd
                | Encoding::BsdiffElf3Zstd,
                Some(prefix),
            ) => {
                let name = format!("{BLOB_PREFIX}{}", blob.sha256);
                if entry.compressed > 1u64 << limits.max_zstd_window_log.min(62) {
                    return Err(integrity_io(Integrity::BadCompressedData {
                        entry: name,
                        why: "a bsdiff entry larger than the window limit".into(),
                    }));
                }
                let mut patch = Vec::with_capacity(usize::try_from(entry.compressed).unwrap_or(0));
                let mut take = take;
                take.read_to_end(&mut patch)?;
                let w = limits.max_zstd_window_log;
                let content = match blob.encoding {
                    Encoding::BsdiffX86Zstd => crate::bsdelta::decode_x86(prefix, &patch, blob.size, w),
                    Encoding::BsdiffElfZstd => crate::bsdelta::decode_elf(prefix, &patch, blob.size, w),
                    Encoding::BsdiffElf2Zstd => crate::bsdelta::decode_elf2(prefix, ref_sizes, &patch, blob.size, w),
                    Encoding::BsdiffElf3Zstd => crate::bsdelta::decode_elf3(prefix, ref_sizes, &patch, blob.size, w),
                    _ => crate::bsdelta::decode(prefix, &patch, blob.size, w),
                }
                .map_err(|why| integrity_io(Integrity::BadCompressedData { entry: name, why }))?;
                Decode::Memory(io::Cursor::new(content))
            }
            (Encoding::ZstdGz | Encoding::LzmaGz | Encoding::LzmaX86Gz | Encoding::PpmdGz, _)
            | (Encoding::ZstdDeltaGz, Some(_)) => {
                let name = format!("{BLOB_PREFIX}{}", blob.sha256);
                if entry.compressed > 1u64 << limits.max_zstd_window_log.min(62) {
                    return Err(integrity_io(Integrity::BadCompressedData {
                        entry: name,
                        why: "an entry larger than the window limit".into(),
                    }));
                }
                let mut data = Vec::with_capacity(usize::try_from(entry.compressed).unwrap_or(0));
                let mut take = take;
                take.read_to_end(&mut data)?;
                let sizes: Vec<u64> =
                    if blob.is_pack() { blob.members.iter().map(|m| m.size).collect() } else { vec![blob.size] };
                let reference = prefix.filter(|_| blob.encoding == Encoding::ZstdDeltaGz).map(|p| (p, ref_sizes));
                let inner = match blob.encoding {
                    Encoding::LzmaGz => crate::gz::Inner::Lzma { x86: false },
                    Encoding::LzmaX86Gz => crate::gz::Inner::Lzma { x86: true },
                    Encoding::PpmdGz => crate::gz::Inner::Ppmd,
                    _ => crate::gz::Inner::Zstd,
                };
                let content = crate::gz::decode(&data, &sizes, inner, reference, limits.max_zstd_window_log)
                    .map_err(|why| integrity_io(Integrity::BadCompressedData { entry: name, why }))?;
                Decode::Memory(io::Cursor::new(content))
            }
            (
                Encoding::ZstdDelta
                | Encoding::BsdiffZstd
                | Encoding::BsdiffX86Zstd
                | Encoding::BsdiffElfZstd
                | Encoding::BsdiffElf2Zstd
                | Encoding::BsdiffElf3Zstd
                | Encoding::ZstdDeltaGz,
                None,
            ) => {
                return Err(io::Error::other("a delta blob opened without its reference"));
            }
        };
        Ok(BlobReader::with_decode(decode, entry, blob))
    }

    fn with_decode(decode: Decode<'p, R>, entry: &CentralEntry, blob: &Blob) -> Self {
        BlobReader {
            decode,
            blob: blob.clone(),
            crc_expected: entry.crc32,
            seen: 0,
            sha: Sha256::new(),
            crc: crc32fast::Hasher::new(),
            done: false,
        }
    }

    fn name(&self) -> String {
        format!("{BLOB_PREFIX}{}", self.blob.sha256)
    }

    /// A decoder's complaint about the entry's data, as the integrity failure it is.
    fn decode_error(&self, e: io::Error) -> io::Error {
        if integrity_of(&e).is_none()
            && matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::Other | io::ErrorKind::UnexpectedEof)
        {
            integrity_io(Integrity::BadCompressedData { entry: self.name(), why: e.to_string() })
        } else {
            e
        }
    }

    fn finish_checks(&mut self) -> io::Result<()> {
        // Every stored byte of the entry must belong to the one frame.
        let left = match &mut self.decode {
            Decode::Stored(t) => t.limit(),
            Decode::Zstd(d) => {
                let t = d.get_mut();
                let left = t.limit();
                io::copy(t, &mut io::sink())?;
                left
            }
            Decode::Lzma(d) => {
                let t = d.get_mut();
                let left = t.limit();
                io::copy(t, &mut io::sink())?;
                left
            }
            Decode::Ppmd(d) => {
                let t = d.get_mut();
                let left = t.limit();
                io::copy(t, &mut io::sink())?;
                left
            }
            Decode::Memory(_) => 0,
        };
        if left != 0 {
            return Err(integrity_io(Integrity::BadCompressedData {
                entry: self.name(),
                why: format!("{left} bytes after the end of the compressed data"),
            }));
        }
        if self.seen != self.blob.size {
            return Err(integrity_io(Integrity::SizeMismatch {
                blob: self.blob.sha256.to_hex(),
                declared: self.blob.size,
                found: self.seen,
            }));
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        if crc != self.crc_expected {
            return Err(integrity_io(Integrity::BadCompressedData {
                entry: self.name(),
                why: format!("CRC-32 {crc:08x} does not match the directory's {:08x}", self.crc_expected),
            }));
        }
        let found = Digest(std::mem::take(&mut self.sha).finalize().into());
        if found != self.blob.sha256 {
            return Err(integrity_io(Integrity::HashMismatch {
                what: self.name(),
                declared: self.blob.sha256.to_hex(),
                found: found.to_hex(),
            }));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for BlobReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // Never ask the decoder for more than one byte past the declared size.
        let allowed = (self.blob.size - self.seen.min(self.blob.size)).saturating_add(1);
        let want = buf.len().min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = match &mut self.decode {
            Decode::Stored(t) => t.read(&mut buf[..want])?,
            Decode::Memory(c) => c.read(&mut buf[..want])?,
            Decode::Zstd(d) => d.read(&mut buf[..want]).map_err(|e| self.decode_error(e))?,
            Decode::Lzma(d) => d.read(&mut buf[..want]).map_err(|e| self.decode_error(e))?,
            Decode::Ppmd(d) => d.read(&mut buf[..want]).map_err(|e| self.decode_error(e))?,
        };
        self.seen += n as u64;
        if self.seen > self.blob.size {
            return Err(integrity_io(Integrity::SizeMismatch {
                blob: self.blob.sha256.to_hex(),
                declared: self.blob.size,
                found: self.seen,
            }));
        }
        if n == 0 {
            self.done = true;
            self.finish_checks()?;
            return Ok(0);
        }
        self.sha.update(&buf[..n]);
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads a pack's decoded content from `pack` (a [`BlobReader`] of it) member by member:
/// `f` gets each member and a reader of exactly its bytes, which it may read in part or
/// not at all. Checks each member's size and hash, then reads the pack to its end so that
/// its reader's own checks run.
pub fn for_each_member<R: Read>(
    pack: &mut R,
    blob: &Blob,
    mut f: impl FnMut(&Member, &mut dyn Read) -> io::Result<()>,
) -> io::Result<()> {
    for m in &blob.members {
        let mut member = MemberReader { inner: pack.take(m.size), sha: Sha256::new(), seen: 0 };
        f(m, &mut member)?;
        io::copy(&mut member, &mut io::sink())?;
        let found = Digest(member.sha.finalize().into());
        if member.seen != m.size {
            return Err(integrity_io(Integrity::SizeMismatch {
                blob: m.sha256.to_hex(),
                declared: m.size,
                found: member.seen,
            }));
        }
        if found != m.sha256 {
            return Err(integrity_io(Integrity::HashMismatch {
                what: format!("member {} of {BLOB_PREFIX}{}", m.sha256, blob.sha256),
                declared: m.sha256.to_hex(),
                found: found.to_hex(),
            }));
        }
    }
    let mut rest = [0u8; 1];
    if pack.read(&mut rest)? != 0 {
        return Err(integrity_io(Integrity::SizeMismatch {
            blob: blob.sha256.to_hex(),
            declared: blob.size,
            found: blob.size + 1,
        }));
    }
    Ok(())
}

/// Hashes and counts one member's bytes as they are read.
struct MemberReader<R> {
    inner: Take<R>,
    sha: Sha256,
    seen: u64,
}

impl<R: Read> Read for MemberReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.seen += n as u64;
        Ok(n)
    }
}

/// The sizes of the members of the pack named `d`, or nothing if `d` names a content.
fn pack_member_sizes(m: &Manifest, d: &Digest) -> Vec<u64> {
    m.blobs
        .iter()
        .find(|b| b.sha256 == *d && b.is_pack())
        .map(|b| b.members.iter().map(|x| x.size).collect())
        .unwrap_or_default()
}

/// Decoded contents of blobs that later blobs use as delta references, during a
/// streaming pass. The manifest's rules (FORMAT.md §4.3.8) bound how much is held at once.
#[derive(Default)]
struct References {
    /// Index of the last blob that uses each reference.
    last_use: HashMap<Digest, usize>,
    content: HashMap<Digest, std::rc::Rc<Vec<u8>>>,
}

impl References {
    fn of(m: &Manifest) -> Self {
        let mut last_use = HashMap::new();
        for (i, b) in m.blobs.iter().enumerate() {
            if let Some(r) = b.reference {
                last_use.insert(r, i);
            }
        }
        References { last_use, content: HashMap::new() }
    }

    fn needed_after(&self, blob: &Digest, index: usize) -> bool {
        self.last_use.get(blob).is_some_and(|&last| last > index)
    }

    /// Member `m` of the pack at `index`, streaming by as `member`: kept if a later blob
    /// references it, and handed to `sink` if it wants it.
    fn keep_member(
        &mut self,
        sink: &mut dyn ContentSink,
        index: usize,
        m: &Member,
        member: &mut dyn Read,
    ) -> io::Result<()> {
        if self.needed_after(&m.sha256, index) {
            let mut content = Vec::with_capacity(usize::try_from(m.size).unwrap_or(0));
            member.read_to_end(&mut content)?;
            if sink.wants(&m.sha256, m.size)? {
                sink.take(&m.sha256, m.size, &mut &content[..])?;
            }
            self.content.insert(m.sha256, std::rc::Rc::new(content));
        } else if sink.wants(&m.sha256, m.size)? {
            sink.take(&m.sha256, m.size, member)?;
        }
        Ok(())
    }

    fn release_after(&mut self, index: usize) {
        let last_use = &self.last_use;
        self.content.retain(|d, _| last_use.get(d).is_some_and(|&last| last > index));
    }
}

fn read_err(path: &Path) -> impl Fn(ReadError) -> Error + '_ {
    move |e| match e {
        ReadError::Io(source) => Error::Io { path: path.to_path_buf(), source },
        ReadError::Integrity(kind) => Error::integrity(path, kind),
    }
}

fn io_or_integrity(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| match integrity_of(&e) {
        Some(kind) => Error::integrity(path, kind),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            Error::integrity(path, Integrity::Truncated("the file ended early (changed while being read?)".into()))
        }
        None => Error::Io { path: path.to_path_buf(), source: e },
    }
}

fn manifest_err(e: ManifestError) -> Integrity {
    match e {
        ManifestError::UnknownFormatVersion(v) => Integrity::UnknownFormatVersion(v),
        ManifestError::Malformed(m) => Integrity::MalformedManifest(m),
        e @ ManifestError::FileAndDirectory { .. } => Integrity::FileAndDirectory(e.to_string()),
        other => Integrity::InvalidManifest(other.to_string()),
    }
}

/// The largest Zstandard window a manifest of `size` bytes may ask for, as a power of two:
/// enough for the whole manifest (what a writer's one-frame encoding asks), never more than
/// the format's window limit, so that decoding it holds no more than about its own size.
pub fn manifest_window_log(size: u64, limits: &Limits) -> u32 {
    let needed = 64 - size.max(1 << 10).saturating_sub(1).leading_zeros();
    needed.clamp(10, limits.max_zstd_window_log)
}

/// Decodes the manifest entry's data (stored, deflated, or one Zstandard frame), bounded
/// by its declared size, and checks it against the format's rules.
fn decode_manifest<R: Read>(
    data: R,
    entry: &CentralEntry,
    limits: &Limits,
) -> std::result::Result<Manifest, ReadError> {
    let mut raw = Vec::with_capacity(usize::try_from(entry.uncompressed.min(1 << 20)).unwrap_or(0));
    let bound = entry.uncompressed + 1;
    let n = match entry.method {
        METHOD_STORED => data.take(bound).read_to_end(&mut raw),
        METHOD_DEFLATE => flate2::read::DeflateDecoder::new(data).take(bound).read_to_end(&mut raw),
        METHOD_ZSTD => zstd::stream::read::Decoder::new(data).and_then(|d| {
            let mut d = d.single_frame();
            d.window_log_max(manifest_window_log(entry.uncompressed, limits))?;
            d.take(bound).read_to_end(&mut raw)
        }),
        _ => return Err(Integrity::MalformedArchive("manifest method".into()).into()),
    }
    .map_err(|e| Integrity::MalformedManifest(format!("manifest does not decode: {e}")))?;
    if n as u64 != entry.uncompressed {
        return Err(Integrity::MalformedManifest(format!(
            "manifest decodes to {}{n} bytes, the directory says {}",
            if n as u64 > entry.uncompressed { "more than " } else { "" },
            entry.uncompressed
        ))
        .into());
    }
    if crc32fast::hash(&raw) != entry.crc32 {
        return Err(Integrity::MalformedManifest("manifest CRC-32 does not match the directory".into()).into());
    }
    Manifest::from_json(&raw, limits).map_err(|e| manifest_err(e).into())
}

/// Checks that the archive's blob entries are exactly the manifest's blobs, in its order,
/// with the methods and sizes the manifest implies (FORMAT.md §8 step 13).
fn match_entries(archive: &Archive, manifest: &Manifest) -> std::result::Result<(), Integrity> {
    let declared: HashMap<String, &Blob> =
        manifest.blobs.iter().map(|b| (format!("{BLOB_PREFIX}{}", b.sha256), b)).collect();
    let present: HashMap<&str, &CentralEntry> = archive.entries[1..].iter().map(|e| (e.name.as_str(), e)).collect();
    if let Some(extra) = archive.entries[1..].iter().find(|e| !declared.contains_key(&e.name)) {
        return Err(Integrity::EntryNotInManifest(extra.name.clone()));
    }
    if let Some(missing) =
        manifest.blobs.iter().find(|b| !present.contains_key(format!("{BLOB_PREFIX}{}", b.sha256).as_str()))
    {
        return Err(Integrity::EntryMissing(missing.sha256.to_hex()));
    }
    for (entry, blob) in archive.entries[1..].iter().zip(&manifest.blobs) {
        if entry.name != format!("{BLOB_PREFIX}{}", blob.sha256) {
            return Err(Integrity::MalformedArchive("blob entries are not in the manifest's order".into()));
        }
        let method = crate::zipfmt::method_for(blob.encoding);
        if entry.method != method {
            return Err(Integrity::MalformedArchive(format!(
                "{}: zip method {} but encoding {:?}",
                entry.name, entry.method, blob.encoding
            )));
        }
        if entry.uncompressed != blob.size {
            return Err(Integrity::SizeMismatch {
                blob: blob.sha256.to_hex(),
                declared: blob.size,
                found: entry.uncompressed,
            });
        }
    }
    Ok(())
}

/// Where [`Verified::decode_into`] hands contents as it decodes them, so that a caller that
/// stores them (the runtime's store, an extraction) decodes the package once. The package
/// is authenticated before anything is handed over; a content handed over is checked
/// against the manifest's size and hash as its last byte is read (a pack member right
/// after [`ContentSink::take`] returns), so nothing handed over may be used until
/// `decode_into` returns `Ok`.
pub trait ContentSink {
    /// Whether the sink wants content `digest` of `size` bytes.
    fn wants(&mut self, digest: &Digest, size: u64) -> io::Result<bool>;
    /// Takes content `digest`: reads `content` to its end. A read error is the package's
    /// (a size, CRC or hash mismatch found at the end): return it as it is. A pack
    /// member's hash is checked right after this returns.
    fn take(&mut self, digest: &Digest, size: u64, content: &mut dyn Read) -> io::Result<()>;
}

/// The sink of [`check`] with [`Depth::Deep`]: wants nothing.
struct NoSink;

impl ContentSink for NoSink {
    fn wants(&mut self, _: &Digest, _: u64) -> io::Result<bool> {
        Ok(false)
    }
    fn take(&mut self, _: &Digest, _: u64, _: &mut dyn Read) -> io::Result<()> {
        Ok(())
    }
}

/// How deeply [`check`] looks at a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The authentication pass only (FORMAT.md §8 steps 1–13): the signature over every
    /// byte and the structure, at the speed of hashing the file.
    Authenticate,
    /// Then every blob decoded against the authenticated manifest (step 14): what a release
    /// pipeline runs before it publishes a package.
    Deep,
}

/// Reads `n` bytes from `r` into its hash, without copying them anywhere.
fn hash_through<R: BufRead>(r: &mut HashingReader<R>, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let buf = r.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let k = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        r.hasher.update(&buf[..k]);
        r.inner.consume(k);
        r.pos += k as u64;
        n -= k as u64;
    }
    Ok(())
}

/// Authenticates a package (FORMAT.md §8 steps 1–13): its structure and a trusted signer;
/// then one pass that hashes every byte — comparing each local header with the directory
/// and keeping the manifest's stored bytes, decoding nothing — and checks the signature
/// over the whole file; only then is the manifest decoded, parsed, validated and matched
/// against the entries. No blob is decoded: that is [`Verified::decode_into`] (or
/// [`check`] with [`Depth::Deep`]). `progress` is called with the bytes read so far.
///
/// The returned [`Verified`] keeps the file open, so that a decode pass reads the very
/// file that was authenticated, never one put at the same path since.
pub fn verify(
    path: &Path,
    trusted: &[TrustedKey],
    limits: &Limits,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    // Steps 1–9: tail, signature block, central directory, layout.
    let archive = Archive::parse(&mut file, limits).map_err(read_err(path))?;
    // Step 10: the signer is trusted.
    let Some(signer) = trusted.iter().find(|k| k.id == archive.sig.key_id) else {
        let trusted_ids: Vec<String> =
            trusted.iter().map(|k| format!("{} ({})", k.id_hex(), k.source.display())).collect();
        return Err(Error::integrity(
            path,
            Integrity::UntrustedKey {
                key_id: key_id_hex(&archive.sig.key_id),
                trusted: if trusted_ids.is_empty() { "none given".into() } else { trusted_ids.join(", ") },
            },
        ));
    };
    file.seek(SeekFrom::Start(0)).map_err(Error::io(path))?;
    let mut r = HashingReader { inner: BufReader::with_capacity(BUF, &file), hasher: Sha256::new(), pos: 0 };
    let total = archive.len;
    let to_io = io_or_integrity(path);

    // Step 11: every byte is hashed in one pass, front to back — the stub; each local
    // header, compared with the one its directory record implies; the manifest's stored
    // bytes, kept (within the manifest limit, step 9) to be decoded once authenticated;
    // each blob's stored bytes, only hashed.
    hash_through(&mut r, archive.prefix_len).map_err(&to_io)?;
    let mut manifest_data = Vec::new();
    for (i, entry) in archive.entries.iter().enumerate() {
        let expected = entry.local_header();
        let mut header = vec![0u8; expected.len()];
        r.read_exact(&mut header).map_err(&to_io)?;
        if header != expected {
            return Err(Error::integrity(
                path,
                Integrity::MalformedArchive(format!(
                    "local header of {:?} does not match the central directory",
                    entry.name
                )),
            ));
        }
        if i == 0 {
            manifest_data = vec![0u8; usize::try_from(entry.compressed).unwrap_or(0)];
            r.read_exact(&mut manifest_data).map_err(&to_io)?;
        } else {
            hash_through(&mut r, entry.compressed).map_err(&to_io)?;
        }
        progress(r.pos, total);
    }
    // The central directory and tail hashed here are the bytes parsed in steps 2–9 (a file
    // changed while it was read is rejected).
    let mut cd = vec![0u8; archive.cd_bytes.len()];
    r.read_exact(&mut cd).map_err(&to_io)?;
    let covered_tail = archive.tail.len() - SIGNATURE_LEN;
    let mut tail = vec![0u8; covered_tail];
    r.read_exact(&mut tail).map_err(&to_io)?;
    if cd != archive.cd_bytes || tail[..] != archive.tail[..covered_tail] {
        return Err(Error::integrity(
            path,
            Integrity::Truncated("the file changed while it was being verified".into()),
        ));
    }
    progress(total, total);
    // Step 12: the signature over every byte before it.
    let digest: [u8; 32] = r.hasher.finalize().into();
    let signature = ed25519_dalek::Signature::from_bytes(&archive.sig.signature);
    signer
        .key
        .verify_strict(&signed_message(&digest), &signature)
        .map_err(|_| Error::integrity(path, Integrity::BadSignature))?;
    // Step 13: the authenticated manifest is decoded, parsed and checked, then the entries
    // it implies.
    let Some(first) = archive.entries.first() else {
        return Err(Error::integrity(path, Integrity::MalformedArchive("no manifest".into())));
    };
    let manifest = decode_manifest(&manifest_data[..], first, limits).map_err(read_err(path))?;
    match_entries(&archive, &manifest).map_err(|k| Error::integrity(path, k))?;
    let contents = manifest.content_index();
    Ok(Verified { path: path.to_path_buf(), manifest, archive, signer: signer.clone(), contents, file: Arc::new(file) })
}

/// [`verify`], then, with [`Depth::Deep`], [`Verified::decode_into`] with a sink that
/// keeps nothing: every blob decoded and checked against the authenticated manifest.
pub fn check(
    path: &Path,
    trusted: &[TrustedKey],
    limits: &Limits,
    depth: Depth,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified> {
    let verified = verify(path, trusted, limits, progress)?;
    if depth == Depth::Deep {
        verified.decode_into(limits, progress, &mut NoSink)?;
    }
    Ok(verified)
}

/// [`verify`], then [`Verified::decode_into`] `sink`: the package is authenticated in full
/// before its first blob is decoded, and decoded once. `progress` sees both passes.
pub fn verify_into(
    path: &Path,
    trusted: &[TrustedKey],
    limits: &Limits,
    progress: &mut dyn FnMut(u64, u64),
    sink: &mut dyn ContentSink,
) -> Result<Verified> {
    let verified = verify(path, trusted, limits, progress)?;
    verified.decode_into(limits, progress, sink)?;
    Ok(verified)
}

/// Reads a file at a position of its own, through a shared handle (`pread`): the decode
/// pass and its other threads read the authenticated file without sharing an offset.
struct ReadAt<'f> {
    file: &'f File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Verified {
    /// The authenticated manifest, once nothing more is to be decoded: without a copy of
    /// what can be the largest structure a reader holds.
    pub fn into_manifest(self) -> Manifest {
        self.manifest
    }

    /// A buffered reader of entry `entry`'s stored bytes, from the authenticated file.
    fn entry_data(&self, entry: &CentralEntry) -> Take<BufReader<ReadAt<'_>>> {
        let cap = usize::try_from(entry.compressed).unwrap_or(BUF).clamp(1 << 13, BUF);
        BufReader::with_capacity(cap, ReadAt { file: &self.file, pos: entry.data_offset() }).take(entry.compressed)
    }

    /// The decode pass (FORMAT.md §8 step 14), for a package [`verify`] authenticated:
    /// every blob is read again from the same open file, at the offsets of the
    /// authenticated directory, and decoded within the authenticated manifest's declared
    /// size to its CRC-32 and SHA-256 (a pack's members to theirs); a delta blob against
    /// its reference's content, kept from when that earlier blob was decoded. Every
    /// content `sink` wants is handed to it as it is decoded; its hash is checked as its
    /// last byte is read. Bytes changed in the file since it was authenticated therefore
    /// fail a check here, and reach `sink` only as a content that then fails.
    pub fn decode_into(
        &self,
        limits: &Limits,
        progress: &mut dyn FnMut(u64, u64),
        sink: &mut dyn ContentSink,
    ) -> Result<()> {
        let path = &self.path;
        let m = &self.manifest;
        let total = self.archive.len;
        let mut refs = References::of(m);
        // Two threads share the work. Blobs that are not deltas and fit PREFETCH_MAX_BYTES
        // are decoded (and checked) ahead, in order, on a second thread, at most
        // PREFETCH_BUDGET_BYTES of them waiting (or one). This thread decodes the others —
        // the deltas, against what it kept, and blobs too large to wait in memory — and
        // hands every content to the sink in the manifest's order, as a single thread
        // would. Besides, an LZMA or PPMd blob too large to go ahead, which nothing later
        // needs and the sink does not want, is decoded on a third thread from its stored
        // bytes, one at a time. The error reported is always the earliest blob's. Where a
        // thread cannot be started, this one does its work.
        let ahead_of: Vec<bool> =
            m.blobs.iter().map(|b| b.reference.is_none() && b.size <= PREFETCH_MAX_BYTES).collect();
        let budget = Budget::new(PREFETCH_BUDGET_BYTES);
        std::thread::scope(|scope| -> Result<()> {
            // A decoding thread can only fail this way by panicking: a bug of this program,
            // not the package's fault, so not an integrity error.
            let failed = || Error::Io {
                path: path.to_path_buf(),
                source: io::Error::other("a decoding thread stopped unexpectedly (a bug in this program)"),
            };
            let (ahead_tx, ahead_rx) = std::sync::mpsc::channel::<(usize, Result<Vec<u8>>)>();
            let mut ahead = None;
            if ahead_of.contains(&true) {
                let (list, budget) = (&ahead_of, &budget);
                let spawned = std::thread::Builder::new().name("decode-ahead".into()).spawn_scoped(scope, move || {
                    for (i, blob) in m.blobs.iter().enumerate() {
                        if !list[i] {
                            continue;
                        }
                        // A blob counts at least a page: the errors of many empty ones
                        // wait within the budget too.
                        if !budget.take(blob.size.max(PREFETCH_MIN_CHARGE)) {
                            return; // the decode pass stopped
                        }
                        let decoded = self.decode_whole(i, blob, limits);
                        let stop = decoded.is_err(); // the pass stops at this blob
                        if ahead_tx.send((i, decoded)).is_err() || stop {
                            return;
                        }
                    }
                });
                ahead = spawned.ok();
            }
            let ahead_on = ahead.is_some();
            let mut pending: Option<std::thread::ScopedJoinHandle<'_, Result<()>>> = None;
            let join = |p: Option<std::thread::ScopedJoinHandle<'_, Result<()>>>| -> Result<()> {
                match p.map(|h| h.join()) {
                    Some(Ok(r)) => r,
                    Some(Err(_)) => Err(failed()),
                    None => Ok(()),
                }
            };
            let outcome = (|| -> Result<()> {
                // Dropped on return, stopping the thread ahead.
                let (ahead_rx, _closing) = (ahead_rx, budget.closing());
                let to_io = io_or_integrity(path);
                for (i, blob) in m.blobs.iter().enumerate() {
                    let Some(entry) = self.archive.entries.get(i + 1) else {
                        return Err(Error::integrity(path, Integrity::EntryMissing(blob.sha256.to_hex())));
                    };
                    let keep = refs.needed_after(&blob.sha256, i);
                    let want = !blob.is_pack() && sink.wants(&blob.sha256, blob.size).map_err(&to_io)?;
                    if ahead_on && ahead_of[i] {
                        let content = match ahead_rx.recv() {
                            Ok((j, decoded)) if j == i => decoded?,
                            _ => return Err(failed()),
                        };
                        budget.give(blob.size.max(PREFETCH_MIN_CHARGE));
                        if blob.is_pack() {
                            for_each_member(&mut io::Cursor::new(&content), blob, |mb, member| {
                                refs.keep_member(sink, i, mb, member)
                            })
                            .map_err(&to_io)?;
                        } else if want {
                            sink.take(&blob.sha256, blob.size, &mut &content[..]).map_err(&to_io)?;
                        }
                        if keep {
                            refs.content.insert(blob.sha256, std::rc::Rc::new(content));
                        }
                        refs.release_after(i);
                        progress(entry_end(&self.archive, i), total);
                        continue;
                    }
                    let offload = matches!(blob.encoding, Encoding::Lzma | Encoding::LzmaX86 | Encoding::Ppmd)
                        && !keep
                        && !want
                        && !blob.is_pack()
                        && entry.compressed <= OFFLOAD_MAX_BYTES;
                    if offload {
                        let mut data = Vec::with_capacity(usize::try_from(entry.compressed).unwrap_or(0));
                        self.entry_data(entry).read_to_end(&mut data).map_err(&to_io)?;
                        join(pending.take())?;
                        let (entry, blob, limits) = (entry.clone(), blob.clone(), limits.clone());
                        pending = Some(scope.spawn(move || {
                            let to_io = io_or_integrity(path);
                            let mut br =
                                BlobReader::new(&data[..], &entry, &blob, &limits, None, &[]).map_err(&to_io)?;
                            io::copy(&mut br, &mut io::sink()).map(drop).map_err(&to_io)
                        }));
                        progress(entry_end(&self.archive, i), total);
                        continue;
                    }
                    let prefix = blob.reference.as_ref().and_then(|d| refs.content.get(d)).cloned();
                    let ref_sizes = blob.reference.as_ref().map(|d| pack_member_sizes(m, d)).unwrap_or_default();
                    let data = self.entry_data(entry);
                    let mut br =
                        BlobReader::new(data, entry, blob, limits, prefix.as_ref().map(|p| p.as_slice()), &ref_sizes)
                            .map_err(&to_io)?;
                    if blob.is_pack() && keep {
                        // A later pack is a delta against this one: keep it whole, then split it.
                        let mut content = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
                        io::copy(&mut br, &mut content).map_err(&to_io)?;
                        for_each_member(&mut io::Cursor::new(&content), blob, |mb, member| {
                            refs.keep_member(sink, i, mb, member)
                        })
                        .map_err(&to_io)?;
                        refs.content.insert(blob.sha256, std::rc::Rc::new(content));
                    } else if blob.is_pack() {
                        // Each member is hashed as it streams by; those a later delta uses are kept.
                        for_each_member(&mut br, blob, |mb, member| refs.keep_member(sink, i, mb, member))
                            .map_err(&to_io)?;
                    } else if keep {
                        let mut content = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
                        io::copy(&mut br, &mut content).map_err(&to_io)?;
                        if want {
                            sink.take(&blob.sha256, blob.size, &mut &content[..]).map_err(&to_io)?;
                        }
                        refs.content.insert(blob.sha256, std::rc::Rc::new(content));
                    } else {
                        if want {
                            sink.take(&blob.sha256, blob.size, &mut br).map_err(&to_io)?;
                        }
                        // To the end, so that the reader's checks run whatever the sink read.
                        io::copy(&mut br, &mut io::sink()).map_err(&to_io)?;
                    }
                    drop(br);
                    refs.release_after(i);
                    progress(entry_end(&self.archive, i), total);
                }
                Ok(())
            })();
            // An error of the blob on the offload thread comes first: it is the earlier blob.
            let other = join(pending.take());
            let ahead = match ahead.map(|h| h.join()) {
                Some(Err(_)) => Err(failed()),
                _ => Ok(()),
            };
            other.and(outcome).and(ahead)
        })?;
        progress(total, total);
        Ok(())
    }

    /// Blob `index` (not a delta), decoded whole and checked against its size and hashes
    /// (a pack's members are checked when they are split off).
    fn decode_whole(&self, index: usize, blob: &Blob, limits: &Limits) -> Result<Vec<u8>> {
        let path = &self.path;
        let Some(entry) = self.archive.entries.get(index + 1) else {
            return Err(Error::integrity(path, Integrity::EntryMissing(blob.sha256.to_hex())));
        };
        let to_io = io_or_integrity(path);
        let mut br = BlobReader::new(self.entry_data(entry), entry, blob, limits, None, &[]).map_err(&to_io)?;
        let mut content = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        br.read_to_end(&mut content).map_err(&to_io)?;
        Ok(content)
    }

    /// Where content `digest` is: a blob, or a member of a pack.
    pub fn locate(&self, digest: &Digest) -> Option<ContentLoc> {
        self.contents.get(digest).copied()
    }

    /// Maps an error from a [`BlobReader`] of this package to an [`Error`].
    pub fn blob_error(&self, e: io::Error) -> Error {
        io_or_integrity(&self.path)(e)
    }
}

/// Where blob `index`'s entry ends in the file (for progress).
fn entry_end(archive: &Archive, index: usize) -> u64 {
    archive.entries.get(index + 1).map_or(archive.len, CentralEntry::end)
}

/// Reads the structure and manifest without checking the signature or the blobs.
pub fn read_unverified(path: &Path, limits: &Limits) -> Result<Unverified> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    let archive = Archive::parse(&mut file, limits).map_err(read_err(path))?;
    let entry = &archive.entries[0];
    file.seek(SeekFrom::Start(entry.data_offset())).map_err(Error::io(path))?;
    let manifest =
        decode_manifest(BufReader::new(&mut file).take(entry.compressed), entry, limits).map_err(read_err(path))?;
    match_entries(&archive, &manifest).map_err(|k| Error::integrity(path, k))?;
    Ok(Unverified { manifest, archive })
}

/// Decodes `data` as the stored bytes of `blob` (CRC-32 `crc32`) through the same checking
/// reader [`verify`] uses, `reference` being a delta's decoded reference, and returns the
/// number of bytes it yielded. Not an API: the entry point of the fuzz targets (`fuzz/`)
/// for the blob decoders, which are otherwise reachable only behind a signed package.
#[doc(hidden)]
pub fn decode_entry_for_fuzzing(
    data: &[u8],
    crc32: u32,
    blob: &Blob,
    limits: &Limits,
    reference: Option<&[u8]>,
) -> io::Result<u64> {
    let entry = CentralEntry {
        name: format!("{BLOB_PREFIX}{}", blob.sha256),
        method: METHOD_STORED,
        crc32,
        compressed: data.len() as u64,
        uncompressed: blob.size,
        offset: 0,
        time: crate::zipfmt::DosTime::from_unix(0),
    };
    let mut reader = BlobReader::new(data, &entry, blob, limits, reference, &[])?;
    io::copy(&mut reader, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_holds_a_taker_until_bytes_are_given_back_or_the_pass_stops() {
        let budget = Budget::new(10);
        assert!(budget.take(8), "fits");
        assert!(!budget.state.lock().is_ok_and(|s| s.1), "not stopped");
        std::thread::scope(|scope| {
            // 8 + 5 > 10: waits until 8 are given back.
            let waiting = scope.spawn(|| budget.take(5));
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiting.is_finished(), "a blob that does not fit waits");
            budget.give(8);
            assert!(waiting.join().expect("no panic"), "taken once the bytes came back");
        });
        std::thread::scope(|scope| {
            // 5 held; 6 more do not fit: only the pass stopping wakes the taker, refused.
            let waiting = scope.spawn(|| budget.take(6));
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiting.is_finished());
            drop(budget.closing());
            assert!(!waiting.join().expect("no panic"), "a stopped pass refuses");
        });
        assert!(!budget.take(1), "and keeps refusing");
        // One blob larger than the whole budget is taken when nothing else is held.
        let big = Budget::new(10);
        assert!(big.take(100));
    }
}
