//! The one way the runtime reaches anything under a root: directory handles opened without
//! following symbolic links, and every create, open, rename, remove and mode change done
//! relative to such a handle.
//!
//! A root is hostile ground: whoever can write into an application directory may have
//! planted a symbolic link, a FIFO, a device or a hard link where the runtime expects its
//! own file (README, "What the runtime trusts in a root"). So:
//!
//! * the root directory itself is opened by the path the administrator gave (a link in
//!   that path is the administrator's own choice); every name below it is resolved one
//!   component at a time with `O_NOFOLLOW | O_DIRECTORY`, so a link anywhere below the
//!   root is an error, never a detour;
//! * a file the runtime writes is created with `O_CREAT | O_EXCL | O_NOFOLLOW` after a
//!   stale entry of that name was removed by name (`unlinkat` removes a link, never its
//!   target); a racing attacker who plants a new link in between makes the create fail;
//! * a file the runtime reads is opened with `O_NOFOLLOW | O_NONBLOCK` and refused unless
//!   `fstat` says it is a regular file, so a FIFO cannot block it and a device cannot
//!   feed it; callers read at most the size they expect;
//! * a mode change goes through the open file (`fchmod`) and only when the file is a
//!   regular file with one link: anything else is replaced by a fresh copy instead, so a
//!   hard link to a file outside the root is never modified.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

/// An open directory, reached without following a link (see the module documentation),
/// with its path for messages.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a name in a directory is, as `lstat` says (never following a link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its type.
    pub kind: Kind,
    /// Its permission bits.
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its hard-link count.
    pub nlink: u64,
}

/// The type of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Link,
    /// A FIFO, socket or device.
    Special,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        match t {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Link,
            _ => Kind::Special,
        }
    }

    /// A word for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a file",
            Kind::Dir => "a directory",
            Kind::Link => "a symbolic link",
            Kind::Special => "a FIFO, socket or device",
        }
    }
}

impl Entry {
    fn of(st: &rfs::Stat) -> Entry {
        Entry {
            kind: Kind::of(FileType::from_raw_mode(st.st_mode)),
            mode: st.st_mode & 0o7777,
            size: u64::try_from(st.st_size).unwrap_or(0),
            nlink: st.st_nlink,
        }
    }

    /// A regular file with no other name: the only kind of file the runtime modifies in
    /// place (its mode); anything else is replaced.
    pub fn is_plain_file(&self) -> bool {
        self.kind == Kind::File && self.nlink == 1
    }
}

/// The error for a name that is not what the runtime needs there.
fn not_a(what: &str, found: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("is {found}, not {what} (refusing to follow or use it)"))
}

fn os(name: &str) -> &OsStr {
    OsStr::new(name)
}

/// Converts a rustix error into the standard one, keeping `ELOOP`'s meaning explicit: the
/// path names a symbolic link.
fn std_err(e: rustix::io::Errno) -> io::Error {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
        io::Error::new(io::ErrorKind::InvalidInput, "is a symbolic link or not a directory (refusing to follow it)")
    } else {
        io::Error::from(e)
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC).union(OFlags::NOFOLLOW);

impl Dir {
    /// Opens the directory at `path` as named by the administrator (the root, or a folder
    /// given on the command line): a link in `path` itself is followed.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rfs::openat(rfs::CWD, path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Dir { fd, path: path.to_path_buf() })
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the subdirectory `name`; a link, a file or anything else there is an error.
    pub fn sub(&self, name: &str) -> io::Result<Dir> {
        let fd = rfs::openat(&self.fd, os(name), DIR_FLAGS, Mode::empty()).map_err(std_err)?;
        Ok(Dir { fd, path: self.join(name) })
    }

