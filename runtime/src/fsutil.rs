//! Durable file-system primitives: write a file beside its destination under a temporary
//! name, hash it as it is written, fsync it, rename it into place and fsync the directory;
//! remove a file durably; and look at what a live path holds.
//!
//! Writing many files durably is batched the way `dpkg` does it: each file is written, its
//! writeback started at once ([`crate::sys::start_writeback`]), and handed to a [`Flusher`]
//! that fsyncs it on a worker thread while the next files are written; only when every
//! file of the step is fsynced are they renamed into place, and then every directory that
//! changed is fsynced once ([`DirSync`]). Durability is the same as fsyncing each file
//! before its rename: a rename never happens before its file's fsync returned, and no
//! commit point is reached before the directories' fsyncs returned.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;

use hotfix_schema::Digest;
use sha2::{Digest as _, Sha256};

/// Prefix of the temporary files the runtime writes beside their destination.
pub const TMP_PREFIX: &str = ".hotfix-tmp.";

/// The temporary name used to write `dest`: same directory, so the rename is atomic.
pub fn temp_beside(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!("{TMP_PREFIX}{name}"))
}

/// Directories whose entries changed (files renamed into them), each flushed once by
/// [`DirSync::flush`]. Batching matters: an install renames hundreds of files into a few
/// directories. The caller flushes before its next durability point (the pending record,
/// the inventory commit); a process crash never loses a completed rename, only a power
/// loss before the flush can, and nothing depends on those renames until then.
#[derive(Debug, Default)]
pub struct DirSync(std::collections::BTreeSet<PathBuf>);

impl DirSync {
    /// Renames `temp` to `dest` and remembers `dest`'s directory.
    pub fn rename(&mut self, temp: &Path, dest: &Path) -> io::Result<()> {
        fs::rename(temp, dest)?;
        self.changed_in(dest);
        Ok(())
    }

