//! Keeping a root honest and small: `check [--repair]` compares every live file with the
//! inventory and the store with the installed packages; `cleanup [--reset-base]` deletes
//! blobs no installed package references, after optionally making the active state
//! permanent.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use hotfix_schema::{Digest, Name};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Session, Snapshot, inputs};
use crate::crash;
use crate::engine::{ActiveState, Installed, active_files, active_state, lost_fixes};
use crate::error::{Error, Result};
use crate::inventory::Commit;
use crate::oplog;
use crate::rootfs::Kind;
use crate::store::BlobState;
use crate::txn::live::LiveTree;

/// One live file that differs from the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Difference {
    /// The path under the root.
    pub path: String,
    /// What differs, as data.
    pub kind: DifferenceKind,
    /// What differs, in words (sizes, hashes, modes).
    pub problem: String,
    /// Whether `--repair` fixed it.
    pub repaired: bool,
}

/// How a live file differs from the inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DifferenceKind {
    /// Nothing at the path.
    Missing,
    /// Its content is not the inventory's.
    Content,
    /// Only its mode differs.
    Mode,
    /// Something that is not a file is at the path, or in the way of it; `--repair` does not
    /// touch it.
    InTheWay,
}

/// A problem with the store or the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Problem {
    /// What is wrong, as data.
    pub kind: ProblemKind,
    /// The store blob concerned (its SHA-256), for a blob problem.
    pub blob: Option<String>,
    /// The package that carries it, for a blob problem.
    pub package: Option<String>,
    /// What is wrong and what to do, in words.
    pub message: String,
}

/// The kinds of [`Problem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The inventory's file list or count disagrees with its installed packages.
    Inventory,
    /// A store blob an installed package needs is missing.
    BlobMissing,
    /// A store blob is damaged.
    BlobDamaged,
}

impl Problem {
    fn inventory(message: String) -> Problem {
        Problem { kind: ProblemKind::Inventory, blob: None, package: None, message }
    }
}

/// `hotfix check`.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct CheckReport {
    /// Live files compared.
    pub files: usize,
    /// Store blobs compared.
    pub blobs: usize,
    /// Live files that differ.
    pub differences: Vec<Difference>,
    /// Problems with the store or the inventory, which `--repair` cannot fix.
    pub problems: Vec<Problem>,
    /// Files an interrupted install left in the store's staging directory (removed when
    /// the root's lock was free).
    pub leftovers: crate::store::Leftovers,
    /// Packages whose blobs `--from` put back into the store.
    pub reseeded: Vec<Reseeded>,
    /// Fixes of installed builds that no active build has (a vendor numbering mistake;
    /// not damage, so not counted in the exit code).
    pub warnings: Vec<String>,
    /// The one package whose live files and blobs were compared (`install --reinstall`);
    /// `None`: the whole root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// What `check --repair --from PKG` put back into the store from one package file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Reseeded {
    /// The package file.
    pub file: String,
    /// The installed package it carries.
    pub package: String,
    /// Blobs written (missing or damaged before).
    pub blobs: usize,
}

/// Puts back every blob of the installed packages in `files` that the store lacks or holds
/// damaged: each file is authenticated against the root's trusted keys, must carry a
/// package installed here (the same manifest), and is decoded into the store's staging,
/// each content checked against its hash before it replaces anything.
pub fn reseed(s: &mut Session, files: &[std::path::PathBuf]) -> Result<Vec<Reseeded>> {
    let keys = crate::trust::keys(&s.layout)?;
    let limits = hotfix_schema::Limits::default();
    let mut out = Vec::new();
    for file in files {
        let package_error = |source: pkgtool::Error| Error::Package {
            source: Box::new(source),
            hint: ". Nothing was written; --from takes the publisher's file of an installed package".into(),
        };
        let verified = pkgtool::read::verify(file, &keys, &limits, &mut |_, _| {}).map_err(package_error)?;
        let id = verified.manifest.package.id.clone();
        match s.inv.manifest(&id)? {
            Some(m) if m == verified.manifest => {}
            Some(_) => {
                return Err(Error::Refused(format!(
                    "{} carries a package {id} that differs from the installed {id}; nothing was written",
                    file.display()
                )));
            }
            None => {
                return Err(Error::Refused(format!(
                    "{} carries {id}, which is not installed on this root; nothing was written (install it \
                     instead)",
                    file.display()
                )));
            }
        }
        let mut staging = s.store.staging();
        if let Err(e) = verified.decode_into(&limits, &mut |_, _| {}, &mut staging) {
            return Err(staging.take_failure().unwrap_or_else(|| package_error(e)));
        }
        let ingested = staging.commit()?;
        out.push(Reseeded { file: file.display().to_string(), package: id.to_string(), blobs: ingested.added });
    }
    Ok(out)
}

