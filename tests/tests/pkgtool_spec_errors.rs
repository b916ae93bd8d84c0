//! Errors in a build spec or its payload: each names the spec file and line (or the
//! payload file), exits 1, and writes no package.

use std::fs;
use std::path::Path;

use hotfix_tests::fixtures;
use hotfix_tests::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Builds the small update after `edit` changed the spec text and `prepare` the payload;
/// checks the build fails naming `needle` and, when given, `spec:LINE`.
fn fails(edit: impl Fn(&str) -> String, prepare: impl Fn(&Path), needle: &str, line: Option<usize>) {
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    fs::write(&spec, edit(&fs::read_to_string(&spec).unwrap())).unwrap();
    prepare(t.path());
    let pkg = t.path().join("out.pkg");
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]);
    out.expect_code(1);
    assert!(out.stderr.contains(needle), "expected {needle:?} in: {}", out.stderr);
    if let Some(line) = line {
        assert!(out.stderr.contains(&format!("kb4.toml:{line}:")), "expected kb4.toml:{line}: in: {}", out.stderr);
    }
    assert!(!pkg.exists(), "a package was written");
}

fn nothing(_: &Path) {}

#[test]
fn a_missing_payload_dir_names_the_spec_line() {
    fails(|t| t.replace("dir = \"p/ldr\"", "dir = \"p/nope\""), nothing, "p/nope", Some(21));
}

#[test]
fn a_symlink_in_a_payload_names_the_file() {
    fails(
        |t| t.to_string(),
        |d| std::os::unix::fs::symlink("/etc/passwd", d.join("p/gdr/bin/link.dll")).unwrap(),
        "link.dll: symbolic link",
        None,
    );
}

#[test]
fn a_fifo_in_a_payload_names_the_file() {
    fails(
        |t| t.to_string(),
        |d| assert!(std::process::Command::new("mkfifo").arg(d.join("p/gdr/pipe")).status().unwrap().success()),
        "pipe: device, pipe or socket",
        None,
    );
}

#[test]
fn a_payload_file_name_with_a_backslash_names_the_file() {
    fails(|t| t.to_string(), |d| fs::write(d.join("p/gdr/bin/a\\b.dll"), "x").unwrap(), "contains a backslash", None);
}

#[test]
fn an_empty_payload_dir_is_an_empty_variant() {
    fails(
        |t| t.replace("dir = \"p/ldr\"", "dir = \"p/empty\""),
        |d| fs::create_dir(d.join("p/empty")).unwrap(),
        "empty variant",
        Some(21),
    );
}

#[test]
fn two_components_owning_one_path_is_refused() {
    fails(
        |t| {
            format!(
                "{t}\n[[variant]]\ncomponent = \"smtp\"\nbaseline = \"RTM\"\nbranch = \"gdr\"\nversion = \"1.0\"\ndir = \"p/gdr\"\n\n[[variant]]\ncomponent = \"smtp\"\nbaseline = \"RTM\"\nbranch = \"ldr\"\nversion = \"1.0\"\ndir = \"p/ldr\"\n"
            )
        },
        nothing,
        "owned by component kernel",
        Some(23),
    );
}

#[test]
fn a_hotfix_with_a_gdr_variant_is_refused_at_its_line() {
    fails(
        |t| t.replace("kind = \"update\"", "kind = \"hotfix\""),
        nothing,
        "a hotfix carries only ldr variants",
        Some(10),
    );
}

#[test]
fn a_version_that_is_not_dotted_numeric_is_refused_at_its_line() {
    fails(|t| t.replace("5.2.3790.1004", "5.2.3790-beta"), nothing, "not a dotted numeric version", Some(19));
}

#[test]
fn an_update_with_only_one_branch_is_refused() {
    fails(
        |t| {
            t.replace("branch = \"ldr\"", "branch = \"gdr\"").replace(
                "baseline = \"RTM\"\nbranch = \"gdr\"\nversion = \"5.2.3790.1004\"",
                "baseline = \"SP1\"\nbranch = \"gdr\"\nversion = \"5.2.3790.1004\"",
            )
        },
        nothing,
        "only gdr",
        Some(7),
    );
}

#[test]
fn a_gdr_fix_missing_from_ldr_is_refused() {
    fails(
        |t| t.replace("fixes = [\"KB1\", \"KB2\", \"KB3\", \"KB4\"]", "fixes = [\"KB1\", \"KB3\", \"KB4\"]"),
        nothing,
        "fix KB2 is in the gdr variant",
        Some(15),
    );
}

#[test]
fn a_duplicate_variant_is_refused() {
    fails(|t| t.replace("branch = \"ldr\"", "branch = \"gdr\""), nothing, "duplicate variant", Some(16));
}

#[test]
fn an_unknown_key_is_refused_at_its_line() {
    fails(|t| t.replace("title = ", "colour = \"blue\"\ntitle = "), nothing, "colour", Some(5));
}

#[test]
fn an_unknown_kind_is_refused_at_its_line() {
    fails(|t| t.replace("kind = \"update\"", "kind = \"rollup\""), nothing, "not baseline, update or hotfix", Some(3));
}

#[test]
fn a_bad_component_name_is_refused_at_its_line() {
    fails(
        |t| t.replacen("component = \"kernel\"", "component = \"../kernel\"", 1),
        nothing,
        "not a valid name",
        Some(8),
    );
}

#[test]
fn a_baseline_package_must_declare_its_baseline() {
    fails(|t| t.replace("kind = \"update\"", "kind = \"baseline\""), nothing, "declares its baseline", Some(3));
}

#[test]
fn a_fix_listed_twice_is_refused() {
    fails(
        |t| t.replace("fixes = [\"KB2\", \"KB4\"]", "fixes = [\"KB2\", \"KB2\"]"),
        nothing,
        "fix KB2 is listed twice",
        Some(12),
    );
}
