//! Making a root (`init`) and managing the keys it trusts (`trust add|list|remove`).

use std::fmt;
use std::fs;
use std::path::Path;

use hotfix_schema::{Name, RESERVED_DIR};
use pkgtool::TrustedKey;
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::layout::Layout;
use crate::lock;
use crate::oplog;
use crate::trust::{self, Added};

/// What `init` made.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct InitView {
    /// The root.
    pub root: String,
    /// Its product.
    pub product: String,
    /// The key it trusts.
    pub trusted_key: KeyView,
}

impl fmt::Display for InitView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Initialized {} for product {}, trusting key {} ({}). Install the product's baseline package next.",
            self.root, self.product, self.trusted_key.name, self.trusted_key.key_id
        )
    }
}

/// `hotfix init`: creates `ROOT/.servicing/` for `product`, trusting `key`. The inventory is
/// created last: its existence is what makes the directory a root.
pub fn init(root: &Path, product: &Name, key: &Path) -> Result<InitView> {
    let layout = Layout::new(root);
    TrustedKey::load(key)
        .map_err(|source| Error::Package { source: Box::new(source), hint: ". Nothing was created".into() })?;
    fs::create_dir_all(root).map_err(Error::io(root))?;
    // `.servicing` is made (or found) without following a link: a link planted there is
    // refused, never written through.
    layout.root_dir()?.create_sub(RESERVED_DIR, 0o755).map_err(Error::io(&layout.servicing))?;
    let _lock = lock::acquire(&layout, "init", false)?;
    if layout.is_root()? {
        let product = Inventory::open(&layout.db()).and_then(|i| i.product()).map(|p| p.to_string());
        return Err(Error::Refused(format!(
            "{} is a servicing root already (product {}); nothing was changed",
            root.display(),
            product.unwrap_or_else(|_| "unreadable".into())
        )));
    }
    let servicing = layout.servicing_dir_required()?;
    for (name, mode) in [("store", 0o755), ("trust", 0o755)] {
        servicing.create_sub(name, mode).map_err(Error::io(&layout.servicing.join(name)))?;
    }
    let entry = match trust::add(&layout, key)? {
        Added::New(e) | Added::Already(e) => e,
    };
    Inventory::create(&layout.db(), product)?;
    let view = InitView {
        root: root.display().to_string(),
        product: product.to_string(),
        trusted_key: KeyView { name: entry.name.clone(), key_id: entry.key.id_hex() },
    };
    let log = oplog::Entry::new(format!("init {product}"));
    oplog::append(&layout, &log)?;
    Ok(view)
}

/// One trusted key.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KeyView {
    /// Its name (file name without `.pub`).
    pub name: String,
    /// Its key id (16 hex digits).
    pub key_id: String,
}

/// `hotfix trust list`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TrustView {
    /// The trusted keys.
    pub keys: Vec<KeyView>,
}

impl fmt::Display for TrustView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keys.is_empty() {
            return writeln!(f, "No trusted keys: no package can be installed.");
        }
        for k in &self.keys {
            writeln!(f, "{} {}", k.key_id, k.name)?;
        }
        Ok(())
    }
}

/// `hotfix trust list`.
pub fn trust_list(layout: &Layout) -> Result<TrustView> {
    let keys = trust::list(layout)?.into_iter().map(|e| KeyView { name: e.name, key_id: e.key.id_hex() }).collect();
    Ok(TrustView { keys })
}

/// `hotfix trust add KEY.pub`.
pub fn trust_add(layout: &Layout, key: &Path) -> Result<String> {
    Ok(match trust::add(layout, key)? {
        Added::New(e) => format!("Trusting key {} as {}.", e.key.id_hex(), e.name),
        Added::Already(e) => format!("Key {} is trusted already, as {}; nothing changed.", e.key.id_hex(), e.name),
    })
}

/// `hotfix trust remove NAME|KEYID`.
pub fn trust_remove(layout: &Layout, which: &str) -> Result<String> {
    let e = trust::remove(layout, which)?;
    Ok(format!(
        "No longer trusting key {} ({}); packages it signed can no longer be installed.",
        e.key.id_hex(),
        e.name
    ))
}
