//! Applying a transition to the live tree as one crash-safe transaction.
//!
//! Protocol ([`run`]):
//! 1. preflight: every path the plan writes or removes is checked before anything is
//!    written — a file that exists but is not in the inventory, or a symbolic link or file
//!    where a directory is needed, is a conflict and nothing changes;
//! 2. the pending record (every touched path with its old and new file, and the
//!    directories to create) is committed to the inventory;
//! 3. the plan is applied: removals, then emptied runtime-owned directories, then writes —
//!    each new content placed from the store beside its destination, every one fsynced,
//!    then each renamed over its destination, then every changed directory fsynced once;
//!    files whose bytes and mode stay are never touched;
//! 4. the new inventory (packages, policy, files, directories) is committed and the pending
//!    record deleted in ONE SQLite transaction: the commit point.
//!
//! A pending record found later means the commit point was not reached: [`rollback`]
//! restores every touched path to its old content (also in the store) or removes it, so
//! the root is exactly the old state. An error during step 3 rolls back at once.

mod rollback;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;

use hotfix_schema::{Name, RelPath};

pub use rollback::{RolledBack, rollback};

use crate::crash;
use crate::engine::{BranchPolicy, Installed, Plan, Transition};
use crate::error::{Error, Result};
use crate::fsutil::{self, Live, TMP_PREFIX};
use crate::inventory::{Commit, FileRec, Inventory, Pending, Touched};
use crate::layout::Layout;
use crate::oplog;
use crate::progress::{self, Progress};
use crate::store::Store;

/// A change of a root's inputs, with the transition the engine computed for it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The command, e.g. `install KB4`.
    pub op: String,
    /// The package installed or removed, if any.
    pub package: Option<Name>,
    /// A package to add to the inventory.
    pub add: Option<Installed>,
    /// Packages to remove from the inventory.
    pub remove: Vec<Name>,
    /// A new branch policy.
    pub policy: Option<BranchPolicy>,
    /// Before, after, and the plan between them.
    pub transition: Transition,
}

/// What a committed transaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files written (new content or new mode).
    pub written: usize,
    /// Files removed.
    pub removed: usize,
    /// Inventory records changed without touching the file.
    pub relabelled: usize,
    /// The install sequence number of an added package.
    pub seq: Option<i64>,
}

/// The ancestors of a path, parents first (`a`, `a/b` for `a/b/c`).
pub fn ancestors(path: &RelPath) -> Vec<RelPath> {
    let parts: Vec<&str> = path.components().collect();
    (1..parts.len()).filter_map(|n| RelPath::new(&parts[..n].join("/")).ok()).collect()
}

/// Runs the transaction for `change` (see the module documentation), reporting the files
/// done to `progress`.
pub fn run(
    layout: &Layout,
    inv: &mut Inventory,
    store: &Store,
    change: &Change,
    progress: &mut dyn Progress,
) -> Result<Applied> {
    let plan = &change.transition.plan;
    let created_dirs = preflight(layout, plan)?;
    let mut touched: Vec<Touched> = plan
        .put
        .iter()
        .map(|p| Touched { path: p.path.clone(), old: p.old.as_ref().map(FileRec::from), new: Some((&p.file).into()) })
        .chain(plan.remove.iter().map(|r| Touched { path: r.path.clone(), old: Some((&r.old).into()), new: None }))
        .collect();
    touched.sort_by(|a, b| a.path.cmp(&b.path));
    let pending = Pending {
        op: change.op.clone(),
        started: oplog::now(),
        package: change.package.clone(),
        touched,
        created_dirs: created_dirs.clone(),
    };
    let mut removed_dirs = Vec::new();
    if !plan.is_empty() {
        crash::step("record the pending transaction");
        inv.set_pending(&pending)?;
        let owned_dirs =
            inv.owned_dirs(&plan.remove.iter().flat_map(|r| ancestors(&r.path)).collect::<BTreeSet<_>>())?;
        match apply(layout, store, plan, &created_dirs, &owned_dirs, progress) {
            Ok(dirs) => removed_dirs = dirs,
            Err(e) => return Err(undo(layout, inv, store, &pending, e)),
        }
    }
    let commit = Commit {
        add: change.add.clone().map(|p| (p, oplog::now())),
        remove: change.remove.clone(),
        policy: change.policy,
        put_files: plan.put.iter().chain(&plan.relabel).map(|p| (p.path.clone(), p.file.clone())).collect(),
        remove_files: plan.remove.iter().map(|r| r.path.clone()).collect(),
        add_dirs: created_dirs,
        remove_dirs: removed_dirs,
    };
    crash::step("commit the inventory");
    let seq = match inv.commit(&commit) {
        Ok(seq) => seq,
        Err(e) if !plan.is_empty() => return Err(undo(layout, inv, store, &pending, e)),
        Err(e) => return Err(e),
    };
    Ok(Applied { written: plan.put.len(), removed: plan.remove.len(), relabelled: plan.relabel.len(), seq })
}

/// Rolls back after `e` and returns the error to report.
fn undo(layout: &Layout, inv: &mut Inventory, store: &Store, pending: &Pending, e: Error) -> Error {
    match rollback(layout, store, pending).and_then(|_| inv.clear_pending()) {
        Ok(()) => e,
        Err(again) => Error::Refused(format!(
            "{e}; rolling back failed too ({again}); the interrupted change is recorded, run \
             `hotfix --root {} recover` once the cause is fixed",
            layout.shown()
        )),
    }
}

