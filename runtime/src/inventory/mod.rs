//! The inventory: the root's servicing state in SQLite (WAL, `synchronous=FULL`).
//!
//! Tables: `meta` (schema version, product, branch policy, next install sequence),
//! `packages` (id, install sequence, manifest JSON, install options, time), `files` (every
//! active file: path, component, package, sha256, size, mode, restart), `dirs` (directories
//! the runtime created, which it removes again when they empty) and `pending` (at most one
//! row: the transaction in flight, see [`Pending`]). [`Inventory::commit`] writes a
//! transaction's result and deletes the pending row in one SQLite transaction — the commit
//! point of every servicing operation.

mod records;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hotfix_schema::{Digest, Limits, Manifest, Mode, Name, RelPath};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

pub use records::{FileRec, Pending, StoredOptions, Touched};

use crate::engine::{ActiveFile, BranchPolicy, Installed};
use crate::error::{Error, Result};

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE packages (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, manifest TEXT NOT NULL,
    options TEXT NOT NULL, installed_at TEXT NOT NULL);
CREATE TABLE files (
    path TEXT PRIMARY KEY, component TEXT NOT NULL, package TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, mode INTEGER NOT NULL, restart INTEGER NOT NULL);
CREATE TABLE dirs (path TEXT PRIMARY KEY);
CREATE TABLE pending (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL);
";

/// An installed package as the inventory holds it.
#[derive(Clone, Debug)]
pub struct InstalledPackage {
    /// Install sequence number (1 for the first package ever installed on the root).
    pub seq: i64,
    /// When it was installed (RFC 3339, UTC).
    pub installed_at: String,
    /// Manifest and options.
    pub installed: Installed,
}

/// What a committed transaction changes in the inventory.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// A package to add, with its install time.
    pub add: Option<(Installed, String)>,
    /// Packages to remove.
    pub remove: Vec<Name>,
    /// A new branch policy.
    pub policy: Option<BranchPolicy>,
    /// Files to insert or replace.
    pub put_files: Vec<(RelPath, ActiveFile)>,
    /// Files to delete.
    pub remove_files: Vec<RelPath>,
    /// Directories the runtime created.
    pub add_dirs: Vec<RelPath>,
    /// Directories the runtime removed.
    pub remove_dirs: Vec<RelPath>,
}

/// An open inventory.
pub struct Inventory {
    conn: Connection,
    path: PathBuf,
}

