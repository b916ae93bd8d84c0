//! Benchmark of the update channel (issue #14), against a real nginx on loopback:
//!
//! 1. publishing: a repository of `--packages` packages (default 1,000) made with
//!    `hotfix_channel::repo::add`, one package at a time — the cost of the first and the
//!    last add;
//! 2. the first scan of that repository by a root (every metadata file downloaded, the
//!    selection made) — its time and bytes;
//! 3. `--roots` simulated roots (default 10,000) polling the repository when nothing
//!    changed, each with its own client state, on `--threads` threads, for at most
//!    `--seconds` (default 600): requests and bytes per poll, from nginx's access log;
//! 4. the same idle poll by tough's own client without this project's metadata cache (the
//!    TUF reference workflow: every poll fetches timestamp, snapshot and targets), on a
//!    sample of roots — the peer, with the ratio.
//!
//! `bench/channel.sh` builds it in release mode and runs it; BENCHMARKS.md has results.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use hotfix_channel::client::{self, ClientState, Freshness};
use hotfix_channel::meta::PackageMeta;
use hotfix_channel::repo::{self, Expiries, RoleKeyFiles};
use hotfix_channel::select::{RootView, select};
use hotfix_schema::{Channel, Kind, Name};
use hotfix_tests::nginx::Nginx;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

fn n(s: &str) -> Name {
    Name::new(s).expect("a valid name")
}

fn key(dir: &Path, name: &str, seed: u8) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.key"));
    let pem = SigningKey::from_bytes(&[seed; 32]).to_pkcs8_pem(LineEnding::LF).expect("PEM");
    std::fs::write(&p, pem.as_bytes()).expect("key file");
    p
}

/// Package `i` of the benchmark repository: a product with four baselines (RTM, SP1, SP2,
/// SP3), packages published round-robin over them; on each baseline every tenth package is
/// a hotfix, the others a line of cumulative updates (each carrying every fix of the ones
/// before it on that baseline, so that each supersedes the one before).
fn meta(i: usize, chains: &mut [Vec<Name>; 4]) -> PackageMeta {
    let id = n(&format!("KB{}", 100_000 + i));
    let b = i % 4;
    let hotfix = (i / 4) % 10 == 9;
    let own = if hotfix {
        vec![id.clone()]
    } else {
        chains[b].push(id.clone());
        chains[b].clone()
    };
    PackageMeta {
        id,
        kind: if hotfix { Kind::Hotfix } else { Kind::Update },
        product: n("contoso"),
        baselines: vec![n(["RTM", "SP1", "SP2", "SP3"][b])],
        baseline_level: None,
        channel: Channel::Release,
        fixes: own,
        supersedes: vec![],
    }
}

fn log_totals(nginx: &Nginx, from: usize) -> (usize, u64, usize) {
    let all = nginx.requests();
    let new = &all[from..];
    (new.len(), new.iter().map(|r| r.bytes_sent).sum(), all.len())
}

