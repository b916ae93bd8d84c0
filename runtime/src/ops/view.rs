//! The read-only questions: `list` (installed packages), `status` (baseline, and per
//! component the branch and why, build, fixes, package) and `query --fix` (is a fix
//! active?). Each answer is a serializable view with a text form.

use std::fmt;

use hotfix_schema::{Kind, Name};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Session, inputs};
use crate::engine::{ActiveState, active_files, active_state, fix_present, lost_fixes};
use crate::error::{Error, Result};
use crate::inventory::StoredOptions;
use crate::report::describe_options;

/// One installed package.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PackageView {
    /// Package id.
    pub id: String,
    /// `baseline`, `update` or `hotfix`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// `release` or `prerelease`.
    pub channel: String,
    /// For a baseline package, the baseline it establishes.
    pub establishes: Option<hotfix_schema::BaselineDecl>,
    /// Baselines it has builds for.
    pub baselines: Vec<String>,
    /// Every fix it contains.
    pub fixes: Vec<String>,
    /// The `/B:` value it was installed with, if any.
    pub qfe: Option<String>,
    /// Install sequence number.
    pub sequence: i64,
    /// Install time (RFC 3339, UTC).
    pub installed_at: String,
    /// Components whose active build comes from it.
    pub active_in: Vec<String>,
}

/// `hotfix list`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ListView {
    /// The installed packages in install order.
    pub packages: Vec<PackageView>,
}

/// `hotfix list`.
pub fn list(s: &Session) -> Result<ListView> {
    let snap = s.snapshot()?;
    let installed = snap.installed();
    let state = active_state(&inputs(&snap, &installed, snap.policy))?;
    let packages = snap.packages.iter().map(|p| package_view(p, &state)).collect();
    Ok(ListView { packages })
}

/// `hotfix list ID`: one installed package in detail (like `rpm -qi`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PackageDetail {
    /// What `list` says of it.
    #[serde(flatten)]
    pub package: PackageView,
    /// Every build it carries, with its state on this root.
    pub builds: Vec<BuildDetail>,
}

/// One build of a [`PackageDetail`].
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BuildDetail {
    /// Which build, and whether it is active, stashed or for another baseline.
    #[serde(flatten)]
    pub build: super::owner::BuildRef,
    /// The fixes it contains.
    pub fixes: Vec<String>,
    /// Its number of files.
    pub files: usize,
    /// Whether installing or removing it needs a restart.
    pub restart: bool,
}

/// `hotfix list ID` (the id in any case).
pub fn list_one(s: &Session, id: &Name) -> Result<PackageDetail> {
    let snap = s.snapshot()?;
    let installed = snap.installed();
    let state = active_state(&inputs(&snap, &installed, snap.policy))?;
    let Some(p) = snap.package(id) else {
        let ids: Vec<&str> = snap.packages.iter().map(|p| p.installed.manifest.package.id.as_str()).collect();
        return Err(Error::Refused(format!(
            "{id} is not installed on this root (installed: {})",
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        )));
    };
    let m = &p.installed.manifest;
    let builds = m
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| BuildDetail {
            build: super::owner::build_ref(&state, m, i),
            fixes: v.fixes.iter().map(ToString::to_string).collect(),
            files: v.files.len(),
            restart: v.restart,
        })
        .collect();
    Ok(PackageDetail { package: package_view(p, &state), builds })
}

impl fmt::Display for PackageDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.package;
        writeln!(f, "{} ({}, {}): {}", p.id, p.kind, p.channel, p.title)?;
        if let Some(e) = &p.establishes {
            writeln!(f, "  establishes: {} (level {})", e.name, e.level)?;
        }
        writeln!(
            f,
            "  installed: #{} at {}, {}",
            p.sequence,
            p.installed_at,
            describe_options(&StoredOptions { qfe: p.qfe.clone() })
        )?;
        writeln!(f, "  baselines: {}", p.baselines.join(", "))?;
        writeln!(f, "  fixes: {}", if p.fixes.is_empty() { "none".to_string() } else { p.fixes.join(", ") })?;
        writeln!(f, "  builds:")?;
        for b in &self.builds {
            let r = &b.build;
            let restart = if b.restart { ", restart" } else { "" };
            writeln!(
                f,
                "    {} {} {} {} [{}]: {} files{restart}; fixes {}",
                r.component,
                r.baseline,
                r.branch.to_uppercase(),
                r.version,
                r.state,
                b.files,
                if b.fixes.is_empty() { "none".to_string() } else { b.fixes.join(", ") }
            )?;
        }
        Ok(())
    }
}

