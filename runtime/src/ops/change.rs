//! The operations that change a root's inputs — install, uninstall, branch policy — each
//! decided by the engine and applied as one transaction; and `what_if`, the same decision
//! for an install without applying it. A refused install or uninstall is logged too.

use std::path::Path;

use hotfix_schema::{Channel, Kind, Limits, Manifest, Name};
use pkgtool::Verified;

use super::maintain::{self, CheckReport};
use super::{PackageChange, Scope, Session, Snapshot, inputs};
use crate::engine::{
    Applicability, BranchPolicy, InstallOptions, Installed, NotApplicableReason, QfeOverride, applicability,
    lost_fixes, transition,
};
use crate::error::{Error, Result};
use crate::inventory::StoredOptions;
use crate::oplog;
use crate::progress;
use crate::report::{ChangeReport, describe_options};
use crate::trust;
use crate::txn::{self, Change};

/// What to install and how.
#[derive(Clone, Debug)]
pub struct InstallRequest<'a> {
    /// The package file.
    pub package: &'a Path,
    /// The branch override.
    pub qfe: QfeOverride,
    /// Accept a prerelease package.
    pub allow_prerelease: bool,
}

/// An install decided but not applied.
struct Planned {
    change: Change,
    headline: String,
    scope: Option<Scope>,
    /// Fixes the change leaves in no active build ([`lost_fixes`]), as warnings.
    warnings: Vec<String>,
}

/// Authenticates the package at `path` with the root's trusted keys, showing progress: the
/// signature over every byte, the manifest and the structure. Its blobs are not decoded
/// (install does that next, from the same open file).
pub fn verify(s: &mut Session, path: &Path) -> Result<Verified> {
    let keys = trust::keys(&s.layout)?;
    let progress = &mut s.progress;
    let verified = pkgtool::read::verify(path, &keys, &Limits::default(), &mut |done, total| {
        progress.update(progress::VERIFY, done, total);
    });
    s.progress.clear();
    verified.map_err(|source| verify_error(s, source))
}

/// `hotfix install`: authenticate every byte, decode and stage every blob, decide, store
/// the blobs, apply the transition.
pub fn install(s: &mut Session, req: &InstallRequest<'_>) -> Result<ChangeReport> {
    let result = install_planned(s, req);
    if let Err(e) = &result {
        oplog::append_failure(&s.layout, &format!("install {}", req.package.display()), None, e);
    }
    result
}

fn install_planned(s: &mut Session, req: &InstallRequest<'_>) -> Result<ChangeReport> {
    // First the authentication pass: every byte against the signature, the manifest and
    // the structure checked; nothing decoded, nothing written (FORMAT.md §8). Then the
    // decode pass over the same open file: every content the store lacks is written under
    // a temporary name as it is decoded and checked against the authenticated manifest,
    // and becomes a store blob only once every blob checked out and the install is planned.
    let verified = verify(s, req.package)?;
    install_from(s, verified, req)
}

/// [`install`] of a package already authenticated by [`verify`] (the update channel
/// compares its manifest with the repository's metadata first).
pub fn install_verified(s: &mut Session, verified: Verified, req: &InstallRequest<'_>) -> Result<ChangeReport> {
    let result = install_from(s, verified, req);
    if let Err(e) = &result {
        oplog::append_failure(&s.layout, &format!("install {}", req.package.display()), None, e);
    }
    result
}

fn install_from(s: &mut Session, verified: Verified, req: &InstallRequest<'_>) -> Result<ChangeReport> {
    let mut staging = s.store.staging();
    let progress = &mut s.progress;
    let decoded = verified.decode_into(
        &Limits::default(),
        &mut |done, total| progress.update(progress::STORE, done, total),
        &mut staging,
    );
    s.progress.clear();
    if let Err(source) = decoded {
        return Err(staging.take_failure().unwrap_or_else(|| verify_error(s, source)));
    }
    let Planned { change, headline, scope, warnings } = plan_install(s, verified.into_manifest(), req)?;
    let ingested = staging.commit()?;
    let id = change.package.clone();
    let done = finish(s, change, headline, true, scope.as_ref()).map(|mut r| {
        r.warnings.splice(0..0, warnings);
        r
    });
    if done.is_err() {
        // The package did not become installed, so nothing refers to the blobs this
        // install added (a rollback needs only the old files' blobs): the store is left
        // as it was found.
        let installed =
            s.inv.headers().map(|h| h.iter().any(|p| Some(&p.installed.manifest.package.id) == id.as_ref()));
        if matches!(installed, Ok(false)) {
            s.store.take_back(&ingested.digests);
        }
    }
    done
}

