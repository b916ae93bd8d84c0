//! The inventory's storage: whole manifests come back as they went in, the file count stays
//! exact, schema 1 is migrated, and a load restricted to some components reads their rows
//! only.

use std::collections::BTreeSet;

use hotfix_schema::{Kind, Manifest};
use rusqlite::{Connection, params};

use super::{Commit, Inventory, Reads, SCHEMA};
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
    inv.commit(&Commit { put_files: vec![(path.clone(), relabelled.clone())], ..Commit::default() }).unwrap();
    assert_eq!(inv.file_count().unwrap(), 12);
    assert_eq!(inv.files().unwrap().get(&path), Some(&relabelled));
    inv.commit(&Commit { remove_files: vec![path.clone()], ..Commit::default() }).unwrap();
    assert_eq!(inv.file_count().unwrap(), 11);
    inv.commit(&Commit { put_files: vec![(path, relabelled)], ..Commit::default() }).unwrap();
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
    assert_eq!(inv.meta("schema").unwrap(), "2");
    let got = inv.installed().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].installed.manifest, rtm());
    assert_eq!(got[1].installed, Installed::new(kb1, InstallOptions { qfe: QfeOverride::Any }));
    assert_eq!(got[1].seq, 2);
    assert_eq!(inv.files().unwrap(), expected_files);
    assert_eq!(inv.file_count().unwrap(), expected_files.len() as u64);
    drop(inv);
    // Opening it again finds schema 2 and changes nothing.
    let inv = Inventory::open(&db).unwrap();
    assert_eq!(inv.installed().unwrap().len(), 2);
}

#[test]
fn an_inventory_of_a_newer_schema_is_refused_naming_both_versions() {
    let dir = Scratch::new("an_inventory_of_a_newer_schema_is_refused_naming_both_versions");
    let db = dir.path().join("inventory.db");
    drop(Inventory::create(&db, &name("contoso")).unwrap());
    Connection::open(&db).unwrap().execute("UPDATE meta SET value = '3' WHERE key = 'schema'", []).unwrap();
    let e = Inventory::open(&db).err().expect("refused").to_string();
    assert!(e.contains("schema version 3, this hotfix reads 2"), "{e}");
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
