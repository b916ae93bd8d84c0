//! The keys a root trusts to sign packages: SPKI PEM files in `ROOT/.servicing/trust/`,
//! each named `<name>.pub`. Every key is checked (and weak keys refused) when it is added
//! and again when it is loaded.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hotfix_schema::Name;
use pkgtool::TrustedKey;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::layout::Layout;
use crate::rootfs::{Dir, Kind};

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

/// The trust directory, if there is one (never through a link).
fn trust_dir(layout: &Layout) -> Result<Option<Dir>> {
    match layout.servicing_dir()? {
        Some(s) => s.sub_if_any("trust").map_err(Error::io(&layout.trust())),
        None => Ok(None),
    }
}

/// Every trusted key, sorted by name. Only regular files count: a link or anything else
/// in the trust directory is ignored.
pub fn list(layout: &Layout) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let Some(dir) = trust_dir(layout)? else { return Ok(out) };
    for (file, kind) in dir.list().map_err(Error::io(dir.path()))? {
        let Some(name) = file.strip_suffix(".pub") else { continue };
        if kind != Kind::File {
            continue;
        }
        let name = name.to_string();
        out.push(Entry { name, key: TrustedKey::load(&dir.join(&file)).map_err(key_error)? });
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
    let servicing = layout.servicing_dir_required()?;
    let (dir, _) = servicing.create_sub("trust", 0o755).map_err(Error::io(&layout.trust()))?;
    let file = format!("{name}.pub");
    let dest = dir.join(&file);
    let temp = fsutil::temp_name(&file);
    let mut src = fs::File::open(source).map_err(Error::io(source))?;
    let written = dir
        .create_new(&temp)
        .and_then(|f| fsutil::fill(f, &mut (&mut src).take(1 << 16), 0o644, &mut [0u8; 1 << 13]))
        .and_then(|(f, _)| f.sync_all())
        .and_then(|()| dir.rename(&temp, &dir, &file))
        .and_then(|()| dir.sync());
    if let Err(e) = written {
        let _ = dir.remove_file(&temp);
        return Err(Error::Io { path: dest, source: e });
    }
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
    if let Some(dir) = trust_dir(layout)? {
        dir.remove_file(&format!("{}.pub", e.name)).and_then(|_| dir.sync()).map_err(Error::io(&path))?;
    }
    Ok(e.clone())
}
