//! Fault injection for the crash-point sweep: with `HOTFIX_CRASH_AT=N` in the environment,
//! the process aborts just before its N-th durable action (a blob or file renamed into
//! place, a file or directory created or removed, a mode changed, a database commit, the
//! log appended). Without the variable, [`step`] only counts.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms the hook.
pub const ENV: &str = "HOTFIX_CRASH_AT";

static COUNT: AtomicU64 = AtomicU64::new(0);
static TARGET: OnceLock<Option<u64>> = OnceLock::new();

/// Marks the next durable action, `what`; aborts the process if it is the armed one.
pub fn step(what: &str) {
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok().and_then(|v| v.trim().parse().ok()));
    if *target == Some(n) {
        eprintln!("hotfix: {ENV}={n}: aborting before {what}");
        std::process::abort();
    }
}

/// How many durable actions this process has marked so far.
pub fn steps() -> u64 {
    COUNT.load(Ordering::SeqCst)
}
