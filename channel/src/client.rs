//! The client side of the TUF workflow: a repository loaded through tough from a pinned
//! root (root rotation step by step, rollback, freeze and mix-and-match checks, bounded
//! downloads), with the trusted metadata kept between runs so that a later run refuses
//! anything older than what an earlier run saw.
//!
//! Layout expected at `base` (as [`crate::repo`] writes it): `metadata/` and `targets/`.
//! `base` is `https://…/`, `http://…/` or `file:///…/` (a repository copied to media).
//!
//! Two ways to keep the state between runs:
//!
//! - [`load`] and [`scan`] give tough a datastore directory (tests, tools);
//! - [`open`] takes and gives back a [`ClientState`] in memory, which the runtime reads
//!   from and writes to `ROOT/.servicing/channel/` through its own link-refusing file
//!   functions — tough's datastore writes by path and would follow a link planted in a
//!   root, so it only ever sees a private temporary directory.
//!
//! [`open`] also keeps the metadata that consistent snapshots make immutable
//! (`N.snapshot.json`, `N.targets.json`) in [`ClientState::cache`] and serves it from
//! there, so that a poll that finds nothing new costs two small requests: the next root
//! version (absent) and `timestamp.json`. Only files tough accepted in a load that
//! succeeded are cached, and tough checks a cached file again (signature, length and hash
//! from the newer metadata) each time it is used.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use tough::{
    ExpirationEnforcement, Limits, Repository, RepositoryLoader, TargetName, Transport, TransportError,
    TransportErrorKind, TransportStream,
};
use url::Url;

use crate::error::{Error, Result};
use crate::repo::package_targets;
use crate::select::Candidate;

/// Whether expired metadata is refused. Automatic use must be `Enforce`; `IgnoreExpiry`
/// is the explicit override for offline media whose timestamp could not be refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Refuse expired metadata (the TUF freeze check).
    Enforce,
    /// Accept expired metadata; every other check still applies.
    IgnoreExpiry,
}

/// The caps on what a scan downloads (tough's [`Limits`]): root, timestamp and snapshot
/// 1 MiB each, targets.json 10 MiB when snapshot.json does not give its length, at most 64
/// root versions in one rotation.
pub fn limits() -> Limits {
    Limits { max_root_updates: 64, ..Limits::default() }
}

/// The largest metadata file [`open`] caches (tough's own cap on targets.json).
pub const MAX_CACHED: u64 = 10 * 1024 * 1024;

/// The names tough's datastore uses that [`ClientState::trusted`] may hold.
pub const TRUSTED_FILES: [&str; 5] =
    ["root.json", "timestamp.json", "snapshot.json", "targets.json", "latest_known_time.json"];

fn join(base: &Url, p: &str) -> Result<Url> {
    let base = if base.path().ends_with('/') {
        base.clone()
    } else {
        let mut b = base.clone();
        b.set_path(&format!("{}/", base.path()));
        b
    };
    base.join(p).map_err(|e| Error::Refused { what: base.to_string(), msg: format!("cannot join {p}: {e}") })
}

fn runtime(what: &Path) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io(what))
}

fn enforcement(freshness: Freshness) -> ExpirationEnforcement {
    match freshness {
        Freshness::Enforce => ExpirationEnforcement::Safe,
        Freshness::IgnoreExpiry => ExpirationEnforcement::Unsafe,
    }
}

/// Loads the repository at `base`, trusting `pinned_root` (the subscription's root.json)
/// and the metadata saved in `datastore` by earlier loads.
pub fn load(base: &Url, pinned_root: &[u8], datastore: &Path, freshness: Freshness) -> Result<Repository> {
    let rt = runtime(datastore)?;
    let loader = RepositoryLoader::new(&pinned_root, join(base, "metadata/")?, join(base, "targets/")?)
        .datastore(datastore)
        .limits(limits())
        .expiration_enforcement(enforcement(freshness));
    rt.block_on(loader.load()).map_err(|e| Error::from_tough(base.to_string(), e))
}

/// [`load`], then every package target with its metadata (for [`crate::select::select`]).
pub fn scan(base: &Url, pinned_root: &[u8], datastore: &Path, freshness: Freshness) -> Result<Vec<Candidate>> {
    let repo = load(base, pinned_root, datastore, freshness)?;
    package_targets(&repo)
}

