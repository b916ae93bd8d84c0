//! The inventory's storage: whole manifests come back as they went in, the file count stays
//! exact, schema 1 is migrated, and a load restricted to some components reads their rows
//! only.

use std::collections::BTreeSet;

use hotfix_schema::{Kind, Manifest};
use rusqlite::{Connection, params};

use super::{Commit, Header, Inventory, Pending, Reads, SCHEMA, SCHEMA_2, Touched};
use crate::engine::tests::fixtures::{V, base, gdr, hotfix, ldr, manifest_for, name, rtm, update};
use crate::engine::{ActiveFile, InstallOptions, Installed, QfeOverride};
use crate::testutil::{Scratch, commit_install};

fn with_paths(mut v: V, paths: impl IntoIterator<Item = String>) -> V {
    v.paths = paths.into_iter().collect();
    v
}

/// A baseline `RTM` of `n` components `c000`… with `files` files each (`cNNN/fI`).
fn wide_rtm(n: usize, files: usize) -> Manifest {
    let vs: Vec<V> = (0..n)
        .map(|i| {
            let c = format!("c{i:03}");
            with_paths(base(&c, "RTM", "1.0", &[]), (0..files).map(|f| format!("{c}/f{f}")))
        })
        .collect();
    manifest_for("contoso", "RTM", Kind::Baseline, Some(("RTM", 0)), &vs)
}

fn new_inventory(dir: &Scratch) -> Inventory {
    Inventory::create(&dir.path().join("inventory.db"), &name("contoso")).unwrap()
}