fn main() {
    let packages = arg("--packages", 1000);
    let roots = arg("--roots", 10_000);
    let threads = arg("--threads", 2).max(1);
    let seconds = arg("--seconds", 600) as u64;
    let sample = arg("--peer-sample", 500);

    let work = tempfile::tempdir().expect("a temporary directory");
    let keys = RoleKeyFiles {
        root: vec![key(work.path(), "root", 1)],
        targets: vec![key(work.path(), "targets", 2)],
        snapshot: vec![key(work.path(), "snapshot", 3)],
        timestamp: vec![key(work.path(), "timestamp", 4)],
    };
    let dir = work.path().join("repo");
    let exp = Expiries::from_now(jiff::Timestamp::now());
    repo::init(&dir, &keys, 1, &exp).expect("repo init");

    // 1. Publishing.
    let payload = work.path().join("payload.pkg");
    let mut chains: [Vec<Name>; 4] = Default::default();
    let mut first_add = Duration::ZERO;
    let mut last_adds = Duration::ZERO;
    let t = Instant::now();
    for i in 0..packages {
        std::fs::write(&payload, format!("benchmark package {i}\n").repeat(64)).expect("payload");
        let start = Instant::now();
        repo::add(&dir, &payload, meta(i, &mut chains), &keys, &exp).expect("repo add");
        let took = start.elapsed();
        if i == 0 {
            first_add = took;
        }
        if i + 10 >= packages {
            last_adds += took;
        }
    }
    let publish = t.elapsed();
    let last_add = last_adds / packages.clamp(1, 10) as u32;
    let targets = std::fs::read_dir(dir.join("metadata"))
        .expect("metadata")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy() == format!("{}.targets.json", packages + 1))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .next()
        .unwrap_or(0);
    println!(
        "publishing {packages} packages: {:.1} s; first add {:.1} ms, last adds {:.1} ms each; targets.json {} KiB",
        publish.as_secs_f64(),
        first_add.as_secs_f64() * 1e3,
        last_add.as_secs_f64() * 1e3,
        targets / 1024
    );

    let Some(nginx) = Nginx::serve(&dir) else { return };
    let url = url::Url::parse(&nginx.url()).expect("url");
    let pinned = std::fs::read(dir.join("root.json")).expect("root.json");

    // 2. First scan.
    let root_view = RootView {
        product: Some(n("contoso")),
        baseline: Some((n("RTM"), 0)),
        installed: vec![n("contoso-rtm")],
        ..RootView::default()
    };
    let start = Instant::now();
    let session = client::open(&url, &pinned, &ClientState::default(), Freshness::Enforce).expect("first scan");
    let candidates = session.candidates().expect("candidates");
    let chosen = select(&root_view, &candidates);
    let first_scan = start.elapsed();
    let (reqs, bytes, mut seen) = log_totals(&nginx, 0);
    println!(
        "first scan of {} packages: {:.0} ms, {reqs} requests, {} KiB; offered {} (left out {})",
        candidates.len(),
        first_scan.as_secs_f64() * 1e3,
        bytes / 1024,
        chosen.offered.len(),
        chosen.left_out.len()
    );
    let state = session.state().clone();
    drop(session);
    let start = Instant::now();
    let again = client::open(&url, &pinned, &state, Freshness::Enforce).expect("rescan");
    let c2 = again.candidates().expect("candidates");
    let _ = select(&root_view, &c2);
    println!("scan with the state of the first: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
    drop(again);
    seen = log_totals(&nginx, seen).2;

    // 3. Idle polls by many roots.
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut mine = state.clone();
                loop {
                    if done.fetch_add(1, Ordering::Relaxed) >= roots || Instant::now() > deadline {
                        break;
                    }
                    match client::open(&url, &pinned, &mine, Freshness::Enforce) {
                        Ok(sess) => mine = sess.state().clone(),
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("poll failed: {e}");
                        }
                    }
                }
            });
        }
    });
    let polled = done.load(Ordering::Relaxed).min(roots);
    let took = start.elapsed();
    let (reqs, bytes, now) = log_totals(&nginx, seen);
    seen = now;
    let per_req = reqs as f64 / polled.max(1) as f64;
    let per_bytes = bytes as f64 / polled.max(1) as f64;
    println!(
        "idle polls: {polled} roots on {threads} threads in {:.1} s ({:.0} polls/s), {} failed; per poll {per_req:.2} requests, {per_bytes:.0} bytes sent by nginx",
        took.as_secs_f64(),
        polled as f64 / took.as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );

    // 4. The peer: tough's own client, datastore on disk, no metadata cache.
    let ds = work.path().join("peer-datastore");
    std::fs::create_dir_all(&ds).expect("datastore");
    client::load(&url, &pinned, &ds, Freshness::Enforce).expect("peer first load");
    seen = log_totals(&nginx, seen).2;
    let k = sample.min(roots).max(1);
    let start = Instant::now();
    for _ in 0..k {
        client::load(&url, &pinned, &ds, Freshness::Enforce).expect("peer poll");
    }
    let peer_took = start.elapsed();
    let (preqs, pbytes, _) = log_totals(&nginx, seen);
    let p_req = preqs as f64 / k as f64;
    let p_bytes = pbytes as f64 / k as f64;
    println!(
        "peer (tough's client, no cache): {k} idle polls in {:.1} s; per poll {p_req:.2} requests, {p_bytes:.0} bytes",
        peer_took.as_secs_f64()
    );
    println!(
        "ratio ours/peer per idle poll: requests {:.3}, bytes {:.4}, time {:.3}",
        per_req / p_req,
        per_bytes / p_bytes,
        (took.as_secs_f64() / polled.max(1) as f64) / (peer_took.as_secs_f64() / k as f64)
    );
}
