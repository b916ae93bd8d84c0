//! `hotfix generate-docs DIR` (hidden): man pages and shell completions generated from the
//! clap definitions, so that they never drift from the command line — `DIR/man1/hotfix.1`,
//! one page per subcommand (`hotfix-install.1`, …), `hotfix-installer.1` for the
//! self-contained installers, and completions for bash, zsh, fish, elvish and PowerShell in
//! `DIR/completions/`.

use std::fs;
use std::path::Path;

use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;
use schemars::JsonSchema;
use serde::Serialize;

use super::Output;
use super::args::{Cli, INSTALLER_NAME, InstallerCli};
use crate::error::{Error, Result};

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

fn listing(dir: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .collect();
    out.sort();
    Ok(out)
}

/// Writes the man pages and completions into `dir`.
pub fn generate(dir: &Path) -> Result<Output> {
    let man = dir.join("man1");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        fs::create_dir_all(d).map_err(Error::io(d))?;
    }
    clap_mangen::generate_to(Cli::command(), &man).map_err(Error::io(&man))?;
    clap_mangen::Man::new(InstallerCli::command().name(INSTALLER_NAME)).generate_to(&man).map_err(Error::io(&man))?;
    for shell in Shell::value_variants() {
        clap_complete::generate_to(*shell, &mut Cli::command(), "hotfix", &completions)
            .map_err(Error::io(&completions))?;
    }
    let g = Generated { man: listing(&man)?, completions: listing(&completions)? };
    Ok(Output::shown(&g, 0))
}
