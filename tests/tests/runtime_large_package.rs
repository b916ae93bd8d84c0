//! What the runtime keeps for a package of many files, end to end through the `hotfix`
//! binary (issue #10 §6): the log line of an install of 20,000 files is a summary — the
//! counts and the first 100 paths — and the inventory grows with the file records it holds,
//! not with copies of the manifest. No timing is asserted; `bench/manyfiles.sh` measures
//! time and memory at 100,000 and 200,000 files.

use std::fs;
use std::path::Path;

use hotfix_tests::fixtures;
use hotfix_tests::root::{Kit, hotfix};

const FILES: usize = 20_000;
/// Paths the runtime may list in one log line, of each kind (`oplog::LOG_PATHS`).
const LOG_PATHS: usize = 100;

fn path_of(i: usize) -> String {
    format!(
        "share/many/locale-resources/group-{:03}/bucket-{}/resource-{i:06}.translation-data",
        i / 1000,
        i / 100 % 10
    )
}

/// A baseline RTM of one component with `FILES` small files (64 distinct contents).
fn many_files_baseline(kit: &Kit) -> std::path::PathBuf {
    for i in 0..FILES {
        fixtures::write(
            kit.path(),
            &format!("rtm/{}", path_of(i)),
            &format!("content {}\n", i % 64).repeat(1 + i % 64),
        );
    }
    let spec = fixtures::write(
        kit.path(),
        "rtm.toml",
        r#"[package]
id = "RTM"
kind = "baseline"
product = "contoso"
title = "Many small files"
baseline = { name = "RTM", level = 0 }

[[variant]]
component = "bulk"
version = "1.0"
dir = "rtm"
"#,
    );
    kit.build(&spec, "rtm")
}

fn inventory_bytes(root: &Path) -> u64 {
    ["inventory.db", "inventory.db-wal", "inventory.db-shm"]
        .iter()
        .filter_map(|f| fs::metadata(root.join(".servicing").join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn installing_twenty_thousand_files_logs_a_bounded_line_and_keeps_an_inventory_proportional_to_its_records() {
    let kit = Kit::new("large-package");
    let pkg = many_files_baseline(&kit);
    let root = kit.root("root");
    let log = root.join(".servicing/log");
    let log_before = fs::read_to_string(&log).unwrap();

    let out = hotfix(&root, ["-q".as_ref(), "install".as_ref(), pkg.as_os_str()]);
    assert!(out.code == 0 || out.code == 3, "install exited {}: {}", out.code, out.stderr);
    assert!(fs::metadata(root.join(path_of(FILES - 1))).unwrap().is_file());

    // The log line: counts, the first 100 paths, how many it left out.
    let text = fs::read_to_string(&log).unwrap();
    let line = text.strip_prefix(log_before.as_str()).expect("the log is appended to").trim_end();
    assert_eq!(line.lines().count(), 1, "one line per operation");
    let longest_path = path_of(FILES - 1).len();
    assert!(line.len() < 2 * LOG_PATHS * (longest_path + 3) + 4096, "a {}-byte log line for {FILES} files", line.len());
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["written"], FILES);
    assert_eq!(entry["files_written"].as_array().unwrap().len(), LOG_PATHS);
    assert_eq!(entry["files_written"][0], path_of(0));
    assert_eq!(entry["files_omitted"], FILES - LOG_PATHS);
    assert_eq!(entry["result"], "ok");

    // The inventory: one record per file — its path and about 100 bytes besides (owner,
    // package, a 32-byte digest, size, mode) — with room for the b-tree's slack, plus the
    // variant's compressed file list. Schema 2 took 22 MB here: the file list as JSON,
    // the paths again in a second index, hex digests, the pending record's freed pages.
    let records: u64 = (0..FILES).map(|i| path_of(i).len() as u64 + 100).sum();
    let size = inventory_bytes(&root);
    assert!(size <= records * 3 / 2 + (1 << 20), "inventory of {size} bytes for {records} bytes of records");

    // A read-only command reads it back whole.
    let out = hotfix(&root, ["check"]);
    assert_eq!(out.code, 0, "check: {}{}", out.stdout, out.stderr);
}
