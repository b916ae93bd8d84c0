//! The content-addressed store, `ROOT/.servicing/store/<first 2 hex>/<sha256>`: every blob of
//! every installed package, active or stashed. A blob is written beside its final name,
//! hash-checked, fsynced and renamed; it is hash-checked again whenever it is placed in
//! the live tree.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use hotfix_schema::{Digest, Limits};
use pkgtool::read::{Verified, integrity_of};

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

/// The store of one root.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir`.
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
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
            Ok((found, n)) if found == *d && n == size => Ok(BlobState::Good),
            Ok((found, n)) => Ok(BlobState::Bad(format!("holds {n} bytes with SHA-256 {found}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BlobState::Missing),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// Copies every content of a verified package into the store — each blob, and each
    /// member of a pack — re-checking each as it is read from the package and as it is
    /// written. Reports the bytes done to `progress`.
    pub fn ingest(&self, pkg: &Verified, limits: &Limits, progress: &mut dyn Progress) -> Result<Ingested> {
        let mut report = Ingested::default();
        let mut dirs = fsutil::DirSync::default();
        let total: u64 = pkg.manifest.blobs.iter().map(|b| b.size).sum();
        let mut done = 0u64;
        for (index, blob) in pkg.manifest.blobs.iter().enumerate() {
            progress.update(progress::STORE, done, total);
            done += blob.size;
            let mut missing = Vec::new();
            for (digest, _, size) in blob.contents() {
                if self.check(&digest, size)? == BlobState::Good {
                    report.present += 1;
                } else {
                    missing.push(digest);
                }
            }
            if missing.is_empty() {
                continue;
            }
            let mut file = File::open(&pkg.path).map_err(Error::io(&pkg.path))?;
            let mut reader = pkg.open_blob(&mut file, index, limits).map_err(package_error)?;
            if !blob.is_pack() {
                self.add(pkg, &blob.sha256, blob.size, &mut reader, &mut dirs)?;
                report.added += 1;
                continue;
            }
            // A pack is read once, front to back; its members already stored are skipped.
            let mut failed = None;
            let split = pkgtool::read::for_each_member(&mut reader, blob, |m, r| {
                if !missing.contains(&m.sha256) {
                    return Ok(());
                }
                match self.add(pkg, &m.sha256, m.size, r, &mut dirs) {
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
        // Every new blob is durable before the caller records a transaction that needs it.
        dirs.flush().map_err(Error::io(&self.dir))?;
        progress.update(progress::STORE, total, total);
        Ok(report)
    }

    /// Writes content `digest` of `size` bytes from `reader` (a reader of `pkg`) into the
    /// store: beside its final name, checked, renamed; its directory's fsync is left to
    /// `dirs`.
    fn add(
        &self,
        pkg: &Verified,
        digest: &Digest,
        size: u64,
        reader: &mut dyn io::Read,
        dirs: &mut fsutil::DirSync,
    ) -> Result<()> {
        let dest = self.path_of(digest);
        self.ensure_shard(&dest)?;
        let temp = fsutil::temp_beside(&dest);
        let (found, n) = fsutil::write_temp(&temp, reader, 0o444).map_err(|e| {
            if integrity_of(&e).is_some() || e.kind() == io::ErrorKind::UnexpectedEof {
                package_error(pkg.blob_error(e))
            } else {
                Error::Io { path: temp.clone(), source: e }
            }
        })?;
        if found != *digest || n != size {
            let _ = fsutil::remove_temp(&temp);
            return Err(Error::Store { path: dest, why: format!("wrote {n} bytes with SHA-256 {found}") });
        }
        crash::step("store blob rename");
        dirs.rename(&temp, &dest).map_err(Error::io(&dest))
    }

    fn ensure_shard(&self, dest: &Path) -> Result<()> {
        let Some(shard) = dest.parent() else { return Ok(()) };
        if shard.is_dir() {
            return Ok(());
        }
        crash::step("store shard mkdir");
        fs::create_dir_all(shard).map_err(Error::io(shard))?;
        fsutil::fsync_dir(&self.dir).map_err(Error::io(&self.dir))
    }

    /// Writes blob `d` to `dest` with permission bits `mode`: beside it under a temporary
    /// name, hash-checked, fsynced, then renamed into place. Creates no directory.
    pub fn place(&self, d: &Digest, size: u64, mode: u32, dest: &Path) -> Result<()> {
        let mut dirs = fsutil::DirSync::default();
        self.place_deferred(d, size, mode, dest, &mut dirs)?;
        dirs.flush().map_err(Error::io(dest))
    }

    /// [`Store::place`], leaving the fsync of `dest`'s directory to `dirs`.
    pub fn place_deferred(
        &self,
        d: &Digest,
        size: u64,
        mode: u32,
        dest: &Path,
        dirs: &mut fsutil::DirSync,
    ) -> Result<()> {
        let src_path = self.path_of(d);
        let mut src = File::open(&src_path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::Store {
                path: src_path.clone(),
                why: "missing; reinstall the package that carries it to put it back".into(),
            },
            _ => Error::Io { path: src_path.clone(), source: e },
        })?;
        let temp = fsutil::temp_beside(dest);
        let (found, n) = fsutil::write_temp(&temp, &mut src, mode).map_err(Error::io(&temp))?;
        if found != *d || n != size {
            let _ = fsutil::remove_temp(&temp);
            return Err(Error::Store {
                path: src_path,
                why: format!("damaged: holds {n} bytes with SHA-256 {found}; reinstall the package that carries it"),
            });
        }
        crash::step("file rename into place");
        dirs.rename(&temp, dest).map_err(Error::io(dest))
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

fn package_error(source: pkgtool::Error) -> Error {
    let hint = String::from(" — nothing was installed");
    Error::Package { source: Box::new(source), hint }
}
