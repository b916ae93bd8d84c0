//! The inventory: the root's servicing state in SQLite (WAL, `synchronous=FULL`).
//!
//! Tables: `meta` (schema version, product, branch policy, next install sequence),
//! `packages` (id, install sequence, the manifest's header — identity, kind, baselines, fixes
//! — install options, time), `variants` (one row per variant of an installed package, indexed
//! by component and baseline), `blobs` (each package's blob list), `files` (every active
//! file: path, component, package, sha256, size, mode, restart), `counts` (the number of
//! `files` rows, kept by triggers), `dirs` (directories the runtime created, which it removes
//! again when they empty) and `pending` (at most one row: the transaction in flight, see
//! [`Pending`]).
//!
//! Size (schema 3): what grows with a package's file count is stored once per file and
//! compactly, so the inventory stays proportional to what it holds. A variant (its file
//! list), a blob list and the pending record are JSON compressed with Zstandard (paths are
//! repetitive: a variant of 100,000 files takes about 1/20 of its JSON); `files` is
//! keyed by path without a separate rowid index and holds the SHA-256 as 32 bytes; the
//! database uses incremental auto-vacuum and gives back the pages a commit freed (the
//! pending record, removed packages), and the write-ahead log is truncated to
//! [`WAL_LIMIT`] bytes after a checkpoint. Schema 2 (uncompressed JSON text, hex digests,
//! rowid `files`) is migrated on open. [`Inventory::commit`] writes a transaction's result and deletes the pending
//! row in one SQLite transaction — the commit point of every servicing operation.
//!
//! A change that concerns a few components reads only their rows: the packages' headers
//! ([`Inventory::installed_restricted`]), their variants (by the `variants_by_component`
//! index), and the `files` rows of the paths it takes ([`Inventory::owners`]) — never a
//! whole manifest or the whole file list, so its cost does not grow with the root.
//! [`Inventory::reads`] counts the rows read.

mod records;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hotfix_schema::{Blob, Digest, Limits, Manifest, Mode, Name, RelPath, Variant};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::{FileRec, Header, Pending, StoredOptions, Touched};

use crate::engine::{ActiveFile, BranchPolicy, Installed};
use crate::error::{Error, Result};

const SCHEMA_VERSION: &str = "3";

/// Bytes the write-ahead log is truncated to after a checkpoint (`journal_size_limit`).
pub const WAL_LIMIT: i64 = 4 << 20;

/// Zstandard level of the stored JSON: fast, and most of the gain on path lists.
const ZSTD_LEVEL: i32 = 3;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    path TEXT PRIMARY KEY, component TEXT NOT NULL, package TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, mode INTEGER NOT NULL, restart INTEGER NOT NULL);
CREATE TABLE dirs (path TEXT PRIMARY KEY);
CREATE TABLE pending (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL);
";

/// What schema 2 adds to schema 1 (whose `packages` table held whole manifests).
const SCHEMA_2: &str = "
CREATE TABLE packages (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, header TEXT NOT NULL,
    options TEXT NOT NULL, installed_at TEXT NOT NULL);
CREATE TABLE variants (
    package TEXT NOT NULL, idx INTEGER NOT NULL, component TEXT NOT NULL, baseline TEXT NOT NULL,
    variant TEXT NOT NULL, PRIMARY KEY (package, idx));
CREATE INDEX variants_by_component ON variants (component, baseline);
CREATE INDEX variant_components ON variants (package, baseline, component);
CREATE TABLE blobs (package TEXT PRIMARY KEY, blobs TEXT NOT NULL);
CREATE TABLE counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO counts (name, n) SELECT 'files', count(*) FROM files;
CREATE TRIGGER files_added AFTER INSERT ON files BEGIN UPDATE counts SET n = n + 1 WHERE name = 'files'; END;
CREATE TRIGGER files_removed AFTER DELETE ON files BEGIN UPDATE counts SET n = n - 1 WHERE name = 'files'; END;
";