/// `--what-if`: everything `install` decides about the package `verified` (see [`verify`])
/// — policy, applicability, the transition and its conflicts — without changing anything.
/// Its errors are the ones `install` would end with.
pub fn what_if(s: &mut Session, verified: &Verified, req: &InstallRequest<'_>) -> Result<ChangeReport> {
    let Planned { change, headline, scope, warnings } = plan_install(s, verified.manifest.clone(), req)?;
    let headline = headline.replacen("Installed", "Installing", 1) + " would change:";
    let mut report = ChangeReport::new(&change.op, change.package.as_ref(), headline, &change.transition, false);
    report.warnings.extend(warnings);
    report.what_if = true;
    report.note_stash(&verified.manifest, &change.transition.after);
    if let Some(scope) = &scope {
        scope.complete_report(&mut report);
    }
    Ok(report)
}

fn plan_install(s: &Session, manifest: Manifest, req: &InstallRequest<'_>) -> Result<Planned> {
    let id = manifest.package.id.clone();
    if manifest.package.channel == Channel::Prerelease && !req.allow_prerelease {
        return Err(Error::Prerelease { package: id });
    }
    let new = Installed::new(manifest, InstallOptions { qfe: req.qfe.clone() });
    let m = &new.manifest;
    // Only what the package can change is read: its components' rows.
    let snap = s.snapshot_for(PackageChange::Add(&new))?;
    if let Some(p) = snap.package(&id) {
        let installed = if p.installed.variant_indices.is_none() {
            Some(p.installed.manifest.clone())
        } else {
            s.inv.manifest(&id)?
        };
        if installed.as_ref() != Some(m) {
            return Err(Error::Refused(format!(
                "{} holds a package with id {id}, but a different package with that id is installed \
                 (#{}, {:?}); package ids must be unique. Nothing was changed. If it replaces the installed one, \
                 uninstall {id} first",
                req.package.display(),
                p.seq,
                p.installed.manifest.package.title
            )));
        }
        return Err(already(s, &snap, &id));
    }
    let before = snap.installed();
    match applicability(&inputs(&snap, &before, snap.policy), m, &new.options)? {
        Applicability::Applicable => {}
        Applicability::AlreadyInstalled => return Err(already(s, &snap, &id)),
        Applicability::NotApplicable(mut reason) => {
            if let (NotApplicableReason::NoInstalledComponent { root_components, .. }, Some(scope)) =
                (&mut reason, &snap.scope)
            {
                // The engine saw the scope's components only.
                root_components.extend(scope.others.iter().cloned());
                root_components.sort();
                root_components.dedup();
            }
            return Err(Error::NotApplicable { package: id, reason: Box::new(reason) });
        }
    }
    let mut after = before;
    after.push(new.clone());
    let (snap, t) = s.transition(snap, PackageChange::Add(&new))?;
    // Conflicts first, so that a refused install writes nothing, not even to the store.
    txn::preflight(&s.layout, &t.plan)?;
    // The components this package touches are all in the snapshot: a fix the install
    // leaves in no active build is one of theirs.
    let warnings = lost_fixes(&t.after, &after).iter().map(ToString::to_string).collect();
    let mut headline = format!("Installed {id} ({}): {}", m.package.kind, m.package.title);
    if new.options.qfe != QfeOverride::Off {
        headline.push_str(&format!(" [{}]", new.options.qfe));
    }
    let change = Change {
        op: format!("install {id}"),
        package: Some(id),
        add: Some(new),
        remove: Vec::new(),
        policy: None,
        transition: t,
    };
    Ok(Planned { change, headline, scope: snap.scope, warnings })
}

