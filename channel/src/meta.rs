//! The custom metadata of a package target: what `pkgtool repo add` copies from the
//! package's authenticated manifest into the signed targets metadata, so that a client can
//! choose without downloading any package.

use hotfix_schema::{Channel, Kind, Manifest, Name};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key of a target's `custom` object that holds a [`PackageMeta`].
pub const CUSTOM_KEY: &str = "hotfix";

/// What a package target says about its package.
/// Fields it does not know are ignored: a newer publisher's additions must not stop every
/// older client's scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PackageMeta {
    /// The package id, e.g. `KB4`.
    pub id: Name,
    /// Baseline, update or hotfix.
    pub kind: Kind,
    /// The product it services.
    pub product: Name,
    /// Every baseline a variant is built for.
    pub baselines: Vec<Name>,
    /// Baseline packages only: the level of the baseline they establish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_level: Option<u32>,
    /// Release or prerelease.
    pub channel: Channel,
    /// Every fix any variant contains.
    pub fixes: Vec<Name>,
    /// The packages already in the repository that this one makes unnecessary directly:
    /// not those that one of them already made unnecessary (the chain is walked by
    /// [`crate::select`]), so that a long line of cumulative rollups does not list every
    /// earlier one in every later one.
    pub supersedes: Vec<Name>,
}

impl PackageMeta {
    /// The metadata of a package from its (authenticated) manifest; `supersedes` is empty
    /// until [`supersedes`] fills it against the repository's other packages.
    pub fn from_manifest(m: &Manifest) -> PackageMeta {
        PackageMeta {
            id: m.package.id.clone(),
            kind: m.package.kind,
            product: m.package.product.clone(),
            baselines: m.baselines.clone(),
            baseline_level: m.package.baseline.as_ref().map(|b| b.level),
            channel: m.package.channel,
            fixes: m.fixes.clone(),
            supersedes: Vec::new(),
        }
    }
}

fn contains_all(big: &[Name], small: &[Name]) -> bool {
    if small.len() > big.len() {
        return false;
    }
    if big.len() <= 16 {
        return small.iter().all(|s| big.iter().any(|b| b.same_as(s)));
    }
    let set: std::collections::HashSet<String> = big.iter().map(|b| b.as_str().to_ascii_lowercase()).collect();
    small.iter().all(|s| set.contains(&s.as_str().to_ascii_lowercase()))
}

/// The packages of `existing` that `newer` supersedes directly: those it [`supersedes`]
/// that no other of them lists as superseded (the lists being direct in turn).
pub fn direct_supersedes(newer: &PackageMeta, existing: &[&PackageMeta]) -> Vec<Name> {
    let all: Vec<&PackageMeta> = existing.iter().copied().filter(|o| supersedes(newer, o)).collect();
    all.iter()
        .filter(|o| !all.iter().any(|d| d.supersedes.iter().any(|s| s.same_as(&o.id))))
        .map(|o| o.id.clone())
        .collect()
}

/// Whether `newer` makes `older` unnecessary: the same product and kind (updates replace
/// updates, hotfixes hotfixes, baselines baselines), and every fix and every baseline of
/// `older` also in `newer` — the seeds' cumulative rollup. A baseline package supersedes a
/// lower-level one. A package never supersedes itself.
pub fn supersedes(newer: &PackageMeta, older: &PackageMeta) -> bool {
    if newer.id.same_as(&older.id) || !newer.product.same_as(&older.product) || newer.kind != older.kind {
        return false;
    }
    match (newer.kind, newer.baseline_level, older.baseline_level) {
        (Kind::Baseline, Some(n), Some(o)) => n > o && contains_all(&newer.fixes, &older.fixes),
        (Kind::Baseline, _, _) => false,
        _ => contains_all(&newer.fixes, &older.fixes) && contains_all(&newer.baselines, &older.baselines),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    fn update(id: &str, fixes: &[&str]) -> PackageMeta {
        PackageMeta {
            id: n(id),
            kind: Kind::Update,
            product: n("contoso"),
            baselines: vec![n("RTM")],
            baseline_level: None,
            channel: Channel::Release,
            fixes: fixes.iter().map(|f| n(f)).collect(),
            supersedes: vec![],
        }
    }

    #[test]
    fn a_cumulative_rollup_supersedes_the_one_before_and_not_back() {
        let kb4 = update("KB4", &["KB2", "KB4"]);
        let kb5 = update("KB5", &["kb2", "KB4", "KB5"]);
        assert!(supersedes(&kb5, &kb4));
        assert!(!supersedes(&kb4, &kb5));
        assert!(!supersedes(&kb5, &kb5));
    }

    #[test]
    fn a_rollup_missing_a_fix_or_a_baseline_supersedes_nothing() {
        let kb4 = update("KB4", &["KB2", "KB4"]);
        assert!(!supersedes(&update("KB5", &["KB4", "KB5"]), &kb4));
        let mut sp1_only = update("KB5", &["KB2", "KB4", "KB5"]);
        sp1_only.baselines = vec![n("SP1")];
        assert!(!supersedes(&sp1_only, &kb4));
        let mut hotfix = update("KB6", &["KB2", "KB4", "KB6"]);
        hotfix.kind = Kind::Hotfix;
        assert!(!supersedes(&hotfix, &kb4));
    }
}
