//! The archive layer: the canonical zip profile of FORMAT.md §3, written and read.
//!
//! The writer emits one exact byte layout: local header (no extra field, no data
//! descriptor), data, next entry, …, central directory, end record whose comment is the
//! signature block. The reader accepts only that layout: it recomputes where every entry
//! must start from the central directory and rejects overlaps, gaps, duplicate or unsafe
//! names, non-regular entries and anything it does not produce — so every byte of a
//! package belongs to exactly one structure the signature vouches for. General-purpose zip
//! readers are deliberately lenient about all of these; that is why this layer is ours.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom, Write};

use hotfix_schema::sigblock::{SIG_BLOCK_LEN, SigBlock, SigBlockError};
use hotfix_schema::{BLOB_PREFIX, Limits, MANIFEST_ENTRY};

use crate::error::Integrity;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
/// Fixed part of a local file header.
pub const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: usize = 46;
/// Length of the end-of-central-directory record without its comment.
pub const EOCD_LEN: usize = 22;
/// The end record plus the signature block: the fixed tail of every package.
pub const TAIL_LEN: usize = EOCD_LEN + SIG_BLOCK_LEN;

/// Zip method 0.
pub const METHOD_STORED: u16 = 0;
/// Zip method 8.
pub const METHOD_DEFLATE: u16 = 8;
/// Zip method 93 (APPNOTE 6.3.7).
pub const METHOD_ZSTD: u16 = 93;
/// Zip method 14, LZMA (APPNOTE 5.8).
pub const METHOD_LZMA: u16 = 14;
/// Zip method 98, PPMd version I, revision 1 (APPNOTE 5.10).
pub const METHOD_PPMD: u16 = 98;

/// The zip method an entry of `encoding` is stored with (FORMAT.md §4.4).
pub fn method_for(encoding: hotfix_schema::Encoding) -> u16 {
    use hotfix_schema::Encoding as E;
    match encoding {
        E::Stored => METHOD_STORED,
        E::Lzma | E::LzmaX86 | E::LzmaGz | E::LzmaX86Gz => METHOD_LZMA,
        E::Ppmd | E::PpmdGz => METHOD_PPMD,
        E::Zstd
        | E::ZstdDelta
        | E::BsdiffZstd
        | E::BsdiffX86Zstd
        | E::BsdiffElfZstd
        | E::BsdiffElf2Zstd
        | E::BsdiffElf3Zstd
        | E::ZstdGz
        | E::ZstdDeltaGz => METHOD_ZSTD,
    }
}
const FLAG_UTF8: u16 = 1 << 11;
/// General-purpose bit 1 for method 14: the LZMA stream ends with an end-of-stream marker.
const FLAG_LZMA_EOS: u16 = 1 << 1;
/// "Version made by": Unix (3), spec 6.3.
const VERSION_MADE_BY: u16 = (3 << 8) | 63;
/// External attributes of every entry: a regular file, `rw-r--r--`.
const EXTERNAL_ATTRS: u32 = 0o100_644 << 16;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

fn version_needed(method: u16) -> u16 {
    if matches!(method, METHOD_ZSTD | METHOD_LZMA | METHOD_PPMD) { 63 } else { 20 }
}

/// The general-purpose flags of an entry with `method`: names are UTF-8; LZMA streams end
/// with a marker.
fn flags_of(method: u16) -> u16 {
    if method == METHOD_LZMA { FLAG_UTF8 | FLAG_LZMA_EOS } else { FLAG_UTF8 }
}

/// A DOS date and time, as zip stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DosTime {
    /// DOS time field.
    pub time: u16,
    /// DOS date field.
    pub date: u16,
}

impl DosTime {
    /// 1980-01-01 00:00:00, the earliest DOS time; used when no `SOURCE_DATE_EPOCH` is set.
    pub const EPOCH: DosTime = DosTime { time: 0, date: (1 << 5) | 1 };

