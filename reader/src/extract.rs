//! `pkgtool extract`: verified extraction of every variant into
//! `DIR/<baseline>/<branch>/<component>/<path>` (`base` stands for the branch of a
//! baseline package's variants, which count on both).
//!
//! The package is authenticated first (every byte against the signature, the manifest
//! and structure checked; nothing decoded, nothing written). Then the decode pass reads
//! the same open file and writes each content, checked against the authenticated
//! manifest's size and hash as it is written, into a fresh temporary directory beside
//! `DIR`, which is renamed to `DIR` only when everything checked out. Paths come from
//! validated manifest names, so nothing can be written outside the target.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hotfix_schema::{Digest, Limits, Mode};

use crate::error::{Error, Result};
use crate::keys::TrustedKey;
use crate::read::{self, ContentSink, Verified};

/// The directory segment used for a baseline package's variants, which have no branch.
pub const BASELINE_BRANCH_DIR: &str = "base";

/// What an extraction wrote.
#[derive(Clone, Debug)]
pub struct ExtractReport {
    /// The verified package.
    pub verified: Verified,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Authenticates `pkg`, then decodes and extracts it into `dir`, which must not exist or
/// be empty. `progress` sees the authentication pass, then the decode pass.
pub fn extract(
    pkg: &Path,
    dir: &Path,
    trusted: &[TrustedKey],
    limits: &Limits,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExtractReport> {
    match fs::read_dir(dir) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(Error::Refused {
                    path: dir.to_path_buf(),
                    msg: "target directory is not empty; nothing extracted".into(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { path: dir.to_path_buf(), source: e }),
    }
    let verified = read::verify(pkg, trusted, limits, progress)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
    let tmp = tempfile::Builder::new().prefix(".pkgtool-extract-").tempdir_in(&parent).map_err(Error::io(&parent))?;

    // Every destination of every content.
    let m = &verified.manifest;
    let mut dests: HashMap<Digest, Vec<(PathBuf, Mode)>> = HashMap::new();
    for v in &m.variants {
        let branch = v.branch.map_or(BASELINE_BRANCH_DIR, |b| b.as_str());
        let base = PathBuf::from(v.baseline.as_str()).join(branch).join(v.component.as_str());
        for f in &v.files {
            let rel = f.path.components().fold(base.clone(), |p, c| p.join(c));
            dests.entry(f.sha256).or_default().push((rel, f.mode));
        }
    }

    // The decode pass, from the file the authentication pass read: each content written
    // as it is decoded and checked against the authenticated manifest.
    let mut writer = Writer { dir: tmp.path(), dests, files: 0, bytes: 0, failed: None };
    if let Err(e) = verified.decode_into(limits, progress, &mut writer) {
        return Err(writer.failed.take().unwrap_or(e));
    }
    let (files, bytes) = (writer.files, writer.bytes);

    let kept = tmp.keep();
    if dir.exists() {
        fs::remove_dir(dir).map_err(Error::io(dir))?;
    }
    if let Err(e) = fs::rename(&kept, dir) {
        let _ = fs::remove_dir_all(&kept);
        return Err(Error::Io { path: dir.to_path_buf(), source: e });
    }
    Ok(ExtractReport { verified, files, bytes })
}

/// Writes each content to its destinations under `dir` as the decode pass hands it over.
struct Writer<'d> {
    dir: &'d Path,
    dests: HashMap<Digest, Vec<(PathBuf, Mode)>>,
    files: u64,
    bytes: u64,
    /// A failure of this side (not the package's), reported instead of the decode error.
    failed: Option<Error>,
}

impl Writer<'_> {
    fn write(&mut self, digest: &Digest, reader: &mut dyn Read) -> io::Result<()> {
        let Some(((first, first_mode), rest)) = self.dests.get(digest).and_then(|t| t.split_first()) else {
            return Ok(());
        };
        let mine = |e: Error, failed: &mut Option<Error>| {
            *failed = Some(e);
            io::Error::other("extraction failed")
        };
        let first_abs = self.dir.join(first);
        create_parent(&first_abs).map_err(|e| mine(e, &mut self.failed))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&first_abs)
            .map_err(|e| mine(Error::Io { path: first_abs.clone(), source: e }, &mut self.failed))?;
        // The package's own failures (size, CRC, hash) come back from `reader` and go up as
        // they are; a failure to write is this side's.
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = reader.read(&mut buf)?;
            if k == 0 {
                break;
            }
            out.write_all(&buf[..k])
                .map_err(|e| mine(Error::Io { path: first_abs.clone(), source: e }, &mut self.failed))?;
            n += k as u64;
        }
        drop(out);
        set_mode(&first_abs, *first_mode).map_err(|e| mine(e, &mut self.failed))?;
        self.files += 1;
        self.bytes += n;
        for (rel, mode) in rest {
            let abs = self.dir.join(rel);
            create_parent(&abs).map_err(|e| mine(e, &mut self.failed))?;
            fs::copy(&first_abs, &abs)
                .map_err(|e| mine(Error::Io { path: abs.clone(), source: e }, &mut self.failed))?;
            set_mode(&abs, *mode).map_err(|e| mine(e, &mut self.failed))?;
            self.files += 1;
            self.bytes += n;
        }
        Ok(())
    }
}

impl ContentSink for Writer<'_> {
    fn wants(&mut self, digest: &Digest, _: u64) -> io::Result<bool> {
        Ok(self.dests.contains_key(digest))
    }

    fn take(&mut self, digest: &Digest, _: u64, content: &mut dyn Read) -> io::Result<()> {
        self.write(digest, content)
    }
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) => fs::create_dir_all(p).map_err(Error::io(p)),
        None => Ok(()),
    }
}

fn set_mode(path: &Path, mode: Mode) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode.bits())).map_err(Error::io(path))
}
