//! `pkgtool build`: turns a checked spec into a signed package (FORMAT.md §3–§6).
//!
//! Contents are hashed once to name their blobs, so identical files are stored once;
//! blobs are compressed on every core, each independently, so the output is the same
//! whatever the thread count; the file is written next to its destination, signed over
//! every byte, and renamed into place — a failed build leaves nothing behind.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use hotfix_schema::sigblock::{SIGNATURE_LEN, SigBlock, signed_message};
use hotfix_schema::{
    BLOB_PREFIX, Blob, Digest, Encoding, FORMAT_VERSION, FileEntry, Limits, MANIFEST_ENTRY, Manifest, Member,
    PackageInfo, Variant,
};
use sha2::{Digest as _, Sha256};

use crate::encode::{self, BlobSource, Use};
use crate::error::{Error, Result};
use crate::keys::key_id;
use crate::spec::{self, Spec};
use crate::tagcheck::{self, FileFacts, TagCheck};
use crate::zipfmt::{DosTime, METHOD_DEFLATE, METHOD_ZSTD, ZipWriter};

/// How to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// An executable to put before the archive (a self-contained installer's stub).
    pub stub: Option<PathBuf>,
    /// Seconds since the epoch for the entries' timestamps (`SOURCE_DATE_EPOCH`); without
    /// it, 1980-01-01.
    pub source_date_epoch: Option<i64>,
    /// Zstandard level for blobs.
    pub zstd_level: i32,
    /// Compression threads; 0 means one per core.
    pub threads: usize,
    /// Whether a binary whose branch tag disagrees with its variant stops the build.
    pub tag_check: TagCheck,
    /// The limits the package must fit: the format's own (a writer may only be stricter).
    pub limits: Limits,
    /// Whether small first builds are packed per component (FORMAT.md §4.4); off, every
    /// content is a blob of its own.
    pub pack: bool,
    /// Whether LZMA encodings may be chosen where they pay; off, Zstandard only.
    pub lzma: bool,
    /// Whether gzip files zlib does not reproduce may be stored inflated for preflate to
    /// rebuild (FORMAT.md §4.4). Never with a `stub`: the installer stub is built without
    /// preflate.
    pub preflate: bool,
    /// Manifests of earlier packages the new one must be cumulative with
    /// (`--previous`; [`crate::cumulative`]).
    pub previous: Vec<hotfix_schema::Manifest>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            stub: None,
            source_date_epoch: None,
            zstd_level: 19,
            threads: 0,
            tag_check: TagCheck::Enforce,
            limits: Limits::default(),
            pack: true,
            lzma: true,
            preflate: true,
            previous: Vec::new(),
        }
    }
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// The package written.
    pub out: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The signing key's id.
    pub key_id: [u8; 8],
    /// The manifest signed into it.
    pub manifest: Manifest,
    /// Branch tags that disagreed with their variants, under `TagCheck::WarnOnly`.
    pub warnings: Vec<String>,
}

/// Builds the package described by `spec_path`, signed with `key`, at `out`.
pub fn build(spec_path: &Path, key: &SigningKey, out: &Path, opts: &BuildOptions) -> Result<BuildReport> {
    let spec = spec::load(spec_path)?;
    let (manifest, sources, warnings) = plan(&spec, opts)?;
    // Fail before compressing anything when the manifest cannot fit: encodings add at most
    // `,"reference":"<64 hex>"` and a longer encoding name per blob.
    let bound = manifest.to_json().len() as u64 + manifest.blobs.len() as u64 * 96;
    if bound > opts.limits.max_manifest_bytes {
        return Err(too_many_files(out, bound, &opts.limits));
    }
    manifest.validate(&opts.limits).map_err(|e| Error::Spec {
        file: spec.path.clone(),
        line: None,
        msg: e.to_string(),
    })?;
    if let Some(why) = crate::cumulative::check(&manifest, &opts.previous) {
        return Err(Error::Spec { file: spec.path.clone(), line: None, msg: why });
    }
    let mut report = write_package(&manifest, &sources, key, out, opts)?;
    report.warnings = warnings;
    Ok(report)
}

