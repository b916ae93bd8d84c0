//! The update channel on a root (issue #14): `subscribe` to a TUF repository of packages,
//! `scan` it for what applies, `update` from it. The TUF workflow and the choice are the
//! `hotfix-channel` crate's; this module keeps the client's state in the root and installs
//! what was chosen exactly as `install` does.
//!
//! ```text
//! ROOT/.servicing/channel/subscription.json  the repository's URL and the pinned root's hash
//! ROOT/.servicing/channel/pinned-root.json   the root.json the administrator pinned
//! ROOT/.servicing/channel/trusted/           the newest trusted root, timestamp, snapshot, targets
//! ROOT/.servicing/channel/cache/             the current N.snapshot.json, N.targets.json, …
//! ROOT/.servicing/channel/rollout.json       this root's host id, ring, deferral, pause, approvals
//! ```
//!
//! Staged rollout (issue #15): `update --auto` installs a package only when the signed
//! rollout policy makes this root eligible for it ([`hotfix_channel::rollout`]), uninstalls
//! the installed packages the vendor halted, and never installs a prerelease package unless
//! the root opted into the prerelease ring.
//!
//! Every one of these is read and written through [`crate::rootfs`] (never through a link,
//! bounded in size, replaced by rename); tough itself only sees a private temporary
//! directory. Packages are downloaded outside the root, to a private temporary directory
//! (`$TMPDIR`), checked against the signed length and hash while they stream, then
//! authenticated by their own signature with the root's keys: nothing reaches the root
//! before both checks passed.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use hotfix_channel::client::{self, ClientState, Freshness, TRUSTED_FILES};
use hotfix_channel::meta::PackageMeta;
use hotfix_channel::roles;
use hotfix_channel::rollout::{self, Eligibility, PRERELEASE_RING, Policy, RootSettings, State};
use hotfix_channel::select::{self, LeftOutReason, OfferReason, RootView};
use hotfix_schema::{Kind, Name};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Session;
use super::change::{self, InstallRequest};
use crate::engine::QfeOverride;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::oplog;
use crate::report::ChangeReport;
use crate::rootfs::{Dir, Kind as EntryKind};

/// The channel's directory under `.servicing/`.
pub const DIR: &str = "channel";
const SUBSCRIPTION: &str = "subscription.json";
const PINNED: &str = "pinned-root.json";
const TRUSTED: &str = "trusted";
const CACHE: &str = "cache";
const SETTINGS: &str = "rollout.json";
/// Packages automatic mode refused by their own manifest, by target and SHA-256: not
/// downloaded again while the signed metadata lists the same bytes.
const REFUSED: &str = "refused.json";
/// The ring a root joins when `subscribe` does not name one.
pub const DEFAULT_RING: &str = "broad";
/// The largest state file read back (tough's own cap on targets.json).
const MAX_STATE: u64 = client::MAX_CACHED;

/// What `subscription.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    url: String,
    pinned_root_sha256: String,
    subscribed: String,
    /// The newest root version this root has trusted: a trusted root.json older than it,
    /// or missing while it is above the pinned one, is refused (never a quiet fall back
    /// to keys rotated out since).
    #[serde(default)]
    trusted_root_version: u64,
}

/// The `signed.version` of a root.json's bytes, if they parse that far.
fn root_version(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("signed")?.get("version")?.as_u64()
}

fn channel_err(e: hotfix_channel::Error, hint: &str) -> Error {
    let hint = match &e {
        hotfix_channel::Error::Expired { .. } => format!(
            "{hint}. Nothing was installed. A repository on offline media whose timestamp cannot be refreshed can \
             be used anyway with --allow-expired (logged)"
        ),
        _ => hint.to_string(),
    };
    Error::Channel { source: Box::new(e), hint }
}

fn io_at(dir: &Dir, name: &str) -> impl FnOnce(std::io::Error) -> Error {
    let path = dir.join(name);
    move |source| Error::Io { path, source }
}

/// Reads the state file `name`, at most [`MAX_STATE`] bytes; `None` if it is not there.
/// A link or anything but a regular file there is an error.
fn read_small(dir: &Dir, name: &str) -> Result<Option<Vec<u8>>> {
    let Some((f, entry)) = dir.open_file(name).map_err(io_at(dir, name))? else { return Ok(None) };
    if entry.size > MAX_STATE {
        return Err(Error::Refused(format!(
            "{}: {} bytes, more than the {MAX_STATE} a channel state file may hold",
            dir.join(name).display(),
            entry.size
        )));
    }
    let mut buf = Vec::new();
    f.take(MAX_STATE + 1).read_to_end(&mut buf).map_err(io_at(dir, name))?;
    Ok(Some(buf))
}

/// Replaces the file `name` with `bytes`: written beside it under a temporary name,
/// fsynced, renamed over it (a link there is replaced, never followed). The caller
/// fsyncs the directory.
fn write_small(dir: &Dir, name: &str, bytes: &[u8]) -> Result<()> {
    let temp = fsutil::temp_name(name);
    let written = dir
        .create_new(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| dir.rename(&temp, dir, name));
    if let Err(e) = written {
        let _ = dir.remove_file(&temp);
        return Err(Error::Io { path: dir.join(name), source: e });
    }
    Ok(())
}

