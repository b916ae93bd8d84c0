//! `hotfix`: the servicing runtime's command line. Rewrites Windows-style switches, parses
//! flags, calls the library, prints, and maps every error to its exit code in one place
//! (`main`).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hotfix_runtime::engine::{BranchPolicy, QfeOverride};
use hotfix_runtime::ops::change::{self, InstallRequest};
use hotfix_runtime::ops::{Access, Recovered, Session, init, maintain, view};
use hotfix_runtime::{Error, Result, switches};
use hotfix_schema::Name;
use serde::Serialize;

/// Services a system root from hotfix packages: picks GDR or LDR per component, installs
/// transactionally, keeps every build in a store, uninstalls in any order.
#[derive(Parser)]
#[command(name = "hotfix", version, about, long_about = None)]
struct Cli {
    /// The system root to service.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// If another servicing operation holds the root, wait for it instead of exiting 8.
    #[arg(long, global = true)]
    wait: bool,
    /// The value of a /B: switch (rewritten from `/B:VALUE` before parsing; install only).
    #[arg(long = "b-switch", global = true, hide = true)]
    b_switch: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum BranchArg {
    /// LDR (QFE) for this package's components: same as /B:QFE.
    Qfe,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    /// Every component on LDR.
    Ldr,
    /// The servicing rule decides per component.
    Auto,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make DIR a servicing root for a product, trusting a signing key.
    Init {
        /// The product the root holds.
        #[arg(long)]
        product: String,
        /// A public key (SPKI PEM) trusted to sign packages.
        #[arg(long)]
        trust: PathBuf,
    },
    /// Install a package (also: /B:QFE, /B:<BASELINE>QFE).
    Install {
        /// The package file.
        pkg: PathBuf,
        /// Put the package's components on LDR (same as /B:QFE).
        #[arg(long, value_enum)]
        branch: Option<BranchArg>,
        /// Accept a prerelease package.
        #[arg(long)]
        allow_prerelease: bool,
    },
    /// Uninstall a package, in any order.
    Uninstall {
        /// The package id.
        id: String,
    },
    /// List the installed packages.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Baseline, and per component the branch and why, version, fixes, package.
    Status {
        /// Only this component.
        component: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Is a fix present? Exit 0 if an active build contains it, 9 if none does.
    Query {
        /// The fix id, e.g. KB123456.
        #[arg(long)]
        fix: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The persistent branch policy.
    Policy {
        #[command(subcommand)]
        what: PolicyCmd,
    },
    /// Compare every live file with the inventory, and the store with the packages.
    Check {
        /// Restore differing files from the store.
        #[arg(long)]
        repair: bool,
    },
    /// Delete store blobs no installed package references.
    Cleanup {
        /// First make the active state permanent: superseded packages can no longer be uninstalled.
        #[arg(long)]
        reset_base: bool,
    },
    /// The keys trusted to sign packages.
    Trust {
        #[command(subcommand)]
        what: TrustCmd,
    },
    /// Roll back an interrupted servicing operation.
    Recover,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Force LDR on every component, or let the servicing rule decide.
    Branch {
        /// `ldr` or `auto`.
        #[arg(value_enum)]
        value: PolicyArg,
    },
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Trust a public key (SPKI PEM).
    Add {
        /// The key file.
        key: PathBuf,
    },
    /// List the trusted keys.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a key, by name or key id.
    Remove {
        /// The key's name or id.
        key: String,
    },
}

/// What a command prints and its exit code.
struct Output {
    text: String,
    code: u8,
}

impl Output {
    fn ok(text: impl ToString) -> Output {
        Output { text: text.to_string(), code: 0 }
    }

    fn shown<T: std::fmt::Display + Serialize>(v: &T, json: bool, code: u8) -> Output {
        let text =
            if json { format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()) } else { v.to_string() };
        Output { text, code }
    }
}

fn name(s: &str, what: &str) -> Result<Name> {
    Name::new(s).map_err(|e| Error::Usage(format!("{what}: {e}")))
}

fn note_recovery(r: &Option<Recovered>) {
    if let Some(r) = r {
        eprintln!(
            "hotfix: rolled back the interrupted `{}` (started {}): {} files restored, {} removed",
            r.op, r.started, r.done.restored, r.done.removed
        );
    }
}

fn open(root: &Path, what: &str, access: Access) -> Result<Session> {
    let s = Session::open(root, what, access)?;
    note_recovery(&s.recovered);
    Ok(s)
}

fn run(cli: &Cli) -> Result<Output> {
    let root = cli.root.as_deref().ok_or_else(|| Error::Usage("--root DIR is required: the root to service".into()))?;
    let write = Access::Write { wait: cli.wait };
    if cli.b_switch.is_some() && !matches!(cli.cmd, Cmd::Install { .. }) {
        return Err(Error::Usage("the /B: switch applies to install only".into()));
    }
    match &cli.cmd {
        Cmd::Init { product, trust } => {
            Ok(Output::ok(format!("{}\n", init::init(root, &name(product, "--product")?, trust)?)))
        }
        Cmd::Install { pkg, branch, allow_prerelease } => {
            let qfe = match (branch, &cli.b_switch) {
                (Some(_), Some(_)) => return Err(Error::Usage("give either --branch qfe or /B:, not both".into())),
                (Some(BranchArg::Qfe), None) => QfeOverride::Any,
                (None, Some(v)) => QfeOverride::from_switch_value(v).map_err(|e| Error::Usage(e.to_string()))?,
                (None, None) => QfeOverride::Off,
            };
            let mut s = open(root, &format!("install {}", pkg.display()), write)?;
            let req = InstallRequest { package: pkg, qfe, allow_prerelease: *allow_prerelease };
            let report = change::install(&mut s, &req)?;
            warn(&report.warnings);
            Ok(Output { text: report.to_string(), code: report.exit_code() })
        }
        Cmd::Uninstall { id } => {
            let id = name(id, "package id")?;
            let mut s = open(root, &format!("uninstall {id}"), write)?;
            let report = change::uninstall(&mut s, &id)?;
            warn(&report.warnings);
            Ok(Output { text: report.to_string(), code: report.exit_code() })
        }
        Cmd::List { json } => Ok(Output::shown(&view::list(&open(root, "list", Access::Read)?)?, *json, 0)),
        Cmd::Status { component, json } => {
            let c = component.as_deref().map(|c| name(c, "component")).transpose()?;
            Ok(Output::shown(&view::status(&open(root, "status", Access::Read)?, c.as_ref())?, *json, 0))
        }
        Cmd::Query { fix, json } => {
            let fix = name(fix, "--fix")?;
            let v = view::query(&open(root, "query", Access::Read)?, &fix)?;
            let code = v.exit_code();
            Ok(Output::shown(&v, *json, code))
        }
        Cmd::Policy { what: PolicyCmd::Branch { value } } => {
            let policy = match value {
                PolicyArg::Ldr => BranchPolicy::ForceLdr,
                PolicyArg::Auto => BranchPolicy::Auto,
            };
            let mut s = open(root, &format!("policy branch {policy}"), write)?;
            let report = change::set_policy(&mut s, policy)?;
            warn(&report.warnings);
            Ok(Output { text: report.to_string(), code: report.exit_code() })
        }
        Cmd::Check { repair } => {
            let access = if *repair { write } else { Access::Read };
            let report = maintain::check(&open(root, "check", access)?, *repair)?;
            Ok(Output { text: report.to_string(), code: report.exit_code() })
        }
        Cmd::Cleanup { reset_base } => {
            let mut s = open(root, "cleanup", write)?;
            if *reset_base {
                eprintln!(
                    "hotfix: warning: --reset-base makes the active state permanent: packages it supersedes are \
                     dropped from the inventory and can no longer be uninstalled"
                );
            }
            Ok(Output::ok(maintain::cleanup(&mut s, *reset_base)?))
        }
        Cmd::Trust { what } => {
            let s = open(root, "trust", write)?;
            match what {
                TrustCmd::Add { key } => Ok(Output::ok(format!("{}\n", init::trust_add(&s.layout, key)?))),
                TrustCmd::List { json } => Ok(Output::shown(&init::trust_list(&s.layout)?, *json, 0)),
                TrustCmd::Remove { key } => Ok(Output::ok(format!("{}\n", init::trust_remove(&s.layout, key)?))),
            }
        }
        Cmd::Recover => {
            let s = Session::open(root, "recover", write)?;
            Ok(Output::ok(match &s.recovered {
                Some(r) => format!(
                    "Rolled back the interrupted `{}` (started {}): {} files restored, {} removed.\n",
                    r.op, r.started, r.done.restored, r.done.removed
                ),
                None => "Nothing to recover: no servicing operation was interrupted.\n".to_string(),
            }))
        }
    }
}

fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("hotfix: warning: {w}");
    }
}

fn main() -> ExitCode {
    let args = match switches::preprocess(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hotfix: error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(&cli) {
        Ok(out) => {
            if !cli.quiet {
                print!("{}", out.text);
            }
            ExitCode::from(out.code)
        }
        Err(e) => {
            eprintln!("hotfix: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
