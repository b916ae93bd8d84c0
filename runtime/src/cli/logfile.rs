//! `/log:FILE` (`--log FILE`): a full, human-readable log of one operation, appended to
//! FILE (created if needed) so that one file can collect a scripted run over many packages
//! or servers: time, command line, root, package, what was decided per component and why,
//! every file written or removed, warnings, and the result with its exit code. The root's
//! own log (`ROOT/.servicing/log`, JSON lines) is written as well, independently.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use super::{Ctx, Output};
use crate::error::Error;
use crate::oplog;

/// What an exit code means (DESIGN.md "Exit codes").
pub fn meaning(code: u8) -> &'static str {
    match code {
        0 => "success",
        1 => "error",
        2 => "usage error",
        3 => "success, restart required",
        4 => "not applicable to this root",
        5 => "already installed, nothing changed",
        6 => "integrity or trust failure",
        7 => "refused by policy",
        8 => "busy: another servicing operation holds the root",
        9 => "the fix is absent",
        _ => "unknown",
    }
}

/// The log text of one run.
pub fn render(ctx: &Ctx, result: &Result<Output, Error>) -> String {
    let mut t = String::new();
    t.push_str(&format!("=== {} {} — {} ===\n", ctx.program, env!("CARGO_PKG_VERSION"), oplog::now()));
    t.push_str(&format!("command: {}\n", ctx.command_line));
    if let Some((root, source)) = &ctx.root {
        t.push_str(&format!("root:    {} (from {source})\n", root.display()));
    }
    if let Some(p) = &ctx.package {
        t.push_str(&format!("package: {}\n", p.display()));
    }
    let code = match result {
        Ok(out) => {
            let detail = out.detail.as_deref().unwrap_or(&out.text);
            for line in detail.lines() {
                t.push_str(&format!("  {line}\n"));
            }
            for w in &out.warnings {
                t.push_str(&format!("warning: {w}\n"));
            }
            out.code
        }
        Err(e) => {
            t.push_str(&format!("error:   {e}\n"));
            e.exit_code()
        }
    };
    t.push_str(&format!("result:  exit {code} ({})\n\n", meaning(code)));
    t
}

/// Appends the log of one run to `path`.
pub fn append(path: &Path, ctx: &Ctx, result: &Result<Output, Error>) -> io::Result<()> {
    let text = render(ctx, result);
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()
}