fn channel_dir(s: &Session, create: bool) -> Result<Option<Dir>> {
    let servicing = s.layout.servicing_dir_required()?;
    let path = s.layout.servicing.join(DIR);
    if create {
        Ok(Some(servicing.create_sub(DIR, 0o700).map_err(Error::io(&path))?.0))
    } else {
        servicing.sub_if_any(DIR).map_err(Error::io(&path))
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hotfix_schema::text::hex(&Sha256::digest(b))
}

/// A subscription as loaded: its URL, the pinned root, and the client state.
struct Loaded {
    url: url::Url,
    pinned: Vec<u8>,
    state: ClientState,
    dir: Dir,
    sub: Subscription,
}

fn not_subscribed(s: &Session) -> Error {
    let root = s.layout.root.display();
    Error::Refused(format!(
        "{root} is not subscribed to an update channel; subscribe with `hotfix --root {root} subscribe URL \
         --root-json ROOT.json` (the repository's root.json, from its vendor)"
    ))
}

fn load(s: &Session) -> Result<Loaded> {
    let dir = channel_dir(s, false)?.ok_or_else(|| not_subscribed(s))?;
    let sub_bytes = read_small(&dir, SUBSCRIPTION)?.ok_or_else(|| not_subscribed(s))?;
    let sub: Subscription = serde_json::from_slice(&sub_bytes)
        .map_err(|e| Error::Refused(format!("{}: damaged: {e}", dir.join(SUBSCRIPTION).display())))?;
    let pinned = read_small(&dir, PINNED)?
        .ok_or_else(|| Error::Refused(format!("{}: missing; subscribe again", dir.join(PINNED).display())))?;
    if sha256_hex(&pinned) != sub.pinned_root_sha256 {
        return Err(Error::Refused(format!(
            "{}: not the root.json that was pinned (its SHA-256 differs from {}); subscribe again",
            dir.join(PINNED).display(),
            dir.join(SUBSCRIPTION).display()
        )));
    }
    let url = url::Url::parse(&sub.url)
        .map_err(|e| Error::Refused(format!("{}: bad url: {e}", dir.join(SUBSCRIPTION).display())))?;
    let mut state = ClientState::default();
    if let Some(t) = dir.sub_if_any(TRUSTED).map_err(io_at(&dir, TRUSTED))? {
        for name in TRUSTED_FILES {
            if let Some(b) = read_small(&t, name)? {
                state.trusted.insert(name.to_string(), b);
            }
        }
    }
    if let Some(c) = dir.sub_if_any(CACHE).map_err(io_at(&dir, CACHE))? {
        for (name, kind) in c.list().map_err(io_at(&dir, CACHE))? {
            if kind == EntryKind::File
                && !name.starts_with(fsutil::TMP_PREFIX)
                && let Some(b) = read_small(&c, &name)?
            {
                state.cache.insert(name, b);
            }
        }
    }
    // What the client would start from: the trusted root, or the pinned one without it.
    let trusted = state.trusted.get("root.json").map(|b| root_version(b).unwrap_or(0));
    let start = trusted.unwrap_or_else(|| root_version(&pinned).unwrap_or(0));
    let floor = sub.trusted_root_version;
    if start < floor {
        return Err(Error::Channel {
            source: Box::new(hotfix_channel::Error::Trust {
                what: dir.join(TRUSTED).join("root.json").display().to_string(),
                source: format!(
                    "this root trusted root.json version {floor}, and what it holds now is {}",
                    match trusted {
                        None => format!("missing (the pinned root.json is version {start})"),
                        Some(v) => format!("version {v}"),
                    }
                )
                .into(),
            }),
            hint: ". Nothing was changed; if the channel state was lost, subscribe again with the vendor's root.json"
                .into(),
        });
    }
    Ok(Loaded { url, pinned, state, dir, sub })
}

/// Writes the client state after a successful load: the trusted metadata first (the root
/// before the rest), then the cache, each file replaced by rename; files the new state no
/// longer has are removed.
fn save(dir: &Dir, state: &ClientState) -> Result<()> {
    let (trusted, _) = dir.create_sub(TRUSTED, 0o700).map_err(io_at(dir, TRUSTED))?;
    for name in TRUSTED_FILES {
        match state.trusted.get(name) {
            Some(b) => write_small(&trusted, name, b)?,
            None => {
                trusted.remove_file(name).map_err(io_at(&trusted, name))?;
            }
        }
    }
    trusted.sync().map_err(io_at(dir, TRUSTED))?;
    let (cache, _) = dir.create_sub(CACHE, 0o700).map_err(io_at(dir, CACHE))?;
    for (name, b) in &state.cache {
        write_small(&cache, name, b)?;
    }
    for (name, kind) in cache.list().map_err(io_at(dir, CACHE))? {
        if kind != EntryKind::Dir && !state.cache.contains_key(&name) {
            cache.remove_file(&name).map_err(io_at(&cache, &name))?;
        }
    }
    cache.sync().map_err(io_at(dir, CACHE))
}

/// The time rollout decisions are made at: now, or `HOTFIX_NOW` (RFC 3339), the tests'
/// injected clock. (TUF's own expiry checks always use the system clock.)
pub fn now() -> Result<jiff::Timestamp> {
    match std::env::var("HOTFIX_NOW") {
        Ok(v) => v.parse().map_err(|e| Error::Usage(format!("HOTFIX_NOW={v}: not an RFC 3339 time: {e}"))),
        Err(_) => Ok(jiff::Timestamp::now()),
    }
}

fn new_host_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Refused(format!("no random source for the host id: {e}")))?;
    Ok(hotfix_schema::text::hex(&b))
}

fn read_settings(dir: &Dir) -> Result<Option<RootSettings>> {
    let Some(b) = read_small(dir, SETTINGS)? else { return Ok(None) };
    serde_json::from_slice(&b)
        .map(Some)
        .map_err(|e| Error::Refused(format!("{}: damaged: {e}", dir.join(SETTINGS).display())))
}

fn write_settings(dir: &Dir, settings: &RootSettings) -> Result<()> {
    let text = serde_json::to_vec_pretty(settings).map_err(|e| Error::Refused(e.to_string()))?;
    write_small(dir, SETTINGS, &text)?;
    dir.sync().map_err(io_at(dir, "."))
}

/// This root's rollout settings (made with a fresh host id if the subscription has none).
fn settings(s: &Session) -> Result<RootSettings> {
    let dir = channel_dir(s, false)?.ok_or_else(|| not_subscribed(s))?;
    match read_settings(&dir)? {
        Some(x) => Ok(x),
        None => {
            let x = RootSettings { host_id: new_host_id()?, ring: DEFAULT_RING.into(), ..RootSettings::default() };
            write_settings(&dir, &x)?;
            Ok(x)
        }
    }
}

