//! Durable file-system primitives: write a file beside its destination under a temporary
//! name, hash it as it is written, fsync it, rename it into place and fsync the directory;
//! remove a file durably; and look at what a live path holds.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.0.insert(dir.to_path_buf());
        }
        Ok(())
    }

    /// Fsyncs every remembered directory once.
    pub fn flush(&mut self) -> io::Result<()> {
        for dir in std::mem::take(&mut self.0) {
            fsync_dir(&dir)?;
        }
        Ok(())
    }
}

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