impl CheckReport {
    /// Exit code: 1 if anything is (still) wrong.
    pub fn exit_code(&self) -> u8 {
        let open = self.differences.iter().any(|d| !d.repaired) || !self.problems.is_empty();
        u8::from(open)
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.reseeded {
            writeln!(f, "Put back {} store blobs of {} from {}.", r.blobs, r.package, r.file)?;
        }
        let l = &self.leftovers;
        if l.files > 0 {
            let what = format!(
                "{} files ({} bytes) an interrupted install left in the store's staging directory",
                l.files, l.bytes
            );
            if l.removed {
                writeln!(f, "Removed {what}.")?;
            } else {
                writeln!(f, "Found {what}; the next servicing command removes them (another one holds the root now).")?;
            }
        }
        for d in &self.differences {
            let fixed = if d.repaired { " — repaired from the store" } else { "" };
            writeln!(f, "{}: {}{fixed}", d.path, d.problem)?;
        }
        for p in &self.problems {
            writeln!(f, "{}", p.message)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        let open = self.differences.iter().filter(|d| !d.repaired).count();
        let whose = self.package.as_ref().map(|p| format!(" of {p}")).unwrap_or_default();
        let matches = match &self.package {
            Some(p) => format!("the live files of {p} match the inventory now"),
            None => "the root matches the inventory now".to_string(),
        };
        if self.differences.is_empty() && self.problems.is_empty() {
            writeln!(
                f,
                "OK: {} files{whose} match the inventory; {} store blobs{whose} are intact.",
                self.files, self.blobs
            )
        } else if open == 0 && self.problems.is_empty() {
            writeln!(f, "Repaired {} of {} files{whose}; {matches}.", self.differences.len(), self.files)
        } else {
            writeln!(
                f,
                "{} of {} files differ from the inventory{}.{}",
                open,
                self.files,
                if self.problems.is_empty() {
                    String::new()
                } else {
                    format!("; {} other problems", self.problems.len())
                },
                if open > 0 { " Run `hotfix check --repair` to restore them from the store." } else { "" }
            )
        }
    }
}

/// `hotfix check [--repair]`.
pub fn check(s: &Session, repair: bool) -> Result<CheckReport> {
    check_of(s, repair, None)
}

/// `check [--repair]` of the whole root, or with `only`, of the live files whose active
/// build is that package's and of that package's blobs (what `install --reinstall` puts
/// back; the inventory's own consistency is then left to `check`).
pub fn check_of(s: &Session, repair: bool, only: Option<&Name>) -> Result<CheckReport> {
    let snap = s.snapshot()?;
    let installed = snap.installed();
    let mut files = s.inv.files()?;
    if let Some(id) = only {
        files.retain(|_, f| &f.package == id);
    }
    let mut report = CheckReport {
        files: files.len(),
        leftovers: s.leftovers,
        package: only.map(ToString::to_string),
        ..CheckReport::default()
    };
    if only.is_none() {
        let state = active_state(&inputs(&snap, &installed, snap.policy))?;
        report.warnings = lost_fixes(&state, &installed).iter().map(ToString::to_string).collect();
        let expected = active_files(&state)?;
        if expected != files {
            report.problems.push(Problem::inventory(
                "the inventory's file list disagrees with its installed packages (the inventory was edited?)".into(),
            ));
        }
        let counted = s.inv.file_count()?;
        if counted != files.len() as u64 {
            report.problems.push(Problem::inventory(format!(
                "the inventory counts {counted} files but lists {} (the inventory was edited?)",
                files.len()
            )));
        }
    }
    let tree = LiveTree::open(&s.layout)?;
    for (path, f) in &files {
        let problem = match tree.entry(path) {
            Err(Error::Conflict { path: at, why }) => Some((
                DifferenceKind::InTheWay,
                format!("{} {why} (not repaired: move it away first)", at.display()),
                false,
            )),
            Err(e) => return Err(e),
            Ok(None) => Some((DifferenceKind::Missing, "missing".to_string(), true)),
            Ok(Some(e)) if e.kind == Kind::File => {
                let Some((sha, size)) = tree.hash(path, f.size.saturating_add(1))? else {
                    report.differences.push(Difference {
                        path: path.to_string(),
                        kind: DifferenceKind::Missing,
                        problem: "missing".into(),
                        repaired: false,
                    });
                    continue;
                };
                if sha != f.sha256 || size != f.size {
                    let shown =
                        if size > f.size { format!("more than {} bytes", f.size) } else { format!("{size} bytes") };
                    Some((
                        DifferenceKind::Content,
                        format!("content differs ({shown}, SHA-256 {sha}; expected {} bytes, {})", f.size, f.sha256),
                        true,
                    ))
                } else if e.mode != f.mode.bits() {
                    Some((DifferenceKind::Mode, format!("mode {:04o}, expected {}", e.mode, f.mode), true))
                } else {
                    None
                }
            }
            Ok(Some(e)) => Some((
                DifferenceKind::InTheWay,
                format!("is {}, not a file (not repaired: move it away first)", e.kind.describe()),
                false,
            )),
        };
        let Some((kind, problem, fixable)) = problem else { continue };
        let mut repaired = false;
        if repair && fixable {
            let (sha, size, mode) = (&f.sha256, f.size, f.mode.bits());
            if kind == DifferenceKind::Mode {
                tree.set_mode(&s.store, path, sha, size, mode)?;
            } else {
                tree.restore(&s.store, path, sha, size, mode)?;
            }
            repaired = true;
        }
        report.differences.push(Difference { path: path.to_string(), kind, problem, repaired });
    }
    let mut seen: HashSet<Digest> = HashSet::new();
    for p in snap.packages.iter().filter(|p| only.is_none_or(|id| &p.installed.manifest.package.id == id)) {
        let m = &p.installed.manifest;
        for (digest, _, size) in m.blobs.iter().flat_map(|b| b.contents()).filter(|c| seen.insert(c.0)) {
            report.blobs += 1;
            let (kind, why) = match s.store.check(&digest, size)? {
                BlobState::Good => continue,
                BlobState::Missing => (ProblemKind::BlobMissing, "is missing".to_string()),
                BlobState::Bad(w) => (ProblemKind::BlobDamaged, format!("is damaged ({w})")),
            };
            report.problems.push(Problem {
                kind,
                blob: Some(digest.to_string()),
                package: Some(m.package.id.to_string()),
                message: format!(
                    "store blob {digest} of {id} {why}; put it back from {id}'s package file: hotfix --root {root} \
                     check --repair --from {id}.pkg",
                    id = m.package.id,
                    root = s.layout.shown()
                ),
            });
        }
    }
    Ok(report)
}

/// `hotfix cleanup`.
#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct CleanupReport {
    /// Packages made permanent by `--reset-base` (dropped from the inventory).
    pub dropped: Vec<String>,
    /// Blobs deleted.
    pub blobs: usize,
    /// Bytes freed.
    pub bytes: u64,
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.dropped.is_empty() {
            writeln!(
                f,
                "Reset base: dropped from the inventory, part of the base now, no longer uninstallable: {}.",
                self.dropped.join(", ")
            )?;
        }
        writeln!(f, "Deleted {} unreferenced blobs; {} bytes freed.", self.blobs, self.bytes)
    }
}

