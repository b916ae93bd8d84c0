//! One servicing operation at a time per root: an exclusive OS lock on
//! `ROOT/.servicing/lock`, whose content names the holder (pid and command) so that a
//! second process can say who is busy. The OS drops the lock when the holder exits, even
//! by a crash.
//!
//! The note is only a hint: it outlives its writer, and a lock taken by anything else
//! (`flock(1)`, an older build) leaves the last note in place. So the busy message asks
//! the kernel who holds the lock (`/proc/locks`, matched by device and inode) and trusts
//! the note only when its pid is that holder; otherwise it names the holder's pid and
//! command line, or says the holder is unknown.

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
            return Err(Error::Busy {
                root: layout.root.clone(),
                lock: path.clone(),
                holder: holder(&servicing, &file),
            });
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

/// Who holds the lock on `file`: the note when the kernel's holder is the pid it names,
/// else the kernel's holder with its command line, else "holder unknown".
fn holder(servicing: &Dir, file: &File) -> String {
    let Some(pid) = kernel_holder(file) else {
        return "holder unknown".to_string();
    };
    let note = note(servicing);
    if let Some(note) = &note
        && note_pid(note) == Some(pid)
    {
        return format!("held by {note}");
    }
    match command_line(pid) {
        Some(cmd) => format!("held by pid {pid}: {cmd}"),
        None => format!("held by pid {pid}"),
    }
}

/// What the lock file says about its holder (at most 512 bytes of it, never through a
/// link), trimmed; `None` when empty or unreadable.
fn note(servicing: &Dir) -> Option<String> {
    let mut text = String::new();
    let (f, _) = servicing.open_file("lock").ok()??;
    f.take(512).read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The pid a note names (`pid 123: hotfix install …`).
fn note_pid(note: &str) -> Option<u32> {
    note.strip_prefix("pid ")?.split(':').next()?.trim().parse().ok()
}

/// The pid holding a lock on `file`'s inode, from `/proc/locks` (Linux); `None` when it
/// cannot be told. Waiters (`->` lines) do not hold it.
fn kernel_holder(file: &File) -> Option<u32> {
    let st = rustix::fs::fstat(file).ok()?;
    let dev = st.st_dev;
    let want = (rustix::fs::major(dev), rustix::fs::minor(dev), st.st_ino);
    let mut table = String::new();
    File::open("/proc/locks").ok()?.take(1 << 20).read_to_string(&mut table).ok()?;
    holder_in(&table, want)
}

/// The holder of the lock on (major, minor, inode) in a `/proc/locks` table.
fn holder_in(table: &str, (major, minor, ino): (u32, u32, u64)) -> Option<u32> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"->") {
            return None;
        }
        // `1: FLOCK  ADVISORY  WRITE 14666 fe:00:5308802 0 EOF`
        let pid: u32 = fields.get(4)?.parse().ok()?;
        let mut id = fields.get(5)?.split(':');
        let ma = u32::from_str_radix(id.next()?, 16).ok()?;
        let mi = u32::from_str_radix(id.next()?, 16).ok()?;
        let i: u64 = id.next()?.parse().ok()?;
        (ma == major && mi == minor && i == ino).then_some(pid)
    })
}

/// A process's command line (at most 512 bytes), arguments joined by spaces.
fn command_line(pid: u32) -> Option<String> {
    let mut raw = Vec::new();
    File::open(format!("/proc/{pid}/cmdline")).ok()?.take(512).read_to_end(&mut raw).ok()?;
    let words: Vec<String> =
        raw.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::{holder_in, note_pid};

    #[test]
    fn proc_locks_lines_are_matched_by_device_and_inode_and_waiters_skipped() {
        let table = "1: FLOCK  ADVISORY  WRITE 14666 fe:00:5308802 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 999 fe:01:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 15106 fe:01:77 0 EOF\n";
        assert_eq!(holder_in(table, (0xfe, 0, 5_308_802)), Some(14666));
        assert_eq!(holder_in(table, (0xfe, 1, 77)), Some(15106));
        assert_eq!(holder_in(table, (0xfe, 1, 78)), None);
        assert_eq!(note_pid("pid 42: hotfix install KB4"), Some(42));
        assert_eq!(note_pid("garbage"), None);
    }
}
