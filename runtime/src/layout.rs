//! Where a root keeps its servicing state: everything under `ROOT/.servicing/`.
//!
//! ```text
//! ROOT/.servicing/inventory.db   SQLite inventory (WAL): product, policy, packages, files, pending
//! ROOT/.servicing/store/ab/<sha> content-addressed store: every blob of every installed package
//! ROOT/.servicing/trust/*.pub    keys trusted to sign packages (SPKI PEM)
//! ROOT/.servicing/log            operation log, one JSON object per line
//! ROOT/.servicing/lock           OS file lock; holds the pid and command of the holder
//! ```

use std::io;
use std::path::{Path, PathBuf};

use hotfix_schema::{RESERVED_DIR, RelPath};

use crate::error::{Error, Result};
use crate::rootfs::Dir;

/// The paths of one root.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The serviced root.
    pub root: PathBuf,
    /// `ROOT/.servicing`.
    pub servicing: PathBuf,
}

impl Layout {
    /// The layout of the root at `root`.
    pub fn new(root: &Path) -> Layout {
        Layout { root: root.to_path_buf(), servicing: root.join(RESERVED_DIR) }
    }

    /// The inventory database.
    pub fn db(&self) -> PathBuf {
        self.servicing.join("inventory.db")
    }

    /// The blob store.
    pub fn store(&self) -> PathBuf {
        self.servicing.join("store")
    }

    /// The trusted keys.
    pub fn trust(&self) -> PathBuf {
        self.servicing.join("trust")
    }

    /// The operation log.
    pub fn log(&self) -> PathBuf {
        self.servicing.join("log")
    }

    /// The lock file.
    pub fn lock(&self) -> PathBuf {
        self.servicing.join("lock")
    }

    /// The live path of a file under the root.
    pub fn live(&self, path: &RelPath) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(path.components());
        p
    }

    /// The root directory, opened as the administrator named it.
    pub fn root_dir(&self) -> Result<Dir> {
        Dir::open(&self.root).map_err(Error::io(&self.root))
    }

    /// `ROOT/.servicing`, reached without following a link; `None` if it is not there.
    pub fn servicing_dir(&self) -> Result<Option<Dir>> {
        self.root_dir()?.sub_if_any(RESERVED_DIR).map_err(Error::io(&self.servicing))
    }

    /// `ROOT/.servicing`, which must be there.
    pub fn servicing_dir_required(&self) -> Result<Dir> {
        self.servicing_dir()?.ok_or_else(|| Error::Io {
            path: self.servicing.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "the servicing directory is missing"),
        })
    }

    /// Whether this is a servicing root (`.servicing/inventory.db` is there). An error if
    /// `.servicing` is not a real directory, or the inventory or its SQLite companions
    /// (`-wal`, `-shm`, `-journal`) are anything but plain files of their own: SQLite
    /// would write through them.
    pub fn is_root(&self) -> Result<bool> {
        let Some(servicing) = self.servicing_dir()? else { return Ok(false) };
        let mut found = false;
        for name in ["inventory.db", "inventory.db-wal", "inventory.db-shm", "inventory.db-journal"] {
            let path = self.servicing.join(name);
            match servicing.entry(name).map_err(Error::io(&path))? {
                None => {}
                Some(e) if e.is_plain_file() => found |= name == "inventory.db",
                Some(e) => {
                    let what = if e.kind == crate::rootfs::Kind::File {
                        format!("a file with {} names (a hard link)", e.nlink)
                    } else {
                        e.kind.describe().to_string()
                    };
                    return Err(Error::Conflict {
                        path,
                        why: format!(
                            "is {what}, not the inventory's own file; the runtime does not write through it. \
                             Restore the root's servicing state from a backup"
                        ),
                    });
                }
            }
        }
        Ok(found)
    }

    /// The root as the user wrote it, for hints in messages.
    pub fn shown(&self) -> String {
        self.root.display().to_string()
    }
}