    /// Opens the subdirectory `name` if it is there: `None` if nothing is.
    pub fn sub_if_any(&self, name: &str) -> io::Result<Option<Dir>> {
        match self.sub(name) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the directory `components` below this one, one component at a time; `None`
    /// if one of them is missing.
    pub fn walk<'a>(&self, components: impl IntoIterator<Item = &'a str>) -> io::Result<Option<Dir>> {
        let mut dir = self.try_clone()?;
        for c in components {
            match dir.sub_if_any(c)? {
                Some(d) => dir = d,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir { fd: self.fd.try_clone()?, path: self.path.clone() })
    }

    /// Creates the subdirectory `name` with permission bits `mode` (or finds it there) and
    /// opens it; `true` when it was created.
    pub fn create_sub(&self, name: &str, mode: u32) -> io::Result<(Dir, bool)> {
        match rfs::mkdirat(&self.fd, os(name), Mode::from_raw_mode(mode)) {
            Ok(()) => Ok((self.sub(name)?, true)),
            Err(rustix::io::Errno::EXIST) => Ok((self.sub(name)?, false)),
            Err(e) => Err(e.into()),
        }
    }

    /// What `name` is, without following it; `None` if nothing is there.
    pub fn entry(&self, name: &str) -> io::Result<Option<Entry>> {
        match rfs::statat(&self.fd, os(name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Entry::of(&st))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `name` as a new, empty file (permission bits 0600) open for writing, never
    /// through a link: a stale entry of that name (a leftover, or a link someone planted)
    /// is removed by name first, and the file is created exclusively.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, os(name), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::EXIST) => {
                self.remove_file(name)?;
                rfs::openat(&self.fd, os(name), flags, Mode::from_raw_mode(0o600))?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(File::from(fd))
    }

    /// Opens the regular file `name` for reading, never through a link and without
    /// blocking on a FIFO: anything but a regular file is an error. `None` if nothing is
    /// there.
    pub fn open_file(&self, name: &str) -> io::Result<Option<(File, Entry)>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, os(name), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => return Err(not_a("a regular file", "a symbolic link")),
            Err(e) => return Err(e.into()),
        };
        let entry = Entry::of(&rfs::fstat(&fd)?);
        if entry.kind != Kind::File {
            return Err(not_a("a regular file", entry.kind.describe()));
        }
        // O_NONBLOCK stays: it changes nothing for a regular file.
        Ok(Some((File::from(fd), entry)))
    }

