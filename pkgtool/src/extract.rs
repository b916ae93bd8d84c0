//! `pkgtool extract`: verified extraction of every variant into
//! `DIR/<baseline>/<branch>/<component>/<path>` (`base` stands for the branch of a
//! baseline package's variants, which count on both).
//!
//! The package is verified in full first; then every blob is decoded again, hash-checked
//! as it is written, into a fresh temporary directory beside `DIR`, which is renamed to
//! `DIR` only when everything checked out. Paths come from validated manifest names, so
//! nothing can be written outside the target.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hotfix_schema::{Digest, Limits, Mode};

use crate::error::{Error, Result};
use crate::keys::TrustedKey;
use crate::read::{self, Verified};

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

/// Verifies `pkg` and extracts it into `dir`, which must not exist or be empty.
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

    // Blob by blob, in package order; a pack's members as they stream by.
    let mut pkg_file = File::open(pkg).map_err(Error::io(pkg))?;
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut write = |digest: &Digest, reader: &mut dyn Read| -> Result<()> {
        let Some(((first, first_mode), rest)) = dests.get(digest).and_then(|t| t.split_first()) else {
            return Ok(());
        };
        let first_abs = tmp.path().join(first);
        create_parent(&first_abs)?;
        let mut out =
            OpenOptions::new().write(true).create_new(true).open(&first_abs).map_err(Error::io(&first_abs))?;
        let n = io::copy(reader, &mut out).map_err(|e| {
            if read::integrity_of(&e).is_some() {
                verified.blob_error(e)
            } else {
                Error::Io { path: first_abs.clone(), source: e }
            }
        })?;
        drop(out);
        set_mode(&first_abs, *first_mode)?;
        files += 1;
        bytes += n;
        for (rel, mode) in rest {
            let abs = tmp.path().join(rel);
            create_parent(&abs)?;
            fs::copy(&first_abs, &abs).map_err(Error::io(&abs))?;
            set_mode(&abs, *mode)?;
            files += 1;
            bytes += n;
        }
        Ok(())
    };
    for (i, blob) in m.blobs.iter().enumerate() {
        let mut reader = verified.open_blob(&mut pkg_file, i, limits)?;
        if !blob.is_pack() {
            write(&blob.sha256, &mut reader)?;
            continue;
        }
        let mut failed = None;
        let split = read::for_each_member(&mut reader, blob, |member, r| {
            write(&member.sha256, r).map_err(|e| {
                failed = Some(e);
                io::Error::other("extraction failed")
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        split.map_err(|e| verified.blob_error(e))?;
    }

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

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) => fs::create_dir_all(p).map_err(Error::io(p)),
        None => Ok(()),
    }
}

fn set_mode(path: &Path, mode: Mode) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode.bits())).map_err(Error::io(path))
}