fn check_ring(r: &str) -> Result<()> {
    if r.is_empty() || r.len() > 64 || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Error::Usage(format!("--ring {r:?}: a ring is a name of letters, digits, - and _")));
    }
    Ok(())
}

/// The (target, sha256) pairs automatic mode refused before.
fn read_refused(s: &Session) -> Result<Vec<(String, String)>> {
    let Some(dir) = channel_dir(s, false)? else { return Ok(Vec::new()) };
    let Some(b) = read_small(&dir, REFUSED)? else { return Ok(Vec::new()) };
    // A damaged list costs a download again, nothing else.
    Ok(serde_json::from_slice(&b).unwrap_or_default())
}

fn write_refused(s: &Session, list: &[(String, String)]) -> Result<()> {
    let Some(dir) = channel_dir(s, false)? else { return Ok(()) };
    let text = serde_json::to_vec(list).map_err(|e| Error::Refused(e.to_string()))?;
    write_small(&dir, REFUSED, &text)?;
    dir.sync().map_err(io_at(&dir, "."))
}

/// What `rollout` changes.
#[derive(Clone, Debug, Default)]
pub struct SettingsChange {
    /// The new ring.
    pub ring: Option<String>,
    /// The new deferral, in days.
    pub defer_days: Option<u32>,
    /// Pause automatic installs until then.
    pub pause_until: Option<jiff::Timestamp>,
    /// Lift the pause.
    pub resume: bool,
    /// Approve these by hand.
    pub approve: Vec<Name>,
    /// Withdraw these approvals.
    pub unapprove: Vec<Name>,
}

/// This root's rollout settings, as `rollout` shows them.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SettingsView {
    /// The repository this root is subscribed to.
    pub url: String,
    /// The settings.
    pub settings: RootSettings,
    /// Whether this call changed them.
    pub changed: bool,
}

impl fmt::Display for SettingsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = &self.settings;
        writeln!(f, "subscribed to {}", self.url)?;
        writeln!(f, "ring {} (host id {})", x.ring, x.host_id)?;
        writeln!(f, "deferral: {} days", x.defer_days)?;
        match &x.pause_until {
            Some(t) => writeln!(f, "automatic installs paused until {t}")?,
            None => writeln!(f, "automatic installs not paused")?,
        }
        let ids: Vec<&str> = x.approved.iter().map(Name::as_str).collect();
        writeln!(f, "approved by hand: {}", if ids.is_empty() { "none".to_string() } else { ids.join(", ") })
    }
}

/// `hotfix rollout`: shows, and with options changes, this root's ring, deferral, pause
/// and hand approvals.
pub fn rollout_settings(s: &Session, change: &SettingsChange) -> Result<SettingsView> {
    let mut x = settings(s)?;
    let before = x.clone();
    if let Some(r) = &change.ring {
        check_ring(r)?;
        x.ring = r.clone();
    }
    if let Some(d) = change.defer_days {
        if d > rollout::MAX_DEFER_DAYS {
            return Err(Error::Usage(format!("--defer-days {d}: at most {}", rollout::MAX_DEFER_DAYS)));
        }
        x.defer_days = d;
    }
    if change.resume {
        x.pause_until = None;
    }
    if let Some(t) = change.pause_until {
        x.pause_until = Some(t);
    }
    for a in &change.approve {
        if !x.approved.iter().any(|y| y.same_as(a)) {
            x.approved.push(a.clone());
        }
    }
    x.approved.retain(|y| !change.unapprove.iter().any(|u| u.same_as(y)));
    let changed = x != before;
    if changed {
        let dir = channel_dir(s, false)?.ok_or_else(|| not_subscribed(s))?;
        write_settings(&dir, &x)?;
        let entry = oplog::Entry {
            result: format!(
                "ring {}, defer {} days, paused until {}, approved [{}]",
                x.ring,
                x.defer_days,
                x.pause_until.map_or("-".to_string(), |t| t.to_string()),
                x.approved.iter().map(Name::as_str).collect::<Vec<_>>().join(", ")
            ),
            ..oplog::Entry::new("rollout settings")
        };
        oplog::append(&s.layout, &entry)?;
    }
    Ok(SettingsView { url: load(s)?.url.to_string(), settings: x, changed })
}

/// What `subscribe` did.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SubscribeView {
    /// The repository.
    pub url: String,
    /// The pinned root.json's version.
    pub root_version: u64,
    /// Its SHA-256.
    pub root_sha256: String,
    /// The repository this root was subscribed to before, if it was another one.
    pub replaced: Option<String>,
}

impl fmt::Display for SubscribeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(old) = &self.replaced {
            writeln!(f, "No longer subscribed to {old}.")?;
        }
        writeln!(
            f,
            "Subscribed to {}, trusting its root.json version {} (SHA-256 {}). `hotfix scan` shows what it offers.",
            self.url, self.root_version, self.root_sha256
        )
    }
}

