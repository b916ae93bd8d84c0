//! `hotfix generate-docs DIR`: man pages and shell completions generated from the clap
//! definitions, so that they never drift from the command line — `DIR/man1/hotfix.1`,
//! one page per subcommand (`hotfix-install.1`, …), `hotfix-installer.1` for the
//! self-contained installers, and completions for bash, zsh, fish, elvish and PowerShell in
//! `DIR/completions/`.
//!
//! Beside what clap knows, every page carries EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES
//! sections, and the Windows-style switch table is a real man page list (one `.TP` entry
//! per switch) instead of `--help`'s column text, which `man` would fill into one
//! paragraph. What is reported is what this run wrote, not whatever else is in `DIR`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory, ValueEnum};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use schemars::JsonSchema;
use serde::Serialize;

use super::Output;
use super::args::{Cli, INSTALLER_NAME, InstallerCli};
use super::logfile::meaning;
use crate::error::{Error, Result};
use crate::switches;

/// What was generated: the files written, by kind.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Generated {
    /// The man pages written.
    man: Vec<String>,
    /// The completion scripts written.
    completions: Vec<String>,
}

impl std::fmt::Display for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Wrote {} man pages and {} completion scripts:", self.man.len(), self.completions.len())?;
        for p in self.man.iter().chain(&self.completions) {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Examples, by the page they belong to (`hotfix` is the main page; every page also shows
/// the main page's first examples).
const EXAMPLES: &[(&str, &str, &str)] = &[
    ("hotfix", "hotfix --root /srv/contoso init --product contoso --trust vendor.pub", "make a root"),
    ("hotfix", "hotfix --root /srv/contoso install KB4.pkg", "install a package (GDR unless a hotfix asks for LDR)"),
    ("hotfix", "hotfix --root /srv/contoso install KB4.pkg /B:QFE /quiet /log:kb4.log", "the same on LDR, unattended"),
    ("hotfix", "hotfix --root /srv/contoso status --json", "baseline, branches and why, as JSON"),
    ("hotfix-install", "hotfix --root /srv/contoso install KB4.pkg --what-if", "what installing would change"),
    ("hotfix-install", "hotfix --root /srv/contoso install --reinstall KB4.pkg", "put back damaged files"),
    ("hotfix-uninstall", "hotfix --root /srv/contoso uninstall KB4", "remove a package, in any order"),
    ("hotfix-query", "hotfix --root /srv/contoso query --fix KB3 || echo absent", "exit 0 if present, 9 if absent"),
    ("hotfix-status", "hotfix --root /srv/contoso status kernel", "one component"),
    ("hotfix-list", "hotfix --root /srv/contoso list --json", "installed packages as JSON"),
    ("hotfix-policy", "hotfix --root /srv/contoso policy branch ldr", "every component on LDR"),
    ("hotfix-check", "hotfix --root /srv/contoso check --repair --from KB4.pkg", "repair store and live files"),
    ("hotfix-cleanup", "hotfix --root /srv/contoso cleanup", "delete unreferenced store blobs"),
    ("hotfix-trust", "hotfix --root /srv/contoso trust add vendor2.pub", "trust another signing key"),
    ("hotfix-recover", "hotfix --root /srv/contoso recover", "roll back an interrupted operation"),
    ("hotfix-generate-docs", "hotfix generate-docs /usr/local/share", "man pages and completions"),
    (
        "hotfix-subscribe",
        "hotfix --root /srv/contoso subscribe https://updates.example.com/contoso/ --root-json root.json --ring pilot",
        "follow the vendor's update channel",
    ),
    ("hotfix-scan", "hotfix --root /srv/contoso scan", "what the channel offers this root, and why"),
    ("hotfix-update", "hotfix --root /srv/contoso update --auto", "the scheduled job: what the rollout allows now"),
    ("hotfix-update", "hotfix --root /srv/contoso update --hotfix KB1", "install a hotfix by name"),
    ("hotfix-rollout", "hotfix --root /srv/contoso rollout --defer-days 7", "put off every package by a week"),
    (INSTALLER_NAME, "./KB4.run --what-if", "what the installer is and what it would do"),
    (INSTALLER_NAME, "./KB4.run --root /srv/contoso /quiet /norestart", "install it unattended"),
    (INSTALLER_NAME, "./KB4.run /extract:/tmp/kb4 --trust vendor.pub", "verify and unpack it"),
];

/// The environment variables the runtime reads.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("HOTFIX_ROOT", "the root to service when --root is not given"),
    (
        "HOTFIX_CONFIG_DIR",
        "the directory of <product>.root files naming a product's root (default /etc/hotfix); \
         a self-contained installer reads it when neither --root nor HOTFIX_ROOT is given",
    ),
    ("HOTFIX_CRASH_AT", "testing only: abort before the N-th durable action (the crash tests)"),
    ("HOTFIX_NOW", "testing only: the time rollout decisions are made at (RFC 3339); warned about and logged"),
    ("TMPDIR", "where update downloads packages before verifying them (a private directory, removed after)"),
];

/// The files the runtime reads and writes.
const FILES: &[(&str, &str)] = &[
    ("ROOT/.servicing/inventory.db", "the inventory (SQLite): packages, options, policy, live files"),
    ("ROOT/.servicing/store/", "every build of every installed package, content-addressed (the stash)"),
    ("ROOT/.servicing/trust/", "the public keys the root trusts"),
    ("ROOT/.servicing/log", "one JSON line per operation; past 1 MiB renamed to log.1 (one older generation)"),
    ("ROOT/.servicing/lock", "held by the one servicing operation at a time"),
    (
        "ROOT/.servicing/channel/",
        "the update channel: subscription, pinned and trusted TUF metadata, metadata cache, rollout settings",
    ),
    ("/etc/hotfix/<product>.root", "first line: the product's root, for installers run without --root"),
];

/// Writes the man pages and completions into `dir`.
pub fn generate(dir: &Path) -> Result<Output> {
    let man = dir.join("man1");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        fs::create_dir_all(d).map_err(Error::io(d))?;
    }
    let mut pages = Vec::new();
    write_pages(Cli::command(), &man, &mut pages)?;
    write_pages(InstallerCli::command().name(INSTALLER_NAME), &man, &mut pages)?;
    let mut scripts = Vec::new();
    for shell in Shell::value_variants() {
        let p = clap_complete::generate_to(*shell, &mut Cli::command(), "hotfix", &completions)
            .map_err(Error::io(&completions))?;
        scripts.push(p.display().to_string());
    }
    pages.sort();
    scripts.sort();
    let g = Generated { man: pages.iter().map(|p| p.display().to_string()).collect(), completions: scripts };
    Ok(Output::shown(&g, 0))
}