fn package_view(p: &crate::inventory::InstalledPackage, state: &ActiveState) -> PackageView {
    let m = &p.installed.manifest;
    PackageView {
        id: m.package.id.to_string(),
        kind: m.package.kind.to_string(),
        title: m.package.title.clone(),
        channel: m.package.channel.to_string(),
        establishes: m.package.baseline.clone(),
        baselines: m.baselines.iter().map(ToString::to_string).collect(),
        fixes: m.fixes.iter().map(ToString::to_string).collect(),
        qfe: StoredOptions::of(&p.installed.options).qfe,
        sequence: p.seq,
        installed_at: p.installed_at.clone(),
        active_in: state
            .components
            .iter()
            .filter(|(_, cs)| cs.chosen.package == m.package.id)
            .map(|(c, _)| c.to_string())
            .collect(),
    }
}

impl fmt::Display for ListView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.packages.is_empty() {
            return writeln!(f, "No packages installed.");
        }
        for p in &self.packages {
            let opts = describe_options(&StoredOptions { qfe: p.qfe.clone() });
            let active = if p.active_in.is_empty() {
                "active in none".to_string()
            } else {
                format!("active in {}", p.active_in.join(", "))
            };
            writeln!(f, "#{} {} ({}, {}): {} [{opts}; {active}]", p.sequence, p.id, p.kind, p.channel, p.title)?;
        }
        Ok(())
    }
}

/// One component's state.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ComponentView {
    /// The component.
    pub component: String,
    /// `gdr` or `ldr`.
    pub branch: String,
    /// Why it is on that branch, in words.
    pub reason: String,
    /// The same as data.
    pub why: crate::report::BranchWhy,
    /// The active build's version.
    pub version: String,
    /// The package it comes from.
    pub package: String,
    /// That package's kind.
    pub package_kind: String,
    /// Every fix the active build contains.
    pub fixes: Vec<String>,
    /// Whether the build asks for a restart when it changes.
    pub restart: bool,
    /// Its files.
    pub files: Vec<String>,
}

/// The root's baseline.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BaselineView {
    /// Its name.
    pub name: String,
    /// Its level.
    pub level: u32,
    /// The package that established it.
    pub package: String,
}

/// `hotfix status`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct StatusView {
    /// The product.
    pub product: String,
    /// `auto` or `ldr`.
    pub policy: String,
    /// The baseline, if any package established one.
    pub baseline: Option<BaselineView>,
    /// Components, by name.
    pub components: Vec<ComponentView>,
    /// Fixes of installed builds that no active build has (a newer build lacks them: a
    /// vendor numbering mistake), one sentence each.
    pub warnings: Vec<String>,
}

