//! The servicing operations behind each command. Every operation opens the root through
//! [`Session`], which takes the root's lock for changes and rolls back an interrupted
//! transaction before anything else happens.

pub mod change;
pub mod init;
pub mod maintain;
pub mod package;
pub mod view;

use std::path::Path;

use hotfix_schema::Name;

use crate::engine::{BranchPolicy, Inputs, Installed};
use crate::error::{Error, Result};
use crate::inventory::{InstalledPackage, Inventory};
use crate::layout::Layout;
use crate::lock::{self, RootLock};
use crate::oplog;
use crate::progress::{Progress, Silent};
use crate::store::Store;
use crate::txn;

/// How an operation uses the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// It changes the root: take the lock (waiting for it if `wait`).
    Write {
        /// Wait for a busy root instead of failing with exit 8.
        wait: bool,
    },
    /// It only reads: no lock, unless an interrupted transaction must be rolled back first.
    Read,
}

/// An interrupted transaction that was rolled back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Its command.
    pub op: String,
    /// When it started.
    pub started: String,
    /// What the rollback did.
    pub done: txn::RolledBack,
}

/// An open root.
pub struct Session {
    /// Its paths.
    pub layout: Layout,
    /// Its inventory.
    pub inv: Inventory,
    /// Its store.
    pub store: Store,
    /// The interrupted transaction rolled back on opening, if any.
    pub recovered: Option<Recovered>,
    /// Where long operations report progress; [`Silent`] unless the caller sets it.
    pub progress: Box<dyn Progress>,
    _lock: Option<RootLock>,
}

/// The inputs of the servicing decision as the inventory holds them.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The root's product.
    pub product: Name,
    /// Its branch policy.
    pub policy: BranchPolicy,
    /// Its packages, in install order.
    pub packages: Vec<InstalledPackage>,
}

impl Snapshot {
    /// The installed packages as the engine takes them.
    pub fn installed(&self) -> Vec<Installed> {
        self.packages.iter().map(|p| p.installed.clone()).collect()
    }

    /// The installed package `id`.
    pub fn package(&self, id: &Name) -> Option<&InstalledPackage> {
        self.packages.iter().find(|p| &p.installed.manifest.package.id == id)
    }
}

/// Engine inputs over a package list.
pub fn inputs<'a>(s: &'a Snapshot, installed: &'a [Installed], policy: BranchPolicy) -> Inputs<'a> {
    Inputs { product: &s.product, installed, policy }
}

impl Session {
    /// Opens the root at `root` for the command `what`.
    pub fn open(root: &Path, what: &str, access: Access) -> Result<Session> {
        let layout = Layout::new(root);
        if !layout.db().is_file() {
            return Err(Error::Refused(format!(
                "{} is not a servicing root (it has no .servicing/inventory.db); make one with \
                 `hotfix --root {} init --product NAME --trust KEY.pub`",
                root.display(),
                root.display()
            )));
        }
        let lock = match access {
            Access::Write { wait } => Some(lock::acquire(&layout, what, wait)?),
            Access::Read => None,
        };
        let inv = Inventory::open(&layout.db())?;
        let store = Store::new(layout.store());
        let mut s = Session { layout, inv, store, recovered: None, progress: Box::new(Silent), _lock: lock };
        if s.inv.pending()?.is_some() {
            match access {
                Access::Write { .. } => s.recovered = s.recover()?,
                Access::Read => {
                    // A transaction in flight in another process: read the committed state.
                    if let Some(l) = lock::try_acquire(&s.layout, "recover")? {
                        s.recovered = s.recover()?;
                        drop(l);
                    }
                }
            }
        }
        Ok(s)
    }

    /// Rolls back the interrupted transaction, if there is one. The caller holds the lock.
    pub fn recover(&mut self) -> Result<Option<Recovered>> {
        let Some(pending) = self.inv.pending()? else { return Ok(None) };
        let done = txn::rollback(&self.layout, &self.store, &pending)?;
        self.inv.clear_pending()?;
        let entry = oplog::Entry {
            package: pending.package.as_ref().map(ToString::to_string),
            written: done.restored,
            removed: done.removed,
            result: format!("rolled back the interrupted `{}` started {}", pending.op, pending.started),
            ..oplog::Entry::new("recover")
        };
        oplog::append(&self.layout, &entry)?;
        Ok(Some(Recovered { op: pending.op, started: pending.started, done }))
    }

    /// The committed inputs.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot { product: self.inv.product()?, policy: self.inv.policy()?, packages: self.inv.installed()? })
    }
}