#[test]
fn an_installed_packages_manifest_and_options_come_back_whole() {
    let dir = Scratch::new("an_installed_packages_manifest_and_options_come_back_whole");
    let mut inv = new_inventory(&dir);
    let kb4 = update("KB4", &[gdr("kernel", "RTM", "1.4", &["KB4"]), ldr("kernel", "RTM", "1.4.1", &["KB4"])]);
    let kb1 = hotfix("KB1", &[ldr("net", "RTM", "1.1", &["KB1"])]);
    commit_install(&mut inv, rtm(), InstallOptions::default());
    commit_install(&mut inv, kb4.clone(), InstallOptions { qfe: QfeOverride::AtBaseline(name("RTM")) });
    commit_install(&mut inv, kb1.clone(), InstallOptions::default());
    let got = inv.installed().unwrap();
    let ids: Vec<&str> = got.iter().map(|p| p.installed.manifest.package.id.as_str()).collect();
    assert_eq!(ids, ["RTM", "KB4", "KB1"]);
    assert_eq!(got.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(got[0].installed, Installed::new(rtm(), InstallOptions::default()));
    assert_eq!(got[1].installed.manifest, kb4);
    assert_eq!(got[1].installed.options.qfe, QfeOverride::AtBaseline(name("RTM")));
    assert_eq!(got[2].installed.manifest, kb1);
    assert_eq!(inv.manifest(&name("KB4")).unwrap(), Some(kb4));
    assert_eq!(inv.manifest(&name("KB9")).unwrap(), None);

    inv.commit(&Commit { remove: vec![name("KB4")], ..Commit::default() }).unwrap();
    assert_eq!(inv.manifest(&name("KB4")).unwrap(), None);
    assert_eq!(inv.installed().unwrap().len(), 2);
    assert!(inv.components_of(&name("KB4"), &name("RTM")).unwrap().is_empty(), "its variant rows are gone");
}

#[test]
fn the_file_count_follows_every_insert_update_and_removal() {
    let dir = Scratch::new("the_file_count_follows_every_insert_update_and_removal");
    let mut inv = new_inventory(&dir);
    commit_install(&mut inv, wide_rtm(3, 4), InstallOptions::default());
    assert_eq!(inv.file_count().unwrap(), 12);
    let files = inv.files().unwrap();
    let (path, file) = files.iter().next().map(|(p, f)| (p.clone(), f.clone())).unwrap();
    // Rewriting a row (a relabel or a new build at the same path) keeps the count.
    let relabelled = ActiveFile { package: name("KB7"), restart: true, ..file };
    inv.commit(&Commit { put_files: vec![(&path, &relabelled)], ..Commit::default() }).unwrap();
    assert_eq!(inv.file_count().unwrap(), 12);
    assert_eq!(inv.files().unwrap().get(&path), Some(&relabelled));
    inv.commit(&Commit { remove_files: vec![path.clone()], ..Commit::default() }).unwrap();
    assert_eq!(inv.file_count().unwrap(), 11);
    inv.commit(&Commit { put_files: vec![(&path, &relabelled)], ..Commit::default() }).unwrap();
    assert_eq!(inv.file_count().unwrap(), 12);
    assert_eq!(inv.files().unwrap().len(), 12);
}

/// Schema 1 as the first release of the runtime wrote it.
const SCHEMA_1_PACKAGES: &str = "
CREATE TABLE packages (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, manifest TEXT NOT NULL,
    options TEXT NOT NULL, installed_at TEXT NOT NULL);
";

#[test]
fn a_schema_1_inventory_is_migrated_on_open_without_losing_anything() {
    let dir = Scratch::new("a_schema_1_inventory_is_migrated_on_open_without_losing_anything");
    let db = dir.path().join("inventory.db");
    let kb1 = hotfix("KB1", &[ldr("kernel", "RTM", "1.1", &["KB1"])]);
    // The files a root at RTM + KB1 has, from a schema-2 inventory of the same packages.
    let expected_files = {
        let other = Scratch::new("a_schema_1_inventory_reference");
        let mut inv = new_inventory(&other);
        commit_install(&mut inv, rtm(), InstallOptions::default());
        commit_install(&mut inv, kb1.clone(), InstallOptions { qfe: QfeOverride::Any });
        inv.files().unwrap()
    };
    {
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(SCHEMA_1_PACKAGES).unwrap();
        for (k, v) in [("schema", "1"), ("product", "contoso"), ("policy", "auto"), ("next_seq", "3")] {
            conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![k, v]).unwrap();
        }
        for (seq, m, options) in [(1, rtm(), "{}"), (2, kb1.clone(), r#"{"qfe":"QFE"}"#)] {
            let json = String::from_utf8(m.to_json()).unwrap();
            conn.execute(
                "INSERT INTO packages (id, seq, manifest, options, installed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.package.id.as_str(), seq, json, options, "2024-01-01T00:00:00Z"],
            )
            .unwrap();
        }
        for (path, f) in &expected_files {
            conn.execute(
                "INSERT INTO files (path, component, package, sha256, size, mode, restart) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    path.as_str(),
                    f.component.as_str(),
                    f.package.as_str(),
                    f.sha256.to_hex(),
                    f.size as i64,
                    i64::from(f.mode.bits()),
                    f.restart
                ],
            )
            .unwrap();
        }
    }
    let inv = Inventory::open(&db).unwrap();
    assert_eq!(inv.meta("schema").unwrap(), "3", "migrated through schema 2");
    let got = inv.installed().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].installed.manifest, rtm());
    assert_eq!(got[1].installed, Installed::new(kb1, InstallOptions { qfe: QfeOverride::Any }));
    assert_eq!(got[1].seq, 2);
    assert_eq!(inv.files().unwrap(), expected_files);
    assert_eq!(inv.file_count().unwrap(), expected_files.len() as u64);
    drop(inv);
    // Opening it again finds schema 3 and changes nothing.
    let inv = Inventory::open(&db).unwrap();
    assert_eq!(inv.installed().unwrap().len(), 2);
}

