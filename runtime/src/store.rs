//! The content-addressed store, `ROOT/.servicing/store/<first 2 hex>/<sha256>`: every blob of
//! every installed package, active or stashed. A blob is written beside its final name,
//! hash-checked, fsynced and renamed; it is hash-checked again whenever it is placed in
//! the live tree, unless this very process wrote or checked it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hotfix_schema::{Blob, Digest, Limits};
use pkgtool::read::{Verified, integrity_of};
use sha2::{Digest as _, Sha256};

use crate::crash;
use crate::error::{Error, Result};
use crate::fsutil::{self, TMP_PREFIX};
use crate::progress::{self, Progress};

/// The state of one blob in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobState {
    /// Present with the right size and hash.
    Good,
    /// Not there.
    Missing,
    /// There, but damaged.
    Bad(String),
}

/// What ingesting a package added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Blobs written.
    pub added: usize,
    /// Blobs already present (shared with another package).
    pub present: usize,
}

/// Worker threads that fsync the files an install writes (see [`fsutil::Flusher`]): the
/// waits are for the disk, not the CPU, so a few overlap well even on one core.
pub const FSYNC_THREADS: usize = 2;

/// Bytes copied at a time from a decoder into a file.
const COPY_BUF: usize = 1 << 18;

/// The store of one root.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// Blobs this process found or wrote with the right size and hash (and holds the
    /// root's lock meanwhile): placing them needs no second hash.
    checked: RefCell<HashSet<Digest>>,
}

impl Store {
    /// The store in `dir`.
    pub fn new(dir: PathBuf) -> Store {
        Store { dir, checked: RefCell::default() }
    }

