//! The self-contained installer's command line, and what both command lines do with a
//! package file ([`package_action`]): install it, uninstall the package it carries,
//! extract it, or say what it is and what installing it would do (`--what-if`, `/whatif`).
//!
//! The installer first checks its own file ([`selfpkg::check_own_file`]) unless asked only
//! for help or the version. Run with no switch it never looks like success: on a terminal
//! it describes the package and asks `Install KB4 now? [y/N]`; otherwise it describes it
//! and exits 2, saying which switch installs.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use hotfix_schema::{Limits, Name};
use schemars::JsonSchema;
use serde::Serialize;

use super::args::{Common, InstallerCli, PackageOpts};
use super::commands::{change_output, open};
use super::{Ctx, Output, clap_exit, finish, progress_for, usage_exit};
use crate::engine::QfeOverride;
use crate::error::{Error, Result};
use crate::ops::Access;
use crate::ops::change::{self, InstallRequest};
use crate::ops::package::{self, PackageView};
use crate::report::ChangeReport;
use crate::rootcfg::{self, Source};
use crate::switches::{self, Mode};
use crate::{selfpkg, trust};

/// What to do with a package file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Install it.
    Install,
    /// Uninstall the package it carries.
    Uninstall,
    /// Put back the installed package it carries: its damaged or missing store blobs and
    /// live files.
    Reinstall,
    /// Extract it into a directory.
    Extract(PathBuf),
    /// Say what it is and what installing it would do.
    WhatIf,
}

impl Action {
    /// The action the options ask for explicitly, if any.
    pub fn of(opts: &PackageOpts) -> Option<Action> {
        if opts.uninstall {
            Some(Action::Uninstall)
        } else if opts.reinstall {
            Some(Action::Reinstall)
        } else if let Some(d) = &opts.extract {
            Some(Action::Extract(d.clone()))
        } else if opts.what_if {
            Some(Action::WhatIf)
        } else {
            None
        }
    }
}

/// Runs the installer stub with `args` (program name first): the installer of its own
/// file, whatever that file ends with.
pub fn stub_main(args: Vec<OsString>) -> ExitCode {
    match std::env::current_exe() {
        Ok(exe) => main(exe, args),
        Err(e) => {
            eprintln!("hotfix-installer: error: cannot find its own file (/proc/self/exe): {e}");
            ExitCode::from(1)
        }
    }
}

/// Whether the (preprocessed) arguments ask only for help or the version, which need no
/// package.
fn asks_help_or_version(parsed: &[OsString]) -> bool {
    parsed.iter().skip(1).any(|a| matches!(a.to_str(), Some("--help" | "-h" | "--version" | "-V")))
}

/// Runs the self-contained installer `exe` with `args` (program name first).
pub fn main(exe: PathBuf, args: Vec<OsString>) -> ExitCode {
    let shown = args.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_else(|| exe.display().to_string());
    let program = Path::new(&shown).file_name().map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    let parsed = match switches::preprocess(args.clone(), Mode::Installer) {
        Ok(a) => a,
        Err(e) => return usage_exit(&program, &e, super::asks_json(&args)),
    };
    if !asks_help_or_version(&parsed)
        && let Err(e) = selfpkg::check_own_file(&exe)
    {
        let e = Error::Package {
            source: Box::new(e),
            hint: ". Nothing was changed; get a fresh copy of the installer from its publisher (`pkgtool verify \
                   FILE --trust KEY.pub` checks a copy independently)"
                .into(),
        };
        return usage_exit(&program, &e, super::asks_json(&parsed));
    }
    let command = InstallerCli::command().display_name(program.clone()).bin_name(shown);
    let cli = match command.try_get_matches_from(parsed.clone()).and_then(|m| InstallerCli::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) => return clap_exit(&e, super::asks_json(&parsed)),
    };
    super::wants_json(cli.common.json);
    let c = &cli.common;
    let explicit = Action::of(&cli.opts).or_else(|| {
        let asks = cli.install
            || c.quiet
            || c.passive
            || c.norestart
            || c.forcerestart
            || c.log.is_some()
            || c.b_switch.is_some()
            || cli.opts.branch.is_some()
            || cli.opts.allow_prerelease;
        asks.then_some(Action::Install)
    });
    let mut ctx = Ctx::new(program, &args);
    let result = match explicit {
        Some(action) => package_action(c, &exe, &cli.opts, action, &mut ctx, true),
        None => bare_run(c, &exe, &cli.opts, &mut ctx),
    };
    finish(&ctx, c, result)
}

