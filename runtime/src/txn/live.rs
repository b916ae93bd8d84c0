//! The live tree under a root as transactions, rollback and `check` reach it: every path
//! resolved one component at a time from a handle on the root, never through a link (see
//! [`crate::rootfs`]), with the directories used last kept open.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use hotfix_schema::{Digest, RelPath};

use crate::error::{Error, Result};
use crate::fsutil::{self, DirSync};
use crate::layout::Layout;
use crate::rootfs::{self, Dir, Entry, Kind};
use crate::store::Store;

/// Directories kept open at most; then the cache starts over.
const CACHE: usize = 256;

/// The live tree of one root.
pub struct LiveTree {
    root: Rc<Dir>,
    cache: RefCell<HashMap<Vec<String>, Rc<Dir>>>,
}

/// A path's directory components and its own name.
pub fn split(path: &RelPath) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.components().collect();
    let name = parts.pop().unwrap_or("");
    (parts, name)
}

impl LiveTree {
    /// The live tree of the root `layout`.
    pub fn open(layout: &Layout) -> Result<LiveTree> {
        Ok(LiveTree { root: Rc::new(layout.root_dir()?), cache: RefCell::default() })
    }

    /// The root directory.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The full path of `path`, for messages.
    pub fn show(&self, path: &RelPath) -> PathBuf {
        let mut p = self.root.path().to_path_buf();
        p.extend(path.components());
        p
    }

    fn show_parts(&self, parts: &[&str]) -> PathBuf {
        let mut p = self.root.path().to_path_buf();
        p.extend(parts);
        p
    }

