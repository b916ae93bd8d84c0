//! What a servicing change says to its user: per component, the build before and after and
//! why it is on its branch; the stashed builds; the files changed; whether to restart. The
//! same report serves the text output, `--json` (its `Serialize` form is the stable JSON
//! shape of install, uninstall and policy changes), the root's log and `/log:FILE`.

use std::fmt;

use hotfix_schema::{Kind, Manifest, Name, RelPath};
use schemars::JsonSchema;
use serde::Serialize;

use crate::engine::{ActiveState, BranchReason, ComponentState, QfeOverride, Transition};
use crate::inventory::StoredOptions;
use crate::oplog;

/// One build of a component: branch, version and the package it comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BuildView {
    /// `gdr` or `ldr`.
    pub branch: String,
    /// Its version.
    pub version: String,
    /// The package it comes from.
    pub package: String,
    /// Whether it is the baseline package's own build.
    pub baseline_build: bool,
}

impl BuildView {
    /// The active build of a component.
    pub fn of(cs: &ComponentState) -> BuildView {
        BuildView {
            branch: cs.branch.to_string(),
            version: cs.chosen.variant.version.to_string(),
            package: cs.chosen.package.to_string(),
            baseline_build: cs.chosen.kind == Kind::Baseline,
        }
    }
}

/// `GDR 5.2.3790.4 from KB4`, with `(baseline build)` for a baseline package's build.
impl fmt::Display for BuildView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = if self.baseline_build { " (baseline build)" } else { "" };
        write!(f, "{} {} from {}{base}", self.branch.to_uppercase(), self.version, self.package)
    }
}

/// `GDR 5.2.3790.4 from KB4`, with `(baseline build)` for a baseline package's build.
pub fn describe(cs: &ComponentState) -> String {
    BuildView::of(cs).to_string()
}

/// Why a component is on its branch, as data (the `reason` beside it is the same in words).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BranchWhy {
    /// Which rule decided.
    pub rule: BranchRule,
    /// For `ldr-requested`: the hotfixes with a build of the component at the root's
    /// baseline, by id.
    pub hotfixes: Vec<String>,
    /// For `ldr-requested`: the updates installed with a QFE override that counts here.
    pub qfe: Vec<QfeRequest>,
}

/// The rule that put a component on its branch (DESIGN.md "The servicing rule", step 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BranchRule {
    /// LDR: the root's branch policy forces LDR.
    PolicyForcesLdr,
    /// LDR: an installed hotfix or a QFE override asks for it.
    LdrRequested,
    /// GDR: nothing asks for LDR.
    NoLdrRequest,
}

/// An update installed with a QFE override.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct QfeRequest {
    /// The package id.
    pub package: String,
    /// The switch it was installed with: `/B:QFE` or `/B:<BASELINE>QFE`.
    pub switch: String,
}

impl BranchWhy {
    /// The data of a branch reason.
    pub fn of(r: &BranchReason) -> BranchWhy {
        match r {
            BranchReason::PolicyForcesLdr => {
                BranchWhy { rule: BranchRule::PolicyForcesLdr, hotfixes: Vec::new(), qfe: Vec::new() }
            }
            BranchReason::LdrRequested { hotfixes, qfe } => BranchWhy {
                rule: BranchRule::LdrRequested,
                hotfixes: hotfixes.iter().map(ToString::to_string).collect(),
                qfe: qfe.iter().map(|(p, o)| QfeRequest { package: p.to_string(), switch: qfe_switch(o) }).collect(),
            },
            BranchReason::NoLdrRequest { .. } => {
                BranchWhy { rule: BranchRule::NoLdrRequest, hotfixes: Vec::new(), qfe: Vec::new() }
            }
        }
    }
}

fn qfe_switch(o: &QfeOverride) -> String {
    match o {
        QfeOverride::Off => String::new(),
        QfeOverride::Any => "/B:QFE".to_string(),
        QfeOverride::AtBaseline(b) => format!("/B:{b}QFE"),
    }
}

/// `no /B override`, `/B:QFE`, `/B:SP1QFE` for stored options.
pub fn describe_options(o: &StoredOptions) -> String {
    match &o.qfe {
        None => "no /B override".to_string(),
        Some(v) => format!("/B:{v}"),
    }
}

/// One component whose branch or build changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ComponentLine {
    /// The component.
    pub component: String,
    /// Its build before (`None`: it did not exist).
    pub before: Option<BuildView>,
    /// Its build after (`None`: it is gone).
    pub after: Option<BuildView>,
    /// Why it is on its branch after, in words (`None` when it is gone).
    pub reason: Option<String>,
    /// The same as data.
    pub why: Option<BranchWhy>,
}