/// A run with no switch that says what to do: describe, then ask on a terminal; off a
/// terminal (or with `--json`), exit 2 saying which switch installs. A package that would
/// not install keeps the exit code installing would end with.
fn bare_run(c: &Common, exe: &Path, opts: &PackageOpts, ctx: &mut Ctx) -> Result<Output> {
    ctx.package = Some(exe.to_path_buf());
    let product = if c.root.is_none() { product_of(exe) } else { None };
    let root = rootcfg::find(c.root.as_deref(), product.as_ref())?;
    ctx.root = root.clone();
    let (view, code) = what_if_view(c, exe, opts, root, product.as_ref(), ctx, true)?;
    if code != 0 {
        return Ok(view.output(code));
    }
    let how = format!("{} /passive (or /quiet, or --install)", ctx.program_path());
    let interactive = !c.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !interactive || view.root.is_none() {
        let mut o = view.output(2);
        o.warnings.push(format!(
            "nothing was installed: no switch asked for it. To install it: {how}; --what-if (/whatif) only \
             describes it"
        ));
        return Ok(o);
    }
    super::out(&view.to_string());
    super::out(&format!("Install {} now? [y/N] ", view.package.id));
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        answer.clear();
    }
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        package_action(c, exe, opts, Action::Install, ctx, true)
    } else {
        let mut o = Output::message(format!("Nothing was installed. To install it later: {how}"));
        o.code = 2;
        Ok(o)
    }
}

/// The QFE override the options ask for.
fn qfe(common: &Common, opts: &PackageOpts) -> Result<QfeOverride> {
    match (&opts.branch, &common.b_switch) {
        (Some(_), Some(_)) => Err(Error::Usage("give either --branch or /B:, not both".into())),
        (Some(v), None) | (None, Some(v)) => QfeOverride::from_switch_value(v).map_err(|e| Error::Usage(e.to_string())),
        (None, None) => Ok(QfeOverride::Off),
    }
}

/// The package's product, read without verification, to find its configured root; `None`
/// when the file cannot be read (verification reports why later). The one read before
/// authentication (FORMAT.md §8): bounded by the format's limits, it writes nothing and
/// only chooses the root whose keys then authenticate the file before anything else.
fn product_of(pkg: &Path) -> Option<Name> {
    pkgtool::read::read_unverified(pkg, &Limits::default()).ok().map(|u| u.manifest.package.product)
}

