//! The files an active state puts under the root, and the minimal change between two such
//! sets: what to write, what to remove, and what to leave untouched.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use hotfix_schema::{Digest, Mode, Name, RelPath};

use super::inputs::Inputs;
use super::state::{ActiveState, StateError, active_state};

/// One file of an active variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveFile {
    /// The component that owns the path.
    pub component: Name,
    /// The package whose variant is active for that component.
    pub package: Name,
    /// SHA-256 of the content; the store is addressed by it.
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: Mode,
    /// Whether the variant says installing or removing it needs a restart.
    pub restart: bool,
}

impl ActiveFile {
    /// Whether `self` and `other` put the same bytes with the same mode at a path; the
    /// owner and the restart flag do not matter to the file.
    pub fn same_file(&self, other: &ActiveFile) -> bool {
        self.sha256 == other.sha256 && self.size == other.size && self.mode == other.mode
    }
}

/// Every file the active state puts under the root, by path. Fails if two components own
/// one path (possible only across packages, each of which is checked on its own).
///
/// Walking the components in order and their files in order, the first entry for a path
/// stands, and the first entry (in that walk) whose component differs from the standing
/// one is the error. The map is built in one pass from the sorted entries, which packs
/// its nodes full: inserting sorted keys one by one leaves them half empty (at 100,000
/// files, 18 MB instead of about 10).
pub fn active_files(state: &ActiveState) -> Result<BTreeMap<RelPath, ActiveFile>, StateError> {
    // Every entry with its position in the walk.
    let mut entries: Vec<(RelPath, ActiveFile, usize)> =
        Vec::with_capacity(state.components.values().map(|cs| cs.chosen.variant.files.len()).sum());
    for (component, cs) in &state.components {
        let v = &cs.chosen.variant;
        for f in &v.files {
            let file = ActiveFile {
                component: component.clone(),
                package: cs.chosen.package.clone(),
                sha256: f.sha256,
                size: f.size,
                mode: f.mode,
                restart: v.restart,
            };
            entries.push((f.path.clone(), file, entries.len()));
        }
    }
    // Stable: the entries of one path stay in walk order, the first one stands.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut conflict: Option<(usize, usize)> = None; // (walk position, standing entry)
    let mut stands = vec![false; entries.len()];
    let mut standing = 0;
    for (i, (path, file, at)) in entries.iter().enumerate() {
        if i > 0 && entries[standing].0 == *path {
            if entries[standing].1.component != file.component && conflict.is_none_or(|(c, _)| *at < c) {
                conflict = Some((*at, standing));
            }
        } else {
            standing = i;
            stands[i] = true;
        }
    }
    if let Some((at, first)) = conflict {
        let (path, second, _) = entries.iter().find(|e| e.2 == at).unwrap_or(&entries[first]);
        return Err(StateError::PathOwnedTwice {
            path: path.clone(),
            first: entries[first].1.component.clone(),
            second: second.component.clone(),
        });
    }
    Ok(entries.into_iter().zip(stands).filter(|(_, keep)| *keep).map(|((path, file, _), _)| (path, file)).collect())
}

/// A file to write (new content, or the same content with a new mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// Where.
    pub path: RelPath,
    /// What goes there.
    pub file: ActiveFile,
    /// What is there now, if anything (to back up and to restore on rollback).
    pub old: Option<ActiveFile>,
}

impl Put {
    /// Whether only the mode changes: the bytes on disk stay.
    pub fn mode_only(&self) -> bool {
        self.old.as_ref().is_some_and(|o| o.sha256 == self.file.sha256 && o.size == self.file.size)
    }
}

/// A file to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// Where.
    pub path: RelPath,
    /// What is there now (to back up and to restore on rollback).
    pub old: ActiveFile,
}

/// The change from one set of active files to another. Applying `put`, `remove` and
/// `relabel` to the old set gives the new set. Only `put` and `remove` touch the root's
/// files: a file whose bytes and mode stay is never rewritten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files to write, sorted by path.
    pub put: Vec<Put>,
    /// Files to remove, sorted by path.
    pub remove: Vec<Removal>,
    /// Files whose bytes and mode stay but whose record changes (another package's
    /// identical build became active, or the owner or restart flag changed): an inventory
    /// update only, never a write. Sorted by path.
    pub relabel: Vec<Put>,
    /// Files whose record stays exactly as it is.
    pub unchanged: usize,
    /// Whether a written or removed file belongs to a variant that needs a restart.
    pub restart: bool,
}

