//! `generate-docs` of both tools (issue 12, "Switches and documentation"): it is listed in
//! `--help`, reports only the pages it wrote (not what else is in the directory), every
//! page carries EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES, and the Windows-style switch
//! table renders in `man` as one entry per switch.

use std::fs;
use std::path::Path;
use std::process::Command;

use hotfix_tests::run::{pkgtool, run};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

fn json(out: &hotfix_tests::run::Outcome) -> serde_json::Value {
    out.expect_code(0);
    serde_json::from_str(&out.stdout).expect("one JSON object")
}

fn names(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| Path::new(p.as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn generate_docs_is_in_help_and_reports_only_its_own_pages() {
    assert!(run("hotfix", ["--help"]).stdout.contains("generate-docs"));
    assert!(pkgtool(["--help"]).stdout.contains("generate-docs"));
    let dir = tempfile::tempdir().unwrap();
    // Both tools write into one share directory, as a package would install them.
    let p = json(&pkgtool(["generate-docs", s(dir.path()), "--json"]));
    let h = json(&run("hotfix", ["generate-docs", s(dir.path()), "--json"]));
    let (pman, hman) = (names(&p, "man"), names(&h, "man"));
    assert!(pman.iter().all(|n| n.starts_with("pkgtool")), "{pman:?}");
    assert!(hman.iter().all(|n| n.starts_with("hotfix")), "{hman:?}");
    for (list, want) in
        [(&pman, "pkgtool.1"), (&pman, "pkgtool-build.1"), (&hman, "hotfix.1"), (&hman, "hotfix-installer.1")]
    {
        assert!(list.iter().any(|n| n == want), "{want} missing from {list:?}");
    }
    assert!(hman.iter().any(|n| n == "hotfix-generate-docs.1"), "{hman:?}");
    let on_disk = fs::read_dir(dir.path().join("man1")).unwrap().count();
    assert_eq!(on_disk, pman.len() + hman.len(), "each reports exactly the pages it wrote");
    let text = run("hotfix", ["generate-docs", s(dir.path())]);
    assert!(
        text.stdout.starts_with(&format!("Wrote {} man pages and 5 completion scripts", hman.len())),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("pkgtool"), "{}", text.stdout);
    assert_eq!(names(&h, "completions").len(), 5);

    for page in pman.iter().chain(&hman) {
        let roff = fs::read_to_string(dir.path().join("man1").join(page)).unwrap();
        for section in ["EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"] {
            assert!(
                roff.contains(&format!(".SH \"{section}\"")) || roff.contains(&format!(".SH {section}\n")),
                "{page} lacks {section}"
            );
        }
    }
}

#[test]
fn the_switch_table_renders_in_man_one_entry_per_switch() {
    let dir = tempfile::tempdir().unwrap();
    run("hotfix", ["generate-docs", s(dir.path())]).expect_code(0);
    let man = Command::new("man").arg("--version").output();
    if !man.is_ok_and(|o| o.status.success()) {
        println!("SKIP the_switch_table_renders_in_man_one_entry_per_switch: no `man` on this machine");
        return;
    }
    for page in ["hotfix.1", "hotfix-install.1", "hotfix-installer.1"] {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.path().join("man1").join(page))
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        assert!(out.status.success(), "{page}: {out:?}");
        // Drop overstrike formatting, should the man here keep it.
        let raw = String::from_utf8_lossy(&out.stdout);
        let mut text = String::new();
        for c in raw.chars() {
            if c == '\u{8}' {
                text.pop();
            } else {
                text.push(c);
            }
        }
        let section = text.split("WINDOWS-STYLE SWITCHES").nth(1).unwrap_or_else(|| panic!("{page}:\n{text}"));
        let section = section.split("EXIT STATUS").next().unwrap();
        let lines: Vec<&str> = section.lines().map(str::trim).collect();
        // Each switch starts its own line, with its long form beside it, and no line holds two.
        for (switch, long) in [
            ("/quiet", "(--quiet)"),
            ("/passive", "(--passive)"),
            ("/norestart", "(--norestart)"),
            ("/log:FILE", "(--log FILE)"),
            ("/extract:DIR", "(--extract DIR)"),
            ("/uninstall", "(--uninstall)"),
            ("/B:QFE, /B:<BASELINE>QFE", "(--branch QFE|<BASELINE>QFE)"),
            ("/whatif", "(--what-if)"),
            // Older update.exe switches, with what they become.
            ("/u", "(--passive)"),
            ("/x:DIR", "(--extract DIR)"),
            ("/warnrestart[:SECONDS]", "(--norestart)"),
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(switch) && l.ends_with(long)),
                "{page}: no entry line for {switch}:\n{section}"
            );
        }
        let two = lines.iter().find(|l| l.matches(" (--").count() > 1);
        assert!(two.is_none(), "{page}: switches run together: {two:?}");
    }
}
