//! Applying a transition to the live tree as one crash-safe transaction.
//!
//! Protocol ([`run`]):
//! 1. preflight: every path the plan writes or removes is checked before anything is
//!    written — a file that exists but is not in the inventory, or a symbolic link or file
//!    where a directory is needed, is a conflict and nothing changes;
//! 2. the pending record (every touched path with its old and new file, and the
//!    directories to create) is committed to the inventory;
//! 3. the plan is applied in `dpkg`'s order, so that a full or read-only disk strikes
//!    before anything old is gone: every new content is first written from the store
//!    beside its destination (created exclusively, never through a link) and fsynced;
//!    only then is each renamed over its destination, modes changed, obsolete files and
//!    emptied runtime-owned directories removed, and, last, the files that replace a
//!    directory or need one where a file was put in place; every changed directory is
//!    fsynced once. Files whose bytes and mode stay are never touched;
//! 4. the new inventory (packages, policy, files, directories) is committed and the pending
//!    record deleted in ONE SQLite transaction: the commit point.
//!
//! A pending record found later means the commit point was not reached: [`rollback`]
//! restores every touched path to its old content (also in the store) or removes it, so
//! the root is exactly the old state. An error during step 3 rolls back at once.
//!
//! Every path is reached through [`live::LiveTree`], from a handle on the root, never
//! through a symbolic link; a mode changes in place only on a regular file with one link.

pub mod live;
mod rollback;

use std::collections::BTreeSet;
use std::rc::Rc;

use hotfix_schema::{Name, RelPath};

pub use rollback::{RolledBack, rollback};

use crate::crash;
use crate::engine::{BranchPolicy, Installed, Plan, Put, Transition};
use crate::error::{Error, Result};
use crate::fsutil::{self, TMP_PREFIX};
use crate::inventory::{Commit, FileRec, Inventory, Pending, Touched};
use crate::layout::Layout;
use crate::oplog;
use crate::progress::{self, Progress};
use crate::rootfs::{Dir, Kind};
use crate::store::Store;
use live::{LiveTree, split};

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
    let mut removed_dirs = Vec::new();
    if !plan.is_empty() {
        let mut touched: Vec<Touched> = plan
            .put
            .iter()
            .map(|p| Touched {
                path: p.path.clone(),
                old: p.old.as_ref().map(FileRec::from),
                new: Some((&p.file).into()),
            })
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
        crash::step("record the pending transaction");
        inv.set_pending(&pending)?;
        // The record is in the inventory now: a rollback reads it back from there, so that
        // a change of many files does not hold it twice while it is applied.
        drop(pending);
        let owned_dirs =
            inv.owned_dirs(&plan.remove.iter().flat_map(|r| ancestors(&r.path)).collect::<BTreeSet<_>>())?;
        match apply(layout, store, plan, &created_dirs, &owned_dirs, progress) {
            Ok(dirs) => removed_dirs = dirs,
            Err(e) => return Err(undo(layout, inv, store, e)),
        }
    }
    let commit = Commit {
        add: change.add.as_ref().map(|p| (p, oplog::now())),
        remove: change.remove.clone(),
        policy: change.policy,
        put_files: plan.put.iter().chain(&plan.relabel).map(|p| (&p.path, &p.file)).collect(),
        remove_files: plan.remove.iter().map(|r| r.path.clone()).collect(),
        add_dirs: created_dirs,
        remove_dirs: removed_dirs,
    };
    crash::step("commit the inventory");
    let seq = match inv.commit(&commit) {
        Ok(seq) => seq,
        Err(e) if !plan.is_empty() => return Err(undo(layout, inv, store, e)),
        Err(e) => return Err(e),
    };
    Ok(Applied { written: plan.put.len(), removed: plan.remove.len(), relabelled: plan.relabel.len(), seq })
}

/// Rolls back after `e` and returns the error to report.
fn undo(layout: &Layout, inv: &mut Inventory, store: &Store, e: Error) -> Error {
    let undone = inv.pending().and_then(|pending| match pending {
        Some(pending) => rollback(layout, store, &pending).and_then(|_| inv.clear_pending()),
        None => Ok(()),
    });
    match undone {
        Ok(()) => e,
        Err(again) => Error::Refused(format!(
            "{e}; rolling back failed too ({again}); the interrupted change is recorded, run \
             `hotfix --root {} recover` once the cause is fixed",
            layout.shown()
        )),
    }
}