    /// Remembers the directory holding `path`, whose entry was created or removed.
    pub fn changed_in(&mut self, path: &Path) {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.0.insert(dir.to_path_buf());
        }
    }

    /// Removes the file at `path` and remembers its directory; `false` if it was not there.
    pub fn remove_file(&mut self, path: &Path) -> io::Result<bool> {
        match fs::remove_file(path) {
            Ok(()) => {
                self.changed_in(path);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fsyncs every remembered directory once, several at a time (on a [`Flusher`]'s
    /// workers). A remembered directory that was removed since is skipped: its removal is
    /// an entry of its own parent, remembered too.
    pub fn flush(&mut self) -> io::Result<()> {
        let dirs = std::mem::take(&mut self.0);
        let mut flusher = Flusher::new(if dirs.len() > 1 { DIR_FSYNC_THREADS } else { 0 });
        for dir in dirs {
            match File::open(&dir) {
                Ok(f) => flusher.push_synced(f, dir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        flusher.finish().map_err(|(_, e)| e)
    }
}

/// Fsyncs files on worker threads while the caller writes the next ones (see the module
/// documentation). [`Flusher::finish`] waits for every fsync and returns the first error;
/// dropping a `Flusher` also waits, so that no file is still being synced when the caller
/// cleans up after an error. At most [`Flusher::QUEUE`] files wait open at a time.
pub struct Flusher {
    queue: Option<mpsc::SyncSender<(File, PathBuf)>>,
    workers: Vec<thread::JoinHandle<Option<(PathBuf, io::Error)>>>,
    failed: Option<(PathBuf, io::Error)>,
}

impl Flusher {
    /// Files queued for fsync at most: bounds the open file descriptors.
    pub const QUEUE: usize = 64;

    /// A flusher with `threads` workers; with none (or if no thread can be started), each
    /// file is fsynced by [`Flusher::push`] itself.
    pub fn new(threads: usize) -> Flusher {
        let (tx, rx) = mpsc::sync_channel::<(File, PathBuf)>(Self::QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for n in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = thread::Builder::new().name(format!("fsync-{n}")).spawn(move || {
                let mut first = None;
                loop {
                    let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((file, path)) = job else { break };
                    if let Err(e) = file.sync_all()
                        && first.is_none()
                    {
                        first = Some((path, e));
                    }
                }
                first
            });
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(_) => break,
            }
        }
        let queue = if workers.is_empty() { None } else { Some(tx) };
        Flusher { queue, workers, failed: None }
    }

    /// Starts `file`'s writeback and queues it for fsync (`path` names it in errors).
    pub fn push(&mut self, file: File, path: PathBuf) {
        crate::sys::start_writeback(&file);
        self.push_synced(file, path);
    }

    /// Queues `file` for fsync without starting its writeback first (a directory).
    fn push_synced(&mut self, file: File, path: PathBuf) {
        let job = match &self.queue {
            Some(queue) => match queue.send((file, path)) {
                Ok(()) => return,
                // Every worker is gone (it cannot happen short of a panic): sync here.
                Err(mpsc::SendError(job)) => job,
            },
            None => (file, path),
        };
        if let Err(e) = job.0.sync_all()
            && self.failed.is_none()
        {
            self.failed = Some((job.1, e));
        }
    }

    /// Waits until every queued file is fsynced; the first failure, with its file.
    pub fn finish(mut self) -> Result<(), (PathBuf, io::Error)> {
        self.join();
        match self.failed.take() {
            Some(failed) => Err(failed),
            None => Ok(()),
        }
    }

    fn join(&mut self) {
        self.queue = None;
        for worker in self.workers.drain(..) {
            let failed = worker.join().unwrap_or_else(|_| {
                Some((PathBuf::from("(fsync worker)"), io::Error::other("the fsync worker panicked")))
            });
            if self.failed.is_none() {
                self.failed = failed;
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.join();
    }
}

/// Creates (or truncates) `temp` with permission bits `mode` and copies `src` into it
/// through `buf`, without syncing; returns the open file and the bytes written. The
/// caller checks what was written (a [`pkgtool::read::BlobReader`] checks size and hash
/// as it is read) and hands the file to a [`Flusher`].
pub fn write_unsynced(temp: &Path, src: &mut dyn Read, mode: u32, buf: &mut [u8]) -> io::Result<(File, u64)> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(temp)?;
    let mut size = 0u64;
    loop {
        let n = match src.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f.write_all(&buf[..n])?;
        size += n as u64;
    }
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok((f, size))
}

/// Copies the open file `from` to `temp` (created or truncated) with permission bits
/// `mode` in the kernel (`io::copy` between files uses `copy_file_range`: a reflink where
/// the file system can share extents), without syncing; returns the open file and the
/// bytes copied.
pub fn copy_unsynced(from: &mut File, temp: &Path, mode: u32) -> io::Result<(File, u64)> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(temp)?;
    let size = io::copy(from, &mut f)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok((f, size))
}

/// Workers of [`DirSync::flush`]: the fsync of a directory is one small write and a wait.
const DIR_FSYNC_THREADS: usize = 4;

/// Flushes a directory's entries (a rename or removal in it) to disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs the directory holding `path`.
pub fn fsync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsync_dir(p),
        _ => Ok(()),
    }
}

/// Writes everything `src` yields to `temp` (created or truncated) with permission bits
/// `mode`, fsyncs it, and returns the SHA-256 and size of what was written.
pub fn write_temp(temp: &Path, src: &mut dyn Read, mode: u32) -> io::Result<(Digest, u64)> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(temp)?;
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        f.write_all(&buf[..n])?;
        size += n as u64;
    }
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.sync_all()?;
    Ok((Digest(sha.finalize().into()), size))
}

/// Renames `temp` over `dest` and fsyncs the directory.
pub fn rename_durably(temp: &Path, dest: &Path) -> io::Result<()> {
    fs::rename(temp, dest)?;
    fsync_parent(dest)
}

/// Removes the file at `path` and fsyncs its directory; `false` if it was not there.
pub fn remove_durably(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => fsync_parent(path).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes `temp` if it is there (a leftover of an interrupted write).
pub fn remove_temp(temp: &Path) -> io::Result<()> {
    match fs::remove_file(temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// SHA-256 and size of a file's content.
pub fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut f = File::open(path)?;
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Digest(sha.finalize().into()), size))
}

/// What a live path holds, without following a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    /// Nothing.
    Absent,
    /// A regular file with these permission bits.
    File {
        /// Permission bits.
        mode: u32,
    },
    /// A directory.
    Dir,
    /// A symbolic link, device, socket or pipe.
    Other,
}