/// What a client keeps between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    /// tough's datastore: the newest trusted root, timestamp, snapshot and targets, and
    /// the latest time seen (a clock that steps back is refused), by file name (one of
    /// [`TRUSTED_FILES`]).
    pub trusted: BTreeMap<String, Vec<u8>>,
    /// Immutable metadata of the current snapshot (`N.snapshot.json`, `N.targets.json`,
    /// delegated roles' `N.<role>.json`), by file name.
    pub cache: BTreeMap<String, Vec<u8>>,
}

/// What a root.json says of itself, once its own signatures check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootInfo {
    /// Its version.
    pub version: u64,
    /// When it expires (RFC 3339).
    pub expires: String,
    /// How many keys it lists.
    pub keys: usize,
}

/// Checks that `bytes` is a TUF root.json signed by a threshold of its own root keys (what
/// a client can check of the root it is asked to pin); `what` names it in errors.
pub fn check_root(bytes: &[u8], what: &str) -> Result<RootInfo> {
    let root: tough::schema::Signed<tough::schema::Root> = serde_json::from_slice(bytes)
        .map_err(|e| Error::Refused { what: what.to_string(), msg: format!("not a TUF root.json: {e}") })?;
    root.signed.verify_role(&root).map_err(|e| Error::Trust { what: what.to_string(), source: Box::new(e) })?;
    Ok(RootInfo {
        version: root.signed.version.get(),
        expires: root.signed.expires.to_string(),
        keys: root.signed.keys.len(),
    })
}

/// What one [`open`] and its downloads cost on the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Requests made (a file served from the cache is not one).
    pub requests: u64,
    /// Bytes received in response bodies.
    pub bytes: u64,
    /// Metadata files served from the cache.
    pub cached: u64,
}

/// Whether the file `name` under `metadata/` is immutable with consistent snapshots.
fn cacheable(name: &str) -> bool {
    let Some((version, role)) = name.split_once('.') else { return false };
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && role.len() > ".json".len()
        && role.ends_with(".json")
        && role != "root.json"
        && role.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-%".contains(&b))
}

/// The network side: `file://` through tough's filesystem transport; `http(s)://` through
/// one HTTP client per session. (tough's own HTTP transport builds a new client — TLS
/// roots and all — for every request, which made an idle poll cost 200 ms of CPU.) A
/// request that fails to connect, times out or gets a server error is tried three times
/// in all, 100 then 200 ms apart; 403, 404 and 410 mean the file is not there.
#[derive(Clone, Debug)]
struct Net {
    http: reqwest::Client,
}

fn http_client() -> std::result::Result<reqwest::Client, reqwest::Error> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one first: either way one is installed.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    // No deadline on a whole response: a package on a slow link may take hours. A
    // connection that makes no progress for 30 s is given up.
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(30))
        .build()
}

#[tough::async_trait]
impl Transport for Net {
    async fn fetch(&self, url: Url) -> std::result::Result<TransportStream, TransportError> {
        match url.scheme() {
            "file" => local_file(&url),
            "http" | "https" => {
                let other =
                    |e: reqwest::Error| TransportError::new_with_cause(TransportErrorKind::Other, url.as_str(), e);
                let mut tries = 0u64;
                let response = loop {
                    tries += 1;
                    let retry = match self.http.get(url.clone()).send().await {
                        Ok(r) if r.status().is_server_error() && tries < 3 => true,
                        Ok(r) => break r,
                        Err(e) if (e.is_connect() || e.is_timeout()) && tries < 3 => true,
                        Err(e) => return Err(other(e)),
                    };
                    if retry {
                        tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
                    }
                };
                let status = response.status();
                if matches!(status.as_u16(), 403 | 404 | 410) {
                    return Err(TransportError::new(TransportErrorKind::FileNotFound, url.as_str()));
                }
                if !status.is_success() {
                    return Err(TransportError::new_with_cause(
                        TransportErrorKind::Other,
                        url.as_str(),
                        format!("HTTP status {status}"),
                    ));
                }
                let at = url.to_string();
                Ok(Box::pin(response.bytes_stream().map(move |r| {
                    r.map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, at.as_str(), e))
                })))
            }
            _ => Err(TransportError::new(TransportErrorKind::UnsupportedUrlScheme, url.as_str())),
        }
    }
}

