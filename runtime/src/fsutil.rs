//! Durable file-system primitives over [`crate::rootfs`] handles: fill a file created
//! beside its destination under a temporary name, fsync it, rename it into place and fsync
//! the directory; hash what a file holds, reading at most what is expected.
//!
//! Writing many files durably is batched the way `dpkg` does it: each file is written, its
//! writeback started at once ([`crate::sys::start_writeback`]), and handed to a [`Flusher`]
//! that fsyncs it on a worker thread while the next files are written; only when every
//! file of the step is fsynced are they renamed into place, and then every directory that
//! changed is fsynced once ([`DirSync`]). Durability is the same as fsyncing each file
//! before its rename: a rename never happens before its file's fsync returned, and no
//! commit point is reached before the directories' fsyncs returned.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;

use hotfix_schema::{Digest, RelPath};
use sha2::{Digest as _, Sha256};

use crate::rootfs::{self, Dir};

/// Prefix of the temporary files the runtime writes beside their destination.
pub const TMP_PREFIX: &str = ".hotfix-tmp.";

/// The temporary name used to write the file `name` in its own directory, so that the
/// rename is atomic: `.hotfix-tmp.NAME`, or, for a name too long to take the prefix
/// within the 255 bytes a file name may have, `.hotfix-tmp.~` and a hash of it.
pub fn temp_name(name: &str) -> String {
    if TMP_PREFIX.len() + name.len() <= 255 {
        format!("{TMP_PREFIX}{name}")
    } else {
        format!("{TMP_PREFIX}~{}", hotfix_schema::text::hex(&Sha256::digest(name.as_bytes())[..16]))
    }
}

/// The temporary name used to write `path` in one of its ancestors, when its own directory
/// cannot exist before the old tree is removed (a file that becomes a directory, or the
/// reverse): bounded in length and the same in every ancestor.
pub fn temp_name_for(path: &RelPath) -> String {
    let sha = Sha256::digest(path.as_str().as_bytes());
    format!("{TMP_PREFIX}{}", hotfix_schema::text::hex(&sha[..16]))
}

/// Directories whose entries changed (files renamed into them), each flushed once by
/// [`DirSync::flush`], named by their components below one base directory. Batching
/// matters: an install renames hundreds of files into a few directories. The caller
/// flushes before its next durability point (the pending record, the inventory commit); a
/// process crash never loses a completed rename, only a power loss before the flush can,
/// and nothing depends on those renames until then.
#[derive(Debug, Default)]
pub struct DirSync(BTreeSet<Vec<String>>);

impl DirSync {
    /// Remembers the directory `components` (below the base), whose entries changed.
    pub fn changed(&mut self, components: &[&str]) {
        self.0.insert(components.iter().map(|c| (*c).to_string()).collect());
    }

    /// Remembers the directory holding `path` (below the base).
    pub fn changed_in(&mut self, path: &RelPath) {
        let parts: Vec<&str> = path.components().collect();
        self.changed(&parts[..parts.len().saturating_sub(1)]);
    }

