//! Which of a repository's packages a root is offered, and why each other one is not — a
//! pure function over data: the root's state ([`RootView`]) and the targets' metadata
//! ([`Candidate`]s) in, a [`Selection`] out. No network, no file system, no clock.
//!
//! The rules (issue #14, "Supersedence follows the seeds"):
//!
//! 1. Another product's package is left out.
//! 2. An installed package is left out.
//! 3. A prerelease package is left out unless the root allows prereleases.
//! 4. A hotfix is left out unless it was named (`--hotfix KB1`).
//! 5. An update or hotfix with no variant for the root's baseline is left out; a baseline
//!    package at or below the root's baseline level is left out.
//! 6. Of the rest, one superseded by another offered or installed package is left out,
//!    naming that package: rollups are cumulative and skip-able, so a root that skipped one
//!    is offered only the newest, which carries every fix of both.
//!
//! The result does not depend on the order of the candidates. Ids are compared without
//! case and with their digits as numbers, so `KB10` comes after `KB9`.
//!
//! An offer names the installed packages it replaces ([`Offer::replaces`]): those it
//! supersedes by [`crate::meta::supersedes`] — same kind, every fix and baseline. An update
//! is therefore never reported as replacing a hotfix (an LDR build) whose fix it does not
//! carry; which build becomes active is the servicing rule's decision at install, as for
//! any package.

use hotfix_schema::{Channel, Kind, Name};
use serde::Serialize;

use crate::meta::{PackageMeta, supersedes};

/// What the selection needs to know about the root.
#[derive(Clone, Debug, Default)]
pub struct RootView {
    /// The root's product.
    pub product: Option<Name>,
    /// The root's baseline and its level; `None` before a baseline package is installed.
    pub baseline: Option<(Name, u32)>,
    /// The ids of the installed packages.
    pub installed: Vec<Name>,
    /// Whether prerelease packages may be offered (`--allow-prerelease`).
    pub allow_prerelease: bool,
    /// The hotfixes the administrator asked for by id.
    pub hotfixes_requested: Vec<Name>,
    /// What the installed packages say of themselves (from their manifests), for
    /// [`Offer::replaces`].
    pub installed_meta: Vec<PackageMeta>,
}

/// One package target of the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The target's name in the repository.
    pub target: String,
    /// Its length in bytes, from the signed targets metadata.
    pub length: u64,
    /// Its SHA-256 (hex), from the signed targets metadata.
    pub sha256: String,
    /// What the target says about its package.
    pub meta: PackageMeta,
}

/// Why a package is offered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OfferReason {
    /// An update for the root's baseline that nothing offered or installed supersedes.
    Update,
    /// A hotfix the administrator named.
    HotfixRequested,
    /// A baseline package (service pack) above the root's baseline.
    NewBaseline,
    /// The first baseline package of a root that has none.
    FirstBaseline,
}

/// Why a package is left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LeftOutReason {
    /// For another product.
    OtherProduct {
        /// The package's product.
        product: Name,
    },
    /// Already installed on this root.
    AlreadyInstalled,
    /// A prerelease package, and the root does not allow prereleases.
    Prerelease,
    /// A hotfix nobody asked for (`hotfix update --hotfix ID` asks).
    HotfixNotRequested,
    /// No variant for the root's baseline.
    OtherBaseline {
        /// The root's baseline.
        root: Option<Name>,
        /// The package's baselines.
        package: Vec<Name>,
    },
    /// A baseline package at or below the root's baseline.
    NotNewerBaseline,
    /// Another package (offered or installed) carries everything this one does.
    SupersededBy {
        /// That package.
        by: Name,
        /// Whether it is already installed (rather than offered).
        installed: bool,
    },
}

/// One package the root is offered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// The package target.
    pub candidate: Candidate,
    /// Why.
    pub reason: OfferReason,
    /// The installed packages it supersedes (carries every fix and baseline of), by id.
    pub replaces: Vec<Name>,
}

/// One package left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// The package target.
    pub candidate: Candidate,
    /// Why.
    pub reason: LeftOutReason,
}

/// The selection: offered packages in install order (baselines first, then updates, then
/// hotfixes, each by id), and the others with their reasons, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// What applies to the root.
    pub offered: Vec<Offer>,
    /// What does not, and why.
    pub left_out: Vec<LeftOut>,
}

fn has(list: &[Name], id: &Name) -> bool {
    list.iter().any(|x| x.same_as(id))
}

/// One run of an id: digits compare as a number (leading zeros ignored, then by length),
/// anything else without case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Run {
    Number(usize, String),
    Text(String),
}

