//! The content-addressed store, `ROOT/.servicing/store/<first 2 hex>/<sha256>`: every blob of
//! every installed package, active or stashed. A blob is written beside its final name,
//! hash-checked, fsynced and renamed; it is hash-checked again whenever it is placed in
//! the live tree, unless this very process wrote or checked it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hotfix_schema::Digest;
use pkgtool::read::integrity_of;
use sha2::{Digest as _, Sha256};

use crate::crash;
use crate::error::{Error, Result};
use crate::fsutil::{self, TMP_PREFIX};

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

    /// A [`Staging`] of this store: hand it to [`pkgtool::read::verify_into`], so that the
    /// package is decoded once, and every content the store lacks is written as it is
    /// verified; then [`Staging::commit`], or drop it to remove what it wrote.
    pub fn staging(&self) -> Staging<'_> {
        Staging {
            store: self,
            staged: Staged {
                dirs: fsutil::DirSync::default(),
                flusher: fsutil::Flusher::new(FSYNC_THREADS),
                written: Vec::new(),
            },
            buf: vec![0u8; COPY_BUF],
            report: Ingested::default(),
            failed: None,
        }
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

/// Contents of a package being verified, written under temporary names beside their
/// places in the store as the verification pass decodes them (see [`Store::staging`]).
/// They become store blobs only in [`Staging::commit`], after the signature checked out
/// and the install was planned: every one is fsynced, then renamed, then each changed
/// directory fsynced once. Dropped uncommitted, it removes what it wrote.
pub struct Staging<'s> {
    store: &'s Store,
    staged: Staged,
    buf: Vec<u8>,
    report: Ingested,
    /// The store's own failure (not the package's), to report instead of the
    /// verification error it caused.
    failed: Option<Error>,
}

impl Staging<'_> {
    /// The store's failure that stopped the verification pass, if that is what stopped it.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failed.take()
    }

    /// Makes every staged content a store blob; durable when this returns.
    pub fn commit(mut self) -> Result<Ingested> {
        let staged = std::mem::replace(
            &mut self.staged,
            Staged { dirs: fsutil::DirSync::default(), flusher: fsutil::Flusher::new(0), written: Vec::new() },
        );
        let Staged { mut dirs, flusher, written } = staged;
        if let Err((path, source)) = flusher.finish() {
            return Err(remove_temps(&written, Error::Io { path, source }));
        }
        for (n, (digest, temp, dest)) in written.iter().enumerate() {
            crash::step("store blob rename");
            if let Err(e) = dirs.rename(temp, dest) {
                return Err(remove_temps(&written[n..], Error::Io { path: dest.clone(), source: e }));
            }
            self.store.checked.borrow_mut().insert(*digest);
        }
        // Every new blob is durable before the caller records a transaction that needs it.
        dirs.flush().map_err(Error::io(&self.store.dir))?;
        Ok(self.report)
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        for (_, temp, _) in &self.staged.written {
            let _ = fsutil::remove_temp(temp);
        }
    }
}

impl pkgtool::read::ContentSink for Staging<'_> {
    fn wants(&mut self, digest: &Digest, size: u64) -> io::Result<bool> {
        match self.store.check(digest, size) {
            Ok(BlobState::Good) => {
                self.report.present += 1;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => {
                self.failed = Some(e);
                Err(io::Error::other("store check failed"))
            }
        }
    }

    fn take(&mut self, digest: &Digest, size: u64, content: &mut dyn Read) -> io::Result<()> {
        let dest = self.store.path_of(digest);
        if let Err(e) = self.store.ensure_shard(&dest, &mut self.staged.dirs) {
            self.failed = Some(e);
            return Err(io::Error::other("store write failed"));
        }
        let temp = fsutil::temp_beside(&dest);
        let (out, n) = match fsutil::write_unsynced(&temp, content, 0o444, &mut self.buf) {
            Ok(done) => done,
            Err(e) => {
                let _ = fsutil::remove_temp(&temp);
                if integrity_of(&e).is_none() && e.kind() != io::ErrorKind::UnexpectedEof {
                    self.failed = Some(Error::Io { path: temp.clone(), source: e });
                    return Err(io::Error::other("store write failed"));
                }
                return Err(e);
            }
        };
        if n != size {
            drop(out);
            let _ = fsutil::remove_temp(&temp);
            self.failed = Some(Error::Store { path: dest, why: format!("wrote {n} bytes, not {size}") });
            return Err(io::Error::other("store write failed"));
        }
        self.staged.flusher.push(out, temp.clone());
        self.staged.written.push((*digest, temp, dest));
        self.report.added += 1;
        Ok(())
    }
}

/// Contents written by a [`Staging`] and not renamed yet.
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
