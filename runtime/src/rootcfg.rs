//! Which root a command services when `--root` is not given: the environment variable
//! `HOTFIX_ROOT`, then — when the product is known, as it is for a package — the first
//! line of the configuration file `/etc/hotfix/<product>.root` (the directory can be moved
//! with `HOTFIX_CONFIG_DIR`). Without any of them the command is a usage error that says
//! how to give one.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hotfix_schema::Name;

use crate::error::{Error, Result};

/// The environment variable naming the root.
pub const ROOT_ENV: &str = "HOTFIX_ROOT";
/// The environment variable that moves the configuration directory.
pub const CONFIG_DIR_ENV: &str = "HOTFIX_CONFIG_DIR";
/// The default configuration directory.
pub const CONFIG_DIR: &str = "/etc/hotfix";

/// Where the root came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--root DIR`.
    Flag,
    /// `HOTFIX_ROOT`.
    Env,
    /// A configuration file.
    Config(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("--root"),
            Source::Env => f.write_str(ROOT_ENV),
            Source::Config(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The configuration directory in force.
pub fn config_dir() -> PathBuf {
    std::env::var_os(CONFIG_DIR_ENV).filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(CONFIG_DIR), PathBuf::from)
}

/// The configuration file naming `product`'s root.
pub fn config_file(product: &Name) -> PathBuf {
    config_dir().join(format!("{product}.root"))
}

/// The root to service: `flag`, else `HOTFIX_ROOT`, else `product`'s configuration file.
/// `Ok(None)` when none is given.
pub fn find(flag: Option<&Path>, product: Option<&Name>) -> Result<Option<(PathBuf, Source)>> {
    if let Some(p) = flag {
        return Ok(Some((p.to_path_buf(), Source::Flag)));
    }
    if let Some(v) = std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()) {
        return Ok(Some((PathBuf::from(v), Source::Env)));
    }
    let Some(product) = product else { return Ok(None) };
    let file = config_file(product);
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io { path: file, source: e }),
    };
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
    match line {
        Some(l) if Path::new(l).is_absolute() => Ok(Some((PathBuf::from(l), Source::Config(file)))),
        Some(l) => Err(Error::Usage(format!(
            "{}: the root must be an absolute path, not {l:?}; write the root's full path on the first line",
            file.display()
        ))),
        None => Err(Error::Usage(format!(
            "{}: no root in the file; write the root's full path on its first line",
            file.display()
        ))),
    }
}

/// How to give a root, for messages.
pub fn how_to_give(product: Option<&Name>) -> String {
    match product {
        Some(p) => {
            format!("pass --root DIR, set {ROOT_ENV}=DIR, or write the root's path in {}", config_file(p).display())
        }
        None => format!("pass --root DIR or set {ROOT_ENV}=DIR"),
    }
}

/// The root to service, or a usage error saying how to give one.
pub fn require(flag: Option<&Path>, product: Option<&Name>) -> Result<(PathBuf, Source)> {
    find(flag, product)?.ok_or_else(|| Error::Usage(format!("no root to service: {}", how_to_give(product))))
}