impl Plan {
    /// Whether no file under the root changes (the inventory may still need `relabel`).
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.remove.is_empty()
    }
}

/// One step of the merge of two sorted file sets.
enum Step<'a> {
    /// A path only in the old set.
    Old(&'a RelPath, &'a ActiveFile),
    /// A path only in the new set.
    New(&'a RelPath, &'a ActiveFile),
    /// A path in both.
    Both(&'a RelPath, &'a ActiveFile, &'a ActiveFile),
}

/// Walks `old` and `new` together in path order.
fn merge<'a>(
    old: &'a BTreeMap<RelPath, ActiveFile>,
    new: &'a BTreeMap<RelPath, ActiveFile>,
    mut each: impl FnMut(Step<'a>),
) {
    let mut olds = old.iter().peekable();
    let mut news = new.iter().peekable();
    loop {
        let order = match (olds.peek(), news.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((op, _)), Some((np, _))) => op.cmp(np),
        };
        match order {
            Ordering::Less => {
                if let Some((path, o)) = olds.next() {
                    each(Step::Old(path, o));
                }
            }
            Ordering::Greater => {
                if let Some((path, n)) = news.next() {
                    each(Step::New(path, n));
                }
            }
            Ordering::Equal => {
                if let (Some((path, o)), Some((_, n))) = (olds.next(), news.next()) {
                    each(Step::Both(path, o, n));
                }
            }
        }
    }
}

/// The minimal change from `old` to `new`. A first pass counts, so that each list is
/// allocated once at its size (a plan of 100,000 files is the largest thing an install
/// holds besides the manifest).
pub fn diff(old: &BTreeMap<RelPath, ActiveFile>, new: &BTreeMap<RelPath, ActiveFile>) -> Plan {
    let (mut puts, mut removes, mut relabels) = (0usize, 0usize, 0usize);
    merge(old, new, |step| match step {
        Step::Old(..) => removes += 1,
        Step::New(..) => puts += 1,
        Step::Both(_, o, n) if o == n => {}
        Step::Both(_, o, n) if o.same_file(n) => relabels += 1,
        Step::Both(..) => puts += 1,
    });
    let mut plan = Plan {
        put: Vec::with_capacity(puts),
        remove: Vec::with_capacity(removes),
        relabel: Vec::with_capacity(relabels),
        ..Plan::default()
    };
    merge(old, new, |step| match step {
        Step::Old(path, o) => {
            plan.restart |= o.restart;
            plan.remove.push(Removal { path: path.clone(), old: o.clone() });
        }
        Step::New(path, n) => {
            plan.restart |= n.restart;
            plan.put.push(Put { path: path.clone(), file: n.clone(), old: None });
        }
        Step::Both(_, o, n) if o == n => plan.unchanged += 1,
        Step::Both(path, o, n) if o.same_file(n) => {
            plan.relabel.push(Put { path: path.clone(), file: n.clone(), old: Some(o.clone()) });
        }
        Step::Both(path, o, n) => {
            plan.restart |= o.restart || n.restart;
            plan.put.push(Put { path: path.clone(), file: n.clone(), old: Some(o.clone()) });
        }
    });
    plan
}

/// Everything an install or uninstall needs to know: the active state and files before and
/// after, and the plan between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub before: ActiveState,
    /// The state after.
    pub after: ActiveState,
    /// The files before.
    pub before_files: BTreeMap<RelPath, ActiveFile>,
    /// The files after (the new inventory of live files).
    pub after_files: BTreeMap<RelPath, ActiveFile>,
    /// What to write and remove.
    pub plan: Plan,
}

impl Transition {
    /// Components whose branch or active variant changes, or that appear or disappear,
    /// sorted by name.
    pub fn changed_components(&self) -> Vec<Name> {
        let mut names: Vec<Name> = self.before.components.keys().chain(self.after.components.keys()).cloned().collect();
        names.sort();
        names.dedup();
        names.retain(|c| self.before.components.get(c) != self.after.components.get(c));
        names
    }
}

/// The transition from the state of `before` to the state of `after` (the same root with
/// one package added or removed, or its policy changed).
pub fn transition(before: &Inputs<'_>, after: &Inputs<'_>) -> Result<Transition, StateError> {
    let before_state = active_state(before)?;
    let after_state = active_state(after)?;
    let before_files = active_files(&before_state)?;
    let after_files = active_files(&after_state)?;
    let plan = diff(&before_files, &after_files);
    Ok(Transition { before: before_state, after: after_state, before_files, after_files, plan })
}