    /// Opens (creating if needed, with permission bits 0600) the runtime's own file `name`
    /// for reading and writing, or appending when `append`. If `name` is a link, a special
    /// file or a file with other names, it is not the runtime's: it is removed by name and
    /// a fresh file is created in its place.
    pub fn open_own(&self, name: &str, append: bool) -> io::Result<File> {
        let access = if append { OFlags::WRONLY | OFlags::APPEND } else { OFlags::RDWR };
        let flags = access | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        if let Ok(fd) = rfs::openat(&self.fd, os(name), flags, Mode::from_raw_mode(0o600))
            && Entry::of(&rfs::fstat(&fd)?).is_plain_file()
        {
            rfs::fcntl_setfl(&fd, if append { OFlags::APPEND } else { OFlags::empty() })?;
            return Ok(File::from(fd));
        }
        self.remove_file(name)?;
        let flags = access | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(rfs::openat(&self.fd, os(name), flags, Mode::from_raw_mode(0o600))?))
    }

    /// Removes the file (or link, or special file) `name`; `false` if nothing was there.
    /// A directory there is an error.
    pub fn remove_file(&self, name: &str) -> io::Result<bool> {
        match rfs::unlinkat(&self.fd, os(name), AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(rustix::io::Errno::ISDIR) => Err(not_a("a file", "a directory")),
            // A read-only file system refuses before it looks: nothing there is no error.
            Err(rustix::io::Errno::ROFS) if self.entry(name)?.is_none() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the empty directory `name`; `false` if nothing was there.
    pub fn remove_dir(&self, name: &str) -> io::Result<bool> {
        match rfs::unlinkat(&self.fd, os(name), AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(rustix::io::Errno::ROFS) if self.entry(name)?.is_none() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames `from` in this directory to `to` in `to_dir` (on the same file system),
    /// replacing what `to` names — a link there is replaced, never followed.
    pub fn rename(&self, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
        rfs::renameat(&self.fd, os(from), &to_dir.fd, os(to))?;
        Ok(())
    }

    /// Whether the directory is on a file system mounted read-only.
    pub fn read_only(&self) -> io::Result<bool> {
        Ok(rfs::fstatvfs(&self.fd)?.f_flag.contains(rfs::StatVfsMountFlags::RDONLY))
    }

    /// Flushes the directory's entries to disk.
    pub fn sync(&self) -> io::Result<()> {
        rfs::fsync(&self.fd)?;
        Ok(())
    }

    /// The names in this directory (not `.` and `..`) with their types as the directory
    /// lists them; a name that is not UTF-8 is listed as [`Kind::Special`].
    pub fn list(&self) -> io::Result<Vec<(String, Kind)>> {
        let mut out = Vec::new();
        for entry in rfs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            // The runtime never makes a name that is not UTF-8: such an entry is listed
            // (lossily) as special, so that no caller acts on it by a name it does not have.
            let Ok(name) = std::str::from_utf8(name) else {
                out.push((OsStr::from_bytes(name).to_string_lossy().into_owned(), Kind::Special));
                continue;
            };
            let kind = match entry.file_type() {
                FileType::Unknown => self.entry(name)?.map_or(Kind::Special, |e| e.kind),
                t => Kind::of(t),
            };
            out.push((name.to_string(), kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.list()?.is_empty())
    }
}

impl From<Dir> for OwnedFd {
    fn from(d: Dir) -> OwnedFd {
        d.fd
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Sets the permission bits of the open file `f`.
pub fn set_mode(f: &File, mode: u32) -> io::Result<()> {
    rfs::fchmod(f, Mode::from_raw_mode(mode))?;
    Ok(())
}

/// Opens the file `name` in `dir` for a mode change: only a regular file with one link is
/// changed in place; `None` means the caller must replace it with a fresh copy instead.
pub fn open_for_mode(dir: &Dir, name: &str) -> io::Result<Option<File>> {
    match dir.open_file(name) {
        Ok(Some((f, e))) if e.is_plain_file() => Ok(Some(f)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn nothing_is_reached_through_a_planted_link() {
        let t = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"canary").expect("write");
        std::fs::create_dir(t.path().join("d")).expect("mkdir");
        std::os::unix::fs::symlink(&victim, t.path().join("d/link")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), t.path().join("dirlink")).expect("symlink");
        let root = Dir::open(t.path()).expect("open");
        let d = root.sub("d").expect("sub");
        assert!(root.sub("dirlink").is_err(), "a linked directory is refused");
        assert!(d.open_file("link").is_err(), "a link is not read");
        let mut f = d.create_new("link").expect("create replaces the link");
        f.write_all(b"new").expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"canary");
        std::os::unix::fs::symlink(&victim, t.path().join("d/own")).expect("symlink");
        let mut own = d.open_own("own", true).expect("own file");
        own.write_all(b"log").expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"canary");
        assert!(!std::fs::symlink_metadata(t.path().join("d/own")).expect("stat").file_type().is_symlink());
        std::fs::hard_link(&victim, t.path().join("d/hard")).expect("hard link");
        assert!(open_for_mode(&d, "hard").expect("open").is_none(), "a hard-linked file is replaced, not chmodded");
        let (mut r, e) = d.open_file("link").expect("open").expect("there");
        assert_eq!(e.kind, Kind::File);
        let mut s = String::new();
        r.read_to_string(&mut s).expect("read");
        assert_eq!(s, "new");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let t = tempfile::tempdir().expect("tempdir");
        rfs::mknodat(rfs::CWD, t.path().join("fifo"), FileType::Fifo, Mode::from_raw_mode(0o600), 0).expect("mkfifo");
        let root = Dir::open(t.path()).expect("open");
        let err = root.open_file("fifo").expect_err("a FIFO is not a file");
        assert!(err.to_string().contains("FIFO"), "{err}");
    }

    #[test]
    fn a_name_that_is_not_utf8_is_listed_as_special() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join(OsStr::from_bytes(b"bad\xff")), b"x").expect("write");
        std::fs::write(t.path().join("good"), b"x").expect("write");
        let listed = Dir::open(t.path()).expect("open").list().expect("list");
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|(n, k)| n.starts_with("bad") && *k == Kind::Special));
        assert!(listed.contains(&("good".to_string(), Kind::File)));
    }
}