/// The baseline before and after a change that moves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BaselineChange {
    /// Before (`null` on a root without one).
    pub before: Option<String>,
    /// After (`null` when the last baseline is gone).
    pub after: Option<String>,
}

/// A build of the installed package kept in the store, not active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct StashedBuild {
    /// The component.
    pub component: String,
    /// `gdr` or `ldr`.
    pub branch: String,
    /// Its version.
    pub version: String,
}

/// `kernel LDR 5.2.3790.4`.
impl fmt::Display for StashedBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.component, self.branch.to_uppercase(), self.version)
    }
}

/// The files a change writes and removes. The paths share their text with the plan's
/// (a report of 100,000 files adds 16 bytes per path, not a copy of it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileChanges {
    /// Paths written (new content or a new mode), sorted.
    pub written: Vec<RelPath>,
    /// Paths removed, sorted.
    pub removed: Vec<RelPath>,
    /// Records changed without touching the file.
    pub relabelled: usize,
    /// Files left exactly as they are.
    pub unchanged: usize,
}

/// The outcome of an install, uninstall or policy change — or, with `applied` false, of
/// one that was only planned (`--what-if`).
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct ChangeReport {
    /// The operation, e.g. `install KB4`.
    pub operation: String,
    /// The package installed or removed, if any.
    pub package: Option<String>,
    /// First line, e.g. `Installed KB4 (update): …`.
    pub headline: String,
    /// Whether the change was applied (false for a plan that was only shown, or when
    /// there was nothing to do).
    pub applied: bool,
    /// Whether this is a plan shown by `--what-if`.
    #[serde(skip)]
    pub what_if: bool,
    /// The baseline before and after, when it changes.
    pub baseline: Option<BaselineChange>,
    /// Components that change.
    pub components: Vec<ComponentLine>,
    /// Components that stay as they are.
    #[serde(rename = "unchanged_components")]
    pub unchanged: Vec<String>,
    /// Builds of the installed package that are kept in the store, not active.
    pub stashed: Vec<StashedBuild>,
    /// The files written and removed.
    pub files: FileChanges,
    /// Whether the machine must be restarted: a changed file's build asks for it, or the
    /// administrator did (`/forcerestart`).
    #[serde(rename = "restart_required")]
    pub restart: bool,
    /// Why a restart is required, when it is.
    pub restart_reason: Option<String>,
    /// Things the user should know that did not stop the change.
    pub warnings: Vec<String>,
}

fn baseline_name(s: &ActiveState) -> Option<String> {
    s.baseline.as_ref().map(|b| b.decl.name.to_string())
}

/// Why a build's restart flag asks for a restart.
pub const BUILD_RESTART: &str = "a changed component's build asks for a restart";

