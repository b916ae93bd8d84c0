//! Which package owns a path (`hotfix owner PATH`, like `dpkg -S`) and the files of a
//! package or a component (`hotfix files ID|COMPONENT`, like `dpkg -L`): answered from the
//! installed manifests and the active state, never from the disk.

use std::fmt;
use std::path::Path;

use hotfix_schema::{Kind, Name, RelPath};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Session, Snapshot, inputs};
use crate::engine::{ActiveState, active_state};
use crate::error::{Error, Result};

/// One build of a component that an installed package carries.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BuildRef {
    /// The package.
    pub package: String,
    /// The component.
    pub component: String,
    /// The baseline the build is for.
    pub baseline: String,
    /// `gdr`, `ldr`, or `baseline` for a baseline package's build.
    pub branch: String,
    /// The build's version.
    pub version: String,
    /// `active` (its files are the live ones), `stashed` (in the store, at the root's
    /// baseline, not active) or `other-baseline` (for a baseline the root is not at).
    pub state: String,
}

/// `hotfix owner PATH`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct OwnerView {
    /// The path below the root.
    pub path: String,
    /// The build whose file is at the path now; `None` when no active build has it.
    pub active: Option<BuildRef>,
    /// Every installed build that has a file at the path (the active one included).
    pub builds: Vec<BuildRef>,
}

/// `hotfix files ID|COMPONENT`: the builds of a package, or of a component, with their
/// files.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FilesView {
    /// `package` or `component`.
    pub of: String,
    /// The package id or component name, as installed.
    pub name: String,
    /// The builds, each with its files.
    pub builds: Vec<BuildFiles>,
}

/// One build and its files.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BuildFiles {
    /// The build.
    #[serde(flatten)]
    pub build: BuildRef,
    /// Its files (paths below the root), sorted.
    pub files: Vec<String>,
}

pub(crate) fn build_ref(state: &ActiveState, m: &hotfix_schema::Manifest, i: usize) -> BuildRef {
    let v = &m.variants[i];
    let at_root = state.baseline.as_ref().is_some_and(|b| b.decl.name == v.baseline);
    let active =
        state.components.get(&v.component).is_some_and(|cs| cs.chosen.package == m.package.id && cs.chosen.index == i);
    BuildRef {
        package: m.package.id.to_string(),
        component: v.component.to_string(),
        baseline: v.baseline.to_string(),
        branch: v.branch.map_or_else(|| Kind::Baseline.to_string(), |b| b.to_string()),
        version: v.version.to_string(),
        state: if active {
            "active"
        } else if at_root {
            "stashed"
        } else {
            "other-baseline"
        }
        .to_string(),
    }
}

/// `path` as a path below the root: relative as given, or absolute inside `root`.
fn below_root(root: &Path, path: &str) -> Result<RelPath> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let under = p.strip_prefix(&root).map_err(|_| {
            Error::Usage(format!("{path} is not below the root {}; give a path below the root", root.display()))
        })?;
        under.to_string_lossy().into_owned()
    } else {
        path.trim_start_matches("./").to_string()
    };
    RelPath::new(&rel).map_err(|e| Error::Usage(format!("{path}: {e}")))
}

fn state_of(snap: &Snapshot) -> Result<ActiveState> {
    let installed = snap.installed();
    Ok(active_state(&inputs(snap, &installed, snap.policy))?)
}

/// `hotfix owner PATH`: the active build whose file is at `path`, and every installed
/// build that has one there. No installed build has it: an error (exit 1), as `dpkg -S`.
pub fn owner(s: &Session, root: &Path, path: &str) -> Result<OwnerView> {
    let rel = below_root(root, path)?;
    let snap = s.snapshot()?;
    let state = state_of(&snap)?;
    let mut builds = Vec::new();
    for p in &snap.packages {
        let m = &p.installed.manifest;
        for (i, v) in m.variants.iter().enumerate() {
            if v.files.binary_search_by(|f| f.path.cmp(&rel)).is_ok() {
                builds.push(build_ref(&state, m, i));
            }
        }
    }
    if builds.is_empty() {
        return Err(Error::Refused(format!("no installed package has a file at {rel}")));
    }
    let active = builds.iter().find(|b| b.state == "active").cloned();
    Ok(OwnerView { path: rel.to_string(), active, builds })
}

/// `hotfix files NAME`: an installed package's builds (NAME is a package id, in any
/// case), else a component's builds in every installed package (NAME is a component).
pub fn files(s: &Session, name: &Name) -> Result<FilesView> {
    let snap = s.snapshot()?;
    let state = state_of(&snap)?;
    let of_build = |m: &hotfix_schema::Manifest, i: usize| BuildFiles {
        build: build_ref(&state, m, i),
        files: m.variants[i].files.iter().map(|f| f.path.to_string()).collect(),
    };
    if let Some(p) = snap.package(name) {
        let m = &p.installed.manifest;
        let builds = (0..m.variants.len()).map(|i| of_build(m, i)).collect();
        return Ok(FilesView { of: "package".into(), name: m.package.id.to_string(), builds });
    }
    let component =
        snap.packages.iter().flat_map(|p| &p.installed.manifest.variants).map(|v| &v.component).find(|c| *c == name);
    let Some(component) = component.cloned() else {
        let ids: Vec<&str> = snap.packages.iter().map(|p| p.installed.manifest.package.id.as_str()).collect();
        let comps: Vec<&str> = state.components.keys().map(Name::as_str).collect();
        return Err(Error::Refused(format!(
            "{name} is neither an installed package ({}) nor a component ({})",
            if ids.is_empty() { "none".into() } else { ids.join(", ") },
            if comps.is_empty() { "none".into() } else { comps.join(", ") }
        )));
    };
    let mut builds = Vec::new();
    for p in &snap.packages {
        let m = &p.installed.manifest;
        for (i, v) in m.variants.iter().enumerate() {
            if v.component == component {
                builds.push(of_build(m, i));
            }
        }
    }
    Ok(FilesView { of: "component".into(), name: component.to_string(), builds })
}

fn describe(b: &BuildRef) -> String {
    format!("{} {} {} {} of {} [{}]", b.component, b.baseline, b.branch.to_uppercase(), b.version, b.package, b.state)
}

impl fmt::Display for OwnerView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.active {
            Some(a) => writeln!(
                f,
                "{}: {} (active build {} {} from {})",
                self.path,
                a.component,
                a.branch.to_uppercase(),
                a.version,
                a.package
            )?,
            None => writeln!(f, "{}: no active build has it; installed builds that do:", self.path)?,
        }
        let also = if self.active.is_some() { "also in" } else { "in" };
        for b in self.builds.iter().filter(|b| b.state != "active") {
            writeln!(f, "  {also} {}", describe(b))?;
        }
        Ok(())
    }
}

impl fmt::Display for FilesView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.builds {
            writeln!(f, "{}:", describe(&b.build))?;
            for p in &b.files {
                writeln!(f, "  {p}")?;
            }
        }
        Ok(())
    }
}
