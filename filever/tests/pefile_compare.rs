//! Independent reader comparison: `pefile` (Python, run through `tests/pefile_dump.py` in the
//! venv made by `tests/pefile-venv.sh`) against filever, over the corpus PE files and the
//! libwine set. Any difference in the fixed file / product version or in any string table
//! (language key, every key and value, in order) fails the test, except the narrow, documented
//! exceptions below. Runs when the venv's python exists (`FILEVER_PEFILE_PYTHON`, default
//! `/tmp/hotfix-corpus/pefile-venv/bin/python`); skips with a message otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PYTHON_DEFAULT: &str = "/tmp/hotfix-corpus/pefile-venv/bin/python";
const DUMP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pefile_dump.py");

/// Differences where pefile is wrong, checked against the bytes: (file name, exact difference
/// text). Keep this list narrow: one entry per file and difference.
const PEFILE_IS_WRONG: &[(&str, &str)] = &[];

/// A string table as compared: lowercased language key, entries with pefile's dict semantics
/// (a repeated key keeps its first position and takes the last value).
type Table = (String, Vec<(String, String)>);

fn dict_like(entries: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (key, value) in entries {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => out.push((key.clone(), value.clone())),
        }
    }
    out
}

/// filever's choice among several version resources: first name, then neutral, en-US, other
/// English, any language (see `src/pe.rs`).
fn rank(lang: Option<u64>) -> u8 {
    match lang {
        None | Some(0) => 0,
        Some(0x0409) => 1,
        Some(lang) if lang & 0x3ff == 0x09 => 2,
        Some(_) => 3,
    }
}

fn pefile_choice(resources: &[Value]) -> Option<&Value> {
    let mut ordered: Vec<&Value> = resources.iter().collect();
    ordered.sort_by_key(|r| (r["name_index"].as_u64(), rank(r["lang"].as_u64())));
    ordered.into_iter().find(|r| r["parsed"].as_bool() == Some(true))
}

