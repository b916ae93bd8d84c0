//! `pkgtool filever` and the packager's cross-check against what binaries say about
//! themselves: a GDR build in the LDR folder is refused, `--no-tag-check` warns instead,
//! versions come from binaries when the spec omits them, and `inspect` shows each tag.

use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::fixtures;
use hotfix_tests::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The corpus of branch-tagged PE files beside the repository, if present.
fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pe-branch-tags");
    if dir.join("testdll_sp2_gdr.dll").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/corpus/pe-branch-tags is absent");
        None
    }
}

/// An SP2 update spec whose gdr and ldr folders get the given DLLs; `version` lines are
/// omitted when `versions` is false.
fn sp2_update(dir: &Path, gdr: &Path, ldr: &Path, versions: bool) -> PathBuf {
    for (branch, src) in [("gdr", gdr), ("ldr", ldr)] {
        let to = dir.join(format!("p/{branch}/system32/testdll.dll"));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(src, &to).unwrap();
    }
    let v = |ver: &str| if versions { format!("version = \"{ver}\"\n") } else { String::new() };
    let spec = format!(
        "[package]\nid = \"KB950000\"\nkind = \"update\"\nproduct = \"srv03\"\ntitle = \"Test DLL update\"\n\n\
         [[variant]]\ncomponent = \"testdll\"\nbaseline = \"SP2\"\nbranch = \"gdr\"\n{}fixes = [\"KB950000\"]\ndir = \"p/gdr\"\n\n\
         [[variant]]\ncomponent = \"testdll\"\nbaseline = \"SP2\"\nbranch = \"ldr\"\n{}fixes = [\"KB940000\", \"KB950000\"]\ndir = \"p/ldr\"\n",
        v("5.2.3790.4354"),
        v("5.2.3790.4355")
    );
    fixtures::write(dir, "kb.toml", &spec)
}

#[test]
fn filever_shows_version_and_branch_tag_of_the_corpus_dlls() {
    let Some(c) = corpus() else { return };
    let out = pkgtool(["filever", s(&c.join("testdll_sp2_gdr.dll")), s(&c.join("testdll_sp2_qfe.dll"))]);
    out.expect_code(0);
    assert!(out.stdout.contains("5.2.3790.4354 (srv03_sp2_gdr.080813-1204)"), "{}", out.stdout);
    assert!(out.stdout.contains("baseline SP2, branch GDR"), "{}", out.stdout);
    assert!(out.stdout.contains("baseline SP2, branch LDR (qfe)"), "{}", out.stdout);
    let json = pkgtool(["filever", "--json", s(&c.join("testdll_sp2_qfe.dll"))]);
    json.expect_code(0);
    let j: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(j["files"][0]["info"]["tag"]["branch"], "ldr");
    assert_eq!(j["files"][0]["info"]["fixed"]["file_version"], "5.2.3790.4355");
}

#[test]
fn filever_exits_0_for_a_file_without_version_info_and_1_for_a_missing_file() {
    let t = tempfile::tempdir().unwrap();
    let text = fixtures::write(t.path(), "notes.txt", "hello");
    let out = pkgtool(["filever", s(&text)]);
    out.expect_code(0);
    assert!(out.stdout.contains("not a PE or ELF file"), "{}", out.stdout);
    let out = pkgtool(["filever", s(&text), s(&t.path().join("missing.dll"))]);
    out.expect_code(1);
    assert!(out.stdout.contains("notes.txt") && out.stderr.contains("missing.dll"), "{out:?}");
}

#[test]
fn build_refuses_a_gdr_build_in_the_ldr_folder_naming_file_tag_and_variant() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let gdr = c.join("testdll_sp2_gdr.dll");
    let spec = sp2_update(t.path(), &gdr, &gdr, true);
    let pkg = t.path().join("kb.pkg");
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]);
    out.expect_code(1);
    for needle in [
        "kb.toml:15:",
        "p/ldr/system32/testdll.dll",
        "srv03_sp2_gdr.080813-1204",
        "a GDR build",
        "variant testdll SP2 ldr",
    ] {
        assert!(out.stderr.contains(needle), "missing {needle:?} in {}", out.stderr);
    }
    assert!(!pkg.exists());
}