/// `hotfix subscribe URL --root-json FILE`: pins the repository's initial root.json (checked
/// to be signed by its own root keys) and forgets any earlier subscription's state.
pub fn subscribe(s: &Session, url: &str, root_json: &Path, ring: Option<&str>) -> Result<SubscribeView> {
    if let Some(r) = ring {
        check_ring(r)?;
    }
    let parsed = url::Url::parse(url).map_err(|e| Error::Usage(format!("{url}: not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https" | "file") {
        return Err(Error::Usage(format!(
            "{url}: the update channel is reached over http://, https:// or file:// (a repository copied to media)"
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(root_json)
        .and_then(|f| f.take(MAX_STATE + 1).read_to_end(&mut bytes))
        .map_err(Error::io(root_json))?;
    let info =
        client::check_root(&bytes, &root_json.display().to_string()).map_err(|e| channel_err(e, ". Not subscribed"))?;
    let previous = match load(s) {
        Ok(l) => Some(l.url.to_string()),
        Err(_) => None,
    };
    let dir = channel_dir(s, true)?.ok_or_else(|| not_subscribed(s))?;
    // A new subscription starts from its pinned root: the old trust state and cache go
    // first, then the pinned root, then the subscription file that names it.
    for sub in [TRUSTED, CACHE] {
        if let Some(d) = dir.sub_if_any(sub).map_err(io_at(&dir, sub))? {
            for (name, kind) in d.list().map_err(io_at(&dir, sub))? {
                if kind != EntryKind::Dir {
                    d.remove_file(&name).map_err(io_at(&d, &name))?;
                }
            }
        }
    }
    let sha = sha256_hex(&bytes);
    write_small(&dir, PINNED, &bytes)?;
    let sub = Subscription {
        url: parsed.to_string(),
        pinned_root_sha256: sha.clone(),
        subscribed: oplog::now(),
        trusted_root_version: 0,
    };
    let text = serde_json::to_vec_pretty(&sub).map_err(|e| Error::Refused(e.to_string()))?;
    write_small(&dir, SUBSCRIPTION, &text)?;
    dir.sync().map_err(io_at(&dir, "."))?;
    // The host id survives a new subscription (a root's place in waves stays its own);
    // the ring is the one named, else the one it had, else the default.
    let mut settings =
        read_settings(&dir)?.unwrap_or_else(|| RootSettings { ring: DEFAULT_RING.into(), ..RootSettings::default() });
    if settings.host_id.is_empty() {
        settings.host_id = new_host_id()?;
    }
    if let Some(r) = ring {
        settings.ring = r.to_string();
    }
    write_settings(&dir, &settings)?;
    let entry = oplog::Entry {
        result: format!("subscribed to {parsed}, root.json version {} sha256 {sha}", info.version),
        ..oplog::Entry::new(format!("subscribe {parsed}"))
    };
    oplog::append(&s.layout, &entry)?;
    let replaced = previous.filter(|p| *p != parsed.to_string());
    Ok(SubscribeView { url: parsed.to_string(), root_version: info.version, root_sha256: sha, replaced })
}

/// `hotfix unsubscribe`: forgets the subscription and its state.
pub fn unsubscribe(s: &Session) -> Result<String> {
    let Some(dir) = channel_dir(s, false)? else {
        return Ok("Not subscribed to an update channel; nothing to do.".into());
    };
    let url = load(s).map(|l| l.url.to_string()).unwrap_or_else(|_| "the update channel".into());
    for sub in [TRUSTED, CACHE] {
        if let Some(d) = dir.sub_if_any(sub).map_err(io_at(&dir, sub))? {
            for (name, kind) in d.list().map_err(io_at(&dir, sub))? {
                if kind != EntryKind::Dir {
                    d.remove_file(&name).map_err(io_at(&d, &name))?;
                }
            }
            dir.remove_dir(sub).map_err(io_at(&dir, sub))?;
        }
    }
    for name in [SUBSCRIPTION, PINNED] {
        dir.remove_file(name).map_err(io_at(&dir, name))?;
    }
    dir.sync().map_err(io_at(&dir, "."))?;
    oplog::append(&s.layout, &oplog::Entry::new(format!("unsubscribe {url}")))?;
    Ok(format!("No longer subscribed to {url}."))
}

/// What `scan` and `update` take.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Hotfixes asked for by id.
    pub hotfixes: Vec<Name>,
    /// Offer (and install) prerelease packages.
    pub allow_prerelease: bool,
    /// Accept expired metadata (offline media).
    pub allow_expired: bool,
    /// Automatic mode: the rollout policy decides (`update --auto`).
    pub auto: bool,
}

/// The repository's metadata versions.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MetadataView {
    /// root.json.
    pub root: u64,
    /// targets.json.
    pub targets: u64,
    /// snapshot.json.
    pub snapshot: u64,
    /// timestamp.json.
    pub timestamp: u64,
    /// When timestamp.json expires (RFC 3339).
    pub timestamp_expires: String,
}

/// What the scan cost on the network.
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
pub struct TrafficView {
    /// Requests made.
    pub requests: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Metadata files served from the root's cache instead.
    pub cached: u64,
}

/// A package the root is offered.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct OfferView {
    /// The package id.
    pub id: String,
    /// baseline, update or hotfix.
    pub kind: String,
    /// Its target in the repository.
    pub target: String,
    /// Its length in bytes.
    pub length: u64,
    /// Why: `update`, `hotfix-requested`, `new-baseline` or `first-baseline`.
    pub reason: String,
    /// The same in words.
    pub why: String,
    /// Installed packages it supersedes.
    pub replaces: Vec<String>,
    /// Its fixes.
    pub fixes: Vec<String>,
    /// Whether and when `update --auto` installs it on this root.
    pub auto: Eligibility,
}

/// A package the root is not offered.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LeftOutView {
    /// The package id.
    pub id: String,
    /// baseline, update or hotfix.
    pub kind: String,
    /// Why: `other-product`, `already-installed`, `prerelease`, `hotfix-not-requested`,
    /// `other-baseline`, `not-newer-baseline` or `superseded-by`.
    pub reason: String,
    /// The same in words.
    pub why: String,
    /// For `superseded-by`: the package that carries everything this one does.
    pub superseded_by: Option<String>,
}

/// What `scan` found.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ScanView {
    /// The repository.
    pub url: String,
    /// Its metadata versions.
    pub metadata: MetadataView,
    /// Whether expired metadata was accepted (--allow-expired).
    pub expired_metadata_accepted: bool,
    /// What applies, in install order.
    pub offered: Vec<OfferView>,
    /// What does not, and why.
    pub left_out: Vec<LeftOutView>,
    /// This root's ring and host id.
    pub ring: String,
    /// This root's host id.
    pub host_id: String,
    /// Installed packages the vendor halted: `update --auto` uninstalls them.
    pub halted_installed: Vec<String>,
    /// What the scan cost on the network.
    pub traffic: TrafficView,
}

fn offer_words(reason: &OfferReason, replaces: &[Name]) -> (String, String) {
    let (code, mut words) = match reason {
        OfferReason::Update => ("update", "an update for this root's baseline".to_string()),
        OfferReason::HotfixRequested => ("hotfix-requested", "a hotfix asked for by id".to_string()),
        OfferReason::NewBaseline => ("new-baseline", "a service pack above this root's baseline".to_string()),
        OfferReason::FirstBaseline => ("first-baseline", "the first baseline of this root".to_string()),
    };
    if !replaces.is_empty() {
        let ids: Vec<&str> = replaces.iter().map(Name::as_str).collect();
        words.push_str(&format!("; supersedes installed {}", ids.join(", ")));
    }
    (code.to_string(), words)
}

fn left_out_words(reason: &LeftOutReason, id: &Name) -> (String, String, Option<String>) {
    match reason {
        LeftOutReason::OtherProduct { product } => {
            ("other-product".into(), format!("for another product ({product})"), None)
        }
        LeftOutReason::AlreadyInstalled => ("already-installed".into(), "installed".into(), None),
        LeftOutReason::Prerelease => {
            ("prerelease".into(), "a prerelease package (offered with --allow-prerelease)".into(), None)
        }
        LeftOutReason::HotfixNotRequested => (
            "hotfix-not-requested".into(),
            format!("a hotfix, offered only when asked for: hotfix update --hotfix {id}"),
            None,
        ),
        LeftOutReason::OtherBaseline { root, package } => {
            let pkg: Vec<&str> = package.iter().map(Name::as_str).collect();
            let root = root.as_ref().map_or("none yet".to_string(), ToString::to_string);
            ("other-baseline".into(), format!("built for {} (this root: {root})", pkg.join(", ")), None)
        }
        LeftOutReason::NotNewerBaseline => {
            ("not-newer-baseline".into(), "a baseline at or below this root's".into(), None)
        }
        LeftOutReason::SupersededBy { by, installed } => (
            "superseded-by".into(),
            format!(
                "superseded by {by} ({}), which carries every fix of it",
                if *installed { "installed" } else { "offered" }
            ),
            Some(by.to_string()),
        ),
    }
}

fn eligibility_words(e: &Eligibility) -> String {
    match e {
        Eligibility::Now { since, why } => format!("eligible since {since} ({why})"),
        Eligibility::Approved => "approved by hand on this root".into(),
        Eligibility::Unstaged => "at once (the repository has no rollout policy)".into(),
        Eligibility::Later { at, why } => format!("eligible at {at} ({why})"),
        Eligibility::Paused => "paused by the vendor".into(),
        Eligibility::Halted => "halted by the vendor".into(),
        Eligibility::NotScheduled { ring } => format!("not scheduled for ring {ring}"),
        Eligibility::RootPaused { until } => format!("automatic installs paused on this root until {until}"),
        Eligibility::BadPolicy { why } => {
            format!("nothing installs automatically: the rollout policy is unreadable ({why})")
        }
    }
}

impl fmt::Display for ScanView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.metadata;
        writeln!(
            f,
            "Repository {} (root v{}, targets v{}, snapshot v{}, timestamp v{} valid until {})",
            self.url, m.root, m.targets, m.snapshot, m.timestamp, m.timestamp_expires
        )?;
        if self.expired_metadata_accepted {
            writeln!(f, "  expired metadata accepted (--allow-expired)")?;
        }
        if self.offered.is_empty() {
            writeln!(f, "Nothing to install: this root is up to date with the channel.")?;
        } else {
            writeln!(f, "Offered, in install order:")?;
            for o in &self.offered {
                writeln!(f, "  {:<12} {:<8} {} ({} bytes)", o.id, o.kind, o.why, o.length)?;
                writeln!(f, "  {:<12} automatic: {}", "", eligibility_words(&o.auto))?;
            }
        }
        if !self.left_out.is_empty() {
            writeln!(f, "Left out:")?;
            for l in &self.left_out {
                writeln!(f, "  {:<12} {:<8} {}", l.id, l.kind, l.why)?;
            }
        }
        for h in &self.halted_installed {
            writeln!(f, "{h} was halted by the vendor: `hotfix update --auto` uninstalls it.")?;
        }
        if !self.offered.is_empty() {
            writeln!(
                f,
                "`hotfix update` installs the {} offered; `hotfix update --auto` those eligible now.",
                self.offered.len()
            )?;
        }
        Ok(())
    }
}