fn pefile_tables(resource: &Value) -> Vec<Table> {
    let tables = resource["tables"].as_array().cloned().unwrap_or_default();
    tables
        .iter()
        .map(|table| {
            let entries: Vec<(String, String)> = table["entries"]
                .as_array()
                .map(|pairs| {
                    pairs
                        .iter()
                        .map(|pair| {
                            (pair[0].as_str().unwrap_or("").to_string(), pair[1].as_str().unwrap_or("").to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            (table["lang_codepage"].as_str().unwrap_or("").to_ascii_lowercase(), entries)
        })
        .collect()
}

/// The differences between pefile's and filever's reading of one file.
fn differences(path: &Path, dumped: &Value) -> Vec<String> {
    let info = match filever::read_path(path) {
        Ok(info) => info,
        Err(err) => return vec![format!("filever: {err}")],
    };
    if let Some(error) = dumped["error"].as_str() {
        return vec![format!("pefile failed: {error}")];
    }
    let resources = dumped["resources"].as_array().cloned().unwrap_or_default();
    let Some(chosen) = pefile_choice(&resources) else {
        if info.fixed.is_some() || !info.string_tables.is_empty() {
            return vec!["pefile found no version resource, filever did".to_string()];
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    let theirs_fixed = chosen["fixed"]["file_version"].as_str().zip(chosen["fixed"]["product_version"].as_str());
    let ours_fixed = info.fixed.as_ref().map(|f| (f.file_version.as_str(), f.product_version.as_str()));
    if theirs_fixed != ours_fixed {
        out.push(format!("fixed versions: pefile {theirs_fixed:?}, filever {ours_fixed:?}"));
    }
    let theirs = pefile_tables(chosen);
    let ours: Vec<Table> =
        info.string_tables.iter().map(|t| (t.lang_codepage.to_ascii_lowercase(), dict_like(&t.entries))).collect();
    if theirs.len() != ours.len() {
        out.push(format!("string tables: pefile {}, filever {}", theirs.len(), ours.len()));
    }
    for (index, (their, our)) in theirs.iter().zip(&ours).enumerate() {
        if their.0 != our.0 {
            out.push(format!("table {index} key: pefile {:?}, filever {:?}", their.0, our.0));
        }
        if their.1.len() != our.1.len() {
            out.push(format!("table {index} entries: pefile {}, filever {}", their.1.len(), our.1.len()));
        }
        for (t, o) in their.1.iter().zip(&our.1) {
            if t != o {
                out.push(format!("table {index} entry: pefile {t:?}, filever {o:?}"));
            }
        }
    }
    out
}

/// Writes hand-made PE files into `dir`: PE32 and PE32+, a named resource, several languages
/// (filever must pick en-US, as `pefile_choice` expects), a `5.01`-style string.
fn hand_made_files(dir: &Path) -> Vec<PathBuf> {
    use common::{ResName, pe_file, rsrc_section, version_blob};
    let blob = |lang_cp: &str, fv: &str| version_blob([5, 1, 2600, 2180], lang_cp, &[("FileVersion", fv), ("X", "")]);
    let files = [
        ("pe32.dll", pe_file(false, &rsrc_section(&[(ResName::Id(1), 0x409, blob("040904b0", "5.01.2600.2180"))]))),
        (
            "pe32_named.dll",
            pe_file(false, &rsrc_section(&[(ResName::Name("VERSION".into()), 0x407, blob("040704E4", "a (b_gdr.1)"))])),
        ),
        (
            "pe64_languages.dll",
            pe_file(
                true,
                &rsrc_section(&[
                    (ResName::Id(1), 0x407, blob("040704b0", "deutsch")),
                    (ResName::Id(1), 0x409, blob("040904b0", "english")),
                ]),
            ),
        ),
    ];
    let mut out = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Err(err) = std::fs::write(&path, bytes) {
            panic!("{}: {err}", path.display());
        }
        out.push(path);
    }
    out
}

#[test]
fn pefile_agrees_with_filever() {
    let python =
        std::env::var_os("FILEVER_PEFILE_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(PYTHON_DEFAULT));
    if !python.exists() {
        println!(
            "SKIP pefile_agrees_with_filever: {} absent (run filever/tests/pefile-venv.sh or set FILEVER_PEFILE_PYTHON)",
            python.display()
        );
        return;
    }
    // Hand-made files first: PE32, a named resource, several languages (what the real sets lack).
    let scratch = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("tempdir: {err}"),
    };
    let mut files = hand_made_files(scratch.path());
    let hand_made_count = files.len();
    files.extend(common::corpus_pe_files("pefile_agrees_with_filever (corpus part)").unwrap_or_default());
    let corpus_count = files.len() - hand_made_count;
    if let Some((_, wine)) = common::libwine_files("pefile_agrees_with_filever (libwine part)") {
        files.extend(wine);
    }
    if files.is_empty() {
        println!("SKIP pefile_agrees_with_filever: no PE files to compare");
        return;
    }
    let output = match Command::new(&python).arg(DUMP_SCRIPT).args(&files).output() {
        Ok(output) => output,
        Err(err) => panic!("cannot run {}: {err}", python.display()),
    };
    assert!(output.status.success(), "pefile_dump.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let dumped: Vec<Value> = match serde_json::from_slice(&output.stdout) {
        Ok(dumped) => dumped,
        Err(err) => panic!("pefile_dump.py output is not JSON: {err}"),
    };
    assert_eq!(dumped.len(), files.len());
    let (mut with_version, mut excused, mut failures) = (0usize, 0usize, Vec::new());
    for (path, dumped) in files.iter().zip(&dumped) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if dumped["resources"].as_array().is_some_and(|r| !r.is_empty()) {
            with_version += 1;
        }
        for difference in differences(path, dumped) {
            if PEFILE_IS_WRONG.iter().any(|(file, text)| *file == name && *text == difference) {
                excused += 1;
            } else {
                failures.push(format!("{name}: {difference}"));
            }
        }
    }
    // The comparison itself must notice a changed value and a changed fixed version.
    let sample = files
        .iter()
        .zip(&dumped)
        .find(|(_, d)| pefile_choice(d["resources"].as_array().map_or(&[], Vec::as_slice)).is_some());
    if let Some((path, dumped)) = sample {
        let mut altered = dumped.clone();
        for resource in altered["resources"].as_array_mut().into_iter().flatten() {
            resource["fixed"]["file_version"] = Value::from("9.9.9.9");
            if let Some(entry) = resource.pointer_mut("/tables/0/entries/0/1") {
                *entry = Value::from("changed");
            }
        }
        assert_eq!(differences(path, &altered).len(), 2, "{}", path.display());
    }
    println!(
        "pefile comparison: {} files ({hand_made_count} hand-made, {corpus_count} corpus, {} libwine), \
         {with_version} with a version resource, {excused} documented pefile errors, {} differences",
        files.len(),
        files.len() - corpus_count - hand_made_count,
        failures.len()
    );
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}