/// Checks every path the plan touches; returns the directories to create, parents first.
/// A file this change removes may give way to a directory, and a directory that holds
/// nothing but files this change removes may give way to a file; anything else in the way
/// — a file no package owns, a symbolic link, a special file — is a conflict and nothing
/// changes.
pub fn preflight(layout: &Layout, plan: &Plan) -> Result<Vec<RelPath>> {
    let tree = LiveTree::open(layout)?;
    let conflict = |path: &RelPath, why: String| Error::Conflict { path: tree.show(path), why };
    let removed: BTreeSet<&RelPath> = plan.remove.iter().map(|r| &r.path).collect();
    let is_removed = |p: &RelPath| removed.contains(p);
    let mut created: BTreeSet<RelPath> = BTreeSet::new();
    for p in &plan.put {
        let path = &p.path;
        if path.components().last().is_some_and(|n| n.starts_with(TMP_PREFIX)) {
            return Err(conflict(path, format!("file names starting with {TMP_PREFIX} are reserved for hotfix")));
        }
        let mut missing = false;
        for dir in ancestors(path) {
            if missing || created.contains(&dir) {
                missing = true;
                created.insert(dir);
                continue;
            }
            match tree.entry(&dir)? {
                Some(e) if e.kind == Kind::Dir => {}
                None => {
                    missing = true;
                    created.insert(dir);
                }
                // A file of this root that the change removes becomes a directory.
                Some(e) if e.kind == Kind::File && is_removed(&dir) => {
                    missing = true;
                    created.insert(dir);
                }
                Some(e) => {
                    return Err(conflict(&dir, format!("is {} where {path} needs a directory", e.kind.describe())));
                }
            }
        }
        if missing {
            continue;
        }
        match tree.entry(path)? {
            None => {}
            Some(e) if e.kind == Kind::File && p.old.is_some() => {}
            Some(e) if e.kind == Kind::File => {
                return Err(conflict(
                    path,
                    "exists but was not installed by hotfix (no installed package owns it); move it away, then \
                     try again"
                        .into(),
                ));
            }
            Some(e) if e.kind == Kind::Dir && tree.holds_only(path, &is_removed)? => {}
            Some(e) if e.kind == Kind::Dir => {
                return Err(conflict(
                    path,
                    "is a directory holding files that no package being replaced owns; move them away, then try \
                     again"
                        .into(),
                ));
            }
            Some(e) => {
                return Err(conflict(path, format!("is {}, not the file the inventory records", e.kind.describe())));
            }
        }
    }
    for r in &plan.remove {
        let mut gone = false;
        for dir in ancestors(&r.path) {
            match tree.entry(&dir)? {
                Some(e) if e.kind == Kind::Dir => {}
                None => {
                    gone = true;
                    break;
                }
                Some(e) => {
                    return Err(conflict(&dir, format!("is {} where {} needs a directory", e.kind.describe(), r.path)));
                }
            }
        }
        if gone {
            continue;
        }
        match tree.entry(&r.path)? {
            None => {}
            Some(e) if e.kind == Kind::File => {}
            Some(e) => {
                return Err(conflict(&r.path, format!("is {}, not the file the inventory records", e.kind.describe())));
            }
        }
    }
    Ok(created.into_iter().collect())
}

/// A new content written under a temporary name, waiting to be renamed into place.
struct Staged<'p> {
    put: &'p Put,
    /// The directory holding the temporary file.
    dir: Rc<Dir>,
    temp: String,
    /// Renamed last: its place is a directory now, or its directory is a file now.
    deferred: bool,
}