/// What the root looks like to the selection.
fn root_view(s: &Session, opts: &ScanOptions) -> Result<RootView> {
    let headers = s.inv.headers()?;
    let manifests: Vec<_> = headers.iter().map(|p| &p.installed.manifest).collect();
    let baseline = manifests
        .iter()
        .filter(|m| m.package.kind == Kind::Baseline)
        .filter_map(|m| m.package.baseline.as_ref())
        .max_by_key(|d| d.level)
        .map(|d| (d.name.clone(), d.level));
    Ok(RootView {
        product: Some(s.inv.product()?),
        baseline,
        installed: manifests.iter().map(|m| m.package.id.clone()).collect(),
        allow_prerelease: opts.allow_prerelease,
        hotfixes_requested: opts.hotfixes.clone(),
        installed_meta: manifests.iter().map(|m| PackageMeta::from_manifest(m)).collect(),
    })
}

/// A loaded channel and its selection for the root.
struct Scanned {
    view: ScanView,
    session: client::Session,
    selection: select::Selection,
    /// Every candidate package (release, then prerelease not listed as release).
    candidates: Vec<select::Candidate>,
    /// The options the selection was made with.
    view_opts: ScanOptions,
    policy: Option<Policy>,
    /// Why the policy could not be read, if it could not.
    bad_policy: Option<String>,
    settings: RootSettings,
    now: jiff::Timestamp,
}