/// The part of a state that `--reset-base` must keep: baseline and, per component, branch
/// and chosen build.
type Essence = (Option<(Name, u32, Name)>, BTreeMap<Name, (String, Name, usize)>);

fn essence(s: &ActiveState) -> Essence {
    let base = s.baseline.as_ref().map(|b| (b.decl.name.clone(), b.decl.level, b.package.clone()));
    let comps = s
        .components
        .iter()
        .map(|(c, cs)| (c.clone(), (cs.branch.to_string(), cs.chosen.package.clone(), cs.chosen.index)))
        .collect();
    (base, comps)
}

/// Packages whose removal, one after another in install order, leaves the active state as
/// it is and loses no fix ([`loses_fixes`]): what `--reset-base` drops.
pub fn superseded(snap: &Snapshot) -> Result<Vec<Name>> {
    let mut kept: Vec<Installed> = snap.installed();
    let state = active_state(&inputs(snap, &kept, snap.policy))?;
    let target = essence(&state);
    let mut dropped = Vec::new();
    for p in &snap.packages {
        let id = &p.installed.manifest.package.id;
        let without: Vec<Installed> = kept.iter().filter(|q| &q.manifest.package.id != id).cloned().collect();
        if essence(&active_state(&inputs(snap, &without, snap.policy))?) == target
            && !loses_fixes(&state, &p.installed, &without)
        {
            kept = without;
            dropped.push(id.clone());
        }
    }
    Ok(dropped)
}

