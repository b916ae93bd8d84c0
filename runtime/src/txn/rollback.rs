//! Rolling an interrupted transaction back: every touched path gets its old content and
//! mode (from the store) or is removed if it was not the runtime's before, leftover
//! temporary files are deleted, and directories the transaction created are removed if
//! empty. Idempotent: running it twice, or after a crash inside it, gives the same root.

use std::fs;

use crate::error::{Error, Result};
use crate::fsutil::{self, Live};
use crate::inventory::Pending;
use crate::layout::Layout;
use crate::store::Store;

use super::{check_ancestors, set_mode};

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
    let mut done = RolledBack::default();
    for t in &pending.touched {
        check_ancestors(layout, &t.path)?;
        let live = layout.live(&t.path);
        let temp = fsutil::temp_beside(&live);
        fsutil::remove_temp(&temp).map_err(Error::io(&temp))?;
        let now = Live::of(&live).map_err(Error::io(&live))?;
        let Some(old) = &t.old else {
            if let Live::File { .. } = now {
                fsutil::remove_durably(&live).map_err(Error::io(&live))?;
                done.removed += 1;
            }
            continue;
        };
        match now {
            Live::File { mode } => {
                let (sha, size) = fsutil::hash_file(&live).map_err(Error::io(&live))?;
                if sha == old.sha256 && size == old.size {
                    if mode != old.mode.bits() {
                        set_mode(&live, old.mode.bits())?;
                        done.restored += 1;
                    }
                    continue;
                }
            }
            Live::Absent => {}
            other => {
                return Err(Error::Conflict {
                    path: live,
                    why: format!("is {} now; cannot restore the file there", other.describe()),
                });
            }
        }
        if let Some(parent) = live.parent() {
            fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        store.place(&old.sha256, old.size, old.mode.bits(), &live)?;
        done.restored += 1;
    }
    for dir in pending.created_dirs.iter().rev() {
        let live = layout.live(dir);
        if fsutil::is_empty_dir(&live).map_err(Error::io(&live))? {
            fs::remove_dir(&live).and_then(|()| fsutil::fsync_parent(&live)).map_err(Error::io(&live))?;
        }
    }
    Ok(done)
}