/// What schema 3 changes in schema 2's tables: `files` without a rowid (the path is the key,
/// not indexed a second time) and with binary digests. The JSON columns of `variants`,
/// `blobs` and `pending` hold compressed JSON from schema 3 on ([`packed`]); their rows are
/// converted by [`convert_json_rows`].
const SCHEMA_3: &str = "
DROP TRIGGER files_added;
DROP TRIGGER files_removed;
ALTER TABLE files RENAME TO files_2;
CREATE TABLE files (
    path TEXT PRIMARY KEY, component TEXT NOT NULL, package TEXT NOT NULL, sha256 BLOB NOT NULL,
    size INTEGER NOT NULL, mode INTEGER NOT NULL, restart INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO files (path, component, package, sha256, size, mode, restart)
    SELECT path, component, package, unhex(sha256), size, mode, restart FROM files_2;
DROP TABLE files_2;
CREATE TRIGGER files_added AFTER INSERT ON files BEGIN UPDATE counts SET n = n + 1 WHERE name = 'files'; END;
CREATE TRIGGER files_removed AFTER DELETE ON files BEGIN UPDATE counts SET n = n - 1 WHERE name = 'files'; END;
";

/// Rows read from the inventory since it was opened, by table: what a command costs in
/// inventory reads (tests check that a change of one component reads only its rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// `packages` rows (package headers).
    pub packages: u64,
    /// `variants` rows.
    pub variants: u64,
    /// Files listed in the `variants` rows read.
    pub variant_files: u64,
    /// Component names read from the `variant_components` index (no variant read).
    pub component_names: u64,
    /// `blobs` rows.
    pub blobs: u64,
    /// `files` rows.
    pub files: u64,
    /// `dirs` rows.
    pub dirs: u64,
}

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
pub struct Commit<'a> {
    /// A package to add, with its install time.
    pub add: Option<(&'a Installed, String)>,
    /// Packages to remove.
    pub remove: Vec<Name>,
    /// A new branch policy.
    pub policy: Option<BranchPolicy>,
    /// Files to insert or replace.
    pub put_files: Vec<(&'a RelPath, &'a ActiveFile)>,
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
    reads: Cell<Reads>,
}

