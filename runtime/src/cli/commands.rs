//! `hotfix`'s own command line: every subcommand, run against the root it names.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use hotfix_schema::Name;

use super::args::{Cli, Cmd, Common, PolicyArg, PolicyCmd, TrustCmd};
use super::installer::{self, Action};
use super::{Ctx, Output, clap_exit, docs, finish, progress_for, usage_exit};
use crate::engine::BranchPolicy;
use crate::error::{Error, Result};
#[cfg(feature = "channel")]
use crate::ops::channel;
use crate::ops::{Access, Session, change, init, maintain, owner, view};
use crate::report::ChangeReport;
use crate::rootcfg;
use crate::switches::{self, Mode};

/// Runs `hotfix` with `args` (program name first).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let program = "hotfix".to_string();
    let mut subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(String::from)))
        .collect();
    subcommands.push("help".into());
    let parsed = match switches::preprocess(args.clone(), Mode::Runtime(&subcommands)) {
        Ok(a) => a,
        Err(e) => return usage_exit(&program, &e, super::asks_json(&args)),
    };
    let json = super::asks_json(&parsed);
    let cli = match Cli::try_parse_from(parsed) {
        Ok(c) => c,
        Err(e) => return clap_exit(&e, json),
    };
    super::wants_json(cli.common.json);
    let mut ctx = Ctx::new(program, &args);
    let result = run(&cli, &mut ctx);
    finish(&ctx, &cli.common, result)
}

fn name(s: &str, what: &str) -> Result<Name> {
    Name::new(s).map_err(|e| Error::Usage(format!("{what}: {e}")))
}

/// Opens the root, saying so on standard error when an interrupted operation was rolled
/// back first.
pub(crate) fn open(root: &Path, what: &str, access: Access, common: &Common) -> Result<Session> {
    let mut s = Session::open(root, what, access)?;
    if let Some(r) = &s.recovered
        && !common.quiet
    {
        eprintln!(
            "hotfix: rolled back the interrupted `{}` (started {}): {} files restored, {} removed",
            r.op, r.started, r.done.restored, r.done.removed
        );
    }
    s.progress = progress_for(common);
    Ok(s)
}

/// The output of a change, with `/norestart` and `/forcerestart` applied.
pub(crate) fn change_output(mut report: ChangeReport, common: &Common) -> Output {
    restart_switches(&mut report, common);
    let mut out = Output::shown(&report, report.exit_code());
    out.detail = Some(format!("{report}{}", report.file_list()));
    out.warnings = report.warnings.clone();
    out
}

/// Applies `/norestart` and `/forcerestart` to what a change says about restarting.
pub(crate) fn restart_switches(report: &mut ChangeReport, common: &Common) {
    if report.restart {
        let reason = report.restart_reason.take().unwrap_or_else(|| crate::report::BUILD_RESTART.to_string());
        report.restart_reason = Some(if common.norestart {
            format!("{reason}; not restarting (/norestart): restart the machine before relying on the change")
        } else {
            format!("{reason}; this tool never restarts the machine itself: restart it to complete the change")
        });
    } else if common.forcerestart && report.applied {
        report.restart = true;
        report.restart_reason = Some(
            "requested with /forcerestart; this tool never restarts the machine itself: restart it now".to_string(),
        );
    }
}

fn run(cli: &Cli, ctx: &mut Ctx) -> Result<Output> {
    let c = &cli.common;
    if c.b_switch.is_some() && !takes_branch(&cli.cmd) {
        return Err(Error::Usage("the /B: switch applies to install and update only".into()));
    }
    let changes = takes_branch(&cli.cmd) || matches!(cli.cmd, Cmd::Uninstall { .. } | Cmd::Policy { .. });
    if (c.norestart || c.forcerestart) && !changes {
        return Err(Error::Usage(
            "/norestart and /forcerestart apply to install, update, uninstall and policy only".into(),
        ));
    }
    let write = Access::Write { wait: c.wait };
    match &cli.cmd {
        Cmd::Install { pkg, opts } => {
            let action = Action::of(opts).unwrap_or(Action::Install);
            installer::package_action(c, pkg, opts, action, ctx, false)
        }
        Cmd::GenerateDocs { dir } => docs::generate(dir),
        cmd => on_root(cmd, c, &root_of(c, ctx)?, write),
    }
}

/// Whether the command installs packages (and so takes /B: and restart switches).
fn takes_branch(cmd: &Cmd) -> bool {
    #[cfg(feature = "channel")]
    if matches!(cmd, Cmd::Update { .. }) {
        return true;
    }
    matches!(cmd, Cmd::Install { .. })
}

