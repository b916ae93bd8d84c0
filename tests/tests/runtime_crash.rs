//! The crash-point sweep: every servicing operation is killed (`HOTFIX_CRASH_AT=N` aborts
//! the process before its N-th durable action) at every step in turn, then `hotfix recover`
//! runs. Each time the root must be exactly the state before or exactly the state after —
//! live tree byte for byte (modes included) and installed packages — `hotfix check` must
//! pass, the store must still hold every blob of every installed package, and the operation
//! must then complete normally.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::root::{Kit, Tree, copy_tree, hotfix, hotfix_env, installed_ids, kb1, manifest, store_blob, tree};
use sha2::{Digest as _, Sha256};

type State = (Tree, Vec<String>);

fn state(root: &Path) -> State {
    (tree(root), installed_ids(root))
}

/// Why two states differ, briefly.
fn diff(a: &State, b: &State) -> String {
    let mut out = Vec::new();
    if a.1 != b.1 {
        out.push(format!("packages {:?} vs {:?}", a.1, b.1));
    }
    for k in a.0.keys().chain(b.0.keys()) {
        if a.0.get(k) != b.0.get(k) {
            out.push(format!("{k} differs"));
        }
    }
    out.dedup();
    out.join("; ")
}

/// Every blob of every installed package is in the store, with the right content.
fn assert_store_complete(root: &Path, packages: &BTreeMap<String, PathBuf>, at: &str) {
    for id in installed_ids(root) {
        let pkg = packages.get(&id).unwrap_or_else(|| panic!("unknown package {id}"));
        for digest in manifest(pkg).content_index().into_keys() {
            let path = store_blob(root, &digest.to_hex());
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{at}: blob of {id} {}: {e}", path.display()));
            assert_eq!(Sha256::digest(&bytes)[..], digest.0[..], "{at}: blob {digest} of {id} is damaged");
        }
    }
}

fn run_ok(root: &Path, op: &[OsString]) {
    let out = hotfix(root, op);
    assert!(out.code == 0 || out.code == 3, "{op:?} failed: {out:?}");
}

/// Sets up a template root with `setup` installed, then sweeps `op` over every crash point.
fn sweep(kit: &Kit, name: &str, setup: &[&Path], op: &[OsString], packages: &BTreeMap<String, PathBuf>) {
    let template = kit.root(&format!("{name}-template"));
    for p in setup {
        run_ok(&template, &[OsString::from("install"), p.as_os_str().to_owned()]);
    }
    let before = state(&template);
    let reference = kit.path().join(format!("{name}-reference"));
    copy_tree(&template, &reference);
    run_ok(&reference, op);
    let after = state(&reference);
    assert_ne!(before, after, "{name}: the operation changes the root");

    for n in 1..500u32 {
        let root = kit.path().join(format!("{name}-crash-{n}"));
        copy_tree(&template, &root);
        let out = hotfix_env(&root, op, &[("HOTFIX_CRASH_AT", &n.to_string())]);
        let at = format!("{name}, crash at step {n}");
        if out.code != -1 {
            assert!(out.code == 0 || out.code == 3, "{at}: {out:?}");
            assert!(state(&root) == after, "{at}: completed run differs: {}", diff(&state(&root), &after));
            let crashes = n - 1;
            assert!(crashes >= 3, "{name}: only {crashes} crash points");
            eprintln!("{name}: {crashes} crash points, each recovered to the state before or after");
            fs::remove_dir_all(&root).ok();
            return;
        }
        assert!(out.stderr.contains("HOTFIX_CRASH_AT"), "{at}: {out:?}");
        hotfix(&root, ["recover"]).expect_code(0);
        let check = hotfix(&root, ["check"]);
        assert_eq!(check.code, 0, "{at}: check after recover: {check:?}");
        let now = state(&root);
        assert!(
            now == before || now == after,
            "{at}: the root is neither the state before ({}) nor after ({})",
            diff(&now, &before),
            diff(&now, &after)
        );
        assert_store_complete(&root, packages, &at);
        if now == before {
            // The interrupted operation can simply be run again.
            run_ok(&root, op);
            assert!(state(&root) == after, "{at}: rerun differs: {}", diff(&state(&root), &after));
            hotfix(&root, ["check"]).expect_code(0);
        }
        fs::remove_dir_all(&root).ok();
    }
    panic!("{name}: the operation never completed");
}

fn args(words: &[&std::ffi::OsStr]) -> Vec<OsString> {
    words.iter().map(|w| w.to_os_string()).collect()
}