/// Writes the page of `cmd` and of each of its visible subcommands into `dir`, noting each
/// file in `written`.
fn write_pages(cmd: Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    fn each(cmd: &Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            each(sub, dir, written)?;
        }
        let man = Man::new(cmd.clone());
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        render(cmd, &man, &mut page).map_err(Error::io(&path))?;
        fs::File::create(&path).and_then(|mut f| f.write_all(&page)).map_err(Error::io(&path))?;
        written.push(path);
        Ok(())
    }
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    each(&cmd, dir, written)
}

/// One page: clap's sections, the switch list, then ours.
fn render(cmd: &Command, man: &Man, w: &mut Vec<u8>) -> std::io::Result<()> {
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    let mut roff = Roff::new();
    if cmd.get_after_help().is_some_and(|h| h.to_string() == switches::help_text()) {
        roff.control("SH", ["WINDOWS-STYLE SWITCHES"]);
        roff.text([roman(switches::TABLE_HEADING)]);
        for (shown, long, help) in switches::table() {
            roff.control("TP", []);
            roff.text([bold(shown), roman("  ("), bold(long), roman(")")]);
            roff.text([roman(help)]);
        }
        roff.control("PP", []);
        roff.text([roman(switches::REFUSED_LINE)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for code in 0..=9u8 {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(meaning(code))]);
    }
    roff.control("PP", []);
    roff.text([roman("With --json, the same code is the exit_code field of the one JSON object printed.")]);
    list(&mut roff, "ENVIRONMENT", ENVIRONMENT);
    list(&mut roff, "FILES", FILES);
    roff.control("SH", ["EXAMPLES"]);
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let own: Vec<_> = EXAMPLES.iter().filter(|(page, ..)| *page == name).collect();
    let shown = if own.is_empty() { EXAMPLES.iter().filter(|(page, ..)| *page == "hotfix").collect() } else { own };
    for (_, line, what) in shown {
        roff.control("TP", []);
        roff.text([bold(*line)]);
        roff.text([roman(*what)]);
    }
    w.write_all(roff.render().as_bytes())?;
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

fn list(roff: &mut Roff, title: &str, entries: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in entries {
        roff.control("TP", []);
        roff.text([italic(*term)]);
        roff.text([roman(*text)]);
    }
}