/// The root a command without a package services.
fn root_of(c: &Common, ctx: &mut Ctx) -> Result<PathBuf> {
    let (root, source) = rootcfg::require(c.root.as_deref(), None)?;
    ctx.root = Some((root.clone(), source));
    Ok(root)
}

fn on_root(cmd: &Cmd, c: &Common, root: &Path, write: Access) -> Result<Output> {
    match cmd {
        Cmd::Init { product, trust } => Ok(Output::shown(&init::init(root, &name(product, "--product")?, trust)?, 0)),
        Cmd::Uninstall { id } => {
            let id = name(id, "package id")?;
            let mut s = open(root, &format!("uninstall {id}"), write, c)?;
            Ok(change_output(change::uninstall(&mut s, &id)?, c))
        }
        Cmd::List { id: None } => Ok(Output::shown(&view::list(&open(root, "list", Access::Read, c)?)?, 0)),
        Cmd::List { id: Some(id) } => {
            let id = name(id, "package id")?;
            Ok(Output::shown(&view::list_one(&open(root, "list", Access::Read, c)?, &id)?, 0))
        }
        Cmd::Owner { path } => Ok(Output::shown(&owner::owner(&open(root, "owner", Access::Read, c)?, root, path)?, 0)),
        Cmd::Files { name: n } => {
            let n = name(n, "package id or component")?;
            Ok(Output::shown(&owner::files(&open(root, "files", Access::Read, c)?, &n)?, 0))
        }
        Cmd::Status { component } => {
            let comp = component.as_deref().map(|x| name(x, "component")).transpose()?;
            Ok(Output::shown(&view::status(&open(root, "status", Access::Read, c)?, comp.as_ref())?, 0))
        }
        Cmd::Query { fix } => {
            let fix = name(fix, "--fix")?;
            let v = view::query(&open(root, "query", Access::Read, c)?, &fix)?;
            let code = v.exit_code();
            Ok(Output::shown(&v, code))
        }
        Cmd::Policy { what: PolicyCmd::Branch { value } } => {
            let policy = match value {
                PolicyArg::Ldr => BranchPolicy::ForceLdr,
                PolicyArg::Auto => BranchPolicy::Auto,
            };
            let mut s = open(root, &format!("policy branch {policy}"), write, c)?;
            Ok(change_output(change::set_policy(&mut s, policy)?, c))
        }
        Cmd::Check { repair, from } => {
            let access = if *repair { write } else { Access::Read };
            let mut s = open(root, "check", access, c)?;
            let reseeded = maintain::reseed(&mut s, from)?;
            let mut report = maintain::check(&s, *repair)?;
            report.reseeded = reseeded;
            let code = report.exit_code();
            Ok(Output::shown(&report, code))
        }
        Cmd::Cleanup { reset_base, yes } => {
            let mut s = open(root, "cleanup", write, c)?;
            let confirm = |ids: &[Name]| confirm_reset_base(ids, *yes, c.json);
            let mut out = Output::shown(&maintain::cleanup(&mut s, *reset_base, confirm)?, 0);
            if *reset_base {
                out.warnings.push(
                    "--reset-base makes the active state permanent: packages it supersedes are dropped from the \
                     inventory and can no longer be uninstalled"
                        .into(),
                );
            }
            Ok(out)
        }
        Cmd::Trust { what } => {
            let s = open(root, "trust", write, c)?;
            match what {
                TrustCmd::Add { key } => Ok(Output::message(init::trust_add(&s.layout, key)?)),
                TrustCmd::List => Ok(Output::shown(&init::trust_list(&s.layout)?, 0)),
                TrustCmd::Remove { key } => Ok(Output::message(init::trust_remove(&s.layout, key)?)),
            }
        }
        Cmd::Recover => {
            let s = Session::open(root, "recover", write)?;
            Ok(Output::message(match &s.recovered {
                Some(r) => format!(
                    "Rolled back the interrupted `{}` (started {}): {} files restored, {} removed.",
                    r.op, r.started, r.done.restored, r.done.removed
                ),
                None => "Nothing to recover: no servicing operation was interrupted.".to_string(),
            }))
        }
        #[cfg(feature = "channel")]
        Cmd::Subscribe { url, root_json, ring } => {
            let s = open(root, "subscribe", write, c)?;
            Ok(Output::shown(&channel::subscribe(&s, url, root_json, ring.as_deref())?, 0))
        }
        #[cfg(feature = "channel")]
        Cmd::Rollout { ring, defer_days, pause_until, resume, approve, unapprove } => {
            let names = |v: &[String]| v.iter().map(|x| name(x, "package id")).collect::<Result<Vec<_>>>();
            let pause_until = pause_until
                .as_deref()
                .map(|t| {
                    t.parse::<jiff::Timestamp>()
                        .map_err(|e| Error::Usage(format!("--pause-until {t}: not an RFC 3339 time: {e}")))
                })
                .transpose()?;
            let change = channel::SettingsChange {
                ring: ring.clone(),
                defer_days: *defer_days,
                pause_until,
                resume: *resume,
                approve: names(approve)?,
                unapprove: names(unapprove)?,
            };
            let s = open(root, "rollout", write, c)?;
            Ok(Output::shown(&channel::rollout_settings(&s, &change)?, 0))
        }
        #[cfg(feature = "channel")]
        Cmd::Unsubscribe => Ok(Output::message(channel::unsubscribe(&open(root, "unsubscribe", write, c)?)?)),
        #[cfg(feature = "channel")]
        Cmd::Scan { opts } => {
            let s = open(root, "scan", write, c)?;
            let opts = channel_opts(opts)?;
            let mut out = Output::shown(&channel::scan(&s, &opts)?, 0);
            out.warnings.extend(expired_warning(&opts));
            Ok(out)
        }
        #[cfg(feature = "channel")]
        Cmd::Update { opts, branch, auto } => {
            let qfe = match (branch, &c.b_switch) {
                (Some(_), Some(_)) => return Err(Error::Usage("give either --branch or /B:, not both".into())),
                (Some(v), None) | (None, Some(v)) => {
                    crate::engine::QfeOverride::from_switch_value(v).map_err(|e| Error::Usage(e.to_string()))?
                }
                (None, None) => crate::engine::QfeOverride::Off,
            };
            let mut opts = channel_opts(opts)?;
            opts.auto = *auto;
            let mut s = open(root, "update", write, c)?;
            let mut view = channel::update(&mut s, &opts, &qfe)?;
            for r in view.installed.iter_mut().chain(view.uninstalled.iter_mut()) {
                restart_switches(r, c);
            }
            let code = view.exit_code();
            let mut out = Output::shown(&view, code);
            out.warnings.extend(expired_warning(&opts));
            out.warnings.extend(view.installed.iter().flat_map(|r| r.warnings.iter().cloned()));
            if let Some(f) = &view.failed {
                out.warnings.push(format!("{} was not installed: {}", f.id, f.message));
            }
            Ok(out)
        }
        Cmd::Install { .. } | Cmd::GenerateDocs { .. } => {
            Err(Error::Usage("this command does not service a root by itself".into()))
        }
    }
}

