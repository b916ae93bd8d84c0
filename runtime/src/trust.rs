//! The keys a root trusts to sign packages: SPKI PEM files in `ROOT/.servicing/trust/`,
//! each named `<name>.pub`. Every key is checked (and weak keys refused) when it is added
//! and again when it is loaded.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hotfix_schema::Name;
use pkgtool::TrustedKey;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::layout::Layout;

/// A trusted key and its name in the root.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The file name without `.pub`.
    pub name: String,
    /// The key.
    pub key: TrustedKey,
}

fn key_error(source: pkgtool::Error) -> Error {
    Error::Package { source: Box::new(source), hint: String::new() }
}

/// Every trusted key, sorted by name.
pub fn list(layout: &Layout) -> Result<Vec<Entry>> {
    let dir = layout.trust();
    let mut out = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(it) => it,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::Io { path: dir, source: e }),
    };
    for entry in entries {
        let path = entry.map_err(Error::io(&dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".pub")) else {
            continue;
        };
        let name = name.to_string();
        out.push(Entry { name, key: TrustedKey::load(&path).map_err(key_error)? });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The keys alone.
pub fn keys(layout: &Layout) -> Result<Vec<TrustedKey>> {
    Ok(list(layout)?.into_iter().map(|e| e.key).collect())
}

/// What [`add`] did.
#[derive(Clone, Debug)]
pub enum Added {
    /// The key was added under this name.
    New(Entry),
    /// The key was trusted already, under this name.
    Already(Entry),
}

/// Trusts the key in `source` (SPKI PEM), named after the file.
pub fn add(layout: &Layout, source: &Path) -> Result<Added> {
    let key = TrustedKey::load(source).map_err(key_error)?;
    let existing = list(layout)?;
    if let Some(e) = existing.iter().find(|e| e.key.id == key.id) {
        return Ok(Added::Already(e.clone()));
    }
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("key");
    let base = Name::new(stem).map(|n| n.to_string()).unwrap_or_else(|_| "key".to_string());
    let name = if existing.iter().any(|e| e.name == base) { format!("{base}-{}", key.id_hex()) } else { base };
    let dir = layout.trust();
    fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let dest = dir.join(format!("{name}.pub"));
    let temp = fsutil::temp_beside(&dest);
    let mut src = fs::File::open(source).map_err(Error::io(source))?;
    fsutil::write_temp(&temp, &mut src, 0o644).map_err(Error::io(&temp))?;
    fsutil::rename_durably(&temp, &dest).map_err(Error::io(&dest))?;
    let key = TrustedKey::load(&dest).map_err(key_error)?;
    Ok(Added::New(Entry { name, key }))
}

/// Stops trusting the key named `which` (its name or key id).
pub fn remove(layout: &Layout, which: &str) -> Result<Entry> {
    let all = list(layout)?;
    let Some(e) = all.iter().find(|e| e.name == which || e.key.id_hex().eq_ignore_ascii_case(which)) else {
        let names: Vec<String> = all.iter().map(|e| format!("{} ({})", e.name, e.key.id_hex())).collect();
        return Err(Error::Refused(format!(
            "no trusted key is named {which:?} (trusted: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )));
    };
    let path: PathBuf = layout.trust().join(format!("{}.pub", e.name));
    fsutil::remove_durably(&path).map_err(Error::io(&path))?;
    Ok(e.clone())
}