    /// Converts Unix seconds (UTC) to a DOS time, clamped to 1980–2107.
    pub fn from_unix(secs: i64) -> DosTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = hotfix_schema::text::civil_from_days(days);
        let (month, day) = (i64::from(month), i64::from(day));
        if year < 1980 {
            return DosTime::EPOCH;
        }
        if year > 2107 {
            return DosTime { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
        }
        let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        let time = (h << 11) | (m << 5) | (s / 2);
        let date = ((year - 1980) << 9) | (month << 5) | day;
        DosTime { time: u16::try_from(time).unwrap_or(0), date: u16::try_from(date).unwrap_or(DosTime::EPOCH.date) }
    }
}

/// What the central directory says about one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentralEntry {
    /// Entry name.
    pub name: String,
    /// Zip method.
    pub method: u16,
    /// CRC-32 of the decoded data.
    pub crc32: u32,
    /// Stored (compressed) size.
    pub compressed: u64,
    /// Decoded size.
    pub uncompressed: u64,
    /// Offset of the local header from the start of the file.
    pub offset: u64,
    /// Modification time.
    pub time: DosTime,
}

impl CentralEntry {
    /// Offset of the entry's data.
    pub fn data_offset(&self) -> u64 {
        self.offset + LOCAL_HEADER_LEN + self.name.len() as u64
    }

    /// Offset just past the entry's data.
    pub fn end(&self) -> u64 {
        self.data_offset() + self.compressed
    }

    /// The exact local header the canonical writer puts before this entry's data.
    pub fn local_header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(LOCAL_HEADER_LEN as usize + self.name.len());
        put32(&mut h, LOCAL_SIG);
        self.put_shared_fields(&mut h);
        put16(&mut h, 0); // extra
        h.extend_from_slice(self.name.as_bytes());
        h
    }

    /// The fields local and central headers share, from "version needed" to the name's
    /// length.
    fn put_shared_fields(&self, h: &mut Vec<u8>) {
        put16(h, version_needed(self.method));
        put16(h, flags_of(self.method));
        put16(h, self.method);
        put16(h, self.time.time);
        put16(h, self.time.date);
        put32(h, self.crc32);
        put32(h, self.compressed as u32);
        put32(h, self.uncompressed as u32);
        put16(h, self.name.len() as u16);
    }

    fn central_header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(CENTRAL_HEADER_LEN + self.name.len());
        put32(&mut h, CENTRAL_SIG);
        put16(&mut h, VERSION_MADE_BY);
        self.put_shared_fields(&mut h);
        put16(&mut h, 0); // extra
        put16(&mut h, 0); // comment
        put16(&mut h, 0); // disk
        put16(&mut h, 0); // internal attributes
        put32(&mut h, EXTERNAL_ATTRS);
        put32(&mut h, self.offset as u32);
        h.extend_from_slice(self.name.as_bytes());
        h
    }
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// Writes the canonical layout. The caller writes any stub first and says how long it was.
pub struct ZipWriter<W: Write> {
    out: W,
    pos: u64,
    entries: Vec<CentralEntry>,
    time: DosTime,
}

impl<W: Write> ZipWriter<W> {
    /// Starts an archive at file offset `start` (the length of a stub already written).
    pub fn new(out: W, start: u64, time: DosTime) -> Self {
        ZipWriter { out, pos: start, entries: Vec::new(), time }
    }

    /// Appends one entry whose data is already encoded.
    pub fn add(&mut self, name: &str, method: u16, crc32: u32, uncompressed: u64, data: &[u8]) -> io::Result<()> {
        let too_big = |what: &str| io::Error::other(format!("{what} does not fit format v1 (no zip64)"));
        if uncompressed >= u64::from(u32::MAX) || data.len() as u64 >= u64::from(u32::MAX) {
            return Err(too_big("an entry over 4 GiB"));
        }
        if self.pos >= u64::from(u32::MAX) || self.entries.len() >= usize::from(u16::MAX) - 1 {
            return Err(too_big("a package over 4 GiB or 65534 entries"));
        }
        let entry = CentralEntry {
            name: name.to_string(),
            method,
            crc32,
            compressed: data.len() as u64,
            uncompressed,
            offset: self.pos,
            time: self.time,
        };
        let header = entry.local_header();
        self.out.write_all(&header)?;
        self.out.write_all(data)?;
        self.pos = entry.end();
        self.entries.push(entry);
        Ok(())
    }