#[test]
fn an_inventory_of_a_newer_schema_is_refused_naming_both_versions() {
    let dir = Scratch::new("an_inventory_of_a_newer_schema_is_refused_naming_both_versions");
    let db = dir.path().join("inventory.db");
    drop(Inventory::create(&db, &name("contoso")).unwrap());
    Connection::open(&db).unwrap().execute("UPDATE meta SET value = '4' WHERE key = 'schema'", []).unwrap();
    let e = Inventory::open(&db).err().expect("refused").to_string();
    assert!(e.contains("schema version 4, this hotfix reads 3"), "{e}");
}

#[test]
fn a_load_restricted_to_one_component_reads_only_that_components_variants() {
    let dir = Scratch::new("a_load_restricted_to_one_component_reads_only_that_components_variants");
    let mut inv = new_inventory(&dir);
    commit_install(&mut inv, wide_rtm(100, 10), InstallOptions::default());
    let hf = hotfix(
        "HF1",
        &[
            with_paths(ldr("c042", "RTM", "1.1", &["HF1"]), (0..10).map(|f| format!("c042/f{f}"))),
            ldr("c042", "SP1", "2.1", &["HF1"]),
        ],
    );
    commit_install(&mut inv, hf, InstallOptions::default());
    let whole = inv.installed().unwrap();
    let inv = Inventory::open(&dir.path().join("inventory.db")).unwrap();
    let scope: BTreeSet<_> = [name("c042")].into();
    let got = inv.installed_restricted(&scope, &name("RTM")).unwrap();
    assert_eq!(
        inv.reads(),
        Reads { packages: 2, variants: 2, variant_files: 20, ..Reads::default() },
        "two headers, and the RTM variants of c042 (the baseline's and HF1's), nothing else"
    );
    for (g, w) in got.iter().zip(&whole) {
        let expected = w.installed.restrict(|v| v.component.as_str() == "c042" && v.baseline.as_str() == "RTM");
        assert_eq!(g.installed, expected);
        assert_eq!((g.seq, &g.installed_at), (w.seq, &w.installed_at));
    }
    assert_eq!(got[0].installed.variant_indices, Some(vec![42]));
    assert_eq!(inv.components_of(&name("RTM"), &name("RTM")).unwrap().len(), 100);
    assert_eq!(inv.reads().component_names, 100);
    assert_eq!(inv.reads().variants, 2, "component names come from the index, not the variants");
}

/// The packages `(seq, manifest, options)` and `files` written as schema 2 kept them: JSON
/// text, hex digests, a rowid `files` table; with `pending` as its pending record.
fn write_schema_2(
    db: &std::path::Path,
    packages: &[(i64, Manifest, &str)],
    files: &super::BTreeMap<hotfix_schema::RelPath, ActiveFile>,
    pending: &Pending,
) {
    let conn = Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch(SCHEMA_2).unwrap();
    for (k, v) in [("schema", "2"), ("product", "contoso"), ("policy", "auto"), ("next_seq", "3")] {
        conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", params![k, v]).unwrap();
    }
    let json = |v: &dyn erased::Json| v.json();
    for (seq, m, options) in packages {
        let id = m.package.id.as_str();
        conn.execute(
            "INSERT INTO packages (id, seq, header, options, installed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, seq, json(&Header::of(m)), options, "2024-01-01T00:00:00Z"],
        )
        .unwrap();
        for (i, v) in m.variants.iter().enumerate() {
            conn.execute(
                "INSERT INTO variants (package, idx, component, baseline, variant) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, i as i64, v.component.as_str(), v.baseline.as_str(), json(v)],
            )
            .unwrap();
        }
        conn.execute("INSERT INTO blobs (package, blobs) VALUES (?1, ?2)", params![id, json(&m.blobs)]).unwrap();
    }
    for (path, f) in files {
        conn.execute(
            "INSERT INTO files (path, component, package, sha256, size, mode, restart) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![path.as_str(), f.component.as_str(), f.package.as_str(), f.sha256.to_hex(), f.size as i64, i64::from(f.mode.bits()), f.restart],
        )
        .unwrap();
    }
    conn.execute("INSERT INTO pending (id, record) VALUES (1, ?1)", [json(pending)]).unwrap();
}