/// Hashes every payload file, reads what binaries say about themselves, and lays out the
/// manifest.
fn plan(spec: &Spec, opts: &BuildOptions) -> Result<(Manifest, Vec<BlobSource>, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut sources: Vec<BlobSource> = Vec::new();
    let mut index: HashMap<Digest, usize> = HashMap::new();
    let mut variants = Vec::new();
    for sv in &spec.variants {
        let mut files = Vec::with_capacity(sv.files.len());
        let mut facts = Vec::with_capacity(sv.files.len());
        for f in &sv.files {
            let data = fs::read(&f.source).map_err(Error::io(&f.source))?;
            let digest = Digest(Sha256::digest(&data).into());
            let size = data.len() as u64;
            let fact = FileFacts::read(&f.path, &f.source, &data);
            if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(digest) {
                slot.insert(sources.len());
                sources.push(BlobSource::single(digest, size, f.source.clone()));
            }
            files.push(FileEntry {
                path: f.path.clone(),
                size,
                mode: f.mode,
                sha256: digest,
                version_string: fact.version_string.clone(),
            });
            facts.push(fact);
        }
        let (version, mut w) = tagcheck::check_variant(&spec.path, sv, &facts, opts.tag_check)?;
        warnings.append(&mut w);
        variants.push(Variant {
            component: sv.component.clone(),
            baseline: sv.baseline.clone(),
            branch: sv.branch,
            version,
            fixes: sv.fixes.clone(),
            restart: sv.restart,
            files,
        });
    }
    let uses: Vec<Use<'_>> = variants
        .iter()
        .flat_map(|v: &Variant| {
            v.files.iter().map(move |f| Use { component: &v.component, path: &f.path, digest: f.sha256 })
        })
        .collect();
    let mut sources = encode::arrange(sources, &uses, &opts.limits, opts.pack);
    encode::seal_packs(&mut sources)?;
    let mut baselines: Vec<_> = variants.iter().map(|v| v.baseline.clone()).collect();
    baselines.sort();
    baselines.dedup();
    let mut fixes: Vec<_> = variants.iter().flat_map(|v| v.fixes.iter().cloned()).collect();
    fixes.sort();
    fixes.dedup();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        package: PackageInfo {
            id: spec.id.clone(),
            kind: spec.kind,
            product: spec.product.clone(),
            title: spec.title.clone(),
            channel: spec.channel,
            baseline: spec.baseline.clone(),
        },
        tool: format!("pkgtool {}", env!("CARGO_PKG_VERSION")),
        baselines,
        fixes,
        variants,
        // Encodings are settled when the blobs are compressed; see `write_package`.
        blobs: sources
            .iter()
            .map(|s| Blob {
                sha256: s.digest,
                size: s.size,
                encoding: Encoding::Zstd,
                reference: None,
                members: s.members.iter().map(|m| Member { sha256: m.digest, size: m.size }).collect(),
            })
            .collect(),
    };
    Ok((manifest, sources, warnings))
}

fn too_many_files(out: &Path, manifest_bytes: u64, limits: &Limits) -> Error {
    Error::Refused {
        path: out.to_path_buf(),
        msg: format!(
            "the manifest would be about {manifest_bytes} bytes, over the format's {}-byte limit (FORMAT.md §7); \
             split the package into fewer files per package; nothing was built",
            limits.max_manifest_bytes
        ),
    }
}

/// Passes writes through while hashing them.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// LZMA is kept only when it makes the blobs at least this much smaller in all.
const LZMA_PACKAGE_WORTH: f64 = 0.02;