    /// Writes the central directory, the end record with a comment length of
    /// [`SIG_BLOCK_LEN`], and `comment_head` (the start of the signature block). Returns the
    /// writer, positioned where the rest of the comment goes.
    pub fn finish(mut self, comment_head: &[u8]) -> io::Result<W> {
        let cd_offset = self.pos;
        let mut cd = Vec::new();
        for e in &self.entries {
            cd.extend_from_slice(&e.central_header());
        }
        let n = self.entries.len() as u16;
        if cd_offset + cd.len() as u64 + TAIL_LEN as u64 >= u64::from(u32::MAX) {
            return Err(io::Error::other("a package over 4 GiB does not fit format v1 (no zip64)"));
        }
        let mut eocd = Vec::with_capacity(EOCD_LEN);
        put32(&mut eocd, EOCD_SIG);
        put16(&mut eocd, 0);
        put16(&mut eocd, 0);
        put16(&mut eocd, n);
        put16(&mut eocd, n);
        put32(&mut eocd, cd.len() as u32);
        put32(&mut eocd, cd_offset as u32);
        put16(&mut eocd, SIG_BLOCK_LEN as u16);
        self.out.write_all(&cd)?;
        self.out.write_all(&eocd)?;
        self.out.write_all(comment_head)?;
        Ok(self.out)
    }
}