impl Inventory {
    /// Creates the inventory of a new root for `product`.
    pub fn create(path: &Path, product: &Name) -> Result<Inventory> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let mut inv = Inventory::connect(path, flags)?;
        let tx = inv.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err(path))?;
        tx.execute_batch(SCHEMA).map_err(db_err(path))?;
        for (k, v) in [("schema", SCHEMA_VERSION), ("product", product.as_str()), ("policy", "auto"), ("next_seq", "1")]
        {
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![k, v]).map_err(db_err(path))?;
        }
        tx.commit().map_err(db_err(path))?;
        Ok(inv)
    }

    /// Opens an existing inventory.
    pub fn open(path: &Path) -> Result<Inventory> {
        let inv = Inventory::connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let version = inv.meta("schema")?;
        if version != SCHEMA_VERSION {
            return Err(inv.corrupt(format!("schema version {version}, this hotfix reads {SCHEMA_VERSION}")));
        }
        Ok(inv)
    }

    fn connect(path: &Path, flags: OpenFlags) -> Result<Inventory> {
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(db_err(path))?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err(path))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(db_err(path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt { path: path.to_path_buf(), msg: format!("journal mode {mode}, not WAL") });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err(path))?;
        Ok(Inventory { conn, path: path.to_path_buf() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        db_err(&self.path)
    }

    fn corrupt(&self, msg: String) -> Error {
        Error::Corrupt { path: self.path.clone(), msg }
    }

    fn meta(&self, key: &str) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| self.corrupt(format!("no {key} recorded")))
    }

    /// The root's product.
    pub fn product(&self) -> Result<Name> {
        let p = self.meta("product")?;
        Name::new(&p).map_err(|e| self.corrupt(e.to_string()))
    }

    /// The root's branch policy.
    pub fn policy(&self) -> Result<BranchPolicy> {
        match self.meta("policy")?.as_str() {
            "auto" => Ok(BranchPolicy::Auto),
            "ldr" => Ok(BranchPolicy::ForceLdr),
            other => Err(self.corrupt(format!("unknown branch policy {other:?}"))),
        }
    }

    /// The installed packages, in install order.
    pub fn installed(&self) -> Result<Vec<InstalledPackage>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, seq, manifest, options, installed_at FROM packages ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, seq, manifest, options, installed_at) = row.map_err(self.err())?;
            let manifest = Manifest::from_json(manifest.as_bytes(), &Limits::default())
                .map_err(|e| self.corrupt(format!("package {id}: {e}")))?;
            if manifest.package.id.as_str() != id {
                return Err(self.corrupt(format!("package {id} holds the manifest of {}", manifest.package.id)));
            }
            let options = serde_json::from_str::<StoredOptions>(&options)
                .ok()
                .and_then(|o| o.to_options())
                .ok_or_else(|| self.corrupt(format!("package {id}: bad install options {options:?}")))?;
            out.push(InstalledPackage { seq, installed_at, installed: Installed { manifest, options } });
        }
        Ok(out)
    }

    /// Every active file, by path.
    pub fn files(&self) -> Result<BTreeMap<RelPath, ActiveFile>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, component, package, sha256, size, mode, restart FROM files")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (path, component, package, sha, size, mode, restart) = row.map_err(self.err())?;
            let bad = |what: &str| self.corrupt(format!("file {path:?}: bad {what}"));
            let file = ActiveFile {
                component: Name::new(&component).map_err(|_| bad("component"))?,
                package: Name::new(&package).map_err(|_| bad("package"))?,
                sha256: Digest::from_hex(&sha).map_err(|_| bad("sha256"))?,
                size: u64::try_from(size).map_err(|_| bad("size"))?,
                mode: u32::try_from(mode).ok().and_then(|m| Mode::new(m).ok()).ok_or_else(|| bad("mode"))?,
                restart,
            };
            out.insert(RelPath::new(&path).map_err(|_| bad("path"))?, file);
        }
        Ok(out)
    }

    /// The directories the runtime created and still owns.
    pub fn dirs(&self) -> Result<BTreeSet<RelPath>> {
        let mut stmt = self.conn.prepare("SELECT path FROM dirs").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        let mut out = BTreeSet::new();
        for row in rows {
            let p = row.map_err(self.err())?;
            out.insert(RelPath::new(&p).map_err(|e| self.corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// The transaction in flight, if one was started and not committed.
    pub fn pending(&self) -> Result<Option<Pending>> {
        let record: Option<String> = self
            .conn
            .query_row("SELECT record FROM pending WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        record
            .map(|r| serde_json::from_str(&r).map_err(|e| self.corrupt(format!("pending transaction: {e}"))))
            .transpose()
    }

    /// Records the transaction about to start (committed before anything is touched).
    pub fn set_pending(&mut self, pending: &Pending) -> Result<()> {
        let json = serde_json::to_string(pending).map_err(|e| self.corrupt(e.to_string()))?;
        self.conn.execute("INSERT INTO pending (id, record) VALUES (1, ?1)", [json]).map_err(self.err())?;
        Ok(())
    }

    /// Forgets the transaction in flight (after it was rolled back).
    pub fn clear_pending(&mut self) -> Result<()> {
        self.conn.execute("DELETE FROM pending", []).map_err(self.err())?;
        Ok(())
    }

    /// Commits a transaction's result and deletes the pending record, atomically. Returns
    /// the install sequence number of the added package, if any.
    pub fn commit(&mut self, c: &Commit) -> Result<Option<i64>> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let mut seq = None;
        if let Some((p, time)) = &c.add {
            let next: i64 = tx
                .query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| r.get::<_, String>(0))
                .map_err(&e)?
                .parse()
                .map_err(|_| Error::Corrupt { path: path.clone(), msg: "bad next_seq".into() })?;
            let manifest = String::from_utf8_lossy(&p.manifest.to_json()).into_owned();
            let options = serde_json::to_string(&StoredOptions::of(&p.options)).unwrap_or_default();
            tx.execute(
                "INSERT INTO packages (id, seq, manifest, options, installed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.manifest.package.id.as_str(), next, manifest, options, time],
            )
            .map_err(&e)?;
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'next_seq'", [(next + 1).to_string()]).map_err(&e)?;
            seq = Some(next);
        }
        for id in &c.remove {
            tx.execute("DELETE FROM packages WHERE id = ?1", [id.as_str()]).map_err(&e)?;
        }
        if let Some(policy) = c.policy {
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'policy'", [policy.to_string()]).map_err(&e)?;
        }
        for (p, f) in &c.put_files {
            tx.execute(
                "INSERT OR REPLACE INTO files (path, component, package, sha256, size, mode, restart) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    p.as_str(),
                    f.component.as_str(),
                    f.package.as_str(),
                    f.sha256.to_hex(),
                    i64::try_from(f.size).unwrap_or(i64::MAX),
                    i64::from(f.mode.bits()),
                    f.restart
                ],
            )
            .map_err(&e)?;
        }
        for p in &c.remove_files {
            tx.execute("DELETE FROM files WHERE path = ?1", [p.as_str()]).map_err(&e)?;
        }
        for d in &c.add_dirs {
            tx.execute("INSERT OR IGNORE INTO dirs (path) VALUES (?1)", [d.as_str()]).map_err(&e)?;
        }
        for d in &c.remove_dirs {
            tx.execute("DELETE FROM dirs WHERE path = ?1", [d.as_str()]).map_err(&e)?;
        }
        tx.execute("DELETE FROM pending", []).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(seq)
    }
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Inventory { path: path.to_path_buf(), source }
}