fn write_package(
    manifest: &Manifest,
    sources: &[BlobSource],
    key: &SigningKey,
    out: &Path,
    opts: &BuildOptions,
) -> Result<BuildReport> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new().prefix(".pkgtool-build-").tempfile_in(&dir).map_err(Error::io(&dir))?;
    let time = opts.source_date_epoch.map_or(DosTime::EPOCH, DosTime::from_unix);
    let threads =
        if opts.threads == 0 { std::thread::available_parallelism().map_or(1, usize::from) } else { opts.threads };

    let mut manifest = manifest.clone();
    let handle = tmp.as_file().try_clone().map_err(Error::io(&dir))?;
    let mut w = HashingWriter { inner: BufWriter::with_capacity(1 << 20, handle), hasher: Sha256::new() };
    let mut start = 0u64;
    if let Some(stub) = &opts.stub {
        let mut f = File::open(stub).map_err(Error::io(stub))?;
        start = io::copy(&mut f, &mut w).map_err(Error::io(stub))?;
    }

    // Encode the blobs first: their encodings belong in the manifest, which comes first.
    // Encoded data is spilled to a second temporary file to keep memory bounded.
    let mut spill = tempfile::tempfile_in(&dir).map_err(Error::io(&dir))?;
    // LZMA decodes about ten times slower than Zstandard. Where it shrinks the whole
    // package by less than `LZMA_PACKAGE_WORTH` (already-compressed payloads), the package
    // is encoded again without it: so little is not worth slower installs.
    let mut encoded_meta = Vec::with_capacity(sources.len());
    for lzma in [opts.lzma, false] {
        encoded_meta.clear();
        io::Seek::rewind(&mut spill).map_err(Error::io(&dir))?;
        spill.set_len(0).map_err(Error::io(&dir))?;
        let (mut written, mut saving) = (0u64, 0u64);
        // The installer stub decodes neither preflate's rebuilds nor PPMd.
        let optional = encode::Optional { preflate: opts.preflate && opts.stub.is_none(), ppmd: opts.stub.is_none() };
        encode::encode_all(sources, opts.zstd_level, lzma, optional, threads, &opts.limits, |k, e| {
            spill.write_all(&e.data).map_err(Error::io(&dir))?;
            if e.digest != manifest.blobs[k].sha256 {
                return Err(Error::Refused {
                    path: sources[k].source.clone(),
                    msg: "changed while the package was being built".into(),
                });
            }
            manifest.blobs[k].encoding = e.encoding;
            manifest.blobs[k].reference = e.reference;
            encoded_meta.push((e.encoding, e.crc32, e.data.len() as u64));
            written += e.data.len() as u64;
            saving += e.lzma_saving;
            Ok(())
        })?;
        let worth = saving as f64 >= (written + saving) as f64 * LZMA_PACKAGE_WORTH;
        if !lzma || saving == 0 || worth {
            break;
        }
    }

    let json = manifest.to_json();
    // A writer never produces what a reader with the format's limits would reject.
    if json.len() as u64 > opts.limits.max_manifest_bytes {
        return Err(too_many_files(out, json.len() as u64, &opts.limits));
    }
    let (manifest_method, manifest_data) = encode_manifest(&json).map_err(Error::io(out))?;
    let write_err = Error::io(out);
    let mut zip = ZipWriter::new(&mut w, start, time);
    let result = (|| -> io::Result<()> {
        zip.add(MANIFEST_ENTRY, manifest_method, crc32fast::hash(&json), json.len() as u64, &manifest_data)?;
        io::Seek::rewind(&mut spill)?;
        let mut buf = Vec::new();
        for (blob, (encoding, crc, len)) in manifest.blobs.iter().zip(&encoded_meta) {
            buf.resize(usize::try_from(*len).map_err(io::Error::other)?, 0);
            io::Read::read_exact(&mut spill, &mut buf)?;
            let method = crate::zipfmt::method_for(*encoding);
            zip.add(&format!("{BLOB_PREFIX}{}", blob.sha256), method, *crc, blob.size, &buf)?;
        }
        Ok(())
    })();
    result.map_err(write_err)?;
    let id = key_id(&key.verifying_key());
    let w = zip.finish(&SigBlock::header(id)).map_err(Error::io(out))?;
    let digest: [u8; 32] = std::mem::take(&mut w.hasher).finalize().into();
    let signature = key.sign(&signed_message(&digest));
    w.inner.write_all(&SigBlock::signature_text(&signature.to_bytes())).map_err(Error::io(out))?;
    w.inner.flush().map_err(Error::io(out))?;
    let file = tmp.as_file();
    let mode = if opts.stub.is_some() { 0o755 } else { 0o644 };
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(Error::io(out))?;
    file.sync_all().map_err(Error::io(out))?;
    let size = file.metadata().map_err(Error::io(out))?.len();
    tmp.persist(out).map_err(|e| Error::Io { path: out.to_path_buf(), source: e.error })?;
    Ok(BuildReport { out: out.to_path_buf(), size, key_id: id, manifest, warnings: Vec::new() })
}

