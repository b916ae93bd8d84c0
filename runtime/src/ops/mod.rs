//! The servicing operations behind each command. Every operation opens the root through
//! [`Session`], which takes the root's lock for changes and rolls back an interrupted
//! transaction before anything else happens.

pub mod change;
#[cfg(feature = "channel")]
pub mod channel;
pub mod init;
pub mod maintain;
pub mod owner;
pub mod package;
pub mod view;

use std::collections::BTreeSet;
use std::path::Path;

use hotfix_schema::{Kind, Name};

use crate::engine::{BranchPolicy, Inputs, Installed, Transition, active_state, transition};
use crate::error::{Error, Result};
use crate::inventory::{InstalledPackage, Inventory};
use crate::layout::Layout;
use crate::lock::{self, RootLock};
use crate::oplog;
use crate::progress::{Progress, Silent};
use crate::report::ChangeReport;
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
    /// Temporary files of an interrupted write found in the store on opening (removed
    /// unless another process held the root's lock).
    pub leftovers: crate::store::Leftovers,
    /// Where long operations report progress; [`Silent`] unless the caller sets it.
    pub progress: Box<dyn Progress>,
    _lock: Option<RootLock>,
}

/// The inputs of the servicing decision as the inventory holds them — all of them, or
/// those of the components a change concerns ([`Session::snapshot_for`]).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The root's product.
    pub product: Name,
    /// Its branch policy.
    pub policy: BranchPolicy,
    /// Its packages, in install order; with a scope, each manifest restricted to the
    /// variants of the scope's components at the root's baseline.
    pub packages: Vec<InstalledPackage>,
    /// `None`: every package is whole.
    pub scope: Option<Scope>,
}

/// The components a restricted [`Snapshot`] holds, and what it knows of the rest of the
/// root without reading it: the engine's decisions for the scope are those of the whole
/// root (see [`crate::engine::Inputs`]), and [`Session::transition`] and
/// [`Scope::complete_report`] add the rest to what a change reports.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The baseline package that established the root's baseline.
    pub base: Name,
    /// The root's baseline.
    pub baseline: Name,
    /// The components whose variants were read.
    pub components: BTreeSet<Name>,
    /// The root's other components, sorted.
    pub others: Vec<Name>,
    /// The root's active files, in the scope or not.
    pub files: u64,
}

impl Scope {
    /// Adds the components outside the scope to a change report's unchanged ones.
    pub fn complete_report(&self, report: &mut ChangeReport) {
        if self.others.is_empty() {
            return;
        }
        let mut names: Vec<String> =
            report.unchanged.drain(..).chain(self.others.iter().map(ToString::to_string)).collect();
        names.sort();
        names.dedup();
        report.unchanged = names;
    }
}