/// A `file://` URL's file, streamed in 64 KiB chunks: opened without blocking and refused
/// unless it is a regular file (a FIFO on a medium would otherwise hang the client); absent
/// is "file not found", as TUF's root walk needs.
fn local_file(url: &Url) -> std::result::Result<TransportStream, TransportError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let other = |e: std::io::Error| TransportError::new_with_cause(TransportErrorKind::Other, url.as_str(), e);
    let path =
        url.to_file_path().map_err(|()| TransportError::new(TransportErrorKind::UnsupportedUrlScheme, url.as_str()))?;
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TransportError::new(TransportErrorKind::FileNotFound, url.as_str()));
        }
        Err(e) => return Err(other(e)),
    };
    let kind = file.metadata().map_err(other)?.file_type();
    if !kind.is_file() {
        return Err(other(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory is never read)",
        )));
    }
    let at = url.to_string();
    let chunks = futures::stream::unfold(Some(file), move |state| {
        let at = at.clone();
        async move {
            let mut f = state?;
            let mut buf = vec![0u8; 64 << 10];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(tough::Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(TransportError::new_with_cause(TransportErrorKind::Other, at.as_str(), e)), None)),
            }
        }
    });
    Ok(Box::pin(chunks))
}

/// The session's transport with the immutable-metadata cache in front and a count of traffic.
#[derive(Clone, Debug)]
struct Caching {
    inner: Net,
    metadata: String,
    cache: Arc<BTreeMap<String, Vec<u8>>>,
    fetched: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    traffic: Arc<Mutex<Traffic>>,
}