impl Live {
    /// Looks at `path`.
    pub fn of(path: &Path) -> io::Result<Live> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => Ok(Live::File { mode: m.permissions().mode() & 0o777 }),
            Ok(m) if m.file_type().is_dir() => Ok(Live::Dir),
            Ok(_) => Ok(Live::Other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Live::Absent),
            Err(e) => Err(e),
        }
    }

    /// A word for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Live::Absent => "nothing",
            Live::File { .. } => "a file",
            Live::Dir => "a directory",
            Live::Other => "a symbolic link or special file",
        }
    }
}

/// Whether `dir` is an empty directory.
pub fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hotfix-fsutil-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn flushed_files_are_complete_and_renamed_after_every_fsync() {
        for threads in [0, 1, 3] {
            let dir = scratch(&format!("flush{threads}"));
            let mut flusher = Flusher::new(threads);
            let mut buf = vec![0u8; 7];
            let mut written = Vec::new();
            // More files than the queue holds, so that pushing waits for the workers.
            for n in 0..Flusher::QUEUE * 2 + 5 {
                let temp = dir.join(format!("{TMP_PREFIX}{n}"));
                let body = format!("file {n} ").repeat(n + 1);
                let (file, size) = write_unsynced(&temp, &mut body.as_bytes(), 0o640, &mut buf).expect("write");
                assert_eq!(size, body.len() as u64);
                flusher.push(file, temp.clone());
                written.push((temp, dir.join(format!("f{n}")), body));
            }
            flusher.finish().expect("every fsync succeeds");
            let mut dirs = DirSync::default();
            for (temp, dest, _) in &written {
                dirs.rename(temp, dest).expect("rename");
            }
            dirs.flush().expect("directory fsync");
            for (temp, dest, body) in &written {
                assert!(!temp.exists());
                assert_eq!(fs::read_to_string(dest).expect("read"), *body);
                assert_eq!(fs::metadata(dest).expect("stat").permissions().mode() & 0o777, 0o640);
            }
            fs::remove_dir_all(&dir).expect("clean up");
        }
    }

    #[test]
    fn a_flusher_dropped_early_waits_for_its_workers() {
        let dir = scratch("drop");
        let mut flusher = Flusher::new(2);
        let temp = dir.join("a");
        let (file, _) = write_unsynced(&temp, &mut &b"abc"[..], 0o600, &mut [0u8; 2]).expect("write");
        flusher.push(file, temp.clone());
        drop(flusher);
        fs::remove_file(&temp).expect("nothing holds the file");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn dir_sync_skips_directories_removed_since_and_copies_keep_the_mode() {
        let dir = scratch("dirsync");
        let sub = dir.join("sub");
        fs::create_dir(&sub).expect("mkdir");
        let src = dir.join("src");
        fs::write(&src, b"content").expect("write");
        let mut dirs = DirSync::default();
        let (file, n) = copy_unsynced(&mut File::open(&src).expect("open"), &sub.join("copy"), 0o444).expect("copy");
        file.sync_all().expect("fsync");
        assert_eq!(n, 7);
        assert_eq!(fs::metadata(sub.join("copy")).expect("stat").permissions().mode() & 0o777, 0o444);
        assert!(dirs.remove_file(&sub.join("copy")).expect("remove"));
        assert!(!dirs.remove_file(&sub.join("copy")).expect("already gone"));
        fs::remove_dir(&sub).expect("rmdir");
        dirs.changed_in(&sub);
        dirs.flush().expect("a removed directory is skipped");
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
