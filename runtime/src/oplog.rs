//! The operation log, `ROOT/.servicing/log`: one JSON object per line, appended after each
//! servicing operation — time, operation, package, the decision per component with its
//! reason, the files changed, and the result with its exit code. Operations that were
//! refused (not applicable, already installed, untrusted…) are logged too, best effort.
//!
//! A line stays small whatever the change: it counts the files written, removed and
//! relabelled, and lists only the first [`LOG_PATHS`] paths written and the first
//! [`LOG_PATHS`] removed (sorted); `files_omitted` says how many paths it left out. The
//! whole list is what `--json` and `/log:FILE` show.
//!
//! The log is size-bounded: a line that would take it past [`LOG_MAX_BYTES`] first renames
//! it to `log.1` (replacing the previous `log.1`, and a link there by name, never through
//! it) and starts a fresh `log`, so the root keeps at most about twice that much history.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::crash;
use crate::error::{Error, Result};
use crate::layout::Layout;

/// How many paths written, and how many removed, one log line lists at most.
pub const LOG_PATHS: usize = 100;

/// The size past which `log` is rotated to `log.1` (one older generation is kept).
pub const LOG_MAX_BYTES: u64 = 1 << 20;

/// The older generation's name in `.servicing/`.
pub const ROTATED: &str = "log.1";

/// One component's decision.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// The component.
    pub component: String,
    /// Branch, version and package before (`none` if it did not exist).
    pub before: String,
    /// Branch, version and package after.
    pub after: String,
    /// Why it is on its branch now.
    pub reason: String,
}

/// One line of the log.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The operation, e.g. `install KB4`.
    pub op: String,
    /// The package, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Decisions per changed component.
    pub decisions: Vec<Decision>,
    /// Files written.
    pub written: usize,
    /// Files removed.
    pub removed: usize,
    /// Records changed without touching the file.
    pub relabelled: usize,
    /// The first [`LOG_PATHS`] paths written, under the root, sorted.
    pub files_written: Vec<String>,
    /// The first [`LOG_PATHS`] paths removed, under the root, sorted.
    pub files_removed: Vec<String>,
    /// Paths written or removed that the line does not list.
    #[serde(skip_serializing_if = "is_zero")]
    pub files_omitted: usize,
    /// `ok`, `restart required`, `rolled back`, `refused: …`
    pub result: String,
    /// The exit code the operation ended with.
    pub exit_code: u8,
}

impl Entry {
    /// An entry for `op` at the current time, with nothing changed and result `ok`.
    pub fn new(op: impl Into<String>) -> Entry {
        Entry {
            time: now(),
            op: op.into(),
            package: None,
            decisions: Vec::new(),
            written: 0,
            removed: 0,
            relabelled: 0,
            files_written: Vec::new(),
            files_removed: Vec::new(),
            files_omitted: 0,
            result: "ok".into(),
            exit_code: 0,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The log line of `entry`, newline included, its path lists cut to [`LOG_PATHS`] each
/// (the cut paths are added to `files_omitted`).
fn line(entry: &Entry) -> String {
    let cut = |v: &[String]| v.len().saturating_sub(LOG_PATHS);
    let omitted = cut(&entry.files_written) + cut(&entry.files_removed);
    let mut line = if omitted == 0 {
        serde_json::to_string(entry)
    } else {
        serde_json::to_string(&Entry {
            time: entry.time.clone(),
            op: entry.op.clone(),
            package: entry.package.clone(),
            decisions: entry.decisions.clone(),
            written: entry.written,
            removed: entry.removed,
            relabelled: entry.relabelled,
            files_written: entry.files_written.iter().take(LOG_PATHS).cloned().collect(),
            files_removed: entry.files_removed.iter().take(LOG_PATHS).cloned().collect(),
            files_omitted: entry.files_omitted + omitted,
            result: entry.result.clone(),
            exit_code: entry.exit_code,
        })
    }
    .unwrap_or_default();
    line.push('\n');
    line
}

/// Appends `entry` to the log and flushes it to disk.
pub fn append(layout: &Layout, entry: &Entry) -> Result<()> {
    let path = layout.log();
    let line = line(entry);
    crash::step("log append");
    let mut f = open(layout, line.len()).map_err(Error::io(&path))?;
    f.write_all(line.as_bytes()).and_then(|()| f.sync_data()).map_err(Error::io(&path))
}

/// Appends an entry for an operation that failed with `error`, if the root's servicing
/// directory exists. Best effort: a log that cannot be written does not hide the error, and
/// this is not a durable step of a transaction.
pub fn append_failure(layout: &Layout, op: &str, package: Option<String>, error: &Error) {
    if !matches!(layout.servicing_dir(), Ok(Some(_))) {
        return;
    }
    let package = package.or_else(|| match error {
        Error::NotApplicable { package, .. }
        | Error::AlreadyInstalled { package, .. }
        | Error::Prerelease { package } => Some(package.to_string()),
        _ => None,
    });
    let entry = Entry { package, result: format!("failed: {error}"), exit_code: error.exit_code(), ..Entry::new(op) };
    let line = line(&entry);
    if let Ok(mut f) = open(layout, line.len()) {
        let _ = f.write_all(line.as_bytes()).and_then(|()| f.sync_data());
    }
}

/// Opens the log for appending a line of `adding` bytes, never through a link or into a
/// file with other names (see [`crate::rootfs::Dir::open_own`]); rotates it first when the
/// line would take it past [`LOG_MAX_BYTES`]. The rename replaces whatever `log.1` is — a
/// planted link included — by name; a rotation that fails leaves the log growing, never
/// lost.
fn open(layout: &Layout, adding: usize) -> std::io::Result<std::fs::File> {
    let servicing = layout
        .servicing_dir()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no servicing directory"))?;
    let f = servicing.open_own("log", true)?;
    let size = f.metadata()?.len();
    let adding = u64::try_from(adding).unwrap_or(u64::MAX);
    if size == 0 || size.saturating_add(adding) <= LOG_MAX_BYTES {
        return Ok(f);
    }
    drop(f);
    if servicing.rename("log", &servicing, ROTATED).is_err() {
        return servicing.open_own("log", true);
    }
    let _ = servicing.sync();
    servicing.open_own("log", true)
}

/// The current time as RFC 3339 in UTC, to the second.
pub fn now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = hotfix_schema::text::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::{Entry, LOG_PATHS, line};

    #[test]
    fn a_line_lists_at_most_log_paths_of_each_and_counts_the_rest() {
        let paths = |n: usize, what: &str| (0..n).map(|i| format!("{what}/{i:06}")).collect::<Vec<_>>();
        let entry = Entry {
            written: 5000,
            removed: 101,
            files_written: paths(5000, "w"),
            files_removed: paths(101, "r"),
            ..Entry::new("install KB1")
        };
        let v: serde_json::Value = serde_json::from_str(&line(&entry)).unwrap();
        assert_eq!(v["files_written"].as_array().unwrap().len(), LOG_PATHS);
        assert_eq!(v["files_removed"].as_array().unwrap().len(), LOG_PATHS);
        assert_eq!(v["files_written"][0], "w/000000");
        assert_eq!(v["files_omitted"], 5000 - LOG_PATHS + 1);
        assert_eq!((v["written"].as_u64(), v["removed"].as_u64()), (Some(5000), Some(101)));
        let small = Entry { written: 1, files_written: paths(1, "w"), ..Entry::new("install KB2") };
        let v: serde_json::Value = serde_json::from_str(&line(&small)).unwrap();
        assert!(v.get("files_omitted").is_none());
    }
}