fn scan_inner(s: &Session, opts: &ScanOptions, op: &str) -> Result<Scanned> {
    let loaded = load(s)?;
    let freshness = if opts.allow_expired { Freshness::IgnoreExpiry } else { Freshness::Enforce };
    let session = client::open(&loaded.url, &loaded.pinned, &loaded.state, freshness)
        .map_err(|e| channel_err(e, &format!(" ({op}; nothing was changed)")))?;
    save(&loaded.dir, session.state())?;
    let now_trusted = session.state().trusted.get("root.json").and_then(|b| root_version(b)).unwrap_or(0);
    if now_trusted > loaded.sub.trusted_root_version {
        let sub = Subscription { trusted_root_version: now_trusted, ..loaded.sub.clone() };
        let text = serde_json::to_vec_pretty(&sub).map_err(|e| Error::Refused(e.to_string()))?;
        write_small(&loaded.dir, SUBSCRIPTION, &text)?;
        loaded.dir.sync().map_err(io_at(&loaded.dir, "."))?;
    }
    let mut candidates = session.candidates().map_err(|e| channel_err(e, ""))?;
    let settings = settings(s)?;
    let mut view_opts = opts.clone();
    if opts.auto {
        // Automatic mode never takes a prerelease unless the root opted into that ring.
        view_opts.allow_prerelease = settings.ring == PRERELEASE_RING;
    }
    // Prerelease packages: the prerelease role's, looked at only when prereleases are
    // allowed. One package, one offer: an id listed both there and with the release
    // packages is taken from the prerelease role, whose listing says what it is.
    if view_opts.allow_prerelease {
        let pre = roles::prerelease_targets(session.repository());
        candidates.retain(|c| !pre.iter().any(|p| p.meta.id.same_as(&c.meta.id)));
        candidates.extend(pre);
    }
    // A rollout role that did not load is a trust failure; a policy that does not parse
    // stops automatic installs (below), not the scan.
    let (policy, bad_policy) = match roles::policy(session.repository()) {
        Ok(p) => (p, None),
        Err(e @ hotfix_channel::Error::Trust { .. }) => {
            return Err(channel_err(e, &format!(" ({op}; nothing was changed)")));
        }
        Err(e) => (None, Some(e.to_string())),
    };
    // A package the vendor halted is offered to nobody, in any mode.
    let halted = |id: &Name| policy.as_ref().is_some_and(|p| p.schedule(id).is_some_and(|x| x.state == State::Halted));
    let mut halted_out = Vec::new();
    candidates.retain(|c| {
        let h = halted(&c.meta.id);
        if h {
            halted_out.push(LeftOutView {
                id: c.meta.id.to_string(),
                kind: c.meta.kind.as_str().to_string(),
                reason: "halted".into(),
                why: "halted by the vendor: installed nowhere, and uninstalled by `update --auto`".into(),
                superseded_by: None,
            });
        }
        !h
    });
    let root = root_view(s, &view_opts)?;
    let selection = select::select(&root, &candidates);
    let now = now()?;
    let auto_of = |id: &Name| match (&policy, &bad_policy) {
        (_, Some(why)) => Eligibility::BadPolicy { why: why.clone() },
        (Some(p), None) => rollout::eligibility(&settings, p, id, now),
        (None, None) => Eligibility::Unstaged,
    };
    let halted_installed: Vec<String> =
        root.installed.iter().filter(|id| halted(id)).map(ToString::to_string).collect();
    let repo = session.repository();
    let t = session.traffic();
    let view = ScanView {
        url: loaded.url.to_string(),
        metadata: MetadataView {
            root: repo.root().signed.version.get(),
            targets: repo.targets().signed.version.get(),
            snapshot: repo.snapshot().signed.version.get(),
            timestamp: repo.timestamp().signed.version.get(),
            timestamp_expires: repo.timestamp().signed.expires.to_string(),
        },
        expired_metadata_accepted: opts.allow_expired,
        offered: selection
            .offered
            .iter()
            .map(|o| {
                let (reason, why) = offer_words(&o.reason, &o.replaces);
                let m = &o.candidate.meta;
                OfferView {
                    id: m.id.to_string(),
                    kind: m.kind.as_str().to_string(),
                    target: o.candidate.target.clone(),
                    length: o.candidate.length,
                    reason,
                    why,
                    replaces: o.replaces.iter().map(ToString::to_string).collect(),
                    fixes: m.fixes.iter().map(ToString::to_string).collect(),
                    auto: auto_of(&m.id),
                }
            })
            .collect(),
        left_out: selection
            .left_out
            .iter()
            .map(|l| {
                let m = &l.candidate.meta;
                let (reason, why, superseded_by) = left_out_words(&l.reason, &m.id);
                LeftOutView { id: m.id.to_string(), kind: m.kind.as_str().to_string(), reason, why, superseded_by }
            })
            .chain(halted_out)
            .collect(),
        ring: settings.ring.clone(),
        host_id: settings.host_id.clone(),
        halted_installed,
        traffic: TrafficView { requests: t.requests, bytes: t.bytes, cached: t.cached },
    };
    Ok(Scanned { view, session, selection, candidates, view_opts, policy, bad_policy, settings, now })
}

fn expired_note(opts: &ScanOptions) -> String {
    let mut note = String::new();
    if opts.allow_expired {
        note.push_str("; expired metadata accepted (--allow-expired)");
    }
    if let Ok(v) = std::env::var("HOTFIX_NOW") {
        note.push_str(&format!("; rollout clock HOTFIX_NOW={v}"));
    }
    note
}

