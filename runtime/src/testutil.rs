//! Helpers for the library's own tests: a scratch directory, and inventories filled the way
//! committed installs fill them (no package file, no live files).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hotfix_schema::Manifest;

use crate::engine::{Inputs, InstallOptions, Installed, transition};
use crate::inventory::{Commit, Inventory};

/// A directory under the system's temporary directory, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory whose name starts with `case`.
    pub fn new(case: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{case}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Commits the install of `m` with `options` as `hotfix install` would, deciding on the
/// whole inventory.
pub fn commit_install(inv: &mut Inventory, m: Manifest, options: InstallOptions) {
    let product = inv.product().unwrap();
    let policy = inv.policy().unwrap();
    let before: Vec<Installed> = inv.installed().unwrap().into_iter().map(|p| p.installed).collect();
    let new = Installed::new(m, options);
    let after: Vec<Installed> = before.iter().cloned().chain([new.clone()]).collect();
    let t = transition(
        &Inputs { product: &product, installed: &before, policy },
        &Inputs { product: &product, installed: &after, policy },
    )
    .unwrap();
    let plan = t.plan;
    inv.commit(&Commit {
        add: Some((&new, "2024-01-01T00:00:00Z".into())),
        put_files: plan.put.iter().chain(&plan.relabel).map(|p| (&p.path, &p.file)).collect(),
        remove_files: plan.remove.iter().map(|r| r.path.clone()).collect(),
        ..Commit::default()
    })
    .unwrap();
}
