//! Reading packages: one streaming pass that checks every byte against the signature and
//! every entry against the manifest (FORMAT.md §8), and a verifying blob reader for
//! extraction and installation.
//!
//! The pass reads the file front to back exactly once after the small tail and central
//! directory; memory stays bounded by the manifest limit and the decoder window, never by
//! the package's size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};

use hotfix_schema::sigblock::{SIGNATURE_LEN, key_id_hex, signed_message};
use hotfix_schema::{BLOB_PREFIX, Blob, Digest, Encoding, Limits, Manifest, ManifestError};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Integrity, Result};
use crate::keys::TrustedKey;
use crate::zipfmt::{Archive, CentralEntry, METHOD_DEFLATE, METHOD_STORED, METHOD_ZSTD, ReadError};

const BUF: usize = 1 << 20;

/// A package whose every byte was checked against a trusted signature.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The package file.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its archive structure.
    pub archive: Archive,
    /// The key that signed it.
    pub signer: TrustedKey,
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

enum Decode<R: BufRead> {
    Stored(Take<R>),
    Zstd(Box<zstd::stream::read::Decoder<'static, Take<R>>>),
}

/// Decodes one blob and checks, as the bytes flow, that it never exceeds its declared size;
/// at the end, that its size, CRC-32 and SHA-256 are the declared ones. A mismatch is an
/// `io::Error` holding an [`Integrity`] (see [`integrity_of`]).
pub struct BlobReader<R: BufRead> {
    decode: Decode<R>,
    blob: Blob,
    crc_expected: u32,
    seen: u64,
    sha: Sha256,
    crc: crc32fast::Hasher,
    done: bool,
}

impl<R: BufRead> BlobReader<R> {
    fn new(inner: R, entry: &CentralEntry, blob: &Blob, limits: &Limits) -> io::Result<Self> {
        let take = inner.take(entry.compressed);
        let decode = match blob.encoding {
            Encoding::Stored => Decode::Stored(take),
            Encoding::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(take)?.single_frame();
                d.window_log_max(limits.max_zstd_window_log)?;
                Decode::Zstd(Box::new(d))
            }
        };
        Ok(BlobReader {
            decode,
            blob: blob.clone(),
            crc_expected: entry.crc32,
            seen: 0,
            sha: Sha256::new(),
            crc: crc32fast::Hasher::new(),
            done: false,
        })
    }

    fn name(&self) -> String {
        format!("{BLOB_PREFIX}{}", self.blob.sha256)
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

impl<R: BufRead> Read for BlobReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // Never ask the decoder for more than one byte past the declared size.
        let allowed = (self.blob.size - self.seen.min(self.blob.size)).saturating_add(1);
        let want = buf.len().min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = match &mut self.decode {
            Decode::Stored(t) => t.read(&mut buf[..want])?,
            Decode::Zstd(d) => d.read(&mut buf[..want]).map_err(|e| {
                if e.kind() == io::ErrorKind::InvalidData
                    || e.kind() == io::ErrorKind::Other
                    || e.kind() == io::ErrorKind::UnexpectedEof
                {
                    integrity_io(Integrity::BadCompressedData { entry: self.name(), why: e.to_string() })
                } else {
                    e
                }
            })?,
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
        other => Integrity::InvalidManifest(other.to_string()),
    }
}

/// Decodes the manifest entry's data (stored or deflated), bounded by its declared size,
/// and checks it against the format's rules.
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
        let method = match blob.encoding {
            Encoding::Zstd => METHOD_ZSTD,
            Encoding::Stored => METHOD_STORED,
        };
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

/// Verifies a package (FORMAT.md §8): structure, a trusted signer, then one pass over every
/// byte — local headers, the manifest, every blob decoded within its declared size and
/// hashed — ending with the signature over the whole file. `progress` is called with the
/// number of bytes read so far.
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
    let mut r = HashingReader { inner: BufReader::with_capacity(BUF, file), hasher: Sha256::new(), pos: 0 };
    let total = archive.len;
    let to_io = io_or_integrity(path);

    // Step 11: the stub, if any, is only hashed.
    io::copy(&mut (&mut r).take(archive.prefix_len), &mut io::sink()).map_err(&to_io)?;
    let mut manifest: Option<Manifest> = None;
    for (i, entry) in archive.entries.iter().enumerate() {
        // Step 12: each local header is byte for byte the one the directory implies.
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
            // Step 13: the manifest, then the entries it implies.
            let m = decode_manifest((&mut r).take(entry.compressed), entry, limits).map_err(read_err(path))?;
            match_entries(&archive, &m).map_err(|k| Error::integrity(path, k))?;
            manifest = Some(m);
            continue;
        }
        // Step 14: every blob decodes within its size to its hash.
        let Some(blob) = manifest.as_ref().and_then(|m| m.blobs.get(i - 1)) else {
            return Err(Error::integrity(path, Integrity::EntryNotInManifest(entry.name.clone())));
        };
        let mut br = BlobReader::new(&mut r, entry, blob, limits).map_err(Error::io(path))?;
        io::copy(&mut br, &mut io::sink()).map_err(&to_io)?;
        progress(r.pos, total);
    }
    // Step 15: the central directory and tail are the bytes parsed in steps 2–9.
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
    // Step 16: the signature over every byte before it.
    let digest: [u8; 32] = r.hasher.finalize().into();
    let signature = ed25519_dalek::Signature::from_bytes(&archive.sig.signature);
    signer
        .key
        .verify_strict(&signed_message(&digest), &signature)
        .map_err(|_| Error::integrity(path, Integrity::BadSignature))?;
    let manifest = manifest.ok_or_else(|| Error::integrity(path, Integrity::MalformedArchive("no manifest".into())))?;
    Ok(Verified { path: path.to_path_buf(), manifest, archive, signer: signer.clone() })
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

impl Verified {
    /// Opens blob `index` (of `manifest.blobs`) for reading from `file` (the package,
    /// reopened by the caller). The reader checks size, CRC and hash again as it goes, so
    /// a file changed since verification cannot slip through.
    pub fn open_blob<'f>(
        &self,
        file: &'f mut File,
        index: usize,
        limits: &Limits,
    ) -> Result<BlobReader<BufReader<&'f mut File>>> {
        let entry = self
            .archive
            .entries
            .get(index + 1)
            .ok_or_else(|| Error::integrity(&self.path, Integrity::EntryMissing(format!("blob #{index}"))))?;
        let blob = &self.manifest.blobs[index.min(self.manifest.blobs.len().saturating_sub(1))];
        file.seek(SeekFrom::Start(entry.data_offset())).map_err(Error::io(&self.path))?;
        BlobReader::new(BufReader::with_capacity(BUF, file), entry, blob, limits).map_err(Error::io(&self.path))
    }

    /// Maps an error from a [`BlobReader`] of this package to an [`Error`].
    pub fn blob_error(&self, e: io::Error) -> Error {
        io_or_integrity(&self.path)(e)
    }
}