#[cfg(feature = "channel")]
fn channel_opts(o: &super::args::ChannelOpts) -> Result<channel::ScanOptions> {
    Ok(channel::ScanOptions {
        hotfixes: o.hotfixes.iter().map(|h| name(h, "--hotfix")).collect::<Result<_>>()?,
        allow_prerelease: o.allow_prerelease,
        allow_expired: o.allow_expired,
        auto: false,
    })
}

#[cfg(feature = "channel")]
fn expired_warning(o: &channel::ScanOptions) -> Vec<String> {
    let mut w = Vec::new();
    if o.allow_expired {
        w.push(
            "--allow-expired: metadata past its expiry is accepted (no protection against a frozen or replayed \
             repository); logged"
                .to_string(),
        );
    }
    if let Ok(v) = std::env::var("HOTFIX_NOW") {
        w.push(format!("HOTFIX_NOW={v}: rollout decisions use that time, not the clock (a testing hook); logged"));
    }
    w
}

/// Asks before `cleanup --reset-base` makes `ids` permanent: `--yes` skips the question;
/// off a terminal (or with `--json`) there is no one to ask, so the command stops (exit 2)
/// with nothing changed.
fn confirm_reset_base(ids: &[Name], yes: bool, json: bool) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    let list = ids.iter().map(Name::as_str).collect::<Vec<_>>().join(", ");
    let what = format!(
        "--reset-base would make the active state permanent: {list} would be dropped from the inventory and could \
         no longer be uninstalled"
    );
    if json || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Usage(format!("{what}. Nothing was changed; run again with --yes to confirm")));
    }
    eprint!("{what}. Go ahead? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        answer.clear();
    }
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::Usage("--reset-base not confirmed; nothing was changed".into()))
    }
}