/// The package a change adds or removes.
#[derive(Clone, Copy, Debug)]
pub enum PackageChange<'a> {
    /// Installing it.
    Add(&'a Installed),
    /// Uninstalling the installed package with this id.
    Remove(&'a Name),
}

impl Snapshot {
    /// The installed packages as the engine takes them.
    pub fn installed(&self) -> Vec<Installed> {
        self.packages.iter().map(|p| p.installed.clone()).collect()
    }

    /// The installed package `id`, in any case (package ids ignore case; FORMAT.md §4.2),
    /// the one spelled exactly so first.
    pub fn package(&self, id: &Name) -> Option<&InstalledPackage> {
        let ids = || self.packages.iter();
        ids()
            .find(|p| &p.installed.manifest.package.id == id)
            .or_else(|| ids().find(|p| p.installed.manifest.package.id.same_as(id)))
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
        if !layout.is_root()? {
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
        // A root on a read-only file system (a mounted image, a snapshot) is read as it is:
        // nothing is recovered or cleaned up there, and nothing could be.
        let read_only = access == Access::Read && layout.servicing_dir_required()?.read_only().unwrap_or(false);
        let inv = if read_only { Inventory::open_read_only(&layout.db())? } else { Inventory::open(&layout.db())? };
        let store = Store::open(&layout)?;
        let mut s = Session {
            layout,
            inv,
            store,
            recovered: None,
            leftovers: Default::default(),
            progress: Box::new(Silent),
            _lock: lock,
        };
        // Temporary files of a process killed while it staged a package: removed by the
        // next command that can take the lock, counted (for `check`) by the others.
        s.leftovers = s.store.leftovers(false)?;
        if read_only {
            return Ok(s);
        }
        if s.leftovers.files > 0 {
            match access {
                Access::Write { .. } => {
                    s.leftovers.removed = s.store.leftovers(true)?.removed;
                }
                Access::Read => {
                    if let Ok(Some(l)) = lock::try_acquire(&s.layout, "clean up") {
                        s.leftovers.removed = s.store.leftovers(true)?.removed;
                        drop(l);
                    }
                }
            }
        }
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
        Ok(Snapshot {
            product: self.inv.product()?,
            policy: self.inv.policy()?,
            packages: self.inv.installed()?,
            scope: None,
        })
    }

    /// The committed inputs as far as `change` can affect them: restricted to the
    /// components the added or removed package has variants of at the root's baseline —
    /// what installing or removing it can change (DESIGN.md's rule 2 and 3 look at a
    /// component's own variants only). Whole if the change can move the baseline (a
    /// baseline package) or the root has no baseline yet.
    pub fn snapshot_for(&self, change: PackageChange<'_>) -> Result<Snapshot> {
        let product = self.inv.product()?;
        let policy = self.inv.policy()?;
        let headers = self.inv.headers()?;
        let installed: Vec<Installed> = headers.iter().map(|p| p.installed.clone()).collect();
        // Inconsistent packages (a damaged inventory) are reported as the whole root would.
        let Ok(Some(root)) =
            active_state(&Inputs { product: &product, installed: &installed, policy }).map(|s| s.baseline)
        else {
            return self.snapshot();
        };
        let b = &root.decl.name;
        let components: BTreeSet<Name> = match change {
            PackageChange::Add(p) if p.manifest.package.kind != Kind::Baseline => {
                p.manifest.variants.iter().filter(|v| &v.baseline == b).map(|v| v.component.clone()).collect()
            }
            PackageChange::Remove(id) => match headers.iter().find(|p| &p.installed.manifest.package.id == id) {
                Some(p) if p.installed.manifest.package.kind != Kind::Baseline => {
                    self.inv.components_of(id, b)?.into_iter().collect()
                }
                Some(_) => return self.snapshot(),
                None => BTreeSet::new(),
            },
            PackageChange::Add(_) => return self.snapshot(),
        };
        self.restricted(product, policy, headers, &root.package, b, components)
    }

    fn restricted(
        &self,
        product: Name,
        policy: BranchPolicy,
        headers: Vec<InstalledPackage>,
        base: &Name,
        baseline: &Name,
        components: BTreeSet<Name>,
    ) -> Result<Snapshot> {
        let others = self.inv.components_of(base, baseline)?.into_iter().filter(|c| !components.contains(c)).collect();
        let files = self.inv.file_count()?;
        let packages = self.inv.with_variants_of(headers, &components, baseline)?;
        let scope = Scope { base: base.clone(), baseline: baseline.clone(), components, others, files };
        Ok(Snapshot { product, policy, packages, scope: Some(scope) })
    }

    /// The transition of `change` on `snap`, and the snapshot it was computed on. With a
    /// restricted snapshot: if the change puts a file where a component outside the scope
    /// has one, it is computed again with that component in the scope, so that the engine
    /// sees both owners as it would on the whole root; and the files outside the scope
    /// count as unchanged.
    pub fn transition(&self, mut snap: Snapshot, change: PackageChange<'_>) -> Result<(Snapshot, Transition)> {
        let mut t = change_transition(&snap, change)?;
        let mut widen = None;
        if let Some(scope) = &snap.scope {
            let new_paths = t.plan.put.iter().filter(|p| p.old.is_none()).map(|p| &p.path);
            let outside: Vec<Name> =
                self.inv.owners(new_paths)?.into_values().filter(|c| !scope.components.contains(c)).collect();
            if !outside.is_empty() {
                let mut components = scope.components.clone();
                components.extend(outside);
                widen = Some((scope.base.clone(), scope.baseline.clone(), components));
            }
        }
        if let Some((base, baseline, components)) = widen {
            snap =
                self.restricted(snap.product.clone(), snap.policy, self.inv.headers()?, &base, &baseline, components)?;
            t = change_transition(&snap, change)?;
        }
        if let Some(scope) = &snap.scope {
            let outside = usize::try_from(scope.files).unwrap_or(usize::MAX).saturating_sub(t.before_files.len());
            t.plan.unchanged += outside;
        }
        Ok((snap, t))
    }
}

/// The engine's transition for `change` on `snap`.
fn change_transition(snap: &Snapshot, change: PackageChange<'_>) -> Result<Transition> {
    let before = snap.installed();
    let after: Vec<Installed> = match change {
        PackageChange::Add(p) => before.iter().cloned().chain([p.clone()]).collect(),
        PackageChange::Remove(id) => before.iter().filter(|q| &q.manifest.package.id != id).cloned().collect(),
    };
    Ok(transition(&inputs(snap, &before, snap.policy), &inputs(snap, &after, snap.policy))?)
}

#[cfg(test)]
mod tests;