    /// Where blob `d` lives.
    pub fn path_of(&self, d: &Digest) -> PathBuf {
        let hex = d.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Checks blob `d` (size and hash).
    pub fn check(&self, d: &Digest, size: u64) -> Result<BlobState> {
        let path = self.path_of(d);
        match fsutil::hash_file(&path) {
            Ok((found, n)) if found == *d && n == size => {
                self.checked.borrow_mut().insert(*d);
                Ok(BlobState::Good)
            }
            Ok((found, n)) => Ok(BlobState::Bad(format!("holds {n} bytes with SHA-256 {found}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BlobState::Missing),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// Copies every blob of a verified package into the store, re-checking each as it is
    /// read from the package. Reports the bytes done to `progress`.
    ///
    /// Each new blob is decoded once, straight from the package: a delta blob against its
    /// reference read back from the store (an earlier blob of the package, so already
    /// there and checked), never its reference chain decoded again, so memory holds one
    /// reference at most. Every blob is written under a temporary name and handed to a
    /// [`fsutil::Flusher`]; once all are fsynced they are renamed into place and each
    /// changed directory is fsynced once. Nothing is renamed if anything fails, and the
    /// temporary files are removed.
    pub fn ingest(&self, pkg: &Verified, limits: &Limits, progress: &mut dyn Progress) -> Result<Ingested> {
        let mut report = Ingested::default();
        let mut staged = Staged {
            dirs: fsutil::DirSync::default(),
            flusher: fsutil::Flusher::new(FSYNC_THREADS),
            written: Vec::new(),
        };
        let Staged { mut dirs, flusher, written } =
            match self.write_new(pkg, limits, progress, &mut report, &mut staged) {
                Ok(()) => staged,
                Err(e) => {
                    drop(staged.flusher);
                    return Err(remove_temps(&staged.written, e));
                }
            };
        if let Err((path, source)) = flusher.finish() {
            return Err(remove_temps(&written, Error::Io { path, source }));
        }
        for (n, (digest, temp, dest)) in written.iter().enumerate() {
            crash::step("store blob rename");
            if let Err(e) = dirs.rename(temp, dest) {
                return Err(remove_temps(&written[n..], Error::Io { path: dest.clone(), source: e }));
            }
            self.checked.borrow_mut().insert(*digest);
        }
        // Every new blob is durable before the caller records a transaction that needs it.
        dirs.flush().map_err(Error::io(&self.dir))?;
        let total: u64 = pkg.manifest.blobs.iter().map(|b| b.size).sum();
        progress.update(progress::STORE, total, total);
        Ok(report)
    }

    /// [`Store::ingest`]'s first half: writes every content not in the store — each blob,
    /// each member of a pack — under its temporary name, unsynced, and queues it on
    /// `staged.flusher`.
    fn write_new(
        &self,
        pkg: &Verified,
        limits: &Limits,
        progress: &mut dyn Progress,
        report: &mut Ingested,
        staged: &mut Staged,
    ) -> Result<()> {
        let contents = pkg.manifest.content_index();
        let packs: HashMap<Digest, &Blob> =
            pkg.manifest.blobs.iter().filter(|b| b.is_pack()).map(|b| (b.sha256, b)).collect();
        let size_of = |d: &Digest| contents.get(d).map(|c| c.size).or_else(|| packs.get(d).map(|p| p.size));
        let total: u64 = pkg.manifest.blobs.iter().map(|b| b.size).sum();
        let mut pending: HashMap<Digest, PathBuf> = HashMap::new();
        let mut buf = vec![0u8; COPY_BUF];
        let mut package: Option<File> = None;
        // One buffer for every reference, as large as the largest from the start, so that
        // references of growing sizes do not leave the allocator's heap in pieces.
        let largest = pkg.manifest.blobs.iter().filter(|b| b.encoding.is_delta()).filter_map(|b| b.reference);
        let largest = largest.filter_map(|r| size_of(&r)).max().unwrap_or(0);
        let mut reference_buf = Vec::with_capacity(usize::try_from(largest).unwrap_or(0));
        let mut done = 0u64;
        for (index, blob) in pkg.manifest.blobs.iter().enumerate() {
            progress.update(progress::STORE, done, total);
            done += blob.size;
            let mut missing = HashSet::new();
            for (digest, _, size) in blob.contents() {
                if self.check(&digest, size)? == BlobState::Good {
                    report.present += 1;
                } else {
                    missing.insert(digest);
                }
            }
            if missing.is_empty() {
                continue;
            }
            let reference = match blob.reference.filter(|_| blob.encoding.is_delta()) {
                Some(r) => {
                    reference_buf.clear();
                    // A whole pack is its members, each in the store by now.
                    let parts = match packs.get(&r) {
                        Some(p) => p.contents().into_iter().map(|(d, _, size)| (d, size)).collect(),
                        None => vec![(r, size_of(&r).unwrap_or(0))],
                    };
                    for (d, size) in parts {
                        self.append_reference(&d, size, pending.get(&d), &mut reference_buf)?;
                    }
                    Some(reference_buf.as_slice())
                }
                None => None,
            };
            let file = match &mut package {
                Some(file) => file,
                None => package.insert(File::open(&pkg.path).map_err(Error::io(&pkg.path))?),
            };
            let mut reader = pkg.open_blob_against(file, index, limits, reference).map_err(package_error)?;
            if !blob.is_pack() {
                self.stage(pkg, &blob.sha256, blob.size, &mut reader, &mut buf, staged, &mut pending)?;
                report.added += 1;
                continue;
            }
            // A pack is read once, front to back; members already stored are skipped.
            let mut failed = None;
            let split = pkgtool::read::for_each_member(&mut reader, blob, |m, r| {
                if !missing.contains(&m.sha256) {
                    return Ok(());
                }
                match self.stage(pkg, &m.sha256, m.size, r, &mut buf, staged, &mut pending) {
                    Ok(()) => {
                        report.added += 1;
                        Ok(())
                    }
                    Err(e) => {
                        failed = Some(e);
                        Err(io::Error::other("store write failed"))
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            split.map_err(|e| package_error(pkg.blob_error(e)))?;
        }
        Ok(())
    }

    /// Writes content `digest` (`size` bytes) from `reader` — a checked reader of `pkg` —
    /// under a temporary name beside its place in the store, unsynced, and queues it.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &self,
        pkg: &Verified,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        buf: &mut [u8],
        staged: &mut Staged,
        pending: &mut HashMap<Digest, PathBuf>,
    ) -> Result<()> {
        let dest = self.path_of(digest);
        self.ensure_shard(&dest, &mut staged.dirs)?;
        let temp = fsutil::temp_beside(&dest);
        let (out, n) = fsutil::write_unsynced(&temp, reader, 0o444, buf).map_err(|e| {
            let _ = fsutil::remove_temp(&temp);
            if integrity_of(&e).is_some() || e.kind() == io::ErrorKind::UnexpectedEof {
                package_error(pkg.blob_error(e))
            } else {
                Error::Io { path: temp.clone(), source: e }
            }
        })?;
        // The package's reader checks a blob's size, CRC and hash when it reaches its end,
        // and a pack member's size and hash right after it (before anything is renamed).
        if n != size {
            drop(out);
            let _ = fsutil::remove_temp(&temp);
            return Err(Error::Store { path: dest, why: format!("wrote {n} bytes, not {size}") });
        }
        staged.flusher.push(out, temp.clone());
        pending.insert(*digest, temp.clone());
        staged.written.push((*digest, temp, dest));
        Ok(())
    }

    /// Appends the content of `d` (`size` bytes), part of the reference of a delta blob
    /// being ingested, to `content`: from `temp` if this ingest wrote it there, else from
    /// the store. A blob this process has not checked yet is hash-checked as it is read.
    fn append_reference(&self, d: &Digest, size: u64, temp: Option<&PathBuf>, content: &mut Vec<u8>) -> Result<()> {
        let path = temp.cloned().unwrap_or_else(|| self.path_of(d));
        let damaged = |why: String| Error::Store {
            path: self.path_of(d),
            why: format!("{why}; reinstall the package that carries it"),
        };
        let start = content.len();
        content.reserve(usize::try_from(size).unwrap_or(0));
        File::open(&path).and_then(|f| f.take(size.saturating_add(1)).read_to_end(content)).map_err(|e| {
            match e.kind() {
                io::ErrorKind::NotFound => damaged("missing (a delta blob of the package needs it)".into()),
                _ => Error::Io { path: path.clone(), source: e },
            }
        })?;
        let got = (content.len() - start) as u64;
        if got != size {
            let held = if got > size { format!("more than {size}") } else { got.to_string() };
            return Err(damaged(format!("damaged: holds {held} bytes, not {size}")));
        }
        if temp.is_none() && !self.checked.borrow().contains(d) {
            let found = Digest(Sha256::digest(&content[start..]).into());
            if found != *d {
                return Err(damaged(format!("damaged: holds SHA-256 {found}")));
            }
            self.checked.borrow_mut().insert(*d);
        }
        Ok(())
    }

    fn ensure_shard(&self, dest: &Path, dirs: &mut fsutil::DirSync) -> Result<()> {
        let Some(shard) = dest.parent() else { return Ok(()) };
        if shard.is_dir() {
            return Ok(());
        }
        crash::step("store shard mkdir");
        fs::create_dir_all(shard).map_err(Error::io(shard))?;
        dirs.changed_in(shard);
        Ok(())
    }

    /// Writes blob `d` to `dest` with permission bits `mode`: beside it under a temporary
    /// name, hash-checked, fsynced, then renamed into place. Creates no directory.
    pub fn place(&self, d: &Digest, size: u64, mode: u32, dest: &Path) -> Result<()> {
        let temp = fsutil::temp_beside(dest);
        let mut buf = vec![0u8; COPY_BUF];
        let file = self.write_copy(d, size, mode, &temp, &mut buf)?;
        file.sync_all().map_err(Error::io(&temp))?;
        drop(file);
        crash::step("file rename into place");
        let mut dirs = fsutil::DirSync::default();
        dirs.rename(&temp, dest).map_err(Error::io(dest))?;
        dirs.flush().map_err(Error::io(dest))
    }

    /// Copies blob `d` (`size` bytes) to `temp` with permission bits `mode`, unsynced, and
    /// returns the open file: hash-checked as it is copied through `buf`, or, for a blob
    /// this process checked already, copied in the kernel with its size checked.
    pub fn write_copy(&self, d: &Digest, size: u64, mode: u32, temp: &Path, buf: &mut [u8]) -> Result<File> {
        let src_path = self.path_of(d);
        let missing = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => Error::Store {
                path: src_path.clone(),
                why: "missing; reinstall the package that carries it to put it back".into(),
            },
            _ => Error::Io { path: src_path.clone(), source: e },
        };
        let checked = self.checked.borrow().contains(d);
        let mut src = File::open(&src_path).map_err(missing)?;
        let (file, n, found) = if checked {
            let (file, n) = fsutil::copy_unsynced(&mut src, temp, mode).map_err(Error::io(temp))?;
            (file, n, *d)
        } else {
            let mut hashing = HashingRead { inner: &mut src, sha: Sha256::new() };
            let (file, n) = fsutil::write_unsynced(temp, &mut hashing, mode, buf).map_err(Error::io(temp))?;
            (file, n, Digest(hashing.sha.finalize().into()))
        };
        if found != *d || n != size {
            drop(file);
            let _ = fsutil::remove_temp(temp);
            return Err(Error::Store {
                path: src_path,
                why: format!("damaged: holds {n} bytes with SHA-256 {found}; reinstall the package that carries it"),
            });
        }
        if !checked {
            self.checked.borrow_mut().insert(*d);
        }
        Ok(file)
    }

    /// Deletes every blob not in `keep`, and leftovers of interrupted writes. Returns the
    /// number of blobs deleted and the bytes freed.
    pub fn collect_garbage(&self, keep: &HashSet<Digest>) -> Result<(usize, u64)> {
        let (mut count, mut bytes) = (0usize, 0u64);
        let shards = match fs::read_dir(&self.dir) {
            Ok(it) => it,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(Error::Io { path: self.dir.clone(), source: e }),
        };
        for shard in shards {
            let shard = shard.map_err(Error::io(&self.dir))?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(Error::io(&shard))? {
                let entry = entry.map_err(Error::io(&shard))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let keep_it = Digest::from_hex(&name).is_ok_and(|d| keep.contains(&d));
                if keep_it || !(Digest::from_hex(&name).is_ok() || name.starts_with(TMP_PREFIX)) {
                    continue;
                }
                let path = entry.path();
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(Error::io(&path))?;
                count += 1;
                bytes += size;
            }
            if fsutil::is_empty_dir(&shard).unwrap_or(false) {
                fs::remove_dir(&shard).map_err(Error::io(&shard))?;
            }
        }
        fsutil::fsync_dir(&self.dir).map_err(Error::io(&self.dir))?;
        Ok((count, bytes))
    }
}

/// Blobs written by [`Store::ingest`] and not renamed yet.
struct Staged {
    /// The directories whose entries changed.
    dirs: fsutil::DirSync,
    /// Fsyncs the written files.
    flusher: fsutil::Flusher,
    /// Each blob's digest, temporary file and destination, in the manifest's order.
    written: Vec<(Digest, PathBuf, PathBuf)>,
}

/// Removes the temporary files of `written` after `e`, and returns `e`.
fn remove_temps(written: &[(Digest, PathBuf, PathBuf)], e: Error) -> Error {
    for (_, temp, _) in written {
        let _ = fsutil::remove_temp(temp);
    }
    e
}

/// Hashes what is read through it.
struct HashingRead<'a> {
    inner: &'a mut File,
    sha: Sha256,
}

impl Read for HashingRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

fn package_error(source: pkgtool::Error) -> Error {
    let hint = String::from(" — nothing was installed");
    Error::Package { source: Box::new(source), hint }
}