/// Step 3 (see the module documentation). Returns the directories removed.
fn apply(
    layout: &Layout,
    store: &Store,
    plan: &Plan,
    created_dirs: &[RelPath],
    owned_dirs: &BTreeSet<RelPath>,
    progress: &mut dyn Progress,
) -> Result<Vec<RelPath>> {
    let tree = LiveTree::open(layout)?;
    let total = (plan.remove.len() + plan.put.len()) as u64;
    let mut done = 0u64;
    let mut dirs = fsutil::DirSync::default();

    // Directories that are missing now are made first (rollback removes them); those
    // where a file of the old tree stands wait until it is gone.
    let mut blocked: BTreeSet<&RelPath> = BTreeSet::new();
    for dir in created_dirs {
        if ancestors(dir).iter().any(|a| blocked.contains(a)) {
            blocked.insert(dir);
            continue;
        }
        match tree.entry(dir)? {
            Some(e) if e.kind == Kind::Dir => {}
            None => {
                let (parts, name) = split(dir);
                let up = tree.dir(&parts)?.ok_or_else(|| vanished(&tree, dir))?;
                crash::step("create a directory");
                up.create_sub(name, 0o755).map_err(Error::io(&tree.show(dir)))?;
                dirs.changed_in(dir);
            }
            Some(_) => {
                blocked.insert(dir);
            }
        }
    }

    // Every new content is written and fsynced before anything old is touched.
    let mut flusher = fsutil::Flusher::new(crate::store::FSYNC_THREADS);
    let mut staged: Vec<Staged<'_>> = Vec::new();
    let mut chmods = Vec::new();
    let mut replaced_dirs: Vec<&RelPath> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for p in &plan.put {
        let path = &p.path;
        let (parts, name) = split(path);
        let in_blocked = ancestors(path).iter().any(|a| blocked.contains(a));
        let is_dir = !in_blocked && tree.entry(path)?.is_some_and(|e| e.kind == Kind::Dir);
        if p.mode_only()
            && !in_blocked
            && !is_dir
            && let Some(f) = tree.open_for_mode(path)?
        {
            chmods.push((p, f));
            continue;
        }
        let (dir, temp, deferred) = if in_blocked || is_dir {
            if is_dir {
                replaced_dirs.push(path);
            }
            // The deepest directory above it that stands now holds its temporary file.
            let mut n = parts.len();
            while n > 0 && (blocked.iter().any(|b| b.components().eq(parts[..n].iter().copied()))) {
                n -= 1;
            }
            let dir = tree.dir(&parts[..n])?.ok_or_else(|| vanished(&tree, path))?;
            (dir, fsutil::temp_name_for(path), true)
        } else {
            let dir = tree.dir(&parts)?.ok_or_else(|| vanished(&tree, path))?;
            (dir, fsutil::temp_name(name), false)
        };
        crash::step("write a new file");
        let file = store.write_copy(&p.file.sha256, p.file.size, p.file.mode.bits(), &dir, &temp, &mut buf)?;
        flusher.push(file, dir.join(&temp));
        staged.push(Staged { put: p, dir, temp, deferred });
        done += 1;
        progress.update(progress::APPLY, done, total);
    }
    flusher.finish().map_err(|(path, source)| Error::Io { path, source })?;

    for s in staged.iter().filter(|s| !s.deferred) {
        crash::step("file rename into place");
        let (_, name) = split(&s.put.path);
        s.dir.rename(&s.temp, &s.dir, name).map_err(Error::io(&tree.show(&s.put.path)))?;
        dirs.changed_in(&s.put.path);
    }
    for (p, f) in &chmods {
        crash::step("change a file's mode");
        crate::rootfs::set_mode(f, p.file.mode.bits())
            .and_then(|()| f.sync_all())
            .map_err(Error::io(&tree.show(&p.path)))?;
    }

    for r in &plan.remove {
        let (_, name) = split(&r.path);
        if let Some(dir) = tree.parent(&r.path)? {
            crash::step("remove a file");
            if dir.remove_file(name).map_err(Error::io(&tree.show(&r.path)))? {
                dirs.changed_in(&r.path);
            }
        }
        done += 1;
        progress.update(progress::APPLY, done, total);
    }
    // Directories a removal may have emptied, less those a new file needs: built from the
    // removals' ancestors (few), so that the puts' ancestors are never all held at once.
    let under_replaced =
        |d: &RelPath| replaced_dirs.iter().any(|r| *r == d || d.as_str().starts_with(&format!("{r}/")));
    let mut emptied: BTreeSet<RelPath> = BTreeSet::new();
    for r in &plan.remove {
        for d in ancestors(&r.path) {
            if owned_dirs.contains(&d) || under_replaced(&d) {
                emptied.insert(d);
            }
        }
    }
    if !emptied.is_empty() {
        for p in &plan.put {
            for d in ancestors(&p.path) {
                emptied.remove(&d);
            }
        }
    }
    emptied.extend(replaced_dirs.iter().map(|d| (*d).clone()));
    let mut removed_dirs = Vec::new();
    for dir in emptied.iter().rev() {
        let (parts, name) = split(dir);
        let Some(up) = tree.dir(&parts)? else { continue };
        let empty = match up.sub_if_any(name).map_err(Error::io(&tree.show(dir)))? {
            Some(d) => d.is_empty().map_err(Error::io(&tree.show(dir)))?,
            None => false,
        };
        if empty {
            crash::step("remove an emptied directory");
            up.remove_dir(name).map_err(Error::io(&tree.show(dir)))?;
            dirs.changed_in(dir);
            removed_dirs.push(dir.clone());
        }
    }
    tree.forget();

    // Last, what had to wait for the old tree to make way.
    for dir in created_dirs.iter().filter(|d| blocked.contains(d)) {
        let (parts, name) = split(dir);
        let up = tree.dir(&parts)?.ok_or_else(|| vanished(&tree, dir))?;
        crash::step("create a directory");
        up.create_sub(name, 0o755).map_err(Error::io(&tree.show(dir)))?;
        dirs.changed_in(dir);
    }
    for s in staged.iter().filter(|s| s.deferred) {
        crash::step("file rename into place");
        let (parts, name) = split(&s.put.path);
        let to = tree.dir(&parts)?.ok_or_else(|| vanished(&tree, &s.put.path))?;
        s.dir.rename(&s.temp, &to, name).map_err(Error::io(&tree.show(&s.put.path)))?;
        dirs.changed_in(&s.put.path);
        dirs.changed(&dir_parts(&s.dir, &tree));
    }
    dirs.flush(tree.root()).map_err(Error::io(tree.root().path()))?;
    Ok(removed_dirs)
}

/// The components below the root of a directory reached through the tree.
fn dir_parts<'d>(dir: &'d Dir, tree: &LiveTree) -> Vec<&'d str> {
    dir.path()
        .strip_prefix(tree.root().path())
        .ok()
        .map(|rel| rel.iter().filter_map(|c| c.to_str()).collect())
        .unwrap_or_default()
}

fn vanished(tree: &LiveTree, path: &RelPath) -> Error {
    Error::Conflict { path: tree.show(path), why: "its directory vanished during the change".into() }
}
