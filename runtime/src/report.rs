//! What a servicing change says to its user: per component, the build before and after and
//! why it is on its branch; the stashed builds; the files changed; whether to restart.

use std::fmt;

use hotfix_schema::{Kind, Manifest, Name};

use crate::engine::{ActiveState, ComponentState, Transition};
use crate::inventory::StoredOptions;
use crate::oplog;
use crate::txn::Applied;

/// One component whose branch or build changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentLine {
    /// The component.
    pub component: String,
    /// Its build before (`None`: it did not exist).
    pub before: Option<String>,
    /// Its build after (`None`: it is gone).
    pub after: Option<String>,
    /// Why it is on its branch after.
    pub reason: Option<String>,
}

/// The outcome of an install, uninstall or policy change.
#[derive(Clone, Debug, Default)]
pub struct ChangeReport {
    /// First line, e.g. `Installed KB4 (update): …`.
    pub headline: String,
    /// The baseline before and after, when it changes.
    pub baseline: Option<(String, String)>,
    /// Components that change.
    pub components: Vec<ComponentLine>,
    /// Components that stay as they are.
    pub unchanged: Vec<String>,
    /// Builds of the installed package that are kept in the store, not active.
    pub stashed: Vec<String>,
    /// What the transaction did; `None` if nothing was applied.
    pub applied: Option<Applied>,
    /// Files left as they are.
    pub unchanged_files: usize,
    /// Whether a changed file's variant asks for a restart.
    pub restart: bool,
    /// Things the user should know that did not stop the change.
    pub warnings: Vec<String>,
}

/// `GDR 5.2.3790.4 from KB4`, with `(baseline)` for a baseline package's build.
pub fn describe(cs: &ComponentState) -> String {
    let base = if cs.chosen.kind == Kind::Baseline { " (baseline build)" } else { "" };
    format!("{} {} from {}{base}", cs.branch.as_str().to_uppercase(), cs.chosen.variant.version, cs.chosen.package)
}

/// `no /B override`, `/B:QFE`, `/B:SP1QFE` for stored options.
pub fn describe_options(o: &StoredOptions) -> String {
    match &o.qfe {
        None => "no /B override".to_string(),
        Some(v) => format!("/B:{v}"),
    }
}

fn baseline_name(s: &ActiveState) -> String {
    s.baseline.as_ref().map(|b| b.decl.name.to_string()).unwrap_or_else(|| "none".to_string())
}

impl ChangeReport {
    /// The report of a transition; `applied` is `None` when nothing was done.
    pub fn new(headline: String, t: &Transition, applied: Option<Applied>) -> ChangeReport {
        let changed = t.changed_components();
        let components = changed
            .iter()
            .map(|c| {
                let after = t.after.components.get(c);
                ComponentLine {
                    component: c.to_string(),
                    before: t.before.components.get(c).map(describe),
                    after: after.map(describe),
                    reason: after.map(|cs| cs.reason.to_string()),
                }
            })
            .collect();
        let unchanged =
            t.after.components.keys().filter(|c| !changed.contains(c)).map(ToString::to_string).collect::<Vec<_>>();
        let (b0, b1) = (baseline_name(&t.before), baseline_name(&t.after));
        ChangeReport {
            headline,
            baseline: (b0 != b1).then_some((b0, b1)),
            components,
            unchanged,
            stashed: Vec::new(),
            restart: applied.is_some() && t.plan.restart,
            unchanged_files: t.plan.unchanged,
            applied,
            warnings: Vec::new(),
        }
    }

    /// Notes the builds of `m` at the root's baseline that are in the store but not active.
    pub fn note_stash(&mut self, m: &Manifest, after: &ActiveState) {
        let Some(b) = &after.baseline else { return };
        if m.package.kind == Kind::Baseline {
            return;
        }
        for (i, v) in m.variants.iter().enumerate() {
            let active = after
                .components
                .get(&v.component)
                .is_some_and(|cs| cs.chosen.package == m.package.id && cs.chosen.index == i);
            if v.baseline == b.decl.name && !active && after.components.contains_key(&v.component) {
                let branch = v.branch.map(|b| b.as_str().to_uppercase()).unwrap_or_default();
                self.stashed.push(format!("{} {branch} {}", v.component, v.version));
            }
        }
    }

    /// Exit code: 3 when a restart is required, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.restart { 3 } else { 0 }
    }

    /// The log line for this change.
    pub fn log_entry(&self, op: &str, package: Option<&Name>) -> oplog::Entry {
        let none = || "none".to_string();
        let applied = self.applied.unwrap_or_default();
        oplog::Entry {
            time: oplog::now(),
            op: op.to_string(),
            package: package.map(ToString::to_string),
            decisions: self
                .components
                .iter()
                .map(|c| oplog::Decision {
                    component: c.component.clone(),
                    before: c.before.clone().unwrap_or_else(none),
                    after: c.after.clone().unwrap_or_else(none),
                    reason: c.reason.clone().unwrap_or_else(|| "no longer installed".into()),
                })
                .collect(),
            written: applied.written,
            removed: applied.removed,
            relabelled: applied.relabelled,
            result: if self.restart { "ok, restart required".into() } else { "ok".into() },
        }
    }
}

impl fmt::Display for ChangeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline)?;
        if let Some((before, after)) = &self.baseline {
            writeln!(f, "  baseline: {before} -> {after}")?;
        }
        for c in &self.components {
            let before = c.before.as_deref().unwrap_or("not installed");
            match (&c.after, &c.reason) {
                (Some(after), Some(reason)) => writeln!(f, "  {}: {before} -> {after} ({reason})", c.component)?,
                _ => writeln!(f, "  {}: {before} -> removed (not in the root's baseline)", c.component)?,
            }
        }
        if !self.unchanged.is_empty() {
            writeln!(f, "  unchanged: {}", self.unchanged.join(", "))?;
        }
        if !self.stashed.is_empty() {
            writeln!(f, "  kept in the store, not active: {}", self.stashed.join(", "))?;
        }
        if let Some(a) = &self.applied {
            writeln!(
                f,
                "Files: {} written, {} removed, {} records updated, {} unchanged.",
                a.written, a.removed, a.relabelled, self.unchanged_files
            )?;
        }
        if self.restart {
            writeln!(f, "Restart required: a changed component's build asks for a restart (exit 3).")?;
        }
        Ok(())
    }
}