/// Whether dropping `p` (keeping `others`) would lose a fix: one of its builds at the
/// root's baseline, for a component of the root, has a fix that neither the component's
/// active build (for a build on the active branch, or a baseline package's build) nor a
/// kept package's build on the same branch (for a stashed build, which a later hotfix or
/// policy change would make active) has. A fix that is in no active build — a vendor's
/// numbering mistake, see [`lost_fixes`] — keeps its package.
fn loses_fixes(state: &ActiveState, p: &Installed, others: &[Installed]) -> bool {
    let Some(baseline) = &state.baseline else { return false };
    let has = |fixes: &[Name], f: &Name| fixes.iter().any(|x| x.same_as(f));
    p.manifest.variants.iter().filter(|v| v.baseline == baseline.decl.name).any(|v| {
        let Some(cs) = state.components.get(&v.component) else { return false };
        if v.branch.is_none_or(|b| b == cs.branch) {
            return v.fixes.iter().any(|f| !has(&cs.chosen.variant.fixes, f));
        }
        let kept = others
            .iter()
            .flat_map(|q| &q.manifest.variants)
            .filter(|w| w.component == v.component && w.baseline == v.baseline && w.branch == v.branch);
        !kept.into_iter().any(|w| v.fixes.iter().all(|f| has(&w.fixes, f)))
    })
}

/// `hotfix cleanup [--reset-base]`. With `reset_base`, `confirm` is shown the packages
/// that would be made permanent before anything is; its error (no confirmation) stops the
/// command with nothing changed.
pub fn cleanup(
    s: &mut Session,
    reset_base: bool,
    confirm: impl FnOnce(&[Name]) -> Result<()>,
) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    if reset_base {
        let dropped = superseded(&s.snapshot()?)?;
        if !dropped.is_empty() {
            confirm(&dropped)?;
            crash::step("commit the reset base");
            s.inv.commit(&Commit { remove: dropped.clone(), ..Commit::default() })?;
        }
        report.dropped = dropped.iter().map(ToString::to_string).collect();
    }
    let keep: HashSet<Digest> =
        s.snapshot()?.packages.iter().flat_map(|p| p.installed.manifest.content_index().into_keys()).collect();
    (report.blobs, report.bytes) = s.store.collect_garbage(&keep)?;
    let entry = oplog::Entry {
        removed: report.blobs,
        result: format!("ok, {} bytes freed; made permanent: {}", report.bytes, report.dropped.join(", ")),
        ..oplog::Entry::new(if reset_base { "cleanup --reset-base" } else { "cleanup" })
    };
    oplog::append(&s.layout, &entry)?;
    Ok(report)
}