impl Inventory {
    /// Creates the inventory of a new root for `product`.
    pub fn create(path: &Path, product: &Name) -> Result<Inventory> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let mut inv = Inventory::connect(path, flags, true)?;
        let tx = inv.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err(path))?;
        tx.execute_batch(SCHEMA).map_err(db_err(path))?;
        tx.execute_batch(SCHEMA_2).map_err(db_err(path))?;
        tx.execute_batch(SCHEMA_3).map_err(db_err(path))?;
        for (k, v) in [("schema", SCHEMA_VERSION), ("product", product.as_str()), ("policy", "auto"), ("next_seq", "1")]
        {
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![k, v]).map_err(db_err(path))?;
        }
        tx.commit().map_err(db_err(path))?;
        Ok(inv)
    }

    /// Opens an existing inventory; one of schema 1 or 2 is migrated to schema 3 first.
    pub fn open(path: &Path) -> Result<Inventory> {
        let mut inv = Inventory::connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE, false)?;
        let mut version = inv.meta("schema")?;
        if version == "1" {
            inv.migrate_from_1()?;
            version = inv.meta("schema")?;
        }
        if version == "2" {
            inv.migrate_from_2()?;
            version = inv.meta("schema")?;
        }
        if version != SCHEMA_VERSION {
            let newer = version.parse::<u32>().is_ok_and(|v| v > 3);
            return Err(inv.corrupt(format!(
                "schema version {version}, this hotfix reads {SCHEMA_VERSION} (and migrates 1 and 2){}",
                if newer { "; a newer hotfix made this root, service it with that one" } else { "" }
            )));
        }
        inv.reads.set(Reads::default());
        Ok(inv)
    }

    /// Opens the inventory of a root on a read-only file system (a mounted image, a
    /// snapshot), for reading: SQLite cannot make the shared-memory file a WAL database
    /// needs, so the database is opened immutable. That is exact only when every commit is
    /// in the database file itself, so a write-ahead log with content is refused, and so is
    /// a schema this version would have to migrate.
    pub fn open_read_only(path: &Path) -> Result<Inventory> {
        let wal = path.with_file_name(format!(
            "{}-wal",
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        if std::fs::symlink_metadata(&wal).is_ok_and(|m| m.len() > 0) {
            return Err(Error::Refused(format!(
                "{} holds commits that SQLite cannot read on a read-only file system; mount the root \
                 writable once (any hotfix command then folds them in), or read a copy of it",
                wal.display()
            )));
        }
        let mut uri = String::from("file:");
        for c in path.to_string_lossy().chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                c => uri.push(c),
            }
        }
        uri.push_str("?mode=ro&immutable=1");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&uri, flags).map_err(db_err(path))?;
        let inv = Inventory { conn, path: path.to_path_buf(), reads: Cell::new(Reads::default()) };
        let version = inv.meta("schema")?;
        if version != SCHEMA_VERSION {
            return Err(inv.corrupt(format!(
                "schema version {version}, and this hotfix reads {SCHEMA_VERSION}: on a read-only file system \
                 it cannot migrate it; mount the root writable once"
            )));
        }
        Ok(inv)
    }

    /// Opens the database; a `fresh` one (no table yet) is set to incremental auto-vacuum,
    /// which is only possible before anything else is written, the journal mode included.
    fn connect(path: &Path, flags: OpenFlags, fresh: bool) -> Result<Inventory> {
        // NOFOLLOW: a link planted at the inventory is refused, never written through.
        let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags).map_err(db_err(path))?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err(path))?;
        if fresh {
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;").map_err(db_err(path))?;
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(db_err(path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt { path: path.to_path_buf(), msg: format!("journal mode {mode}, not WAL") });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err(path))?;
        conn.pragma_update_and_check(None, "journal_size_limit", WAL_LIMIT, |r| r.get::<_, i64>(0))
            .map_err(db_err(path))?;
        Ok(Inventory { conn, path: path.to_path_buf(), reads: Cell::new(Reads::default()) })
    }

    /// Schema 1 kept each package's whole manifest in one `packages` column: split them
    /// into headers, variant rows and blob lists, in one transaction (a crash leaves
    /// schema 1, migrated again next time; a concurrent opener that migrated first wins).
    fn migrate_from_1(&mut self) -> Result<()> {
        let path = self.path.clone();
        let e = db_err(&path);
        let corrupt = |msg: String| Error::Corrupt { path: path.clone(), msg };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let version: String =
            tx.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).map_err(&e)?;
        if version != "1" {
            return Ok(());
        }
        tx.execute_batch("ALTER TABLE packages RENAME TO packages_1;").map_err(&e)?;
        tx.execute_batch(SCHEMA_2).map_err(&e)?;
        let old: Vec<(String, i64, String, String, String)> = {
            let mut stmt = tx
                .prepare("SELECT id, seq, manifest, options, installed_at FROM packages_1 ORDER BY seq")
                .map_err(&e)?;
            let rows =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).map_err(&e)?;
            rows.collect::<std::result::Result<_, _>>().map_err(&e)?
        };
        for (id, seq, manifest, options, installed_at) in old {
            let m = Manifest::from_json(manifest.as_bytes(), &Limits::default())
                .map_err(|err| corrupt(format!("package {id}: {err}")))?;
            if m.package.id.as_str() != id {
                return Err(corrupt(format!("package {id} holds the manifest of {}", m.package.id)));
            }
            insert_package(&tx, &m, seq, &options, &installed_at).map_err(&e)?;
        }
        tx.execute_batch("DROP TABLE packages_1; UPDATE meta SET value = '2' WHERE key = 'schema';").map_err(&e)?;
        tx.commit().map_err(&e)
    }

    /// Schema 2 kept JSON text, hex digests and a rowid `files` table with a second index
    /// on its paths: convert the files, compress the JSON rows, in one transaction (a crash
    /// leaves schema 2, migrated again next time). Then switch to incremental auto-vacuum,
    /// which only a `VACUUM` can do; a crash before it leaves a schema-3 inventory that
    /// reuses its free pages instead of returning them.
    fn migrate_from_2(&mut self) -> Result<()> {
        let path = self.path.clone();
        let e = db_err(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let version: String =
            tx.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).map_err(&e)?;
        if version != "2" {
            return Ok(());
        }
        tx.execute_batch(SCHEMA_3).map_err(&e)?;
        convert_json_rows(&tx).map_err(&e)?;
        tx.execute("UPDATE meta SET value = '3' WHERE key = 'schema'", []).map_err(&e)?;
        tx.commit().map_err(&e)?;
        self.conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;").map_err(&e)
    }

    /// Gives the pages a commit freed back to the file system. Best effort: it runs after
    /// the commit point, and pages it leaves are reused by the next commit.
    fn reclaim(&self) {
        // The pragma frees one page per step: run it to the end.
        let run = || -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        };
        let _ = run();
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        db_err(&self.path)
    }

    fn corrupt(&self, msg: String) -> Error {
        Error::Corrupt { path: self.path.clone(), msg }
    }

    fn count(&self, f: impl FnOnce(&mut Reads)) {
        let mut r = self.reads.get();
        f(&mut r);
        self.reads.set(r);
    }

    /// The rows read since the inventory was opened.
    pub fn reads(&self) -> Reads {
        self.reads.get()
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

    /// The installed packages in install order, each with its manifest's header and none
    /// of its variants (restricted to nothing, see [`Installed::restrict`]).
    pub fn headers(&self) -> Result<Vec<InstalledPackage>> {
        self.header_rows("SELECT id, seq, header, options, installed_at FROM packages ORDER BY seq", [])
    }

    fn header_rows(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<InstalledPackage>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, seq, header, options, installed_at) = row.map_err(self.err())?;
            self.count(|r| r.packages += 1);
            let header: Header =
                serde_json::from_str(&header).map_err(|e| self.corrupt(format!("package {id}: header: {e}")))?;
            if header.package.id.as_str() != id {
                return Err(self.corrupt(format!("package {id} holds the header of {}", header.package.id)));
            }
            let options = serde_json::from_str::<StoredOptions>(&options)
                .ok()
                .and_then(|o| o.to_options())
                .ok_or_else(|| self.corrupt(format!("package {id}: bad install options {options:?}")))?;
            let installed = Installed {
                manifest: header.manifest(Vec::new(), Vec::new()),
                options,
                variant_indices: Some(Vec::new()),
            };
            out.push(InstalledPackage { seq, installed_at, installed });
        }
        Ok(out)
    }

    /// The installed packages, in install order, with their whole manifests.
    pub fn installed(&self) -> Result<Vec<InstalledPackage>> {
        let mut out = self.headers()?;
        for p in &mut out {
            let id = p.installed.manifest.package.id.clone();
            p.installed.manifest = self.whole(&id, p.installed.manifest.clone())?;
            p.installed.variant_indices = None;
        }
        Ok(out)
    }

    /// The whole manifest of the installed package `id`, if it is installed.
    pub fn manifest(&self, id: &Name) -> Result<Option<Manifest>> {
        let sql = "SELECT id, seq, header, options, installed_at FROM packages WHERE id = ?1";
        let Some(p) = self.header_rows(sql, [id.as_str()])?.pop() else { return Ok(None) };
        self.whole(id, p.installed.manifest).map(Some)
    }

    /// `header` (a manifest without variants) completed with the variants and blobs of
    /// package `id`, and validated.
    fn whole(&self, id: &Name, header: Manifest) -> Result<Manifest> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, component, baseline, variant FROM variants WHERE package = ?1 ORDER BY idx")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([id.as_str()], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(self.err())?;
        let mut variants = Vec::new();
        for row in rows {
            let (idx, component, baseline, json): (i64, String, String, Vec<u8>) = row.map_err(self.err())?;
            if usize::try_from(idx).ok() != Some(variants.len()) {
                return Err(self.corrupt(format!("package {id}: variant {idx} out of order")));
            }
            variants.push(self.variant(id, &component, &baseline, &json)?);
        }
        let blobs: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT blobs FROM blobs WHERE package = ?1", [id.as_str()], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        self.count(|r| r.blobs += 1);
        let blobs: Vec<Blob> = blobs
            .ok_or_else(|| self.corrupt(format!("package {id}: no blob list")))
            .and_then(|b| unpacked(&b, MAX_ROW_JSON).map_err(|e| self.corrupt(format!("package {id}: blobs: {e}"))))?;
        let m = Manifest { variants, blobs, ..header };
        m.validate(&Limits::default()).map_err(|e| self.corrupt(format!("package {id}: {e}")))?;
        Ok(m)
    }

    /// One `variants` row, checked against its key columns.
    fn variant(&self, package: &Name, component: &str, baseline: &str, json: &[u8]) -> Result<Variant> {
        let v: Variant =
            unpacked(json, MAX_ROW_JSON).map_err(|e| self.corrupt(format!("package {package}: variant: {e}")))?;
        if v.component.as_str() != component || v.baseline.as_str() != baseline {
            return Err(self.corrupt(format!(
                "package {package}: a variant of {}/{} is filed under {component}/{baseline}",
                v.component, v.baseline
            )));
        }
        self.count(|r| {
            r.variants += 1;
            r.variant_files += v.files.len() as u64;
        });
        Ok(v)
    }

    /// The installed packages in install order, each restricted (see
    /// [`Installed::restrict`]) to its variants of `components` at `baseline`: the engine's
    /// input for a change of those components, read by index.
    pub fn installed_restricted(&self, components: &BTreeSet<Name>, baseline: &Name) -> Result<Vec<InstalledPackage>> {
        self.with_variants_of(self.headers()?, components, baseline)
    }

    /// `headers` (from [`Inventory::headers`]) with their variants of `components` at
    /// `baseline`, as [`Inventory::installed_restricted`].
    pub fn with_variants_of(
        &self,
        mut headers: Vec<InstalledPackage>,
        components: &BTreeSet<Name>,
        baseline: &Name,
    ) -> Result<Vec<InstalledPackage>> {
        let mut by_package: BTreeMap<Name, Vec<(usize, Variant)>> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT package, idx, variant FROM variants WHERE component = ?1 AND baseline = ?2")
            .map_err(self.err())?;
        for c in components {
            let rows = stmt
                .query_map([c.as_str(), baseline.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?))
                })
                .map_err(self.err())?;
            for row in rows {
                let (package, idx, json): (String, i64, Vec<u8>) = row.map_err(self.err())?;
                let package = Name::new(&package).map_err(|e| self.corrupt(format!("variant of {package:?}: {e}")))?;
                let idx =
                    usize::try_from(idx).map_err(|_| self.corrupt(format!("package {package}: variant {idx}")))?;
                let v = self.variant(&package, c.as_str(), baseline.as_str(), &json)?;
                by_package.entry(package).or_default().push((idx, v));
            }
        }
        for p in &mut headers {
            let Some(mut kept) = by_package.remove(&p.installed.manifest.package.id) else { continue };
            kept.sort_by_key(|(i, _)| *i);
            let (indices, variants): (Vec<usize>, Vec<Variant>) = kept.into_iter().unzip();
            p.installed.manifest.variants = variants;
            p.installed.variant_indices = Some(indices);
        }
        if let Some(orphan) = by_package.keys().next() {
            return Err(self.corrupt(format!("variants of {orphan}, which is not installed")));
        }
        Ok(headers)
    }

    /// The components package `id` has variants of at `baseline`, sorted (from an index:
    /// no variant is read).
    pub fn components_of(&self, id: &Name, baseline: &Name) -> Result<Vec<Name>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT component FROM variants WHERE package = ?1 AND baseline = ?2 ORDER BY component")
            .map_err(self.err())?;
        let rows = stmt.query_map([id.as_str(), baseline.as_str()], |r| r.get::<_, String>(0)).map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let c = row.map_err(self.err())?;
            self.count(|r| r.component_names += 1);
            out.push(Name::new(&c).map_err(|e| self.corrupt(format!("package {id}: component {c:?}: {e}")))?);
        }
        out.sort();
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
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (path, component, package, sha, size, mode, restart) = row.map_err(self.err())?;
            self.count(|r| r.files += 1);
            let bad = |what: &str| self.corrupt(format!("file {path:?}: bad {what}"));
            let file = ActiveFile {
                component: Name::new(&component).map_err(|_| bad("component"))?,
                package: Name::new(&package).map_err(|_| bad("package"))?,
                sha256: <[u8; 32]>::try_from(sha.as_slice()).map(Digest).map_err(|_| bad("sha256"))?,
                size: u64::try_from(size).map_err(|_| bad("size"))?,
                mode: u32::try_from(mode).ok().and_then(|m| Mode::new(m).ok()).ok_or_else(|| bad("mode"))?,
                restart,
            };
            out.insert(RelPath::new(&path).map_err(|_| bad("path"))?, file);
        }
        Ok(out)
    }

    /// The component that owns each of `paths` that is an active file.
    pub fn owners<'p>(&self, paths: impl IntoIterator<Item = &'p RelPath>) -> Result<BTreeMap<RelPath, Name>> {
        let mut stmt = self.conn.prepare("SELECT component FROM files WHERE path = ?1").map_err(self.err())?;
        let mut out = BTreeMap::new();
        for path in paths {
            let owner = stmt.query_row([path.as_str()], |r| r.get::<_, String>(0)).optional().map_err(self.err())?;
            if let Some(c) = owner {
                self.count(|r| r.files += 1);
                let c = Name::new(&c).map_err(|_| self.corrupt(format!("file {path:?}: bad component")))?;
                out.insert(path.clone(), c);
            }
        }
        Ok(out)
    }

    /// The number of active files.
    pub fn file_count(&self) -> Result<u64> {
        let n: i64 =
            self.conn.query_row("SELECT n FROM counts WHERE name = 'files'", [], |r| r.get(0)).map_err(self.err())?;
        u64::try_from(n).map_err(|_| self.corrupt(format!("file count {n}")))
    }

    /// Which of `dirs` the runtime created and still owns.
    pub fn owned_dirs<'p>(&self, dirs: impl IntoIterator<Item = &'p RelPath>) -> Result<BTreeSet<RelPath>> {
        let mut stmt = self.conn.prepare("SELECT 1 FROM dirs WHERE path = ?1").map_err(self.err())?;
        let mut out = BTreeSet::new();
        for d in dirs {
            if stmt.exists([d.as_str()]).map_err(self.err())? {
                self.count(|r| r.dirs += 1);
                out.insert(d.clone());
            }
        }
        Ok(out)
    }

    /// The transaction in flight, if one was started and not committed.
    pub fn pending(&self) -> Result<Option<Pending>> {
        let record: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT record FROM pending WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        record
            .map(|r| unpacked(&r, MAX_PENDING_JSON).map_err(|e| self.corrupt(format!("pending transaction: {e}"))))
            .transpose()
    }

    /// Records the transaction about to start (committed before anything is touched).
    pub fn set_pending(&mut self, pending: &Pending) -> Result<()> {
        let record = packed(pending).map_err(self.err())?;
        self.conn.execute("INSERT INTO pending (id, record) VALUES (1, ?1)", [record]).map_err(self.err())?;
        Ok(())
    }

    /// Forgets the transaction in flight (after it was rolled back).
    pub fn clear_pending(&mut self) -> Result<()> {
        self.conn.execute("DELETE FROM pending", []).map_err(self.err())?;
        self.reclaim();
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
            let options = serde_json::to_string(&StoredOptions::of(&p.options)).unwrap_or_default();
            insert_package(&tx, &p.manifest, next, &options, time).map_err(&e)?;
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'next_seq'", [(next + 1).to_string()]).map_err(&e)?;
            seq = Some(next);
        }
        for id in &c.remove {
            for table in [
                "DELETE FROM packages WHERE id = ?1",
                "DELETE FROM variants WHERE package = ?1",
                "DELETE FROM blobs WHERE package = ?1",
            ] {
                tx.execute(table, [id.as_str()]).map_err(&e)?;
            }
        }
        if let Some(policy) = c.policy {
            tx.execute("UPDATE meta SET value = ?1 WHERE key = 'policy'", [policy.to_string()]).map_err(&e)?;
        }
        {
            // An update, or an insert where there is no row: never REPLACE, whose implicit
            // delete would not reach the `files_removed` trigger.
            let mut update = tx
                .prepare(
                    "UPDATE files SET component = ?2, package = ?3, sha256 = ?4, size = ?5, mode = ?6, restart = ?7 \
                     WHERE path = ?1",
                )
                .map_err(&e)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO files (path, component, package, sha256, size, mode, restart) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(&e)?;
            for (p, f) in &c.put_files {
                let row = params![
                    p.as_str(),
                    f.component.as_str(),
                    f.package.as_str(),
                    &f.sha256.0[..],
                    i64::try_from(f.size).unwrap_or(i64::MAX),
                    i64::from(f.mode.bits()),
                    f.restart
                ];
                if update.execute(row).map_err(&e)? == 0 {
                    insert.execute(row).map_err(&e)?;
                }
            }
            let mut delete = tx.prepare("DELETE FROM files WHERE path = ?1").map_err(&e)?;
            for p in &c.remove_files {
                delete.execute([p.as_str()]).map_err(&e)?;
            }
        }
        for d in &c.add_dirs {
            tx.execute("INSERT OR IGNORE INTO dirs (path) VALUES (?1)", [d.as_str()]).map_err(&e)?;
        }
        for d in &c.remove_dirs {
            tx.execute("DELETE FROM dirs WHERE path = ?1", [d.as_str()]).map_err(&e)?;
        }
        tx.execute("DELETE FROM pending", []).map_err(&e)?;
        tx.commit().map_err(&e)?;
        self.reclaim();
        Ok(seq)
    }
}