#[test]
fn build_refuses_a_build_tagged_for_another_baseline() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = sp2_update(t.path(), &c.join("testdll_sp2_gdr.dll"), &c.join("testdll_sp2_qfe.dll"), true);
    fs::write(&spec, fs::read_to_string(&spec).unwrap().replace("SP2", "SP1")).unwrap();
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&t.path().join("kb.pkg"))]);
    out.expect_code(1);
    assert!(out.stderr.contains("built for baseline SP2 but the variant is for SP1"), "{}", out.stderr);
}

#[test]
fn no_tag_check_builds_anyway_with_a_warning() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let gdr = c.join("testdll_sp2_gdr.dll");
    let spec = sp2_update(t.path(), &gdr, &gdr, true);
    let pkg = t.path().join("kb.pkg");
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg), "--no-tag-check"]);
    out.expect_code(0);
    assert!(out.stderr.contains("pkgtool: warning:") && out.stderr.contains("a GDR build"), "{}", out.stderr);
    assert!(pkg.exists());
}

#[test]
fn versions_come_from_the_binaries_when_the_spec_omits_them_and_inspect_shows_each_tag() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = sp2_update(t.path(), &c.join("testdll_sp2_gdr.dll"), &c.join("testdll_sp2_qfe.dll"), false);
    let pkg = t.path().join("kb.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    let out = pkgtool(["inspect", s(&pkg), "--trust", s(&public), "--json"]);
    out.expect_code(0);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["manifest"]["variants"][0]["version"], "5.2.3790.4354");
    assert_eq!(j["manifest"]["variants"][1]["version"], "5.2.3790.4355");
    assert_eq!(j["manifest"]["variants"][1]["files"][0]["version_string"], "5.2.3790.4355 (srv03_sp2_qfe.080814-0101)");
    let text = pkgtool(["inspect", s(&pkg)]);
    assert!(text.stdout.contains("system32/testdll.dll  5.2.3790.4354 (srv03_sp2_gdr.080813-1204)"), "{}", text.stdout);
}

#[test]
fn an_omitted_version_with_disagreeing_binaries_is_refused() {
    let Some(c) = corpus() else { return };
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = sp2_update(t.path(), &c.join("testdll_sp2_gdr.dll"), &c.join("testdll_sp2_qfe.dll"), false);
    fs::copy(c.join("testdll_sp2_qfe.dll"), t.path().join("p/ldr/system32/other.dll")).unwrap();
    fs::copy(c.join("app_sp2_gdr.exe"), t.path().join("p/ldr/system32/app.exe")).unwrap();
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&t.path().join("kb.pkg")), "--no-tag-check"]);
    out.expect_code(1);
    assert!(out.stderr.contains("its binaries disagree") && out.stderr.contains("5.2.3790.4354"), "{}", out.stderr);
}

/// Links a tiny ELF executable carrying an FDO packaging note with `file_version`.
fn elf_with_note(dir: &Path, name: &str, file_version: &str) -> Option<PathBuf> {
    let src = fixtures::write(dir, "main.c", "int main(void) { return 0; }\n");
    let out = dir.join(name);
    let meta = format!(
        "--package-metadata={{\"type\":\"deb\",\"name\":\"contoso-kernel\",\"version\":\"5.2.3790.4354\",\"fileVersion\":\"{file_version}\"}}"
    );
    let ok = std::process::Command::new("gcc")
        .args([s(&src), "-o", s(&out), "-Xlinker", &meta])
        .status()
        .is_ok_and(|st| st.success());
    if ok {
        Some(out)
    } else {
        eprintln!("skipping: gcc with --package-metadata is not available");
        None
    }
}

#[test]
fn an_elf_build_tagged_qfe_in_the_gdr_folder_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let Some(qfe) = elf_with_note(t.path(), "kernel-qfe", "5.2.3790.4354 (srv03_rtm_qfe.080814-0101)") else { return };
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    fs::copy(&qfe, t.path().join("p/gdr/bin/kernel")).unwrap();
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&t.path().join("kb.pkg"))]);
    out.expect_code(1);
    assert!(out.stderr.contains("srv03_rtm_qfe.080814-0101") && out.stderr.contains("an LDR build"), "{}", out.stderr);
}
