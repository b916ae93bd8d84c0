//! The update channel on a root (issue #14): `subscribe` to a TUF repository of packages,
//! `scan` it for what applies, `update` from it. The TUF workflow and the choice are the
//! `hotfix-channel` crate's; this module keeps the client's state in the root and installs
//! what was chosen exactly as `install` does.
//!
//! ```text
//! ROOT/.servicing/channel/subscription.json  the repository's URL and the pinned root's hash
//! ROOT/.servicing/channel/pinned-root.json   the root.json the administrator pinned
//! ROOT/.servicing/channel/trusted/           the newest trusted root, timestamp, snapshot, targets
//! ROOT/.servicing/channel/cache/             the current N.snapshot.json and N.targets.json
//! ```
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
/// The largest state file read back (tough's own cap on targets.json).
const MAX_STATE: u64 = client::MAX_CACHED;

/// What `subscription.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    url: String,
    pinned_root_sha256: String,
    subscribed: String,
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
    Ok(Loaded { url, pinned, state, dir })
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
pub fn subscribe(s: &Session, url: &str, root_json: &Path) -> Result<SubscribeView> {
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
    let sub = Subscription { url: parsed.to_string(), pinned_root_sha256: sha.clone(), subscribed: oplog::now() };
    let text = serde_json::to_vec_pretty(&sub).map_err(|e| Error::Refused(e.to_string()))?;
    write_small(&dir, SUBSCRIPTION, &text)?;
    dir.sync().map_err(io_at(&dir, "."))?;
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
            }
        }
        if !self.left_out.is_empty() {
            writeln!(f, "Left out:")?;
            for l in &self.left_out {
                writeln!(f, "  {:<12} {:<8} {}", l.id, l.kind, l.why)?;
            }
        }
        if !self.offered.is_empty() {
            writeln!(f, "`hotfix update` installs the {} offered.", self.offered.len())?;
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
}

fn scan_inner(s: &Session, opts: &ScanOptions, op: &str) -> Result<Scanned> {
    let loaded = load(s)?;
    let freshness = if opts.allow_expired { Freshness::IgnoreExpiry } else { Freshness::Enforce };
    let session = client::open(&loaded.url, &loaded.pinned, &loaded.state, freshness)
        .map_err(|e| channel_err(e, &format!(" ({op}; nothing was changed)")))?;
    save(&loaded.dir, session.state())?;
    let candidates = session.candidates().map_err(|e| channel_err(e, ""))?;
    let selection = select::select(&root_view(s, opts)?, &candidates);
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
            .collect(),
        traffic: TrafficView { requests: t.requests, bytes: t.bytes, cached: t.cached },
    };
    Ok(Scanned { view, session, selection })
}

fn expired_note(opts: &ScanOptions) -> &'static str {
    if opts.allow_expired { "; expired metadata accepted (--allow-expired)" } else { "" }
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

/// What `update` did.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct UpdateView {
    /// The scan it acted on.
    pub scan: ScanView,
    /// Each package installed, in order.
    pub installed: Vec<ChangeReport>,
    /// The package that failed, if one did; the ones after it were not tried.
    pub failed: Option<UpdateFailure>,
}

impl UpdateView {
    /// 0, 3 when a restart is needed, or the failure's code.
    pub fn exit_code(&self) -> u8 {
        match &self.failed {
            Some(f) => f.exit_code,
            None if self.installed.iter().any(|r| r.restart) => 3,
            None => 0,
        }
    }
}

impl fmt::Display for UpdateView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scan.offered.is_empty() {
            return writeln!(f, "Nothing to install: this root is up to date with {}.", self.scan.url);
        }
        for r in &self.installed {
            write!(f, "{r}")?;
        }
        if let Some(x) = &self.failed {
            writeln!(f, "{} was not installed: {}", x.id, x.message)?;
            let rest = self.scan.offered.len() - self.installed.len() - 1;
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
    let op = format!("update {url}");
    let Scanned { view, session, selection } = match scan_inner(s, opts, "update") {
        Ok(x) => x,
        Err(e) => {
            oplog::append_failure(&s.layout, &op, None, &e);
            return Err(e);
        }
    };
    let mut out = UpdateView { scan: view, installed: Vec::new(), failed: None };
    let tmp = tempfile::Builder::new().prefix("hotfix-update.").tempdir().map_err(Error::io(&std::env::temp_dir()))?;
    for offer in &selection.offered {
        let meta = &offer.candidate.meta;
        let done = install_one(s, &session, offer, tmp.path(), opts, qfe);
        match done {
            Ok(report) => out.installed.push(report),
            Err(e) => {
                out.failed = Some(UpdateFailure {
                    id: meta.id.to_string(),
                    class: e.class().to_string(),
                    message: e.to_string(),
                    exit_code: e.exit_code(),
                });
                break;
            }
        }
    }
    let ids: Vec<String> = out.installed.iter().filter_map(|r| r.package.clone()).collect();
    let result = match &out.failed {
        Some(f) => format!("failed at {}: {}", f.id, f.message),
        None if selection.offered.is_empty() => "ok: up to date".into(),
        None => format!("ok: installed {}", ids.join(", ")),
    };
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
    if !(listed.id.same_as(&meta.id) && listed.product.same_as(&meta.product) && listed.kind == meta.kind) {
        let msg = format!(
            "the package's signed manifest says {} ({} for {}), the repository lists it as {} ({} for {}); \
             refusing a package served under another's name. Nothing was changed",
            listed.id,
            listed.kind.as_str(),
            listed.product,
            meta.id,
            meta.kind.as_str(),
            meta.product
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