/// Inserts package `m`'s header, variants and blob list.
fn insert_package(tx: &Transaction<'_>, m: &Manifest, seq: i64, options: &str, time: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO packages (id, seq, header, options, installed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![m.package.id.as_str(), seq, json(&Header::of(m)), options, time],
    )?;
    let mut stmt =
        tx.prepare("INSERT INTO variants (package, idx, component, baseline, variant) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (i, v) in m.variants.iter().enumerate() {
        let idx = i64::try_from(i).unwrap_or(i64::MAX);
        stmt.execute(params![m.package.id.as_str(), idx, v.component.as_str(), v.baseline.as_str(), packed(v)?])?;
    }
    tx.execute(
        "INSERT INTO blobs (package, blobs) VALUES (?1, ?2)",
        params![m.package.id.as_str(), packed(&m.blobs)?],
    )?;
    Ok(())
}

/// Compact JSON; serializing these types cannot fail (every map key is a string).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Largest JSON of a variant or a blob list: no larger than a manifest.
const MAX_ROW_JSON: u64 = Limits::DEFAULT_MAX_MANIFEST_BYTES;
/// Largest JSON of a pending record: a few file records per path of a manifest.
const MAX_PENDING_JSON: u64 = 16 * Limits::DEFAULT_MAX_MANIFEST_BYTES;

