//! The `hotfix` binary's command lines. [`main`] decides which one applies — the
//! self-contained installer's when the running executable carries a package
//! ([`crate::selfpkg`]), otherwise `hotfix`'s own — rewrites Windows-style switches, parses,
//! runs, prints in the mode asked for (text, `--json`, `/passive`, `/quiet`), appends
//! `/log:FILE`, and maps every error to its exit code in one place ([`finish`]).

pub mod args;
mod commands;
mod docs;
mod installer;
pub mod json;
mod logfile;

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use hotfix_schema::output::{self, Failure, Message, Success};
use serde::Serialize;

use crate::error::Error;
use crate::progress::{Bar, Progress};
use crate::rootcfg;
use crate::selfpkg;

use args::Common;

/// Runs the binary: the installer when it carries a package, `hotfix` otherwise.
pub fn main() -> ExitCode {
    crate::sys::tune_allocator();
    let args: Vec<OsString> = std::env::args_os().collect();
    match selfpkg::current() {
        Some(exe) => installer::main(exe, args),
        None => commands::main(args),
    }
}

/// Runs the installer stub (`hotfix-installer`): always the self-contained installer's
/// command line, whatever its file ends with — a damaged tail is reported (exit 6), never
/// taken for `hotfix`'s own command line.
pub fn installer_stub_main() -> ExitCode {
    crate::sys::tune_allocator();
    installer::stub_main(std::env::args_os().collect())
}

/// What a command prints and its exit code.
pub(crate) struct Output {
    /// Standard output in text mode.
    pub text: String,
    /// Standard output with `--json`: one object, with `schema` and `exit_code` fields.
    pub json: String,
    /// What `/log:FILE` records beside the header and result; the text when `None`.
    pub detail: Option<String>,
    /// The exit code.
    pub code: u8,
    /// Printed to standard error unless quiet or passive; always logged.
    pub warnings: Vec<String>,
}

impl Output {
    /// A view shown as its `Display` text or its JSON.
    pub fn shown<T: Display + Serialize>(v: &T, code: u8) -> Output {
        Output { text: v.to_string(), json: json_text(v, code), detail: None, code, warnings: Vec::new() }
    }

    /// A one-line message; its JSON is `{"message": …}`.
    pub fn message(text: impl Display) -> Output {
        let text = text.to_string();
        let json = json_text(&Message { message: text.clone() }, 0);
        Output { text: format!("{text}\n"), json, detail: None, code: 0, warnings: Vec::new() }
    }
}

/// Whether this run prints JSON (`--json`): set once the command line is parsed, so that
/// a run that prints text does not render a JSON copy of a report that may list every
/// file of a large change.
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Says whether this run prints JSON.
pub(crate) fn wants_json(json: bool) {
    JSON.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// The output envelope of `v` (an object: `schema`, its fields, `exit_code`); empty when
/// the run prints text.
fn json_text<T: Serialize>(v: &T, code: u8) -> String {
    if !JSON.load(std::sync::atomic::Ordering::Relaxed) {
        return String::new();
    }
    output::to_text(&Success::new(v, code))
}

/// The output envelope of a failure.
fn failure_text(e: &Error) -> String {
    output::to_text(&Failure::new(e.class(), e.to_string(), e.exit_code()))
}

/// Whether a command line asks for JSON, for a run whose command line did not parse.
pub(crate) fn asks_json(args: &[OsString]) -> bool {
    args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json")
}

/// Writes to standard output, ignoring a closed pipe.
fn out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// What a run knows about itself, for printing and for `/log:FILE`.
pub(crate) struct Ctx {
    /// The program's name in messages (`hotfix`, or the installer's file name).
    pub program: String,
    /// The program as it was invoked (the first argument).
    pub invoked: String,
    /// The command line as given.
    pub command_line: String,
    /// The root serviced and where it came from, once known.
    pub root: Option<(PathBuf, rootcfg::Source)>,
    /// The package file, for package commands.
    pub package: Option<PathBuf>,
}

impl Ctx {
    fn new(program: String, args: &[OsString]) -> Ctx {
        let command_line = args.iter().map(|a| quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ");
        let invoked = args.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_else(|| program.clone());
        Ctx { program, invoked, command_line, root: None, package: None }
    }

    /// The program as invoked, quoted for a shell.
    pub fn program_path(&self) -> String {
        quote(&self.invoked)
    }
}

/// Shell-quotes a word when it needs it, for the log.
fn quote(word: &str) -> String {
    let plain =
        !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-:=+,@%?".contains(&b) || b >= 0x80);
    if plain { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

/// The progress sink for a run: a bar unless quiet or JSON.
pub(crate) fn progress_for(common: &Common) -> Box<dyn Progress> {
    Bar::on_stderr(!common.quiet && !common.json)
}

/// Prints the outcome of a run in the mode asked for, appends `/log:FILE`, and returns
/// the exit code.
pub(crate) fn finish(ctx: &Ctx, common: &Common, result: Result<Output, Error>) -> ExitCode {
    let code = match &result {
        Ok(out) => out.code,
        Err(e) => e.exit_code(),
    };
    // `/quiet` and `/passive` silence the text, not the JSON a script asked for: a
    // `KB4.run /quiet --json` run still prints its one object.
    let chatty = !common.quiet && !common.passive;
    match &result {
        Ok(o) => {
            if chatty {
                for w in &o.warnings {
                    eprintln!("{}: warning: {w}", ctx.program);
                }
            }
            if common.json {
                out(&o.json);
            } else if chatty {
                out(&o.text);
            }
        }
        Err(e) => {
            eprintln!("{}: error: {e}", ctx.program);
            if common.json {
                out(&failure_text(e));
            }
        }
    }
    if let Some(path) = &common.log
        && let Err(e) = logfile::append(path, ctx, &result)
    {
        eprintln!("{}: warning: the log {} was not written: {e}", ctx.program, path.display());
    }
    ExitCode::from(code)
}

/// Reports a parse failure (clap's own message; help and version exit 0). With `--json`
/// (`json`), help and version are a message object and an error is a failure object of
/// class `usage`; clap's text goes to standard error.
pub(crate) fn clap_exit(e: &clap::Error, json: bool) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    if !json {
        let _ = e.print();
        return ExitCode::from(code);
    }
    let text = e.render().to_string();
    if code == 0 {
        out(&output::to_text(&Success::new(Message { message: text }, 0)));
    } else {
        eprint!("{text}");
        let message = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        out(&output::to_text(&Failure::new("usage", message, code)));
    }
    ExitCode::from(code)
}

/// Reports a usage error found before parsing.
pub(crate) fn usage_exit(program: &str, e: &Error, json: bool) -> ExitCode {
    eprintln!("{program}: error: {e}");
    if json {
        out(&failure_text(e));
    }
    ExitCode::from(e.exit_code())
}
