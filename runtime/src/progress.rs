//! Progress of long operations — verification, storing, placing files, extraction — as a
//! bar on standard error ([`Bar`], indicatif), or nothing ([`Silent`]) when standard error
//! is not a terminal or the user asked for quiet. The operations only report numbers; how
//! they are shown is the caller's choice.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a phase counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes read or written.
    Bytes,
    /// Files placed or removed.
    Files,
    /// Nothing countable: a spinner.
    Busy,
}

/// One phase of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase {
    /// Shown before the bar.
    pub label: &'static str,
    /// What the numbers count.
    pub unit: Unit,
}

/// Checking every byte of a package against its signature.
pub const VERIFY: Phase = Phase { label: "verifying", unit: Unit::Bytes };
/// Copying a package's blobs into the root's store.
pub const STORE: Phase = Phase { label: "storing", unit: Unit::Bytes };
/// Writing and removing the root's live files.
pub const APPLY: Phase = Phase { label: "installing files", unit: Unit::Files };
/// Writing an extraction.
pub const EXTRACT: Phase = Phase { label: "extracting", unit: Unit::Busy };

/// Receives progress.
pub trait Progress {
    /// `done` of `total` in `phase`; a new phase replaces the previous one.
    fn update(&mut self, phase: Phase, done: u64, total: u64);
    /// Removes whatever is shown.
    fn clear(&mut self);
}

/// Shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn update(&mut self, _: Phase, _: u64, _: u64) {}
    fn clear(&mut self) {}
}

/// A progress bar on standard error, cleared when its phase ends.
#[derive(Debug, Default)]
pub struct Bar {
    current: Option<(Phase, ProgressBar)>,
}

impl Bar {
    /// A bar when `wanted` and standard error is a terminal, otherwise [`Silent`].
    pub fn on_stderr(wanted: bool) -> Box<dyn Progress> {
        if wanted && std::io::stderr().is_terminal() { Box::new(Bar::default()) } else { Box::new(Silent) }
    }
}

fn style(unit: Unit) -> ProgressStyle {
    let template = match unit {
        Unit::Bytes => "{msg:>16} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        Unit::Files => "{msg:>16} [{bar:40}] {pos}/{len} files",
        Unit::Busy => "{msg:>16} {spinner}",
    };
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for Bar {
    fn update(&mut self, phase: Phase, done: u64, total: u64) {
        if self.current.as_ref().map(|(p, _)| *p) != Some(phase) {
            self.clear();
            let bar = if phase.unit == Unit::Busy {
                let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                b.enable_steady_tick(Duration::from_millis(120));
                b
            } else {
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            };
            bar.set_style(style(phase.unit));
            bar.set_message(phase.label);
            self.current = Some((phase, bar));
        }
        if let Some((p, bar)) = &self.current
            && p.unit != Unit::Busy
        {
            bar.set_length(total);
            bar.set_position(done.min(total));
        }
    }

    fn clear(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
    }
}