    /// The directory `parts` below the root: `None` if one of them is missing; a conflict
    /// naming the first component that is a file, a link or anything but a directory.
    pub fn dir(&self, parts: &[&str]) -> Result<Option<Rc<Dir>>> {
        let key: Vec<String> = parts.iter().map(|p| (*p).to_string()).collect();
        if let Some(d) = self.cache.borrow().get(&key) {
            return Ok(Some(Rc::clone(d)));
        }
        let mut dir = Rc::clone(&self.root);
        for (n, part) in parts.iter().enumerate() {
            let prefix = &key[..=n];
            if let Some(d) = self.cache.borrow().get(prefix) {
                dir = Rc::clone(d);
                continue;
            }
            let next = match dir.sub(part) {
                Ok(d) => Rc::new(d),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    let at = &parts[..=n];
                    let found = dir.entry(part).ok().flatten().map_or("not a directory", |e| e.kind.describe());
                    return Err(Error::Conflict {
                        path: self.show_parts(at),
                        why: format!("is {found} where a directory is needed (links are never followed)"),
                    });
                }
                Err(e) => return Err(Error::Io { path: self.show_parts(&parts[..=n]), source: e }),
            };
            let mut cache = self.cache.borrow_mut();
            if cache.len() >= CACHE {
                cache.clear();
            }
            cache.insert(prefix.to_vec(), Rc::clone(&next));
            dir = next;
        }
        Ok(Some(dir))
    }

    /// Forgets the open directories (after directories were removed or replaced).
    pub fn forget(&self) {
        self.cache.borrow_mut().clear();
    }

    /// The directory holding `path`, if it is there (see [`LiveTree::dir`]).
    pub fn parent(&self, path: &RelPath) -> Result<Option<Rc<Dir>>> {
        self.dir(&split(path).0)
    }

    /// The directory holding `path`, creating the missing ones (permission bits 0755),
    /// each remembered in `dirs`.
    pub fn parent_create(&self, path: &RelPath, dirs: &mut DirSync) -> Result<Rc<Dir>> {
        let (parts, _) = split(path);
        for n in 1..=parts.len() {
            if self.dir(&parts[..n])?.is_some() {
                continue;
            }
            let Some(up) = self.dir(&parts[..n - 1])? else { continue };
            up.create_sub(parts[n - 1], 0o755).map_err(Error::io(&self.show_parts(&parts[..n])))?;
            dirs.changed(&parts[..n - 1]);
        }
        self.dir(&parts)?.ok_or_else(|| Error::Io {
            path: self.show_parts(&parts),
            source: io::Error::new(io::ErrorKind::NotFound, "the directory vanished while it was created"),
        })
    }

    /// What is at `path`: `None` if nothing (or a missing directory above it).
    pub fn entry(&self, path: &RelPath) -> Result<Option<Entry>> {
        let (_, name) = split(path);
        match self.parent(path)? {
            Some(dir) => dir.entry(name).map_err(Error::io(&self.show(path))),
            None => Ok(None),
        }
    }

    /// The SHA-256 and size of the regular file at `path`, reading at most `limit` bytes;
    /// `None` if nothing is there. Anything but a regular file is an error.
    pub fn hash(&self, path: &RelPath, limit: u64) -> Result<Option<(Digest, u64)>> {
        let (_, name) = split(path);
        let Some(dir) = self.parent(path)? else { return Ok(None) };
        let shown = self.show(path);
        match dir.open_file(name).map_err(Error::io(&shown))? {
            Some((mut f, _)) => Ok(Some(fsutil::hash_at_most(&mut f, limit).map_err(Error::io(&shown))?)),
            None => Ok(None),
        }
    }

    /// Whether the directory `path` holds nothing but files in `removed` (and directories
    /// that hold nothing else), so that it can give way to a file.
    pub fn holds_only(&self, path: &RelPath, removed: &dyn Fn(&RelPath) -> bool) -> Result<bool> {
        let parts: Vec<&str> = path.components().collect();
        let Some(dir) = self.dir(&parts)? else { return Ok(true) };
        for (name, kind) in dir.list().map_err(Error::io(&self.show(path)))? {
            let Ok(child) = RelPath::new(&format!("{path}/{name}")) else { return Ok(false) };
            let fine = match kind {
                Kind::File => removed(&child),
                Kind::Dir => self.holds_only(&child, removed)?,
                Kind::Link | Kind::Special => false,
            };
            if !fine {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes the store's blob `rec` to `path` as a new file (beside it, then renamed over
    /// whatever name is there, never through it), creating missing directories; durable
    /// when this returns.
    pub fn restore(&self, store: &Store, path: &RelPath, sha: &Digest, size: u64, mode: u32) -> Result<()> {
        let mut dirs = DirSync::default();
        let dir = self.parent_create(path, &mut dirs)?;
        let (_, name) = split(path);
        let temp = fsutil::temp_name(name);
        let mut buf = vec![0u8; 1 << 16];
        let shown = self.show(path);
        let file = store.write_copy(sha, size, mode, &dir, &temp, &mut buf).map_err(|e| match e {
            // Name the file being restored, not its temporary name.
            Error::Io { source, .. } => Error::Io { path: shown.clone(), source },
            other => other,
        })?;
        if let Err(e) = file.sync_all() {
            let _ = dir.remove_file(&temp);
            return Err(Error::Io { path: shown, source: e });
        }
        drop(file);
        crate::crash::step("file rename into place");
        if let Err(e) = dir.rename(&temp, &dir, name) {
            let _ = dir.remove_file(&temp);
            return Err(Error::Io { path: shown, source: e });
        }
        dirs.changed_in(path);
        dirs.flush(&self.root).map_err(Error::io(&shown))
    }

    /// Gives the file at `path` permission bits `mode`: in place when it is a regular file
    /// with one link (then fsynced), otherwise by replacing it with a fresh copy of the
    /// store's blob, so that a hard link to a file elsewhere is never changed.
    pub fn set_mode(&self, store: &Store, path: &RelPath, sha: &Digest, size: u64, mode: u32) -> Result<()> {
        match self.open_for_mode(path)? {
            Some(f) => {
                let shown = self.show(path);
                rootfs::set_mode(&f, mode).and_then(|()| f.sync_all()).map_err(Error::io(&shown))
            }
            None => self.restore(store, path, sha, size, mode),
        }
    }

    /// Opens the file at `path` for an in-place mode change: `None` if it must be replaced
    /// instead (see [`rootfs::open_for_mode`]).
    pub fn open_for_mode(&self, path: &RelPath) -> Result<Option<File>> {
        let (_, name) = split(path);
        match self.parent(path)? {
            Some(dir) => rootfs::open_for_mode(&dir, name).map_err(Error::io(&self.show(path))),
            None => Ok(None),
        }
    }
}