    /// Fsyncs every remembered directory once, several at a time (on a [`Flusher`]'s
    /// workers), reaching each from `base` without following links. A remembered
    /// directory that was removed since is skipped: its removal is an entry of its own
    /// parent, remembered too.
    pub fn flush(&mut self, base: &Dir) -> io::Result<()> {
        let dirs = std::mem::take(&mut self.0);
        let mut flusher = Flusher::new(if dirs.len() > 1 { DIR_FSYNC_THREADS } else { 0 });
        for dir in dirs {
            let found = match base.walk(dir.iter().map(String::as_str)) {
                Ok(found) => found,
                // Replaced by a file or a link since: not a directory of ours to flush.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => None,
                Err(e) => return Err(e),
            };
            if let Some(d) = found {
                let path = d.path().to_path_buf();
                let fd: std::os::fd::OwnedFd = d.into();
                flusher.push_synced(File::from(fd), path);
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

/// Copies `src` into the new, empty file `f` through `buf` and gives it permission bits
/// `mode`, without syncing; returns the file and the bytes written. The caller checks what
/// was written (a [`pkgtool::read::BlobReader`] checks size and hash as it is read) and
/// hands the file to a [`Flusher`].
pub fn fill(mut f: File, src: &mut dyn Read, mode: u32, buf: &mut [u8]) -> io::Result<(File, u64)> {
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
    rootfs::set_mode(&f, mode)?;
    Ok((f, size))
}

/// Copies at most `limit` bytes of the open file `from` into the new, empty file `f` in
/// the kernel (`io::copy` between files uses `copy_file_range`: a reflink where the file
/// system can share extents) and gives it permission bits `mode`, without syncing;
/// returns the file and the bytes copied.
pub fn copy_into(from: &mut File, mut f: File, limit: u64, mode: u32) -> io::Result<(File, u64)> {
    let size = io::copy(&mut from.take(limit), &mut f)?;
    rootfs::set_mode(&f, mode)?;
    Ok((f, size))
}

/// Workers of [`DirSync::flush`]: the fsync of a directory is one small write and a wait.
const DIR_FSYNC_THREADS: usize = 4;

/// SHA-256 and size of what `f` holds, reading at most `limit` bytes (a file longer than
/// that reports `limit` bytes and the hash of those: not what was expected either way).
pub fn hash_at_most(f: &mut File, limit: u64) -> io::Result<(Digest, u64)> {
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut r = f.take(limit);
    loop {
        let n = match r.read(&mut buf) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn flushed_files_are_complete_and_renamed_after_every_fsync() {
        for threads in [0, 1, 3] {
            let t = tempfile::tempdir().expect("tempdir");
            let dir = Dir::open(t.path()).expect("open");
            let mut flusher = Flusher::new(threads);
            let mut buf = vec![0u8; 7];
            let mut written = Vec::new();
            // More files than the queue holds, so that pushing waits for the workers.
            for n in 0..Flusher::QUEUE * 2 + 5 {
                let temp = temp_name(&format!("f{n}"));
                let body = format!("file {n} ").repeat(n + 1);
                let f = dir.create_new(&temp).expect("create");
                let (file, size) = fill(f, &mut body.as_bytes(), 0o640, &mut buf).expect("write");
                assert_eq!(size, body.len() as u64);
                flusher.push(file, dir.join(&temp));
                written.push((temp, format!("f{n}"), body));
            }
            flusher.finish().expect("every fsync succeeds");
            let mut dirs = DirSync::default();
            for (temp, dest, _) in &written {
                dir.rename(temp, &dir, dest).expect("rename");
                dirs.changed(&[]);
            }
            dirs.flush(&dir).expect("directory fsync");
            for (temp, dest, body) in &written {
                assert!(!t.path().join(temp).exists());
                assert_eq!(fs::read_to_string(t.path().join(dest)).expect("read"), *body);
                let mode = fs::metadata(t.path().join(dest)).expect("stat").permissions().mode();
                assert_eq!(mode & 0o777, 0o640);
            }
        }
    }

    #[test]
    fn a_flusher_dropped_early_waits_for_its_workers() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open(t.path()).expect("open");
        let mut flusher = Flusher::new(2);
        let f = dir.create_new("a").expect("create");
        let (file, _) = fill(f, &mut &b"abc"[..], 0o600, &mut [0u8; 2]).expect("write");
        flusher.push(file, dir.join("a"));
        drop(flusher);
        assert!(dir.remove_file("a").expect("nothing holds the file"));
    }

    #[test]
    fn dir_sync_skips_directories_removed_since_and_copies_keep_the_mode() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open(t.path()).expect("open");
        let (sub, created) = dir.create_sub("sub", 0o755).expect("mkdir");
        assert!(created);
        fs::write(t.path().join("src"), b"content").expect("write");
        let (mut src, _) = dir.open_file("src").expect("open").expect("there");
        let (file, n) = copy_into(&mut src, sub.create_new("copy").expect("create"), 100, 0o444).expect("copy");
        file.sync_all().expect("fsync");
        assert_eq!(n, 7);
        let mode = fs::metadata(t.path().join("sub/copy")).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o444);
        let (mut again, _) = sub.open_file("copy").expect("open").expect("there");
        assert_eq!(hash_at_most(&mut again, 3).expect("hash").1, 3, "reads at most the limit");
        assert!(sub.remove_file("copy").expect("remove"));
        assert!(!sub.remove_file("copy").expect("already gone"));
        assert!(dir.remove_dir("sub").expect("rmdir"));
        let mut dirs = DirSync::default();
        dirs.changed(&["sub"]);
        dirs.flush(&dir).expect("a removed directory is skipped");
    }
}