/// A package's archive structure, read and checked from its tail and central directory.
#[derive(Clone, Debug)]
pub struct Archive {
    /// Length of the whole file.
    pub len: u64,
    /// Bytes before the first entry (the installer stub, or 0).
    pub prefix_len: u64,
    /// Entries in file order; the first is the manifest.
    pub entries: Vec<CentralEntry>,
    /// Offset of the central directory.
    pub cd_offset: u64,
    /// The central directory's bytes, exactly as read.
    pub cd_bytes: Vec<u8>,
    /// The end record and signature block, exactly as read.
    pub tail: [u8; TAIL_LEN],
    /// The parsed signature block.
    pub sig: SigBlock,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Checks an entry name: safe first (no escapes), then of the format's shape.
fn check_entry_name(raw: &[u8]) -> Result<String, Integrity> {
    let shown = String::from_utf8_lossy(raw).escape_debug().to_string();
    let name = std::str::from_utf8(raw).map_err(|_| Integrity::BadEntryName(shown.clone()))?;
    let unsafe_name = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.contains(':')
        || name.chars().any(char::is_control)
        || name.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if unsafe_name {
        return Err(Integrity::BadEntryName(shown));
    }
    Ok(name.to_string())
}

/// True when `name` is `blobs/` followed by 64 lowercase hex digits.
pub fn is_blob_name(name: &str) -> bool {
    name.strip_prefix(BLOB_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl Archive {
    /// Reads and checks the tail and central directory (FORMAT.md §3.3, steps 1–9). Reads
    /// at most the tail and a central directory within `limits`; entry data is not read.
    pub fn parse<R: Read + Seek>(r: &mut R, limits: &Limits) -> Result<Archive, ReadError> {
        use Integrity as I;
        // 1. The file is long enough for the fixed tail and not over the size limit.
        let len = r.seek(SeekFrom::End(0))?;
        if len < (TAIL_LEN + CENTRAL_HEADER_LEN) as u64 {
            return Err(I::Truncated(format!("{len} bytes is shorter than the smallest package")).into());
        }
        if len > limits.max_package_bytes {
            return Err(I::MalformedArchive(format!(
                "{len} bytes is over the {}-byte limit",
                limits.max_package_bytes
            ))
            .into());
        }
        // 2. The end record sits exactly TAIL_LEN bytes before the end, with a signature block as its comment.
        let mut tail = [0u8; TAIL_LEN];
        r.seek(SeekFrom::Start(len - TAIL_LEN as u64))?;
        r.read_exact(&mut tail)?;
        let mut c = Cursor { buf: &tail, pos: 0 };
        let field = |v: Option<u32>| v.unwrap_or(0);
        let sig = field(c.u32());
        let disk = c.u16().unwrap_or(1);
        let cd_disk = c.u16().unwrap_or(1);
        let n_disk = c.u16().unwrap_or(0);
        let n_total = c.u16().unwrap_or(0);
        let cd_size = u64::from(field(c.u32()));
        let cd_offset = u64::from(field(c.u32()));
        let comment_len = c.u16().unwrap_or(0);
        if sig != EOCD_SIG || usize::from(comment_len) != SIG_BLOCK_LEN {
            return Err(
                I::Truncated("no end-of-archive record with a signature block at the end of the file".into()).into()
            );
        }
        // 3. The signature block is well formed and of a known version and algorithm.
        let sigblock = SigBlock::parse(&tail[EOCD_LEN..]).map_err(|e| match e {
            SigBlockError::NotABlock(why) => I::Truncated(why),
            SigBlockError::Unknown(what) => I::UnknownSignatureAlgorithm(what),
        })?;
        // 4. One disk, no zip64, a central directory that ends where the end record starts.
        if disk != 0 || cd_disk != 0 || n_disk != n_total {
            return Err(I::MalformedArchive("multi-disk archives are not packages".into()).into());
        }
        if n_total == u16::MAX || cd_size == u64::from(u32::MAX) || cd_offset == u64::from(u32::MAX) {
            return Err(I::MalformedArchive("zip64 is not part of format v1".into()).into());
        }
        if n_total == 0 || u64::from(n_total) > limits.max_entries {
            return Err(I::MalformedArchive(format!("{n_total} entries (1 to {} allowed)", limits.max_entries)).into());
        }
        if cd_size > limits.max_central_directory_bytes {
            return Err(I::MalformedArchive(format!("central directory of {cd_size} bytes is over the limit")).into());
        }
        let eocd_at = len - TAIL_LEN as u64;
        if cd_offset.checked_add(cd_size) != Some(eocd_at) {
            return Err(if cd_offset + cd_size < eocd_at {
                I::UnaccountedBytes("bytes between the central directory and the end record".into())
            } else {
                I::Truncated("the central directory runs past the end record".into())
            }
            .into());
        }
        // 5. Parse every central header; each must be canonical.
        let mut cd_bytes = vec![0u8; cd_size as usize];
        r.seek(SeekFrom::Start(cd_offset))?;
        r.read_exact(&mut cd_bytes)?;
        let mut c = Cursor { buf: &cd_bytes, pos: 0 };
        let mut entries = Vec::with_capacity(usize::from(n_total));
        let mut names = HashSet::new();
        let short = || I::MalformedArchive("central directory ends inside a header".into());
        for _ in 0..n_total {
            let h = c.take(CENTRAL_HEADER_LEN).ok_or_else(short)?;
            let mut f = Cursor { buf: h, pos: 0 };
            let sig = f.u32().unwrap_or(0);
            let made_by = f.u16().unwrap_or(0);
            let needed = f.u16().unwrap_or(0);
            let flags = f.u16().unwrap_or(0);
            let method = f.u16().unwrap_or(0);
            let time = DosTime { time: f.u16().unwrap_or(0), date: f.u16().unwrap_or(0) };
            let crc32 = f.u32().unwrap_or(0);
            let compressed = u64::from(f.u32().unwrap_or(0));
            let uncompressed = u64::from(f.u32().unwrap_or(0));
            let name_len = usize::from(f.u16().unwrap_or(0));
            let extra_len = f.u16().unwrap_or(0);
            let comment_len = f.u16().unwrap_or(0);
            let disk = f.u16().unwrap_or(0);
            let internal = f.u16().unwrap_or(0);
            let external = f.u32().unwrap_or(0);
            let offset = u64::from(f.u32().unwrap_or(0));
            if sig != CENTRAL_SIG {
                return Err(I::MalformedArchive("bad central directory header signature".into()).into());
            }
            let raw_name = c.take(name_len).ok_or_else(short)?;
            // 6. Names are safe, then unique.
            let name = check_entry_name(raw_name)?;
            if !names.insert(name.clone()) {
                return Err(I::DuplicateEntry(name).into());
            }
            // 7. Only regular files.
            let mode = external >> 16;
            if (made_by >> 8) == 3 && mode & S_IFMT != 0 && mode & S_IFMT != S_IFREG {
                return Err(I::SymlinkEntry(name).into());
            }
            // 8. Exactly the header the canonical writer produces.
            let canonical = made_by == VERSION_MADE_BY
                && needed == version_needed(method)
                && flags == flags_of(method)
                && matches!(method, METHOD_STORED | METHOD_DEFLATE | METHOD_ZSTD | METHOD_LZMA | METHOD_PPMD)
                && extra_len == 0
                && comment_len == 0
                && disk == 0
                && internal == 0
                && external == EXTERNAL_ATTRS;
            if !canonical {
                return Err(I::MalformedArchive(format!(
                    "entry {name:?}: header is not canonical (method {method}, flags {flags:#x}, extra or comment fields, or attributes)"
                ))
                .into());
            }
            if method == METHOD_STORED && compressed != uncompressed {
                return Err(I::MalformedArchive(format!("stored entry {name:?} has two different sizes")).into());
            }
            entries.push(CentralEntry { name, method, crc32, compressed, uncompressed, offset, time });
        }
        if c.pos != cd_bytes.len() {
            return Err(I::UnaccountedBytes("bytes after the last central directory header".into()).into());
        }
        // 9. Entries are contiguous in directory order: no overlap, no gap, manifest first.
        let prefix_len = entries.first().map_or(0, |e| e.offset);
        for pair in entries.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if b.offset < a.end() {
                return Err(I::OverlappingEntries(format!("{:?} starts inside {:?}", b.name, a.name)).into());
            }
            if b.offset > a.end() {
                return Err(I::UnaccountedBytes(format!(
                    "{} bytes between {:?} and {:?}",
                    b.offset - a.end(),
                    a.name,
                    b.name
                ))
                .into());
            }
        }
        if let Some(last) = entries.last() {
            if last.end() > cd_offset {
                return Err(I::OverlappingEntries(format!("{:?} runs into the central directory", last.name)).into());
            }
            if last.end() < cd_offset {
                return Err(
                    I::UnaccountedBytes(format!("bytes between {:?} and the central directory", last.name)).into()
                );
            }
        }
        match entries.first() {
            Some(e) if e.name == MANIFEST_ENTRY => {}
            _ => return Err(I::MalformedArchive(format!("the first entry must be {MANIFEST_ENTRY}")).into()),
        }
        for e in &entries[1..] {
            if !is_blob_name(&e.name) {
                return Err(I::EntryNotInManifest(e.name.clone()).into());
            }
        }
        let manifest = &entries[0];
        if manifest.uncompressed > limits.max_manifest_bytes || manifest.compressed > limits.max_manifest_bytes {
            return Err(I::ManifestTooLarge {
                size: manifest.uncompressed.max(manifest.compressed),
                limit: limits.max_manifest_bytes,
            }
            .into());
        }
        Ok(Archive { len, prefix_len, entries, cd_offset, cd_bytes, tail, sig: sigblock })
    }

    /// Number of bytes the signature covers: everything but its last 64 bytes.
    pub fn covered_len(&self) -> u64 {
        self.len - hotfix_schema::sigblock::SIGNATURE_LEN as u64
    }
}

/// Reading an archive's structure failed: either I/O or a broken rule.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be read.
    Io(io::Error),
    /// The structure breaks a rule.
    Integrity(Integrity),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<Integrity> for ReadError {
    fn from(e: Integrity) -> Self {
        ReadError::Integrity(e)
    }
}