/// Signs a package held in memory whose last [`SIGNATURE_LEN`] bytes are a signature
/// (possibly stale): replaces them with a fresh signature over everything before them.
/// Used to re-sign deliberately altered packages in tests and test vectors, so that a
/// reader's structural checks — not only its signature check — are exercised.
pub fn resign(bytes: &mut Vec<u8>, key: &SigningKey) {
    let covered = bytes.len().saturating_sub(SIGNATURE_LEN);
    bytes.truncate(covered);
    let digest: [u8; 32] = Sha256::digest(&bytes[..]).into();
    let signature = key.sign(&signed_message(&digest));
    bytes.extend_from_slice(&SigBlock::signature_text(&signature.to_bytes()));
}

/// How much smaller than deflate a Zstandard manifest must be to be written (FORMAT.md
/// §4.1): below that, deflate keeps the manifest readable by `unzip -p`.
const MANIFEST_ZSTD_WORTH: f64 = 0.9;
/// The largest manifest compressed at Zstandard level 19; larger ones get level 17, 2.7
/// times faster and 0.4% larger on tzdata's (398 KB of JSON: 0.08 s against 0.03).
const MANIFEST_LEVEL_19_MAX: usize = 128 << 10;

/// The manifest entry's method and data: deflate, or one Zstandard frame (level 19, 17
/// over [`MANIFEST_LEVEL_19_MAX`]; the content size in its header so that its window is the manifest's size) when that is at
/// least 10% smaller. Deflate's 32 KiB window cannot reach the repeats of a large
/// manifest — the LDR build's paths and hashes repeat the GDR build's, a pack's members
/// repeat its files' hashes — so a package of many small files spent more on its manifest
/// than on its contents (issue 16: tzdata, 152 KB deflated, 64 KB as zstd).
fn encode_manifest(json: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    // The two run side by side: the manifest is encoded last, when nothing else is left
    // to overlap with it.
    let deflate = || -> io::Result<Vec<u8>> {
        let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflater.write_all(json)?;
        deflater.finish()
    };
    let (deflated, zstd) = std::thread::scope(|scope| {
        let deflating = std::thread::Builder::new().spawn_scoped(scope, deflate);
        let level = if json.len() <= MANIFEST_LEVEL_19_MAX { 19 } else { 17 };
        let zstd = zstd::bulk::Compressor::new(level).and_then(|mut c| {
            c.include_contentsize(true)?;
            c.include_checksum(false)?;
            c.compress(json)
        });
        let deflated = match deflating {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err(io::Error::other("the deflate thread failed"))),
            Err(_) => deflate(), // no thread to be had: one after the other
        };
        (deflated, zstd)
    });
    let (deflated, zstd) = (deflated?, zstd?);
    Ok(if (zstd.len() as f64) <= deflated.len() as f64 * MANIFEST_ZSTD_WORTH {
        (METHOD_ZSTD, zstd)
    } else {
        (METHOD_DEFLATE, deflated)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest-like JSON of `n` files: paths that repeat, hashes that do not.
    fn manifest_json(n: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let files: Vec<String> = (0..n)
            .map(|i| {
                let hex: String = (0..4)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect();
                format!(
                    r#"{{"path":"usr/share/zoneinfo/Area/City{i}","size":{},"mode":"0644","sha256":"{hex}"}}"#,
                    100 + i
                )
            })
            .collect();
        format!(r#"{{"files":[{}]}}"#, files.join(",")).into_bytes()
    }

    #[test]
    fn small_and_large_manifests_are_zstandard_frames_within_their_own_size_as_window() {
        for n in [300, 2_000] {
            let json = manifest_json(n);
            // Each file repeated, as the LDR build repeats the GDR build's.
            let json = [&json[..], &json[..]].concat();
            assert_eq!(json.len() > MANIFEST_LEVEL_19_MAX, n == 2_000, "{}", json.len());
            let (method, frame) = encode_manifest(&json).expect("encodes");
            assert_eq!(method, METHOD_ZSTD, "{n} files");
            // A reader decodes it with a window of the manifest's size (FORMAT.md §4.1).
            let window_log = usize::BITS - (json.len() - 1).leading_zeros();
            let mut d = zstd::bulk::Decompressor::new().expect("decompressor");
            d.window_log_max(window_log).expect("window limit");
            assert_eq!(d.decompress(&frame, json.len()).expect("decodes within the window"), json);
        }
    }
}