/// Does `action` with the package file `pkg`. `installer` is true for the
/// self-contained installer's own file.
pub(crate) fn package_action(
    c: &Common,
    pkg: &Path,
    opts: &PackageOpts,
    action: Action,
    ctx: &mut Ctx,
    installer: bool,
) -> Result<Output> {
    ctx.package = Some(pkg.to_path_buf());
    let needs_product = c.root.is_none();
    let product = if needs_product { product_of(pkg) } else { None };
    let root = rootcfg::find(c.root.as_deref(), product.as_ref())?;
    ctx.root = root.clone();
    if !matches!(action, Action::Install | Action::Uninstall) && (c.norestart || c.forcerestart) {
        return Err(Error::Usage("/norestart and /forcerestart apply to installing and uninstalling only".into()));
    }
    if !matches!(action, Action::Install | Action::WhatIf) && c.b_switch.is_some() {
        return Err(Error::Usage("the /B: switch applies to installing only".into()));
    }
    let no_root = || Error::Usage(format!("no root to service: {}", rootcfg::how_to_give(product.as_ref())));
    match action {
        Action::Install | Action::Uninstall => {
            if !opts.trust.is_empty() {
                return Err(Error::Usage(
                    "--trust applies to --extract and --what-if; a root installs only what the keys it trusts \
                     signed (add one with `hotfix --root DIR trust add KEY.pub`)"
                        .into(),
                ));
            }
            let (root, _) = root.ok_or_else(no_root)?;
            let write = Access::Write { wait: c.wait };
            let report = if action == Action::Install {
                let mut s = open(&root, &format!("install {}", pkg.display()), write, c)?;
                let req = InstallRequest { package: pkg, qfe: qfe(c, opts)?, allow_prerelease: opts.allow_prerelease };
                change::install(&mut s, &req)?
            } else {
                let mut s = open(&root, &format!("uninstall {}", pkg.display()), write, c)?;
                change::uninstall_file(&mut s, pkg)?
            };
            Ok(change_output(report, c))
        }
        Action::Reinstall => {
            if !opts.trust.is_empty() {
                return Err(Error::Usage(
                    "--trust applies to --extract and --what-if; --reinstall verifies the package with the keys the \
                     root trusts"
                        .into(),
                ));
            }
            let (root, _) = root.ok_or_else(no_root)?;
            let mut s =
                open(&root, &format!("install --reinstall {}", pkg.display()), Access::Write { wait: c.wait }, c)?;
            let report = change::reinstall(&mut s, pkg)?;
            let code = report.exit_code();
            Ok(Output::shown(&report, code))
        }
        Action::Extract(dir) => {
            let mut keys = package::load_keys(&opts.trust)?;
            match &root {
                Some((r, _)) if opts.trust.is_empty() || crate::layout::Layout::new(r).db().is_file() => {
                    let s = open(r, "extract", Access::Read, c)?;
                    keys.extend(trust::keys(&s.layout)?);
                }
                _ => {}
            }
            if keys.is_empty() {
                return Err(Error::Usage(format!(
                    "/extract needs a key to verify the package with: pass --trust KEY.pub (the publisher's public \
                     key), or {}",
                    rootcfg::how_to_give(product.as_ref()).replacen(
                        "pass --root DIR",
                        "--root DIR of a root that trusts it",
                        1
                    )
                )));
            }
            let view = package::extract(pkg, &dir, &keys, progress_for(c).as_mut())?;
            Ok(Output::shown(&view, 0))
        }
        Action::WhatIf => {
            let (view, code) = what_if_view(c, pkg, opts, root, product.as_ref(), ctx, installer)?;
            Ok(view.output(code))
        }
    }
}

/// What installing would do, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WhatIfOutcome {
    /// It would install (exit 0).
    WouldInstall,
    /// Not applicable to the root (exit 4).
    NotApplicable,
    /// Already installed (exit 5).
    AlreadyInstalled,
    /// A prerelease package without `--allow-prerelease` (exit 7).
    RefusedByPolicy,
    /// It would fail: a conflict, or a refusal (exit 1).
    WouldFail,
    /// No root to judge it against.
    NoRoot,
}

/// What installing would end with.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Decision {
    /// What installing would do.
    pub outcome: WhatIfOutcome,
    /// The exit code installing would end with (0 also for `no-root`).
    pub exit_code: u8,
    /// Why it would not install, or how to give a root.
    pub reason: Option<String>,
    /// What installing would change.
    pub change: Option<ChangeReport>,
}

/// Where the root came from, as data.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RootFrom {
    /// `flag` (`--root`), `environment` (`HOTFIX_ROOT`) or `config-file`.
    pub via: RootVia,
    /// The configuration file, for `config-file`.
    pub file: Option<PathBuf>,
    /// The same in words, as the text output shows it.
    #[serde(skip)]
    pub shown: String,
}

/// How the root was given.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RootVia {
    /// `--root DIR`.
    Flag,
    /// `HOTFIX_ROOT`.
    Environment,
    /// `/etc/hotfix/<product>.root` (or under `HOTFIX_CONFIG_DIR`).
    ConfigFile,
}

impl RootFrom {
    fn of(source: &Source) -> RootFrom {
        let (via, file) = match source {
            Source::Flag => (RootVia::Flag, None),
            Source::Env => (RootVia::Environment, None),
            Source::Config(p) => (RootVia::ConfigFile, Some(p.clone())),
        };
        RootFrom { via, file, shown: source.to_string() }
    }
}

/// `--what-if`: what a package is and what installing it would do.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WhatIfView {
    /// The package.
    pub package: PackageView,
    /// The root judged against.
    pub root: Option<PathBuf>,
    /// Where the root came from.
    pub root_from: Option<RootFrom>,
    /// The decision.
    pub decision: Decision,
    /// How to install it, for the text output.
    #[serde(skip)]
    pub install_hint: Option<String>,
}

