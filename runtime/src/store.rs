//! The content-addressed store, `ROOT/.servicing/store/<first 2 hex>/<sha256>`: every blob of
//! every installed package, active or stashed. A blob is written beside its final name,
//! hash-checked, fsynced and renamed; it is hash-checked again whenever it is placed in
//! the live tree, unless this very process wrote or checked it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::rc::Rc;

use hotfix_schema::Digest;
use pkgtool::read::integrity_of;
use sha2::{Digest as _, Sha256};

use crate::crash;
use crate::error::{Error, Result};
use crate::fsutil::{self, TMP_PREFIX};
use crate::layout::Layout;
use crate::rootfs::{Dir, Kind};

/// The state of one blob in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobState {
    /// Present with the right size and hash.
    Good,
    /// Not there.
    Missing,
    /// There, but damaged (or not a regular file).
    Bad(String),
}

/// What ingesting a package added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Blobs written.
    pub added: usize,
    /// Blobs already present (shared with another package).
    pub present: usize,
    /// The blobs written, so that a change that fails after the commit can take them back.
    pub digests: Vec<Digest>,
}

/// The store's directory for contents being staged (`store/tmp/`): one small directory to
/// look into for leftovers of a killed process, on the store's file system so that a
/// staged content becomes a blob by a rename.
const STAGING_DIR: &str = "tmp";

/// Leftovers of an interrupted write found in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Leftovers {
    /// Temporary files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether they were removed (they are not while another process holds the lock).
    pub removed: bool,
}

/// Worker threads that fsync the files an install writes (see [`fsutil::Flusher`]): the
/// waits are for the disk, not the CPU, so a few overlap well even on one core.
pub const FSYNC_THREADS: usize = 2;

/// Bytes copied at a time from a decoder into a file.
const COPY_BUF: usize = 1 << 18;

/// The store of one root, reached through a handle on its directory (see
/// [`crate::rootfs`]): a link or special file planted in it is never followed or read.
#[derive(Debug)]
pub struct Store {
    dir: Dir,
    /// Shard directories opened so far (at most 256 exist).
    shards: RefCell<HashMap<String, Rc<Dir>>>,
    /// Blobs this process found or wrote with the right size and hash (and holds the
    /// root's lock meanwhile): placing them needs no second hash.
    checked: RefCell<HashSet<Digest>>,
}

fn shard_of(d: &Digest) -> (String, String) {
    let hex = d.to_hex();
    (hex[..2].to_string(), hex)
}

impl Store {
    /// The store of the root `layout`, created if missing.
    pub fn open(layout: &Layout) -> Result<Store> {
        let servicing = layout.servicing_dir_required()?;
        let dir = match servicing.sub_if_any("store").map_err(Error::io(&layout.store()))? {
            Some(dir) => dir,
            None => servicing.create_sub("store", 0o755).map_err(Error::io(&layout.store()))?.0,
        };
        Ok(Store { dir, shards: RefCell::default(), checked: RefCell::default() })
    }

    /// Where blob `d` lives (for messages).
    pub fn path_of(&self, d: &Digest) -> PathBuf {
        let (shard, hex) = shard_of(d);
        self.dir.path().join(shard).join(hex)
    }