fn already(s: &Session, snap: &Snapshot, id: &Name) -> Error {
    let (sequence, options) = snap
        .package(id)
        .map(|p| (p.seq, describe_options(&StoredOptions::of(&p.installed.options))))
        .unwrap_or((0, String::new()));
    Error::AlreadyInstalled { package: id.clone(), sequence, options, root: s.layout.shown() }
}

fn verify_error(s: &Session, source: pkgtool::Error) -> Error {
    let untrusted = matches!(&source, pkgtool::Error::Integrity { kind: pkgtool::Integrity::UntrustedKey { .. }, .. });
    let hint = if untrusted {
        format!(
            ". Nothing was written. If the signer is genuine, trust its key first: \
             hotfix --root {} trust add KEY.pub",
            s.layout.shown()
        )
    } else if source.exit_code() == 6 {
        ". Nothing was written; get a fresh copy of the package from its publisher".to_string()
    } else {
        ". Nothing was written".to_string()
    };
    Error::Package { source: Box::new(source), hint }
}

/// `hotfix uninstall ID`: the same root without the package.
pub fn uninstall(s: &mut Session, id: &Name) -> Result<ChangeReport> {
    let result = installed_id(s, id).and_then(|id| uninstall_id(s, &id));
    if let Err(e) = &result {
        oplog::append_failure(&s.layout, &format!("uninstall {id}"), Some(id.to_string()), e);
    }
    result
}

/// `hotfix install --reinstall PKG`: puts the installed package that the file `path`
/// carries back as it was installed — the way back from a damaged store when uninstalling
/// is refused (the only baseline) or would need the damaged blobs itself. Not a
/// transaction: the package keeps its place in the install order and nothing is decided
/// again. The file is authenticated against the root's keys and must carry the installed
/// manifest; the blobs the store lacks or holds damaged are written again from it
/// ([`maintain::reseed`]), then the live files whose active build is that package's and
/// that differ from the inventory are restored from the store. Exit code 1 if any of them
/// could not be (see [`CheckReport::exit_code`]).
pub fn reinstall(s: &mut Session, path: &Path) -> Result<CheckReport> {
    let result = maintain::reseed(s, &[path.to_path_buf()]).and_then(|reseeded| {
        let id = reseeded
            .first()
            .and_then(|r| Name::new(&r.package).ok())
            .ok_or_else(|| Error::Refused(format!("{} carries no installed package", path.display())))?;
        let mut report = maintain::check_of(s, true, Some(&id))?;
        report.reseeded = reseeded;
        Ok((id, report))
    });
    match result {
        Ok((id, report)) => {
            let open = report.differences.iter().filter(|d| !d.repaired).count();
            let entry = oplog::Entry {
                package: Some(id.to_string()),
                written: report.differences.len() - open,
                files_written: report.differences.iter().filter(|d| d.repaired).map(|d| d.path.clone()).collect(),
                result: format!(
                    "{} store blobs put back, {} live files repaired, {} not",
                    report.reseeded.iter().map(|r| r.blobs).sum::<usize>(),
                    report.differences.len() - open,
                    open + report.problems.len()
                ),
                exit_code: report.exit_code(),
                ..oplog::Entry::new(format!("install --reinstall {id}"))
            };
            oplog::append(&s.layout, &entry)?;
            Ok(report)
        }
        Err(e) => {
            oplog::append_failure(&s.layout, &format!("install --reinstall {}", path.display()), None, &e);
            Err(e)
        }
    }
}