/// Checks every path the plan touches; returns the directories to create, parents first.
pub fn preflight(layout: &Layout, plan: &Plan) -> Result<Vec<RelPath>> {
    let conflict = |path: &RelPath, why: String| Error::Conflict { path: layout.live(path), why };
    let mut created: BTreeSet<RelPath> = BTreeSet::new();
    let targets = plan
        .put
        .iter()
        .map(|p| (&p.path, true, p.old.is_some()))
        .chain(plan.remove.iter().map(|r| (&r.path, false, true)));
    for (path, is_put, ours) in targets {
        if is_put && path.components().last().is_some_and(|n| n.starts_with(TMP_PREFIX)) {
            return Err(conflict(path, format!("file names starting with {TMP_PREFIX} are reserved for hotfix")));
        }
        let mut missing = false;
        for dir in ancestors(path) {
            if missing || created.contains(&dir) {
                missing = true;
                if is_put {
                    created.insert(dir);
                }
                continue;
            }
            match Live::of(&layout.live(&dir)).map_err(Error::io(&layout.live(&dir)))? {
                Live::Dir => {}
                Live::Absent => {
                    missing = true;
                    if is_put {
                        created.insert(dir);
                    }
                }
                other => {
                    return Err(conflict(&dir, format!("is {} where {path} needs a directory", other.describe())));
                }
            }
        }
        if missing {
            continue;
        }
        let live = layout.live(path);
        match Live::of(&live).map_err(Error::io(&live))? {
            Live::Absent => {}
            Live::File { .. } if ours => {}
            Live::File { .. } => {
                return Err(conflict(
                    path,
                    "exists but was not installed by hotfix (no installed package owns it); move it away, then \
                     try again"
                        .into(),
                ));
            }
            other => {
                return Err(conflict(path, format!("is {}, not the file the inventory records", other.describe())));
            }
        }
    }
    Ok(created.into_iter().collect())
}

/// Step 3: removals, emptied runtime-owned directories, writes. Returns the directories
/// removed.
///
/// Every new content is written beside its destination under a temporary name, its
/// writeback started, and fsynced by a [`fsutil::Flusher`] while the next ones are written;
/// once all are fsynced they are renamed into place. Each directory whose entries changed
/// (a file removed, renamed in, a directory created or removed) is fsynced once at the end,
/// before the commit point.
fn apply(
    layout: &Layout,
    store: &Store,
    plan: &Plan,
    created_dirs: &[RelPath],
    owned_dirs: &BTreeSet<RelPath>,
    progress: &mut dyn Progress,
) -> Result<Vec<RelPath>> {
    let total = (plan.remove.len() + plan.put.len()) as u64;
    let mut done = 0u64;
    let mut dirs = fsutil::DirSync::default();
    for r in &plan.remove {
        let live = layout.live(&r.path);
        crash::step("remove a file");
        dirs.remove_file(&live).map_err(Error::io(&live))?;
        done += 1;
        progress.update(progress::APPLY, done, total);
    }
    let needed: BTreeSet<RelPath> = plan.put.iter().flat_map(|p| ancestors(&p.path)).collect();
    let emptied: BTreeSet<RelPath> = plan
        .remove
        .iter()
        .flat_map(|r| ancestors(&r.path))
        .filter(|d| owned_dirs.contains(d) && !needed.contains(d))
        .collect();
    let mut removed_dirs = Vec::new();
    for dir in emptied.iter().rev() {
        let live = layout.live(dir);
        if fsutil::is_empty_dir(&live).map_err(Error::io(&live))? {
            crash::step("remove an emptied directory");
            fs::remove_dir(&live).map_err(Error::io(&live))?;
            dirs.changed_in(&live);
            removed_dirs.push(dir.clone());
        }
    }
    let mut flusher = fsutil::Flusher::new(crate::store::FSYNC_THREADS);
    let mut written = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for p in &plan.put {
        for dir in ancestors(&p.path).iter().filter(|d| created_dirs.contains(d)) {
            let live = layout.live(dir);
            if Live::of(&live).map_err(Error::io(&live))? == Live::Absent {
                crash::step("create a directory");
                fs::create_dir(&live).map_err(Error::io(&live))?;
                dirs.changed_in(&live);
            }
        }
        let live = layout.live(&p.path);
        if p.mode_only() {
            crash::step("change a file's mode");
            set_mode(&live, p.file.mode.bits())?;
        } else {
            let temp = fsutil::temp_beside(&live);
            let file = store.write_copy(&p.file.sha256, p.file.size, p.file.mode.bits(), &temp, &mut buf)?;
            flusher.push(file, temp.clone());
            written.push((temp, live));
        }
        done += 1;
        progress.update(progress::APPLY, done, total);
    }
    flusher.finish().map_err(|(path, source)| Error::Io { path, source })?;
    for (temp, live) in &written {
        crash::step("file rename into place");
        dirs.rename(temp, live).map_err(Error::io(live))?;
    }
    dirs.flush().map_err(Error::io(std::path::Path::new(&layout.shown())))?;
    Ok(removed_dirs)
}

/// Checks that every ancestor of `path` under the root is a real directory or absent, so
/// that writing `path` cannot follow a symbolic link out of the root.
pub fn check_ancestors(layout: &Layout, path: &RelPath) -> Result<()> {
    for dir in ancestors(path) {
        let live = layout.live(&dir);
        match Live::of(&live).map_err(Error::io(&live))? {
            Live::Dir => {}
            Live::Absent => return Ok(()),
            other => {
                return Err(Error::Conflict {
                    path: live,
                    why: format!("is {} where {path} needs a directory", other.describe()),
                });
            }
        }
    }
    Ok(())
}

/// Sets a file's permission bits durably.
pub fn set_mode(live: &std::path::Path, mode: u32) -> Result<()> {
    fs::set_permissions(live, fs::Permissions::from_mode(mode))
        .and_then(|()| File::open(live)?.sync_all())
        .map_err(Error::io(live))
}
