//! One servicing operation at a time per root: an exclusive OS lock on
//! `ROOT/.servicing/lock`, whose content names the holder (pid and command) so that a
//! second process can say who is busy. The OS drops the lock when the holder exits, even
//! by a crash.

use std::fs::{File, TryLockError};
use std::io::{Read, Write};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::rootfs::Dir;

/// The held lock; dropping it releases the root.
#[derive(Debug)]
pub struct RootLock {
    _file: File,
}

/// Takes the root's lock for `what` (the command, for the holder's note). If another
/// process holds it: waits when `wait`, else fails with [`Error::Busy`].
pub fn acquire(layout: &Layout, what: &str, wait: bool) -> Result<RootLock> {
    let path = layout.lock();
    let servicing = layout.servicing_dir_required()?;
    // Never through a link or into a file with other names: anything but the runtime's
    // own plain file is replaced (see `rootfs::Dir::open_own`).
    let mut file = match servicing.open_own("lock", false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
            return Err(Error::Refused(format!(
                "{} is on a read-only file system: `hotfix {what}` changes the root and cannot run there \
                 (status, list, query and check can); mount it writable first",
                layout.shown()
            )));
        }
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) if wait => file.lock().map_err(Error::io(&path))?,
        Err(TryLockError::WouldBlock) => {
            return Err(Error::Busy { root: layout.root.clone(), lock: path.clone(), holder: holder(&servicing) });
        }
        Err(TryLockError::Error(e)) => return Err(Error::Io { path, source: e }),
    }
    // The holder's note is for messages only: on a full disk, `recover` must still run.
    let note = format!("pid {}: hotfix {what}\n", std::process::id());
    let _ = file.set_len(0).and_then(|()| file.write_all(note.as_bytes()));
    Ok(RootLock { _file: file })
}

/// Takes the lock if it is free, without waiting.
pub fn try_acquire(layout: &Layout, what: &str) -> Result<Option<RootLock>> {
    match acquire(layout, what, false) {
        Ok(l) => Ok(Some(l)),
        Err(Error::Busy { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the lock file says about its holder (at most 512 bytes of it, never through a
/// link).
fn holder(servicing: &Dir) -> String {
    let mut text = String::new();
    let read = match servicing.open_file("lock") {
        Ok(Some((f, _))) => f.take(512).read_to_string(&mut text).is_ok(),
        _ => false,
    };
    if read && !text.trim().is_empty() { format!("held by {}", text.trim()) } else { "holder unknown".to_string() }
}
