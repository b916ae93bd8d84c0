//! The client side of the TUF workflow: a repository loaded through tough from a pinned
//! root (root rotation step by step, rollback, freeze and mix-and-match checks, bounded
//! downloads), with the trusted metadata kept in a datastore directory between runs so
//! that a later run refuses anything older than what an earlier run saw.
//!
//! Layout expected at `base` (as [`crate::repo`] writes it): `metadata/` and `targets/`.
//! `base` is `https://…/`, `http://…/` or `file:///…/` (a repository copied to media).

use std::path::Path;

use tough::{ExpirationEnforcement, Limits, Repository, RepositoryLoader};
use url::Url;

use crate::error::{Error, Result};
use crate::repo::package_targets;
use crate::select::Candidate;

/// Whether expired metadata is refused. Automatic use must be `Enforce`; `IgnoreExpiry`
/// is the explicit override for offline media whose timestamp could not be refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Refuse expired metadata (the TUF freeze check).
    Enforce,
    /// Accept expired metadata; every other check still applies.
    IgnoreExpiry,
}

/// The caps on what a scan downloads (tough's [`Limits`]): root, timestamp and snapshot
/// 1 MiB each, targets.json 10 MiB when snapshot.json does not give its length, at most 64
/// root versions in one rotation.
pub fn limits() -> Limits {
    Limits { max_root_updates: 64, ..Limits::default() }
}

fn join(base: &Url, p: &str) -> Result<Url> {
    let base = if base.path().ends_with('/') {
        base.clone()
    } else {
        let mut b = base.clone();
        b.set_path(&format!("{}/", base.path()));
        b
    };
    base.join(p).map_err(|e| Error::Refused { what: base.to_string(), msg: format!("cannot join {p}: {e}") })
}

/// Loads the repository at `base`, trusting `pinned_root` (the subscription's root.json)
/// and the metadata saved in `datastore` by earlier loads.
pub fn load(base: &Url, pinned_root: &[u8], datastore: &Path, freshness: Freshness) -> Result<Repository> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io(datastore))?;
    let exp = match freshness {
        Freshness::Enforce => ExpirationEnforcement::Safe,
        Freshness::IgnoreExpiry => ExpirationEnforcement::Unsafe,
    };
    let loader = RepositoryLoader::new(&pinned_root, join(base, "metadata/")?, join(base, "targets/")?)
        .datastore(datastore)
        .limits(limits())
        .expiration_enforcement(exp);
    rt.block_on(loader.load()).map_err(|e| Error::from_tough(base.to_string(), e))
}

/// [`load`], then every package target with its metadata (for [`crate::select::select`]).
pub fn scan(base: &Url, pinned_root: &[u8], datastore: &Path, freshness: Freshness) -> Result<Vec<Candidate>> {
    let repo = load(base, pinned_root, datastore, freshness)?;
    package_targets(&repo)
}
