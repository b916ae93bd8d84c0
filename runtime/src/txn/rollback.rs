//! Rolling an interrupted transaction back: first the temporary files it wrote are
//! deleted (on a full disk that frees the space the rest needs), then the files it added
//! are removed and the directories it created removed if empty, and last every touched
//! path gets its old content and mode (from the store). A path that cannot be restored
//! does not stop the others: each is reported, and the pending record stays so that
//! `recover` can finish once the cause is gone. Idempotent: running it twice, or after a
//! crash inside it, gives the same root. Every path is reached without following a link.

use std::fmt::Write as _;
use std::path::PathBuf;

use hotfix_schema::RelPath;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::inventory::Pending;
use crate::layout::Layout;
use crate::rootfs::Kind;
use crate::store::Store;

use super::live::{LiveTree, split};

/// What a rollback did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RolledBack {
    /// Files put back to their old content or mode.
    pub restored: usize,
    /// Files removed (they did not exist before).
    pub removed: usize,
}

/// Rolls `pending` back (see the module documentation).
pub fn rollback(layout: &Layout, store: &Store, pending: &Pending) -> Result<RolledBack> {
    let tree = LiveTree::open(layout)?;
    let mut done = RolledBack::default();
    let mut failed: Vec<String> = Vec::new();
    // Each error names its path.
    let mut note = |_: PathBuf, e: Error| failed.push(e.to_string());

    // 1. The temporary files, beside each path or (for a file that replaces a directory
    //    or needs one where a file was) in one of its directories.
    for t in &pending.touched {
        if let Err(e) = remove_temps(&tree, &t.path) {
            note(tree.show(&t.path), e);
        }
    }
    tree.forget();

    // 2. The files the change added.
    for t in pending.touched.iter().filter(|t| t.old.is_none()) {
        let (_, name) = split(&t.path);
        let removed = tree.entry(&t.path).and_then(|e| match (e, tree.parent(&t.path)?) {
            (Some(e), Some(dir)) if e.kind == Kind::File => {
                dir.remove_file(name).and_then(|r| dir.sync().map(|()| r)).map_err(Error::io(&tree.show(&t.path)))
            }
            _ => Ok(false),
        });
        match removed {
            Ok(true) => done.removed += 1,
            // A directory above it is a file again (or a link): the new file is not there.
            Ok(false) | Err(Error::Conflict { .. }) => {}
            Err(e) => note(tree.show(&t.path), e),
        }
    }

    // 3. The directories it created, deepest first, if empty.
    for dir in pending.created_dirs.iter().rev() {
        if let Err(e) = remove_if_empty(&tree, dir) {
            note(tree.show(dir), e);
        }
    }
    tree.forget();

    // 4. Every old file, with its content and mode.
    for t in &pending.touched {
        let Some(old) = &t.old else { continue };
        let (sha, size, mode) = (&old.sha256, old.size, old.mode.bits());
        let restored = tree.entry(&t.path).and_then(|now| match now {
            Some(e) if e.kind == Kind::File => match tree.hash(&t.path, size.saturating_add(1))? {
                Some((found, n)) if found == *sha && n == size => {
                    if e.mode == mode && e.nlink == 1 {
                        Ok(false)
                    } else {
                        tree.set_mode(store, &t.path, sha, size, mode).map(|()| true)
                    }
                }
                _ => tree.restore(store, &t.path, sha, size, mode).map(|()| true),
            },
            None => tree.restore(store, &t.path, sha, size, mode).map(|()| true),
            Some(e) => Err(Error::Conflict {
                path: tree.show(&t.path),
                why: format!("is {} now; cannot restore the file there", e.kind.describe()),
            }),
        });
        match restored {
            Ok(true) => done.restored += 1,
            Ok(false) => {}
            Err(e) => note(tree.show(&t.path), e),
        }
    }
    if failed.is_empty() {
        return Ok(done);
    }
    let mut why = format!("{} paths could not be restored:", failed.len());
    for e in &failed {
        let _ = write!(why, " {e};");
    }
    Err(Error::Refused(why.trim_end_matches(';').to_string()))
}

/// Removes the temporary files a transaction may have written for `path`.
fn remove_temps(tree: &LiveTree, path: &RelPath) -> Result<()> {
    let (parts, name) = split(path);
    if let Some(dir) = tree.parent(path).unwrap_or(None) {
        dir.remove_file(&fsutil::temp_name(name)).map_err(Error::io(&tree.show(path)))?;
    }
    let hashed = fsutil::temp_name_for(path);
    for n in 0..=parts.len() {
        match tree.dir(&parts[..n]) {
            Ok(Some(dir)) => {
                dir.remove_file(&hashed).map_err(Error::io(&dir.join(&hashed)))?;
            }
            // Missing, or not a directory: nothing of ours below it.
            Ok(None) | Err(_) => break,
        }
    }
    Ok(())
}

/// Removes the directory `dir` if it is empty.
fn remove_if_empty(tree: &LiveTree, dir: &RelPath) -> Result<()> {
    let (parts, name) = split(dir);
    let Ok(Some(up)) = tree.dir(&parts) else { return Ok(()) };
    // Not there, or not a directory (a file of the old tree is back): nothing to remove.
    if up.entry(name).map_err(Error::io(&tree.show(dir)))?.is_none_or(|e| e.kind != Kind::Dir) {
        return Ok(());
    }
    let Some(d) = up.sub_if_any(name).map_err(Error::io(&tree.show(dir)))? else { return Ok(()) };
    if d.is_empty().map_err(Error::io(&tree.show(dir)))? {
        up.remove_dir(name).and_then(|_| up.sync()).map_err(Error::io(&tree.show(dir)))?;
    }
    Ok(())
}