/// `hotfix scan`: the TUF workflow against the subscribed repository, then what applies
/// to this root and why the rest does not. Changes nothing but the channel's state.
pub fn scan(s: &Session, opts: &ScanOptions) -> Result<ScanView> {
    let op = format!("scan {}", load(s)?.url);
    let scanned = match scan_inner(s, opts, "scan") {
        Ok(x) => x,
        Err(e) => {
            oplog::append_failure(&s.layout, &op, None, &e);
            return Err(e);
        }
    };
    let ids: Vec<&str> = scanned.view.offered.iter().map(|o| o.id.as_str()).collect();
    let entry = oplog::Entry {
        result: format!(
            "ok: {} offered{}{}",
            ids.len(),
            if ids.is_empty() { String::new() } else { format!(" ({})", ids.join(", ")) },
            expired_note(opts)
        ),
        ..oplog::Entry::new(op)
    };
    oplog::append(&s.layout, &entry)?;
    Ok(scanned.view)
}

/// One package `update` did not install.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct UpdateFailure {
    /// The package id.
    pub id: String,
    /// The error's class.
    pub class: String,
    /// The error.
    pub message: String,
    /// The exit code it ended with.
    pub exit_code: u8,
}

/// An offered package `update --auto` did not install yet.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WaitingView {
    /// The package id.
    pub id: String,
    /// Why not now.
    pub auto: Eligibility,
}

/// What `update` did.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct UpdateView {
    /// The scan it acted on.
    pub scan: ScanView,
    /// Automatic mode (`--auto`).
    pub auto: bool,
    /// Halted packages uninstalled first (automatic mode), in order.
    pub uninstalled: Vec<ChangeReport>,
    /// Offered packages automatic mode left for later, with why.
    pub waiting: Vec<WaitingView>,
    /// Each package installed, in order.
    pub installed: Vec<ChangeReport>,
    /// Packages automatic mode refused by their own manifest (a prerelease listed as a
    /// release); the others were still installed.
    pub refused: Vec<UpdateFailure>,
    /// The package that failed, if one did; the ones after it were not tried.
    pub failed: Option<UpdateFailure>,
}

impl UpdateView {
    /// 0, 3 when a restart is needed, or the failure's code.
    pub fn exit_code(&self) -> u8 {
        match &self.failed {
            Some(f) => f.exit_code,
            None if !self.refused.is_empty() => 7,
            None if self.installed.iter().chain(&self.uninstalled).any(|r| r.restart) => 3,
            None => 0,
        }
    }
}

impl fmt::Display for UpdateView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.uninstalled {
            write!(f, "{r}")?;
        }
        if self.scan.offered.is_empty() {
            return writeln!(f, "Nothing to install: this root is up to date with {}.", self.scan.url);
        }
        for r in &self.installed {
            write!(f, "{r}")?;
        }
        for w in &self.waiting {
            writeln!(f, "{} not installed yet: {}", w.id, eligibility_words(&w.auto))?;
        }
        for r in &self.refused {
            writeln!(f, "{} refused: {}", r.id, r.message)?;
        }
        if let Some(x) = &self.failed {
            writeln!(f, "{} was not installed: {}", x.id, x.message)?;
            let rest = self.scan.offered.len().saturating_sub(self.installed.len() + self.waiting.len() + 1);
            if rest > 0 {
                writeln!(f, "{rest} more offered package(s) were not tried.")?;
            }
        }
        Ok(())
    }
}

