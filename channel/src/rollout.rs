//! Staged rollout (issue #15): when a root may install a package automatically — a pure
//! function of the signed rollout policy, the root's own settings and the time.
//!
//! - A root belongs to a **ring** (`pilot`, `broad`, … as the vendor names them) and has a
//!   stable random **host id**.
//! - The **policy** (signed by the rollout role, which the targets role delegates only the
//!   names `rollout-*` to: it can schedule packages, never add one) gives each package its
//!   **wave** per ring — a start and an end time — and a state: active, **paused** (no new
//!   installs) or **halted** (no new installs, and roots that installed it uninstall it).
//! - A root's **position** in a wave is a number in [0, 1) from SHA-256 of (host id,
//!   package id): roots become eligible at `start + position × (end − start)`, evenly and
//!   deterministically; with the policy unchanged and the clock moving forward, a root
//!   that was eligible stays eligible.
//! - The administrator's knobs (the root's settings): **defer** every package by N days,
//!   **pause** automatic installs until a date, **approve** a package by hand (eligible at
//!   once, whatever the wave; never past a pause or halt by the vendor).
//!
//! The signed types accept fields they do not know (a newer publisher's additions are
//! ignored, not fatal to every older client).
//!
//! A package the policy does not schedule for the root's ring is not installed
//! automatically (it can still be installed by hand: `hotfix update` without `--auto`).

use std::collections::BTreeMap;

use hotfix_schema::Name;
use jiff::{SignedDuration, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The target name the rollout role signs the policy under.
pub const POLICY_TARGET: &str = "rollout-policy.json";
/// The key of the policy target's custom metadata holding the [`Policy`].
pub const POLICY_KEY: &str = "rollout";
/// The delegated role that signs the policy.
pub const ROLLOUT_ROLE: &str = "rollout";
/// The delegated role that lists prerelease packages, as `prerelease-<ID>.pkg`.
pub const PRERELEASE_ROLE: &str = "prerelease";
/// The ring a root opts into to receive prerelease packages automatically.
pub const PRERELEASE_RING: &str = "prerelease";

/// A package's state in the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Rolling out by its waves.
    #[default]
    Active,
    /// No new installs; installed roots keep it.
    Paused,
    /// No new installs, and roots that installed it uninstall it.
    Halted,
}

/// One ring's wave for a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Wave {
    /// When the first roots of the ring become eligible.
    #[schemars(with = "String")]
    pub start: Timestamp,
    /// When the last ones do.
    #[schemars(with = "String")]
    pub end: Timestamp,
}

/// The most days a root may defer packages by (ten years).
pub const MAX_DEFER_DAYS: u32 = 3650;

/// What the policy says of one package.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Schedule {
    /// Active, paused or halted.
    #[serde(default)]
    pub state: State,
    /// The waves, by ring name.
    #[serde(default)]
    pub waves: BTreeMap<String, Wave>,
}

/// The rollout policy: each scheduled package by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    /// The schedules, by package id.
    pub packages: BTreeMap<String, Schedule>,
}

impl Policy {
    /// The schedule of `id` (package ids ignore case).
    pub fn schedule(&self, id: &Name) -> Option<&Schedule> {
        self.packages
            .get(id.as_str())
            .or_else(|| self.packages.iter().find(|(k, _)| k.eq_ignore_ascii_case(id.as_str())).map(|(_, v)| v))
    }
}

/// A root's rollout settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootSettings {
    /// The root's stable random host id (hex).
    pub host_id: String,
    /// Its ring.
    pub ring: String,
    /// Every package's eligibility is put off by this many days.
    #[serde(default)]
    pub defer_days: u32,
    /// No automatic install before this time.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pause_until: Option<Timestamp>,
    /// Packages approved by hand on this root.
    #[serde(default)]
    pub approved: Vec<Name>,
}