impl fmt::Display for WhatIfView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.package)?;
        let d = &self.decision;
        if let (Some(root), Some(from)) = (&self.root, &self.root_from) {
            writeln!(f, "On root {} (from {}):", root.display(), from.shown)?;
        }
        match (&d.change, &d.reason) {
            (Some(change), _) => {
                writeln!(f, "  installing it would change:")?;
                let mut lines = String::new();
                change.write_components(&mut lines)?;
                for l in lines.lines() {
                    writeln!(f, "  {l}")?;
                }
                writeln!(
                    f,
                    "    files: {} written, {} removed, {} unchanged{}",
                    change.files.written.len(),
                    change.files.removed.len(),
                    change.files.unchanged,
                    if change.restart { "; it would require a restart (exit 3)" } else { "" }
                )?;
                change.write_file_paths(f, "      ")?;
            }
            (None, Some(reason)) if d.outcome == WhatIfOutcome::NoRoot => {
                writeln!(f, "No root to judge it against: {reason}.")?
            }
            (None, Some(reason)) => writeln!(f, "  it would not install (exit {}): {reason}", d.exit_code)?,
            (None, None) => {}
        }
        write!(f, "Nothing was changed.")?;
        if let Some(hint) = &self.install_hint {
            write!(f, " To install it: {hint}")?;
        }
        writeln!(f)
    }
}

/// The `--what-if` view of `pkg` and the exit code installing would end with.
impl WhatIfView {
    /// The view with exit code `code`, and the warnings installing would give on stderr.
    fn output(&self, code: u8) -> Output {
        let mut o = Output::shown(self, code);
        if let Some(report) = &self.decision.change {
            o.warnings.extend(report.warnings.iter().cloned());
        }
        o
    }
}

fn what_if_view(
    c: &Common,
    pkg: &Path,
    opts: &PackageOpts,
    root: Option<(PathBuf, Source)>,
    product: Option<&Name>,
    ctx: &Ctx,
    installer: bool,
) -> Result<(WhatIfView, u8)> {
    let Some((root, source)) = root else {
        let keys = package::load_keys(&opts.trust)?;
        let view = package::describe(pkg, &keys, progress_for(c).as_mut())?;
        let product = product.cloned().or_else(|| Name::new(&view.product).ok());
        let reason = rootcfg::how_to_give(product.as_ref());
        let decision = Decision { outcome: WhatIfOutcome::NoRoot, exit_code: 0, reason: Some(reason), change: None };
        let v = WhatIfView { package: view, root: None, root_from: None, decision, install_hint: None };
        return Ok((v, 0));
    };
    if !opts.trust.is_empty() {
        return Err(Error::Usage(
            "--trust applies to --what-if without a root; with a root, the package is verified with the keys the \
             root trusts"
                .into(),
        ));
    }
    let mut s = open(&root, "what-if", Access::Read, c)?;
    let verified = change::verify(&mut s, pkg)?;
    let req = InstallRequest { package: pkg, qfe: qfe(c, opts)?, allow_prerelease: opts.allow_prerelease };
    let view = PackageView::new(
        pkg,
        &verified.manifest,
        verified.archive.prefix_len,
        verified.signer.id,
        Some(&verified.signer),
    );
    let decision = match change::what_if(&mut s, &verified, &req) {
        Ok(report) => {
            Decision { outcome: WhatIfOutcome::WouldInstall, exit_code: 0, reason: None, change: Some(report) }
        }
        Err(e) => {
            let outcome = match &e {
                Error::NotApplicable { .. } => WhatIfOutcome::NotApplicable,
                Error::AlreadyInstalled { .. } => WhatIfOutcome::AlreadyInstalled,
                Error::Prerelease { .. } => WhatIfOutcome::RefusedByPolicy,
                Error::Conflict { .. } | Error::Refused(_) => WhatIfOutcome::WouldFail,
                _ => return Err(e),
            };
            Decision { outcome, exit_code: e.exit_code(), reason: Some(e.to_string()), change: None }
        }
    };
    let install_hint = (decision.exit_code == 0).then(|| {
        let root_arg = if source == Source::Flag {
            format!(" --root {}", super::quote(&root.display().to_string()))
        } else {
            String::new()
        };
        if installer {
            format!("{}{root_arg} /passive (or /quiet, or --install)", ctx.program_path())
        } else {
            format!("hotfix{root_arg} install {}", super::quote(&pkg.display().to_string()))
        }
    });
    let code = decision.exit_code;
    let v =
        WhatIfView { package: view, root: Some(root), root_from: Some(RootFrom::of(&source)), decision, install_hint };
    Ok((v, code))
}