    /// Opens blob `d` for reading: `None` if it is missing; an error names anything there
    /// that is not a regular file.
    fn open_blob(&self, d: &Digest) -> Result<Option<File>> {
        let (shard, hex) = shard_of(d);
        let path = self.path_of(d);
        let Some(dir) = self.shard(&shard).map_err(Error::io(&path))? else { return Ok(None) };
        match dir.open_file(&hex) {
            Ok(found) => Ok(found.map(|(f, _)| f)),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                Err(Error::Store { path, why: format!("not a blob: {e}") })
            }
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// The shard directory `name`, if it is there (kept open once found).
    fn shard(&self, name: &str) -> io::Result<Option<Rc<Dir>>> {
        if let Some(d) = self.shards.borrow().get(name) {
            return Ok(Some(Rc::clone(d)));
        }
        let found = self.dir.sub_if_any(name)?.map(Rc::new);
        if let Some(d) = &found {
            self.shards.borrow_mut().insert(name.to_string(), Rc::clone(d));
        }
        Ok(found)
    }

    /// Checks blob `d` (size and hash), reading at most `size` + 1 bytes of it.
    pub fn check(&self, d: &Digest, size: u64) -> Result<BlobState> {
        let path = self.path_of(d);
        let mut f = match self.open_blob(d) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(BlobState::Missing),
            Err(Error::Store { why, .. }) => return Ok(BlobState::Bad(why)),
            Err(e) => return Err(e),
        };
        match fsutil::hash_at_most(&mut f, size.saturating_add(1)) {
            Ok((found, n)) if found == *d && n == size => {
                self.checked.borrow_mut().insert(*d);
                Ok(BlobState::Good)
            }
            Ok((_, n)) if n > size => Ok(BlobState::Bad(format!("holds more than {size} bytes"))),
            Ok((found, n)) => Ok(BlobState::Bad(format!("holds {n} bytes with SHA-256 {found}"))),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// A [`Staging`] of this store: hand it to [`pkgtool::read::verify_into`], so that the
    /// package is decoded once, and every content the store lacks is written as it is
    /// verified; then [`Staging::commit`], or drop it to remove what it wrote.
    pub fn staging(&self) -> Staging<'_> {
        Staging {
            store: self,
            dir: None,
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

    /// The shard directory of `d`, created if missing.
    fn shard_dir(&self, d: &Digest, dirs: &mut fsutil::DirSync) -> Result<Rc<Dir>> {
        let (shard, _) = shard_of(d);
        if let Some(dir) = self.shard(&shard).map_err(Error::io(&self.dir.join(&shard)))? {
            return Ok(dir);
        }
        crash::step("store shard mkdir");
        let (dir, made) = self.dir.create_sub(&shard, 0o755).map_err(Error::io(&self.dir.join(&shard)))?;
        if made {
            dirs.changed(&[]);
        }
        let dir = Rc::new(dir);
        self.shards.borrow_mut().insert(shard, Rc::clone(&dir));
        Ok(dir)
    }

    /// Copies blob `d` (`size` bytes) into the new file `temp` in `into` with permission
    /// bits `mode`, unsynced, and returns the open file: hash-checked as it is copied
    /// through `buf`, or, for a blob this process checked already, copied in the kernel
    /// with its size checked. The temporary is created exclusively, never through a link.
    pub fn write_copy(&self, d: &Digest, size: u64, mode: u32, into: &Dir, temp: &str, buf: &mut [u8]) -> Result<File> {
        let src_path = self.path_of(d);
        let Some(mut src) = self.open_blob(d)? else {
            return Err(Error::Store {
                path: src_path,
                why: "missing; put it back with `hotfix check --repair --from PACKAGE-FILE` of the package that \
                      carries it"
                    .into(),
            });
        };
        let temp_path = into.join(temp);
        let out = into.create_new(temp).map_err(Error::io(&temp_path))?;
        let checked = self.checked.borrow().contains(d);
        let limit = size.saturating_add(1);
        let copied = if checked {
            fsutil::copy_into(&mut src, out, limit, mode).map(|(f, n)| (f, n, *d))
        } else {
            let mut hashing = HashingRead { inner: (&mut src).take(limit), sha: Sha256::new() };
            fsutil::fill(out, &mut hashing, mode, buf).map(|(f, n)| (f, n, Digest(hashing.sha.finalize().into())))
        };
        let (file, n, found) = match copied {
            Ok(done) => done,
            Err(e) => {
                let _ = into.remove_file(temp);
                return Err(Error::Io { path: temp_path, source: e });
            }
        };
        if found != *d || n != size {
            drop(file);
            let _ = into.remove_file(temp);
            return Err(Error::Store {
                path: src_path,
                why: format!(
                    "damaged: holds {n} bytes with SHA-256 {found}; put it back with `hotfix check --repair --from \
                     PACKAGE-FILE` of the package that carries it"
                ),
            });
        }
        if !checked {
            self.checked.borrow_mut().insert(*d);
        }
        Ok(file)
    }

    /// Removes the blobs `digests` (written by a change that did not commit) and the shard
    /// directories left empty; what cannot be removed is left for `cleanup`.
    pub fn take_back(&self, digests: &[Digest]) {
        let mut dirs = fsutil::DirSync::default();
        for d in digests {
            let (shard, hex) = shard_of(d);
            if let Ok(Some(dir)) = self.dir.sub_if_any(&shard) {
                if dir.remove_file(&hex).unwrap_or(false) {
                    dirs.changed(&[shard.as_str()]);
                }
                if dir.is_empty().unwrap_or(false) && self.dir.remove_dir(&shard).unwrap_or(false) {
                    self.shards.borrow_mut().remove(&shard);
                    dirs.changed(&[]);
                }
            }
        }
        let _ = dirs.flush(&self.dir);
    }

    /// Leftovers of interrupted writes (files in the staging directory), removed when
    /// `remove` (the caller holds the root's lock), else only counted.
    pub fn leftovers(&self, remove: bool) -> Result<Leftovers> {
        let mut found = Leftovers::default();
        let Some(dir) = self.dir.sub_if_any(STAGING_DIR).map_err(Error::io(&self.dir.join(STAGING_DIR)))? else {
            return Ok(found);
        };
        for (name, kind) in dir.list().map_err(Error::io(dir.path()))? {
            // Staged contents are regular files; anything else here is not the runtime's.
            if kind != Kind::File {
                continue;
            }
            found.files += 1;
            found.bytes += dir.entry(&name).ok().flatten().map_or(0, |e| e.size);
            if remove {
                dir.remove_file(&name).map_err(Error::io(&dir.join(&name)))?;
            }
        }
        if remove && found.files > 0 {
            dir.sync().map_err(Error::io(dir.path()))?;
            found.removed = true;
        }
        Ok(found)
    }

    /// The staging directory, created if missing.
    fn staging_dir(&self) -> Result<Dir> {
        let path = self.dir.join(STAGING_DIR);
        Ok(self.dir.create_sub(STAGING_DIR, 0o700).map_err(Error::io(&path))?.0)
    }

    /// Deletes every blob not in `keep`, and leftovers of interrupted writes. Returns the
    /// number of blobs deleted and the bytes freed.
    pub fn collect_garbage(&self, keep: &HashSet<Digest>) -> Result<(usize, u64)> {
        let (mut count, mut bytes) = (0usize, 0u64);
        let left = self.leftovers(true)?;
        count += left.files;
        bytes += left.bytes;
        for (shard, kind) in self.dir.list().map_err(Error::io(self.dir.path()))? {
            if kind != Kind::Dir || shard == STAGING_DIR {
                continue;
            }
            let dir = self.dir.sub(&shard).map_err(Error::io(&self.dir.join(&shard)))?;
            for (name, kind) in dir.list().map_err(Error::io(dir.path()))? {
                if kind == Kind::Special || kind == Kind::Dir {
                    continue;
                }
                let digest = Digest::from_hex(&name);
                let keep_it = digest.as_ref().is_ok_and(|d| keep.contains(d));
                if keep_it || !(digest.is_ok() || name.starts_with(TMP_PREFIX)) {
                    continue;
                }
                let size = dir.entry(&name).ok().flatten().map_or(0, |e| e.size);
                dir.remove_file(&name).map_err(Error::io(&dir.join(&name)))?;
                count += 1;
                bytes += size;
            }
            if dir.is_empty().unwrap_or(false) {
                self.dir.remove_dir(&shard).map_err(Error::io(&self.dir.join(&shard)))?;
                self.shards.borrow_mut().remove(&shard);
            }
        }
        self.dir.sync().map_err(Error::io(self.dir.path()))?;
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
    /// The staging directory, once opened.
    dir: Option<Dir>,
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
        let Staged { mut dirs, flusher, written, .. } = staged;
        let store = self.store;
        let fail = |done: &[Digest], e: Error| {
            remove_temps(store, &written);
            store.take_back(done);
            e
        };
        if let Err((path, source)) = flusher.finish() {
            return Err(fail(&[], Error::Io { path, source }));
        }
        let mut done = Vec::new();
        let staging = match store.staging_dir() {
            Ok(dir) => dir,
            Err(e) => return Err(fail(&done, e)),
        };
        for (digest, temp) in &written {
            let (shard, hex) = shard_of(digest);
            let renamed = store.shard_dir(digest, &mut dirs).and_then(|dir| {
                crash::step("store blob rename");
                staging.rename(temp, &dir, &hex).map_err(Error::io(&store.path_of(digest)))
            });
            if let Err(e) = renamed {
                return Err(fail(&done, e));
            }
            dirs.changed(&[shard.as_str()]);
            dirs.changed(&[STAGING_DIR]);
            done.push(*digest);
            store.checked.borrow_mut().insert(*digest);
        }
        // Every new blob is durable before the caller records a transaction that needs it.
        if let Err(e) = dirs.flush(&store.dir) {
            return Err(fail(&done, Error::Io { path: store.dir.path().to_path_buf(), source: e }));
        }
        self.report.digests = done;
        Ok(std::mem::take(&mut self.report))
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        remove_temps(self.store, &self.staged.written);
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
        if self.dir.is_none() {
            match self.store.staging_dir() {
                Ok(dir) => self.dir = Some(dir),
                Err(e) => {
                    self.failed = Some(e);
                    return Err(io::Error::other("store write failed"));
                }
            }
        }
        let Some(dir) = &self.dir else { return Err(io::Error::other("no staging directory")) };
        let temp = digest.to_hex();
        let temp_path = dir.join(&temp);
        let written = dir.create_new(&temp).and_then(|f| fsutil::fill(f, content, 0o444, &mut self.buf));
        let (out, n) = match written {
            Ok(done) => done,
            Err(e) => {
                let _ = dir.remove_file(&temp);
                if integrity_of(&e).is_none() && e.kind() != io::ErrorKind::UnexpectedEof {
                    self.failed = Some(Error::Io { path: temp_path, source: e });
                    return Err(io::Error::other("store write failed"));
                }
                return Err(e);
            }
        };
        if n != size {
            drop(out);
            let _ = dir.remove_file(&temp);
            self.failed =
                Some(Error::Store { path: self.store.path_of(digest), why: format!("wrote {n} bytes, not {size}") });
            return Err(io::Error::other("store write failed"));
        }
        self.staged.flusher.push(out, temp_path);
        self.staged.written.push((*digest, temp));
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
    /// Each blob's digest and temporary file name (in the staging directory), in the
    /// manifest's order.
    written: Vec<(Digest, String)>,
}

/// Removes the temporary files of `written`: a refused install leaves the store as it
/// found it.
fn remove_temps(store: &Store, written: &[(Digest, String)]) {
    if let Ok(Some(dir)) = store.dir.sub_if_any(STAGING_DIR) {
        for (_, temp) in written {
            let _ = dir.remove_file(temp);
        }
    }
}

/// Hashes what is read through it.
struct HashingRead<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}