#[test]
fn every_crash_point_of_install_uninstall_and_service_pack_leaves_the_old_or_the_new_root() {
    let kit = Kit::new("every_crash_point_of_install_uninstall_and_service_pack");
    let (rtm, kb4, sp1, kb1) = (kit.contoso("rtm"), kit.contoso("kb4"), kit.contoso("sp1"), kb1(&kit));
    let packages: BTreeMap<String, PathBuf> =
        [("contoso-rtm", &rtm), ("KB4", &kb4), ("contoso-sp1", &sp1), ("KB1", &kb1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
    let install = |p: &Path| args(&["install".as_ref(), p.as_os_str()]);

    // An update: blobs enter the store, two files are rewritten, one record relabelled.
    sweep(&kit, "install-update", &[&rtm], &install(&kb4), &packages);
    // A hotfix: a new build, a new file in new directories.
    sweep(&kit, "install-hotfix", &[&rtm], &install(&kb1), &packages);
    // Uninstalling it: files restored, its file and directories removed.
    sweep(&kit, "uninstall-hotfix", &[&rtm, &kb1], &args(&["uninstall".as_ref(), "KB1".as_ref()]), &packages);
    // A service pack over an update and a hotfix: every file changes.
    sweep(&kit, "install-service-pack", &[&rtm, &kb4, &kb1], &install(&sp1), &packages);
    // And uninstalling the service pack again.
    sweep(
        &kit,
        "uninstall-service-pack",
        &[&rtm, &kb4, &kb1, &sp1],
        &args(&["uninstall".as_ref(), "contoso-sp1".as_ref()]),
        &packages,
    );
}

/// Every name under `root` (the servicing directory included) that is a temporary file of
/// the runtime's, or a file in the store's staging directory.
fn temporaries(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let in_staging = d.ends_with(".servicing/store/tmp");
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else if in_staging || e.file_name().to_string_lossy().starts_with(".hotfix-tmp.") {
                found.push(e.path());
            }
        }
    }
    found
}

/// Trials per operation of the `kill -9` sweep: a quick default, `HOTFIX_KILL9_TRIALS`
/// for the long run.
fn kill9_trials() -> u64 {
    std::env::var("HOTFIX_KILL9_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(25)
}

/// Kills `op` with SIGKILL after a random delay, `trials` times; then the next command
/// (`recover`) must leave exactly the state before or after, a clean `check`, a complete
/// store and no temporary file anywhere.
fn kill9_sweep(kit: &Kit, name: &str, setup: &[&Path], op: &[OsString], packages: &BTreeMap<String, PathBuf>) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let template = kit.root(&format!("{name}-k9-template"));
    for p in setup {
        run_ok(&template, &[OsString::from("install"), p.as_os_str().to_owned()]);
    }
    let before = state(&template);
    let reference = kit.path().join(format!("{name}-k9-reference"));
    copy_tree(&template, &reference);
    let start = Instant::now();
    run_ok(&reference, op);
    let took = start.elapsed();
    let after = state(&reference);
    // Delays up to 1.5 times an uninterrupted run, so that some trials complete.
    let window = (took.as_micros() as u64 * 3 / 2).max(1000);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ name.len() as u64;
    let (mut killed, mut completed) = (0, 0);
    for trial in 0..kill9_trials() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % window);
        let root = kit.path().join(format!("{name}-k9-{trial}"));
        copy_tree(&template, &root);
        let mut child = Command::new(hotfix_tests::run::bin("hotfix"))
            .arg("--root")
            .arg(&root)
            .args(op)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_remove("HOTFIX_CRASH_AT")
            .spawn()
            .expect("hotfix runs");
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("wait");
        if status.success() {
            completed += 1
        } else {
            killed += 1
        }
        let at = format!("{name}, kill -9 after {delay:?} (trial {trial})");
        let rec = hotfix(&root, ["recover"]);
        assert_eq!(rec.code, 0, "{at}: recover: {rec:?}");
        let now = state(&root);
        assert!(
            now == before || now == after,
            "{at}: neither before ({}) nor after ({})",
            diff(&now, &before),
            diff(&now, &after)
        );
        let check = hotfix(&root, ["check"]);
        assert_eq!(check.code, 0, "{at}: check: {check:?}");
        assert_store_complete(&root, packages, &at);
        assert!(temporaries(&root).is_empty(), "{at}: temporaries left: {:?}", temporaries(&root));
        fs::remove_dir_all(&root).ok();
    }
    eprintln!("{name}: kill -9 sweep, {killed} killed and {completed} completed, each the state before or after");
}

#[test]
fn kill9_at_random_moments_of_install_uninstall_and_service_pack_leaves_the_old_or_the_new_root() {
    let kit = Kit::new("kill9_at_random_moments");
    let (rtm, kb4, sp1, kb1) = (kit.contoso("rtm"), kit.contoso("kb4"), kit.contoso("sp1"), kb1(&kit));
    let packages: BTreeMap<String, PathBuf> =
        [("contoso-rtm", &rtm), ("KB4", &kb4), ("contoso-sp1", &sp1), ("KB1", &kb1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
    let install = |p: &Path| args(&["install".as_ref(), p.as_os_str()]);
    kill9_sweep(&kit, "install-update", &[&rtm], &install(&kb4), &packages);
    kill9_sweep(&kit, "uninstall-hotfix", &[&rtm, &kb1], &args(&["uninstall".as_ref(), "KB1".as_ref()]), &packages);
    kill9_sweep(&kit, "install-service-pack", &[&rtm, &kb4, &kb1], &install(&sp1), &packages);
}