/// `v` as compact JSON compressed with Zstandard, written straight into the compressor:
/// the uncompressed JSON of a large variant is never held whole.
fn packed<T: Serialize>(v: &T) -> rusqlite::Result<Vec<u8>> {
    let to_sql = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    let mut enc = zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(to_sql)?;
    serde_json::to_writer(&mut enc, v).map_err(|e| to_sql(e.into()))?;
    enc.flush().map_err(to_sql)?;
    enc.finish().map_err(to_sql)
}

/// The value [`packed`] stored, read as a stream; more than `limit` bytes of JSON is an
/// error (a damaged row cannot make the reader allocate without bound).
fn unpacked<T: DeserializeOwned>(bytes: &[u8], limit: u64) -> std::result::Result<T, String> {
    let dec = zstd::stream::Decoder::new(bytes).map_err(|e| e.to_string())?;
    let mut json = BufReader::new(dec.take(limit.saturating_add(1)));
    let v = serde_json::from_reader(&mut json).map_err(|e| e.to_string())?;
    if json.into_inner().limit() == 0 {
        return Err(format!("more than {limit} bytes of JSON"));
    }
    Ok(v)
}

/// Compresses the JSON text rows of schema 2 (`variants`, `blobs`, `pending`) in place;
/// rows that are already compressed (a package a schema-1 migration just wrote) stay.
fn convert_json_rows(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    for (table, column) in [("variants", "variant"), ("blobs", "blobs"), ("pending", "record")] {
        let rowids: Vec<i64> = {
            let sql = format!("SELECT rowid FROM {table} WHERE typeof({column}) = 'text'");
            let mut stmt = tx.prepare(&sql)?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let read = format!("SELECT {column} FROM {table} WHERE rowid = ?1");
        let write = format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1");
        for rowid in rowids {
            // The text is the JSON: compressed as it is, checked when it is read.
            let text: String = tx.query_row(&read, [rowid], |r| r.get(0))?;
            let packed = zstd::stream::encode_all(text.as_bytes(), ZSTD_LEVEL)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.execute(&write, params![rowid, packed])?;
        }
    }
    Ok(())
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Inventory { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests;