impl Caching {
    fn count(&self, f: impl FnOnce(&mut Traffic)) {
        f(&mut self.traffic.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn once(bytes: Vec<u8>) -> TransportStream {
        Box::pin(futures::stream::once(async move { Ok(tough::Bytes::from(bytes)) }))
    }
}

#[tough::async_trait]
impl Transport for Caching {
    async fn fetch(&self, url: Url) -> std::result::Result<TransportStream, TransportError> {
        let name = url.as_str().strip_prefix(&self.metadata).filter(|n| cacheable(n)).map(str::to_string);
        if let Some(name) = &name
            && let Some(bytes) = self.cache.get(name)
        {
            self.count(|t| t.cached += 1);
            return Ok(Caching::once(bytes.clone()));
        }
        self.count(|t| t.requests += 1);
        let stream = self.inner.fetch(url.clone()).await?;
        let traffic = Arc::clone(&self.traffic);
        let counted = stream.inspect(move |chunk| {
            if let Ok(c) = chunk {
                traffic.lock().unwrap_or_else(PoisonError::into_inner).bytes += c.len() as u64;
            }
        });
        let Some(name) = name else { return Ok(Box::pin(counted)) };
        // An immutable metadata file goes to tough as it arrives (tough's own length and
        // hash limits stop it early) while a copy is kept; only a copy of a file read to
        // its end is recorded, and only up to MAX_CACHED bytes; it is cached once the
        // whole load succeeded.
        let copy = Arc::new(Mutex::new(Some(Vec::new())));
        let (tee, done) = (Arc::clone(&copy), Arc::clone(&copy));
        let fetched = Arc::clone(&self.fetched);
        let teed = counted.map(move |chunk| {
            let mut g = tee.lock().unwrap_or_else(PoisonError::into_inner);
            match &chunk {
                Ok(c) if g.as_ref().is_some_and(|b| (b.len() + c.len()) as u64 <= MAX_CACHED) => {
                    if let Some(b) = g.as_mut() {
                        b.extend_from_slice(c);
                    }
                }
                _ => *g = None,
            }
            Some(chunk)
        });
        let finish = futures::stream::once(async move {
            if let Some(b) = done.lock().unwrap_or_else(PoisonError::into_inner).take() {
                fetched.lock().unwrap_or_else(PoisonError::into_inner).insert(name, b);
            }
            None
        });
        Ok(Box::pin(teed.chain(finish).filter_map(|x| async move { x })))
    }
}

/// A repository loaded by [`open`], ready to list and download packages.
pub struct Session {
    /// tough's datastore for this session (downloads check the clock against it).
    _datastore: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    repo: Repository,
    base: Url,
    state: ClientState,
    traffic: Arc<Mutex<Traffic>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Loads the repository at `base` trusting the newest root in `state` (or `pinned_root`
/// if there is none yet), with `state`'s trusted metadata for the rollback checks and its
/// cache for immutable metadata. Nothing is written anywhere but a private temporary
/// directory; the caller saves [`Session::state`] once it is done.
///
/// A load that fails a trust check with cached metadata is tried once more without the
/// cache, so that a damaged local copy costs a download, never a stuck client.
pub fn open(base: &Url, pinned_root: &[u8], state: &ClientState, freshness: Freshness) -> Result<Session> {
    match open_once(base, pinned_root, state, freshness) {
        Err(Error::Trust { .. }) if !state.cache.is_empty() => {
            let uncached = ClientState { trusted: state.trusted.clone(), cache: BTreeMap::new() };
            open_once(base, pinned_root, &uncached, freshness)
        }
        done => done,
    }
}

fn open_once(base: &Url, pinned_root: &[u8], state: &ClientState, freshness: Freshness) -> Result<Session> {
    let tmp = tempfile::Builder::new().prefix("hotfix-tuf.").tempdir().map_err(Error::io(&std::env::temp_dir()))?;
    for (name, bytes) in &state.trusted {
        if TRUSTED_FILES.contains(&name.as_str()) {
            let p = tmp.path().join(name);
            std::fs::write(&p, bytes).map_err(Error::io(&p))?;
        }
    }
    let root = state.trusted.get("root.json").map_or(pinned_root, Vec::as_slice);
    let metadata = join(base, "metadata/")?;
    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let http =
        http_client().map_err(|e| Error::Refused { what: base.to_string(), msg: format!("HTTP client: {e}") })?;
    let transport = Caching {
        inner: Net { http },
        metadata: metadata.to_string(),
        cache: Arc::new(state.cache.clone()),
        fetched: Arc::new(Mutex::new(BTreeMap::new())),
        traffic: Arc::clone(&traffic),
    };
    let fetched = Arc::clone(&transport.fetched);
    let loader = RepositoryLoader::new(&root, metadata, join(base, "targets/")?)
        .transport(transport)
        .datastore(tmp.path())
        .limits(limits())
        .expiration_enforcement(enforcement(freshness));
    let rt = runtime(tmp.path())?;
    let repo = rt.block_on(loader.load()).map_err(|e| Error::from_tough(base.to_string(), e))?;

    let mut next = ClientState::default();
    for name in TRUSTED_FILES {
        let p = tmp.path().join(name);
        match std::fs::read(&p) {
            Ok(b) => {
                next.trusted.insert(name.to_string(), b);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { path: p, source: e }),
        }
    }
    // The current snapshot and every file it names (targets and delegated roles).
    let snapshot = &repo.snapshot().signed;
    let keep: Vec<String> = std::iter::once(format!("{}.snapshot.json", snapshot.version))
        .chain(snapshot.meta.iter().map(|(name, m)| format!("{}.{name}", m.version)))
        .collect();
    let fetched = fetched.lock().unwrap_or_else(PoisonError::into_inner);
    for name in keep {
        if let Some(b) = fetched.get(&name).or_else(|| state.cache.get(&name)) {
            next.cache.insert(name, b.clone());
        }
    }
    Ok(Session { _datastore: tmp, rt, repo, base: base.clone(), state: next, traffic })
}

impl Session {
    /// Every package target with its metadata.
    pub fn candidates(&self) -> Result<Vec<Candidate>> {
        package_targets(&self.repo)
    }

    /// The state to keep for the next [`open`].
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// The repository as tough loaded it (versions, expiry).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The repository's URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// What the load and the downloads so far cost on the network.
    pub fn traffic(&self) -> Traffic {
        *self.traffic.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Downloads the target `name` into `out`, at most its length from the signed targets
    /// metadata, checking its hash as it streams. On an error, what was written to `out`
    /// must be thrown away (the caller's temporary file, `out_path` in messages). Returns
    /// the bytes written.
    pub fn download(&self, name: &str, out: &mut dyn Write, out_path: &Path) -> Result<u64> {
        let what = format!("{} target {name}", self.base);
        let target = TargetName::new(name).map_err(|e| Error::from_tough(what.clone(), e))?;
        self.rt.block_on(async {
            let Some(stream) = self.repo.read_target(&target).await.map_err(|e| Error::from_tough(what.clone(), e))?
            else {
                return Err(Error::Refused { what: what.clone(), msg: "not listed in the signed targets".into() });
            };
            let mut stream = Box::pin(stream);
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::from_tough(what.clone(), e))?;
                out.write_all(&chunk).map_err(Error::io(out_path))?;
                n += chunk.len() as u64;
            }
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cacheable;

    #[test]
    fn only_versioned_snapshot_and_targets_are_cached() {
        assert!(cacheable("12.snapshot.json"));
        assert!(cacheable("3.targets.json"));
        assert!(!cacheable("timestamp.json"));
        assert!(!cacheable("4.root.json"));
        assert!(!cacheable(".snapshot.json"));
        assert!(!cacheable("x1.targets.json"));
        assert!(!cacheable("1.targets.json/../x"));
        assert!(cacheable("3.rollout.json"));
        assert!(!cacheable("3..json"));
        assert!(!cacheable("3.a/b.json"));
    }
}