/// `hotfix status [COMPONENT]`.
pub fn status(s: &Session, component: Option<&Name>) -> Result<StatusView> {
    let snap = s.snapshot()?;
    let installed = snap.installed();
    let state = active_state(&inputs(&snap, &installed, snap.policy))?;
    let files = active_files(&state)?;
    if let Some(c) = component
        && !state.components.contains_key(c)
    {
        let names: Vec<&str> = state.components.keys().map(Name::as_str).collect();
        return Err(Error::Refused(format!(
            "no component {c} on this root (components: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        )));
    }
    let components = state
        .components
        .iter()
        .filter(|(c, _)| component.is_none_or(|w| w == *c))
        .map(|(c, cs)| ComponentView {
            component: c.to_string(),
            branch: cs.branch.to_string(),
            reason: cs.reason.to_string(),
            why: crate::report::BranchWhy::of(&cs.reason),
            version: cs.chosen.variant.version.to_string(),
            package: cs.chosen.package.to_string(),
            package_kind: cs.chosen.kind.to_string(),
            fixes: cs.chosen.variant.fixes.iter().map(ToString::to_string).collect(),
            restart: cs.chosen.variant.restart,
            files: files.iter().filter(|(_, f)| &f.component == c).map(|(p, _)| p.to_string()).collect(),
        })
        .collect();
    let baseline = state.baseline.as_ref().map(|b| BaselineView {
        name: b.decl.name.to_string(),
        level: b.decl.level,
        package: b.package.to_string(),
    });
    let warnings = lost_fixes(&state, &installed)
        .iter()
        .filter(|l| component.is_none_or(|w| w == &l.component))
        .map(ToString::to_string)
        .collect();
    Ok(StatusView {
        product: snap.product.to_string(),
        policy: snap.policy.to_string(),
        baseline,
        components,
        warnings,
    })
}

impl fmt::Display for StatusView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.baseline {
            Some(b) => writeln!(
                f,
                "{} at {} (level {}, from {}); branch policy {}",
                self.product, b.name, b.level, b.package, self.policy
            )?,
            None => writeln!(f, "{}: no baseline installed yet; branch policy {}", self.product, self.policy)?,
        }
        for c in &self.components {
            let from = if c.package_kind == Kind::Baseline.as_str() { " (baseline build)" } else { "" };
            writeln!(f, "{}: {} {} from {}{from}", c.component, c.branch.to_uppercase(), c.version, c.package)?;
            writeln!(f, "  why: {}", c.reason)?;
            let fixes = if c.fixes.is_empty() { "none".to_string() } else { c.fixes.join(", ") };
            writeln!(f, "  fixes: {fixes}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// Where a fix is active, or where it is only stashed.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FixLocationView {
    /// The component.
    pub component: String,
    /// Its branch (for a stashed build: the build's branch).
    pub branch: String,
    /// The package.
    pub package: String,
    /// The build's version.
    pub version: String,
}

/// `hotfix query --fix`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct QueryView {
    /// The fix asked about, as the installed manifests spell it (fix ids ignore case).
    pub fix: String,
    /// Whether an active build contains it.
    pub present: bool,
    /// The active builds that contain it.
    pub active: Vec<FixLocationView>,
    /// Builds at the root's baseline in the store (not active) that contain it.
    pub stashed: Vec<FixLocationView>,
}

impl QueryView {
    /// Exit code: 0 present, 9 absent.
    pub fn exit_code(&self) -> u8 {
        if self.present { 0 } else { 9 }
    }
}

/// `hotfix query --fix ID`: from the active builds' fix lists only.
pub fn query(s: &Session, fix: &Name) -> Result<QueryView> {
    let snap = s.snapshot()?;
    let installed = snap.installed();
    let state = active_state(&inputs(&snap, &installed, snap.policy))?;
    let presence = fix_present(&state, fix);
    // Shown as the manifests spell it: the active builds' spelling, else an installed one's.
    let spelled = presence.as_ref().map(|p| p.fix.clone()).or_else(|| {
        installed.iter().flat_map(|p| &p.manifest.variants).flat_map(|v| &v.fixes).find(|f| f.same_as(fix)).cloned()
    });
    let spelled = spelled.unwrap_or_else(|| fix.clone()).to_string();
    let active: Vec<FixLocationView> = presence
        .map(|p| {
            p.locations
                .into_iter()
                .map(|l| FixLocationView {
                    component: l.component.to_string(),
                    branch: l.branch.to_string(),
                    package: l.package.to_string(),
                    version: l.version.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let stashed = stashed_with(&state, &installed, fix);
    Ok(QueryView { fix: spelled, present: !active.is_empty(), active, stashed })
}

fn stashed_with(state: &ActiveState, installed: &[crate::engine::Installed], fix: &Name) -> Vec<FixLocationView> {
    let Some(b) = &state.baseline else { return Vec::new() };
    let mut out = Vec::new();
    for p in installed {
        for (i, v) in p.manifest.variants.iter().enumerate() {
            let active = state
                .components
                .get(&v.component)
                .is_some_and(|cs| cs.chosen.package == p.manifest.package.id && cs.chosen.index == i);
            if v.baseline == b.decl.name
                && !active
                && v.fixes.iter().any(|f| f.same_as(fix))
                && state.components.contains_key(&v.component)
            {
                out.push(FixLocationView {
                    component: v.component.to_string(),
                    branch: v.branch.map(|b| b.to_string()).unwrap_or_else(|| "baseline".into()),
                    package: p.manifest.package.id.to_string(),
                    version: v.version.to_string(),
                });
            }
        }
    }
    out
}

impl fmt::Display for QueryView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.present {
            writeln!(f, "{} is present:", self.fix)?;
            for l in &self.active {
                writeln!(f, "  {}: {} {} from {}", l.component, l.branch.to_uppercase(), l.version, l.package)?;
            }
        } else {
            writeln!(f, "{} is absent: no active build contains it.", self.fix)?;
        }
        if !self.stashed.is_empty() {
            writeln!(f, "Builds in the store (not active) that contain it:")?;
            for l in &self.stashed {
                writeln!(f, "  {}: {} {} from {}", l.component, l.branch.to_uppercase(), l.version, l.package)?;
            }
            if !self.present {
                writeln!(
                    f,
                    "An LDR build becomes active when a hotfix for the component is installed, with /B:QFE, or with \
                     `hotfix policy branch ldr`."
                )?;
            }
        }
        Ok(())
    }
}