/// When and whether a root may install a package automatically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Eligibility {
    /// Eligible now.
    Now {
        /// Since when.
        #[schemars(with = "String")]
        since: Timestamp,
        /// Why, in words.
        why: String,
    },
    /// Approved by hand on this root.
    Approved,
    /// The repository has no rollout policy: every package at once (part 1's channel).
    Unstaged,
    /// Eligible later.
    Later {
        /// When.
        #[schemars(with = "String")]
        at: Timestamp,
        /// Why, in words.
        why: String,
    },
    /// The vendor paused it.
    Paused,
    /// The vendor halted it: roots that installed it uninstall it.
    Halted,
    /// Not scheduled for this root's ring.
    NotScheduled {
        /// The ring.
        ring: String,
    },
    /// The repository's rollout policy could not be read: nothing installs automatically.
    BadPolicy {
        /// Why.
        why: String,
    },
    /// The administrator paused automatic installs on this root.
    RootPaused {
        /// Until when.
        #[schemars(with = "String")]
        until: Timestamp,
    },
}

impl Eligibility {
    /// Whether an automatic install may go ahead now.
    pub fn installs_now(&self) -> bool {
        matches!(self, Eligibility::Now { .. } | Eligibility::Approved | Eligibility::Unstaged)
    }
}

/// The root's position in `package`'s waves: SHA-256 of the host id, a zero byte and the
/// package id in lower case, its first eight bytes as a fraction of 2⁶⁴.
pub fn position(host_id: &str, package: &Name) -> f64 {
    let mut h = Sha256::new();
    h.update(host_id.as_bytes());
    h.update([0u8]);
    h.update(package.as_str().to_ascii_lowercase().as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    // 53 bits, so that the fraction is exact in an f64 and stays below 1.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// When a root at `position` becomes eligible in `wave`, before any deferral.
pub fn eligible_at(wave: &Wave, position: f64) -> Timestamp {
    let span = wave.end.duration_since(wave.start);
    if span <= SignedDuration::ZERO {
        return wave.start;
    }
    let nanos = (span.as_nanos() as f64 * position) as i128;
    let offset = SignedDuration::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    wave.start.checked_add(offset).unwrap_or(wave.end)
}

/// Whether the root with `settings` may install `package` automatically at `now`, by
/// `policy`. A halt or pause by the vendor wins over everything; then the root's own
/// pause; then a hand approval; then the wave, put off by the root's deferral.
pub fn eligibility(settings: &RootSettings, policy: &Policy, package: &Name, now: Timestamp) -> Eligibility {
    let schedule = policy.schedule(package);
    match schedule.map(|s| s.state) {
        Some(State::Halted) => return Eligibility::Halted,
        Some(State::Paused) => return Eligibility::Paused,
        _ => {}
    }
    if let Some(until) = settings.pause_until
        && now < until
    {
        return Eligibility::RootPaused { until };
    }
    if settings.approved.iter().any(|a| a.same_as(package)) {
        return Eligibility::Approved;
    }
    let Some(wave) = schedule.and_then(|s| s.waves.get(&settings.ring)) else {
        return Eligibility::NotScheduled { ring: settings.ring.clone() };
    };
    let pos = position(&settings.host_id, package);
    let mut at = eligible_at(wave, pos);
    let defer = SignedDuration::from_hours(24 * i64::from(settings.defer_days.min(MAX_DEFER_DAYS)));
    at = at.checked_add(defer).unwrap_or(Timestamp::MAX);
    let deferred = if settings.defer_days > 0 {
        format!(", deferred {} days on this root", settings.defer_days)
    } else {
        String::new()
    };
    let why = format!(
        "ring {} wave {} to {}, this root at {:.1}% of it{deferred}",
        settings.ring,
        wave.start,
        wave.end,
        pos * 100.0
    );
    if now >= at { Eligibility::Now { since: at, why } } else { Eligibility::Later { at, why } }
}

#[cfg(test)]
mod tests;