/// `hotfix update`: [`scan`], then each offered package in order — downloaded outside the
/// root (length and hash from the signed metadata), authenticated by its own signature with
/// the root's keys, its manifest compared with the repository's metadata, then installed
/// exactly as `install` does it, one transaction each. Stops at the first failure.
pub fn update(s: &mut Session, opts: &ScanOptions, qfe: &QfeOverride) -> Result<UpdateView> {
    let url = load(s)?.url;
    let op = format!("update{} {url}", if opts.auto { " --auto" } else { "" });
    let Scanned { view, session, selection, candidates, view_opts, policy, bad_policy, settings, now } =
        match scan_inner(s, opts, "update") {
            Ok(x) => x,
            Err(e) => {
                oplog::append_failure(&s.layout, &op, None, &e);
                return Err(e);
            }
        };
    let mut out = UpdateView {
        scan: view,
        auto: opts.auto,
        uninstalled: Vec::new(),
        waiting: Vec::new(),
        installed: Vec::new(),
        refused: Vec::new(),
        failed: None,
    };
    let failure = |id: String, e: &Error| UpdateFailure {
        id,
        class: e.class().to_string(),
        message: e.to_string(),
        exit_code: e.exit_code(),
    };
    if opts.auto {
        // The vendor's halt first: back to what the root had before the package.
        for id in out.scan.halted_installed.clone() {
            let name = Name::new(&id).map_err(|e| Error::Refused(e.to_string()))?;
            match change::uninstall(s, &name) {
                Ok(r) => out.uninstalled.push(r),
                Err(e) => {
                    out.failed = Some(failure(id, &e));
                    break;
                }
            }
        }
    }
    let allow_prerelease = if opts.auto { out.scan.ring == PRERELEASE_RING } else { opts.allow_prerelease };
    let install_opts = ScanOptions { allow_prerelease, ..opts.clone() };
    let tmp = tempfile::Builder::new().prefix("hotfix-update.").tempdir().map_err(Error::io(&std::env::temp_dir()))?;
    // One package at a time, the selection made again before each: an install or an
    // uninstall changes what is superseded; in automatic mode a package not eligible now is
    // set aside (it waits) and so is one refused by its own manifest (a prerelease listed as
    // a release), so that what they would supersede is offered after all.
    let mut tried: Vec<Name> = Vec::new();
    let mut aside: Vec<Name> = Vec::new();
    let known_refused = if opts.auto { read_refused(s)? } else { Vec::new() };
    let mut newly_refused: Vec<(String, String)> = Vec::new();
    let mut first = if out.uninstalled.is_empty() { Some(selection) } else { None };
    while out.failed.is_none() {
        let selection = match first.take() {
            Some(sel) => sel,
            None => {
                let pool: Vec<select::Candidate> =
                    candidates.iter().filter(|c| !aside.iter().any(|r| r.same_as(&c.meta.id))).cloned().collect();
                select::select(&root_view(s, &view_opts)?, &pool)
            }
        };
        let Some(offer) = selection.offered.iter().find(|o| !tried.iter().any(|t| t.same_as(&o.candidate.meta.id)))
        else {
            break;
        };
        let meta = &offer.candidate.meta;
        tried.push(meta.id.clone());
        let auto = match (&policy, &bad_policy) {
            (_, Some(why)) => Eligibility::BadPolicy { why: why.clone() },
            (Some(p), None) => rollout::eligibility(&settings, p, &meta.id, now),
            (None, None) => Eligibility::Unstaged,
        };
        if opts.auto && !auto.installs_now() {
            out.waiting.push(WaitingView { id: meta.id.to_string(), auto });
            aside.push(meta.id.clone());
            continue;
        }
        let key = (offer.candidate.target.clone(), offer.candidate.sha256.clone());
        if opts.auto && known_refused.contains(&key) {
            aside.push(meta.id.clone());
            out.refused.push(UpdateFailure {
                id: meta.id.to_string(),
                class: "refused-by-policy".into(),
                message: format!(
                    "{} was refused before (its own manifest says prerelease) and the repository still lists the \
                     same bytes; not downloaded again",
                    meta.id
                ),
                exit_code: 7,
            });
            continue;
        }
        match install_one(s, &session, offer, tmp.path(), &install_opts, qfe) {
            Ok(report) => out.installed.push(report),
            Err(e @ Error::Prerelease { .. }) if opts.auto => {
                aside.push(meta.id.clone());
                out.refused.push(failure(meta.id.to_string(), &e));
                newly_refused.push(key);
            }
            Err(e) => out.failed = Some(failure(meta.id.to_string(), &e)),
        }
    }
    if opts.auto {
        // Remember refusals for the bytes still listed; forget the rest.
        let listed: Vec<(String, String)> = candidates.iter().map(|c| (c.target.clone(), c.sha256.clone())).collect();
        let mut keep: Vec<(String, String)> =
            known_refused.iter().filter(|k| listed.contains(k)).cloned().chain(newly_refused).collect();
        keep.sort();
        keep.dedup();
        if keep != known_refused {
            write_refused(s, &keep)?;
        }
    }
    let ids: Vec<String> = out.installed.iter().filter_map(|r| r.package.clone()).collect();
    let gone: Vec<String> = out.uninstalled.iter().filter_map(|r| r.package.clone()).collect();
    let mut result = match &out.failed {
        Some(f) => format!("failed at {}: {}", f.id, f.message),
        None if tried.is_empty() && gone.is_empty() => "ok: up to date".into(),
        None => format!("ok: installed [{}]", ids.join(", ")),
    };
    if !gone.is_empty() {
        result.push_str(&format!("; uninstalled halted [{}]", gone.join(", ")));
    }
    if !out.waiting.is_empty() {
        let w: Vec<&str> = out.waiting.iter().map(|w| w.id.as_str()).collect();
        result.push_str(&format!("; not eligible yet [{}]", w.join(", ")));
    }
    if !out.refused.is_empty() {
        let r: Vec<&str> = out.refused.iter().map(|w| w.id.as_str()).collect();
        result.push_str(&format!("; refused (prerelease by its own manifest) [{}]", r.join(", ")));
    }
    let entry = oplog::Entry {
        result: format!("{result}{}", expired_note(opts)),
        exit_code: out.exit_code(),
        ..oplog::Entry::new(op)
    };
    oplog::append(&s.layout, &entry)?;
    Ok(out)
}

fn session_url(session: &client::Session, target: &str) -> String {
    format!("{} target {target}", session.base())
}

fn install_one(
    s: &mut Session,
    session: &client::Session,
    offer: &select::Offer,
    tmp: &Path,
    opts: &ScanOptions,
    qfe: &QfeOverride,
) -> Result<ChangeReport> {
    let meta = &offer.candidate.meta;
    let path = tmp.join(format!("{}.pkg", meta.id));
    let mut file = std::fs::File::create_new(&path).map_err(Error::io(&path))?;
    session.download(&offer.candidate.target, &mut file, &path).map_err(|e| channel_err(e, ". Nothing was changed"))?;
    file.sync_all().map_err(Error::io(&path))?;
    drop(file);
    let verified = change::verify(s, &path)?;
    let m = &verified.manifest;
    let listed = PackageMeta::from_manifest(m);
    // A package whose own manifest says prerelease, listed as a release (the seeds'
    // mistake): refused by policy, whatever the metadata claims.
    if listed.channel == hotfix_schema::Channel::Prerelease
        && meta.channel != hotfix_schema::Channel::Prerelease
        && (opts.auto || !opts.allow_prerelease)
    {
        let e = Error::Prerelease { package: listed.id.clone() };
        oplog::append_failure(&s.layout, &format!("install {}", path.display()), Some(meta.id.to_string()), &e);
        return Err(e);
    }
    if !(listed.id.same_as(&meta.id)
        && listed.product.same_as(&meta.product)
        && listed.kind == meta.kind
        && listed.channel == meta.channel)
    {
        let msg = format!(
            "the package's signed manifest says {} ({} for {}, channel {}), the repository lists it as {} ({} for {}, \
             channel {}); refusing a package served under another's description. Nothing was changed",
            listed.id,
            listed.kind.as_str(),
            listed.product,
            listed.channel,
            meta.id,
            meta.kind.as_str(),
            meta.product,
            meta.channel
        );
        let what = session_url(session, &offer.candidate.target);
        let e = Error::Channel {
            source: Box::new(hotfix_channel::Error::Trust { what, source: msg.into() }),
            hint: String::new(),
        };
        oplog::append_failure(&s.layout, &format!("install {}", path.display()), Some(meta.id.to_string()), &e);
        return Err(e);
    }
    let req = InstallRequest { package: &path, qfe: qfe.clone(), allow_prerelease: opts.allow_prerelease };
    let report = change::install_verified(s, verified, &req);
    let _ = std::fs::remove_file(&path);
    report
}