/// An id as a sequence of runs, so that `KB10` sorts after `KB9`.
fn natural(id: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut rest = id;
    while let Some(c) = rest.chars().next() {
        let digit = c.is_ascii_digit();
        let end = rest.find(|x: char| x.is_ascii_digit() != digit).unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        runs.push(if digit {
            let n = run.trim_start_matches('0');
            Run::Number(n.len(), n.to_string())
        } else {
            Run::Text(run.to_ascii_lowercase())
        });
        rest = tail;
    }
    runs
}

fn key(c: &Candidate) -> (u8, Option<u32>, Vec<Run>, String) {
    let rank = match c.meta.kind {
        Kind::Baseline => 0,
        Kind::Update => 1,
        Kind::Hotfix => 2,
    };
    (rank, c.meta.baseline_level, natural(c.meta.id.as_str()), c.meta.id.as_str().to_string())
}

/// Rules 1–5 for one candidate: `Ok` with the offer reason if it stays in the running.
fn first_pass(root: &RootView, c: &Candidate) -> Result<OfferReason, LeftOutReason> {
    let m = &c.meta;
    if let Some(product) = &root.product
        && !product.same_as(&m.product)
    {
        return Err(LeftOutReason::OtherProduct { product: m.product.clone() });
    }
    if has(&root.installed, &m.id) {
        return Err(LeftOutReason::AlreadyInstalled);
    }
    if m.channel == Channel::Prerelease && !root.allow_prerelease {
        return Err(LeftOutReason::Prerelease);
    }
    match m.kind {
        Kind::Baseline => match (&root.baseline, m.baseline_level) {
            (None, _) => Ok(OfferReason::FirstBaseline),
            (Some((_, level)), Some(l)) if l > *level => Ok(OfferReason::NewBaseline),
            _ => Err(LeftOutReason::NotNewerBaseline),
        },
        Kind::Update | Kind::Hotfix => {
            if m.kind == Kind::Hotfix && !has(&root.hotfixes_requested, &m.id) {
                return Err(LeftOutReason::HotfixNotRequested);
            }
            match &root.baseline {
                Some((b, _)) if has(&m.baselines, b) => {
                    Ok(if m.kind == Kind::Hotfix { OfferReason::HotfixRequested } else { OfferReason::Update })
                }
                other => Err(LeftOutReason::OtherBaseline {
                    root: other.as_ref().map(|(b, _)| b.clone()),
                    package: m.baselines.clone(),
                }),
            }
        }
    }
}

/// Chooses what `root` is offered among `candidates` (DESIGN.md "Packages are cumulative").
pub fn select(root: &RootView, candidates: &[Candidate]) -> Selection {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| key(c));
    let mut running = Vec::new();
    let mut left_out = Vec::new();
    for c in &sorted {
        match first_pass(root, c) {
            Ok(reason) => running.push((*c, reason)),
            Err(reason) => left_out.push(LeftOut { candidate: (*c).clone(), reason }),
        }
    }
    // Rule 6. A package's `supersedes` lists the packages it replaces directly (the
    // repository does not repeat what those replace in turn), so the one named is found by
    // walking up the chain, among the packages still in the running and the installed
    // ones, to one that nothing replaces.
    let live: Vec<(&Candidate, bool)> = running
        .iter()
        .map(|(c, _)| (*c, false))
        .chain(sorted.iter().filter(|c| has(&root.installed, &c.meta.id)).map(|c| (*c, true)))
        .collect();
    let listers = |id: &Name| -> Option<(&Candidate, bool)> {
        live.iter().find(|(p, _)| has(&p.meta.supersedes, id)).map(|(p, i)| (*p, *i))
    };
    let mut offered = Vec::new();
    for (c, reason) in &running {
        let mut top = listers(&c.meta.id);
        let mut seen = vec![c.meta.id.clone()];
        while let Some((t, _)) = top {
            seen.push(t.meta.id.clone());
            match listers(&t.meta.id) {
                Some(next) if !has(&seen, &next.0.meta.id) => top = Some(next),
                _ => break,
            }
        }
        // An installed package the repository no longer lists still supersedes by what its
        // own manifest carries.
        let by_manifest = || root.installed_meta.iter().find(|i| supersedes(i, &c.meta));
        match (top, by_manifest()) {
            (Some((by, installed)), _) => left_out.push(LeftOut {
                candidate: (*c).clone(),
                reason: LeftOutReason::SupersededBy { by: by.meta.id.clone(), installed },
            }),
            (None, Some(i)) => left_out.push(LeftOut {
                candidate: (*c).clone(),
                reason: LeftOutReason::SupersededBy { by: i.id.clone(), installed: true },
            }),
            (None, None) => {
                let replaces =
                    root.installed_meta.iter().filter(|i| supersedes(&c.meta, i)).map(|i| i.id.clone()).collect();
                offered.push(Offer { candidate: (*c).clone(), reason: reason.clone(), replaces })
            }
        }
    }
    left_out.sort_by_key(|l| key(&l.candidate));
    Selection { offered, left_out }
}

#[cfg(test)]
mod tests;
