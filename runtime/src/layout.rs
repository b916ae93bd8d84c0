//! Where a root keeps its servicing state: everything under `ROOT/.servicing/`.
//!
//! ```text
//! ROOT/.servicing/inventory.db   SQLite inventory (WAL): product, policy, packages, files, pending
//! ROOT/.servicing/store/ab/<sha> content-addressed store: every blob of every installed package
//! ROOT/.servicing/trust/*.pub    keys trusted to sign packages (SPKI PEM)
//! ROOT/.servicing/log            operation log, one JSON object per line
//! ROOT/.servicing/lock           OS file lock; holds the pid and command of the holder
//! ```

use std::path::{Path, PathBuf};

use hotfix_schema::{RESERVED_DIR, RelPath};

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

    /// The root as the user wrote it, for hints in messages.
    pub fn shown(&self) -> String {
        self.root.display().to_string()
    }
}