mod erased {
    /// Serializes anything as schema 2 did (compact JSON text).
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}

#[test]
fn a_schema_2_inventory_is_migrated_to_compact_rows_without_losing_anything() {
    let dir = Scratch::new("a_schema_2_inventory_is_migrated_to_compact_rows_without_losing_anything");
    let db = dir.path().join("inventory.db");
    let kb1 = hotfix("KB1", &[ldr("kernel", "RTM", "1.1", &["KB1"])]);
    let (expected, expected_files) = {
        let other = Scratch::new("a_schema_2_inventory_reference");
        let mut inv = new_inventory(&other);
        commit_install(&mut inv, rtm(), InstallOptions::default());
        commit_install(&mut inv, kb1.clone(), InstallOptions { qfe: QfeOverride::Any });
        (inv.installed().unwrap(), inv.files().unwrap())
    };
    let (path, file) = expected_files.iter().next().map(|(p, f)| (p.clone(), f.clone())).unwrap();
    let pending = Pending {
        op: "install KB9".into(),
        started: "2024-01-02T00:00:00Z".into(),
        package: Some(name("KB9")),
        touched: vec![Touched { path, old: Some((&file).into()), new: None }],
        created_dirs: Vec::new(),
    };
    write_schema_2(&db, &[(1, rtm(), "{}"), (2, kb1, r#"{"qfe":"QFE"}"#)], &expected_files, &pending);

    let inv = Inventory::open(&db).unwrap();
    assert_eq!(inv.meta("schema").unwrap(), "3");
    let got = inv.installed().unwrap();
    assert_eq!(got.len(), 2);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            (g.seq, &g.installed.manifest, &g.installed.options),
            (e.seq, &e.installed.manifest, &e.installed.options)
        );
    }
    assert_eq!(inv.files().unwrap(), expected_files);
    assert_eq!(inv.file_count().unwrap(), expected_files.len() as u64);
    assert_eq!(inv.pending().unwrap(), Some(pending));
    let kinds: Vec<String> = inv
        .conn
        .prepare("SELECT typeof(variant) FROM variants UNION SELECT typeof(blobs) FROM blobs UNION SELECT typeof(sha256) FROM files")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kinds, ["blob"], "every JSON row compressed, every digest binary");
    let auto_vacuum: i64 = inv.conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
    assert_eq!(auto_vacuum, 2, "incremental auto-vacuum");
    drop(inv);
    // A second open finds schema 3 and reads the same.
    let inv = Inventory::open(&db).unwrap();
    assert_eq!(inv.files().unwrap(), expected_files);
}

#[test]
fn a_committed_transaction_gives_back_the_pages_of_its_pending_record() {
    let dir = Scratch::new("a_committed_transaction_gives_back_the_pages_of_its_pending_record");
    let mut inv = new_inventory(&dir);
    commit_install(&mut inv, wide_rtm(20, 500), InstallOptions::default());
    let files = inv.files().unwrap();
    // A pending record of every file, as a big transaction writes it, then the commit.
    let touched =
        files.iter().map(|(p, f)| Touched { path: p.clone(), old: Some(f.into()), new: Some(f.into()) }).collect();
    let pending =
        Pending { op: "install X".into(), started: String::new(), package: None, touched, created_dirs: Vec::new() };
    inv.set_pending(&pending).unwrap();
    inv.commit(&Commit::default()).unwrap();
    let free: i64 = inv.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
    assert_eq!(free, 0, "no free pages kept");
    // Removing the package gives back its variant rows too.
    let before: i64 = inv.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    inv.commit(&Commit {
        remove: vec![name("RTM")],
        remove_files: files.keys().cloned().collect(),
        ..Commit::default()
    })
    .unwrap();
    let after: i64 = inv.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let free: i64 = inv.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
    assert!(after < before / 2 && free == 0, "pages {before} -> {after}, {free} free");
}