/// `/uninstall` of a package file (the self-contained installer's own package, or
/// `hotfix install PKG /uninstall`): verifies the file, then uninstalls the package it
/// carries — only if the installed package with that id is this very package.
pub fn uninstall_file(s: &mut Session, path: &Path) -> Result<ChangeReport> {
    let result = verify(s, path).and_then(|verified| {
        let m = &verified.manifest;
        let id = &m.package.id;
        let installed = s.inv.headers()?.into_iter().find(|p| &p.installed.manifest.package.id == id);
        if let Some(p) = installed
            && s.inv.manifest(id)?.as_ref() != Some(m)
        {
            return Err(Error::Refused(format!(
                "{} holds package {id}, but the installed {id} is a different package (#{}, {:?}); nothing was \
                 changed. To remove the installed one anyway: hotfix --root {} uninstall {id}",
                path.display(),
                p.seq,
                p.installed.manifest.package.title,
                s.layout.shown()
            )));
        }
        uninstall_id(s, id)
    });
    if let Err(e) = &result {
        oplog::append_failure(&s.layout, &format!("uninstall {}", path.display()), None, e);
    }
    result
}

/// The id of the installed package that `typed` names: package ids ignore case, so `kb4`
/// names the installed `KB4` (the exact spelling first). `typed` itself when none matches.
pub fn installed_id(s: &Session, typed: &Name) -> Result<Name> {
    let headers = s.inv.headers()?;
    let ids = || headers.iter().map(|p| &p.installed.manifest.package.id);
    Ok(ids().find(|id| *id == typed).or_else(|| ids().find(|id| id.same_as(typed))).unwrap_or(typed).clone())
}

fn uninstall_id(s: &mut Session, id: &Name) -> Result<ChangeReport> {
    let snap = s.snapshot_for(PackageChange::Remove(id))?;
    let Some(p) = snap.package(id) else {
        let ids: Vec<&str> = snap.packages.iter().map(|p| p.installed.manifest.package.id.as_str()).collect();
        return Err(Error::Refused(format!(
            "{id} is not installed on this root (installed: {}); nothing was changed",
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        )));
    };
    let m = &p.installed.manifest;
    let baselines = snap.packages.iter().filter(|q| q.installed.manifest.package.kind == Kind::Baseline).count();
    if m.package.kind == Kind::Baseline && baselines == 1 {
        return Err(Error::Refused(format!(
            "{id} is the root's only baseline package; a root cannot go below its first baseline. \
             Nothing was changed"
        )));
    }
    let headline = format!("Uninstalled {id} ({}): {}", m.package.kind, m.package.title);
    let (snap, t) = s.transition(snap, PackageChange::Remove(id))?;
    let change = Change {
        op: format!("uninstall {id}"),
        package: Some(id.clone()),
        add: None,
        remove: vec![id.clone()],
        policy: None,
        transition: t,
    };
    finish(s, change, headline, false, snap.scope.as_ref())
}

/// `hotfix policy branch ldr|auto`.
pub fn set_policy(s: &mut Session, policy: BranchPolicy) -> Result<ChangeReport> {
    let snap = s.snapshot()?;
    let installed = snap.installed();
    let t = transition(&inputs(&snap, &installed, snap.policy), &inputs(&snap, &installed, policy))?;
    let op = format!("policy branch {policy}");
    if snap.policy == policy {
        let headline = format!("The branch policy is already {policy}; nothing changed");
        return Ok(ChangeReport::new(&op, None, headline, &t, false));
    }
    let change = Change { op, package: None, add: None, remove: Vec::new(), policy: Some(policy), transition: t };
    finish(s, change, format!("Branch policy set to {policy}"), false, None)
}

fn finish(
    s: &mut Session,
    change: Change,
    headline: String,
    note_stash: bool,
    scope: Option<&Scope>,
) -> Result<ChangeReport> {
    txn::run(&s.layout, &mut s.inv, &s.store, &change, s.progress.as_mut())?;
    s.progress.clear();
    let mut report = ChangeReport::new(&change.op, change.package.as_ref(), headline, &change.transition, true);
    if let (true, Some(added)) = (note_stash, &change.add) {
        report.note_stash(&added.manifest, &change.transition.after);
    }
    if let Some(scope) = scope {
        scope.complete_report(&mut report);
    }
    if let Err(e) = oplog::append(&s.layout, &report.log_entry()) {
        report.warnings.push(format!("the change is committed, but the log was not written: {e}"));
    }
    Ok(report)
}
