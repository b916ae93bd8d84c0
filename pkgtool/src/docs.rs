//! `pkgtool generate-docs DIR`: man pages (`DIR/man1/pkgtool.1` and one per subcommand)
//! and shell completions (`DIR/completions/`) generated from the clap definitions, so that
//! they never drift from the command line. Every page carries EXIT STATUS, ENVIRONMENT,
//! FILES and EXAMPLES sections beside clap's; what is reported is what this run wrote, not
//! whatever else is in `DIR`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Command, ValueEnum};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use pkgtool::Error;
use pkgtool::output::GeneratedDocs;

/// pkgtool's exit codes (DESIGN.md "Exit codes": the ones it uses).
const EXIT: &[(u8, &str)] = &[
    (0, "success"),
    (1, "error: the message names the file and the cause"),
    (2, "usage error"),
    (6, "integrity or trust failure: bad signature, unknown or weak key, tampered or malformed package"),
];

const ENVIRONMENT: &[(&str, &str)] = &[(
    "SOURCE_DATE_EPOCH",
    "build: the archive timestamps (Unix seconds), for reproducible builds; otherwise 1980-01-01",
)];

const FILES: &[(&str, &str)] = &[
    ("NAME.key, NAME.pub", "keygen: the secret key (PKCS#8 PEM, mode 0600) and its public half (SPKI PEM)"),
    (
        "hotfix-installer",
        "build --self-contained: the installer stub beside pkgtool, or target/installer/hotfix-installer when \
         it is as new",
    ),
];

/// Examples, by page (every page without its own shows the main page's).
const EXAMPLES: &[(&str, &str, &str)] = &[
    ("pkgtool", "pkgtool keygen vendor", "make vendor.key and vendor.pub"),
    ("pkgtool", "pkgtool build kb4.toml --key vendor.key -o KB4.pkg", "build and sign a package"),
    ("pkgtool", "pkgtool verify --deep KB4.pkg --trust vendor.pub", "check it before publishing"),
    ("pkgtool-keygen", "pkgtool keygen vendor", "make vendor.key and vendor.pub"),
    ("pkgtool-build", "pkgtool build kb4.toml --key vendor.key -o KB4.pkg", "build and sign a package"),
    ("pkgtool-build", "pkgtool build kb4.toml --key vendor.key -o KB4.run --self-contained", "an installer"),
    ("pkgtool-verify", "pkgtool verify KB4.pkg --trust vendor.pub", "every byte against the signature"),
    ("pkgtool-inspect", "pkgtool inspect KB4.pkg --trust vendor.pub --json", "the manifest, verified, as JSON"),
    ("pkgtool-extract", "pkgtool extract KB4.pkg out/ --trust vendor.pub", "to out/<baseline>/<branch>/<component>/"),
    ("pkgtool-filever", "pkgtool filever bin/kernel.dll", "version and branch tag"),
    ("pkgtool-generate-docs", "pkgtool generate-docs /usr/local/share", "man pages and completions"),
];

/// Writes the man pages and completions of `cmd` into `dir`.
pub fn generate(cmd: Command, dir: &Path) -> Result<GeneratedDocs, Error> {
    let man_dir = dir.join("man1");
    let completions = dir.join("completions");
    for d in [&man_dir, &completions] {
        std::fs::create_dir_all(d).map_err(Error::io(d))?;
    }
    let mut man = Vec::new();
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    write_pages(&cmd, &man_dir, &mut man)?;
    let mut scripts = Vec::new();
    for shell in Shell::value_variants() {
        scripts.push(
            clap_complete::generate_to(*shell, &mut cmd.clone(), "pkgtool", &completions)
                .map_err(Error::io(&completions))?,
        );
    }
    man.sort();
    scripts.sort();
    Ok(GeneratedDocs { man, completions: scripts })
}

fn write_pages(cmd: &Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), Error> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    let man = Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    render(cmd, &man, &mut page).map_err(Error::io(&path))?;
    std::fs::File::create(&path).and_then(|mut f| f.write_all(&page)).map_err(Error::io(&path))?;
    written.push(path);
    Ok(())
}

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
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }
    roff.control("PP", []);
    roff.text([roman("With --json, the same code is the exit_code field of the one JSON object printed.")]);
    for (title, entries) in [("ENVIRONMENT", ENVIRONMENT), ("FILES", FILES)] {
        roff.control("SH", [title]);
        for (term, text) in entries {
            roff.control("TP", []);
            roff.text([italic(*term)]);
            roff.text([roman(*text)]);
        }
    }
    roff.control("SH", ["EXAMPLES"]);
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let own: Vec<_> = EXAMPLES.iter().filter(|(page, ..)| *page == name).collect();
    let shown = if own.is_empty() { EXAMPLES.iter().filter(|(page, ..)| *page == "pkgtool").collect() } else { own };
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