impl ChangeReport {
    /// The report of a transition for `operation`; `applied` is false when it was only
    /// planned.
    pub fn new(operation: &str, package: Option<&Name>, headline: String, t: &Transition, applied: bool) -> Self {
        let changed = t.changed_components();
        let components = changed
            .iter()
            .map(|c| {
                let after = t.after.components.get(c);
                ComponentLine {
                    component: c.to_string(),
                    before: t.before.components.get(c).map(BuildView::of),
                    after: after.map(BuildView::of),
                    reason: after.map(|cs| cs.reason.to_string()),
                    why: after.map(|cs| BranchWhy::of(&cs.reason)),
                }
            })
            .collect();
        let unchanged =
            t.after.components.keys().filter(|c| !changed.contains(c)).map(ToString::to_string).collect::<Vec<_>>();
        let (b0, b1) = (baseline_name(&t.before), baseline_name(&t.after));
        let plan = &t.plan;
        ChangeReport {
            operation: operation.to_string(),
            package: package.map(ToString::to_string),
            headline,
            applied,
            what_if: false,
            baseline: (b0 != b1).then_some(BaselineChange { before: b0, after: b1 }),
            components,
            unchanged,
            stashed: Vec::new(),
            files: FileChanges {
                written: plan.put.iter().map(|p| p.path.clone()).collect(),
                removed: plan.remove.iter().map(|r| r.path.clone()).collect(),
                relabelled: plan.relabel.len(),
                unchanged: plan.unchanged,
            },
            restart: plan.restart,
            restart_reason: plan.restart.then(|| BUILD_RESTART.to_string()),
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
                self.stashed.push(StashedBuild {
                    component: v.component.to_string(),
                    branch: v.branch.map(|b| b.as_str().to_string()).unwrap_or_default(),
                    version: v.version.to_string(),
                });
            }
        }
    }

    /// Whether any file under the root changes.
    pub fn changes_files(&self) -> bool {
        !self.files.written.is_empty() || !self.files.removed.is_empty()
    }

    /// Exit code: 3 when a restart is required, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.restart { 3 } else { 0 }
    }

    /// The log line for this change.
    pub fn log_entry(&self) -> oplog::Entry {
        let none = || "none".to_string();
        oplog::Entry {
            package: self.package.clone(),
            decisions: self
                .components
                .iter()
                .map(|c| oplog::Decision {
                    component: c.component.clone(),
                    before: c.before.as_ref().map_or_else(none, ToString::to_string),
                    after: c.after.as_ref().map_or_else(none, ToString::to_string),
                    reason: c.reason.clone().unwrap_or_else(|| "no longer installed".into()),
                })
                .collect(),
            written: self.files.written.len(),
            removed: self.files.removed.len(),
            relabelled: self.files.relabelled,
            files_written: self.files.written.iter().take(oplog::LOG_PATHS).map(ToString::to_string).collect(),
            files_removed: self.files.removed.iter().take(oplog::LOG_PATHS).map(ToString::to_string).collect(),
            files_omitted: self.files.written.len().saturating_sub(oplog::LOG_PATHS)
                + self.files.removed.len().saturating_sub(oplog::LOG_PATHS),
            result: if self.restart { "ok, restart required".into() } else { "ok".into() },
            exit_code: self.exit_code(),
            ..oplog::Entry::new(self.operation.clone())
        }
    }

    /// The per-component lines, as the text output shows them.
    pub fn write_components(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        if let Some(b) = &self.baseline {
            let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "none".to_string());
            writeln!(f, "  baseline: {} -> {}", name(&b.before), name(&b.after))?;
        }
        for c in &self.components {
            let before = c.before.as_ref().map_or_else(|| "not installed".to_string(), ToString::to_string);
            match (&c.after, &c.reason) {
                (Some(after), Some(reason)) => writeln!(f, "  {}: {before} -> {after} ({reason})", c.component)?,
                _ => writeln!(f, "  {}: {before} -> removed (not in the root's baseline)", c.component)?,
            }
        }
        if !self.unchanged.is_empty() {
            writeln!(f, "  unchanged: {}", self.unchanged.join(", "))?;
        }
        if !self.stashed.is_empty() {
            let stashed: Vec<String> = self.stashed.iter().map(ToString::to_string).collect();
            writeln!(f, "  kept in the store, not active: {}", stashed.join(", "))?;
        }
        Ok(())
    }

    /// Every path written and removed, one per line (for `/log:FILE`).
    pub fn file_list(&self) -> String {
        let mut out = String::new();
        for p in &self.files.written {
            out.push_str(&format!("  written: {p}\n"));
        }
        for p in &self.files.removed {
            out.push_str(&format!("  removed: {p}\n"));
        }
        out
    }
}

/// How many written and how many removed paths the text output names; the rest are
/// counted (`--json` and `/log:FILE` list every one).
pub const SHOWN_PATHS: usize = 10;

/// `{indent}removed: PATH` lines, at most [`SHOWN_PATHS`], then how many more.
fn write_paths(f: &mut dyn fmt::Write, indent: &str, what: &str, paths: &[RelPath]) -> fmt::Result {
    for p in paths.iter().take(SHOWN_PATHS) {
        writeln!(f, "{indent}{what}: {p}")?;
    }
    if paths.len() > SHOWN_PATHS {
        let more = paths.len() - SHOWN_PATHS;
        writeln!(f, "{indent}… and {more} more {what} (--json or /log:FILE lists every path)")?;
    }
    Ok(())
}

impl ChangeReport {
    /// The paths written and removed, [`SHOWN_PATHS`] of each at most, each line
    /// starting with `indent`.
    pub fn write_file_paths(&self, f: &mut dyn fmt::Write, indent: &str) -> fmt::Result {
        write_paths(f, indent, "written", &self.files.written)?;
        write_paths(f, indent, "removed", &self.files.removed)
    }
}

impl fmt::Display for ChangeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline)?;
        self.write_components(f)?;
        let files = &self.files;
        if self.applied {
            writeln!(
                f,
                "Files: {} written, {} removed, {} records updated, {} unchanged.",
                files.written.len(),
                files.removed.len(),
                files.relabelled,
                files.unchanged
            )?;
        } else if self.what_if {
            writeln!(
                f,
                "Files it would change: {} written, {} removed ({} unchanged).",
                files.written.len(),
                files.removed.len(),
                files.unchanged
            )?;
        }
        if self.applied || self.what_if {
            self.write_file_paths(f, "  ")?;
        }
        if self.restart {
            let reason = self.restart_reason.as_deref().unwrap_or(BUILD_RESTART);
            if self.what_if {
                writeln!(f, "It would require a restart: {reason}.")?;
            } else {
                writeln!(f, "Restart required: {reason} (exit 3).")?;
            }
        }
        Ok(())
    }
}
