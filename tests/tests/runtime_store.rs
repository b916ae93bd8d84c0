//! The store's side of an install, end to end through the `hotfix` binary: delta blobs
//! are decoded against their references read back from the store (never from the
//! package's reference chain held in memory), a damaged stored reference is written again
//! before a delta uses it, and an install leaves no temporary file behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hotfix_tests::root::{Kit, hotfix, manifest, store_blob};
use sha2::{Digest as _, Sha256};

/// Size of the component's one file: each delta blob's reference is this large.
const BIG: usize = 5 << 20;

/// Deterministic bytes that do not compress: only a delta against its reference makes
/// a build of the file small, so the package is a chain of deltas.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `bytes` with a few bytes changed: the next build of the file.
fn next_build(bytes: &[u8], seed: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (n, at) in noise(seed, 64).chunks(4).enumerate() {
        let i = u32::from_le_bytes([at[0], at[1], at[2], at[3]]) as usize % out.len();
        out[i] ^= 0x5a ^ n as u8;
    }
    out
}

fn write_bytes(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(&p, bytes).expect("write payload");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// A baseline with the component `big` (a small placeholder build).
fn baseline(kit: &Kit) -> std::path::PathBuf {
    let spec = r#"[package]
id = "big-rtm"
kind = "baseline"
product = "contoso"
title = "Big RTM"
baseline = { name = "RTM", level = 0 }

[[variant]]
component = "big"
version = "1.0.0.0"
dir = "big-rtm/base"
"#;
    kit.spec("big-rtm", spec, &[("base/lib/big.so", "placeholder\n")])
}

/// An update `id` of `big` for RTM with `gdr` and `ldr` builds of `lib/big.so`, and SP1
/// builds when given.
fn update(kit: &Kit, id: &str, minor: u32, builds: &[(&str, &str, &[u8])]) -> std::path::PathBuf {
    let mut spec =
        format!("[package]\nid = \"{id}\"\nkind = \"update\"\nproduct = \"contoso\"\ntitle = \"Big update\"\n");
    for (baseline, branch, bytes) in builds {
        let dir = format!("{id}/{baseline}/{branch}");
        write_bytes(kit.path(), &format!("{dir}/lib/big.so"), bytes);
        let sp = u32::from(*baseline == "SP1");
        let (version, fixes) = match *branch {
            "gdr" => (format!("1.{sp}.0.{minor}"), format!("[\"{id}\"]")),
            _ => (format!("1.{sp}.0.{}", 1000 + minor), format!("[\"KB8\", \"{id}\"]")),
        };
        spec.push_str(&format!(
            "\n[[variant]]\ncomponent = \"big\"\nbaseline = \"{baseline}\"\nbranch = \"{branch}\"\n\
             version = \"{version}\"\nfixes = {fixes}\ndir = \"{dir}\"\n"
        ));
    }
    let path = kit.path().join(format!("{id}.toml"));
    fs::write(&path, spec).expect("write spec");
    kit.build(&path, id)
}

fn install(root: &Path, args: &[&str]) {
    let out = hotfix(root, args);
    assert!(out.code == 0 || out.code == 3, "{args:?}: {out:?}");
}

fn live(root: &Path) -> Vec<u8> {
    fs::read(root.join("lib/big.so")).expect("live file")
}

/// Every blob of `pkg` is in the store with its hash, and no temporary file is left in
/// the root (store included).
fn assert_store_holds(root: &Path, pkg: &Path) {
    for b in manifest(pkg).blobs {
        let bytes = fs::read(store_blob(root, &b.sha256.to_hex())).expect("blob in the store");
        assert_eq!(Sha256::digest(&bytes)[..], b.sha256.0[..], "stored blob {} is damaged", b.sha256);
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(&dir).expect("read dir") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".hotfix-tmp."), "temporary file left: {}", e.path().display());
            if e.file_type().expect("type").is_dir() {
                dirs.push(e.path());
            }
        }
    }
    hotfix(root, ["check"]).expect_code(0);
}

#[test]
fn a_chain_of_deltas_over_references_above_4_mib_installs_from_the_store() {
    let kit = Kit::new("a_chain_of_deltas_over_references_above_4_mib_installs_from_the_store");
    let rtm_gdr = noise(1, BIG);
    let rtm_ldr = next_build(&rtm_gdr, 2);
    let sp1_gdr = next_build(&rtm_ldr, 3);
    let sp1_ldr = next_build(&sp1_gdr, 4);
    let base = baseline(&kit);
    let kb9 = update(
        &kit,
        "KB9",
        9,
        &[("RTM", "gdr", &rtm_gdr), ("RTM", "ldr", &rtm_ldr), ("SP1", "gdr", &sp1_gdr), ("SP1", "ldr", &sp1_ldr)],
    );
    // The package is what the test is about: deltas whose references are over 4 MiB,
    // one a delta of a delta.
    let m = manifest(&kb9);
    let size_of = |d| m.blobs.iter().find(|b| b.sha256 == d).map(|b| b.size);
    let deltas: Vec<_> = m.blobs.iter().filter(|b| b.encoding.is_delta()).collect();
    assert!(deltas.len() >= 2, "{:?}", m.blobs);
    assert!(deltas.iter().all(|b| b.reference.and_then(size_of).is_some_and(|n| n > 4 << 20)));
    assert!(deltas.iter().any(|b| deltas.iter().any(|r| b.reference == Some(r.sha256))), "no chain");

    let gdr = kit.root("gdr");
    install(&gdr, &["install", base.to_str().expect("path")]);
    install(&gdr, &["install", kb9.to_str().expect("path")]);
    assert!(live(&gdr) == rtm_gdr, "the GDR build is live");
    assert_store_holds(&gdr, &kb9);

    let ldr = kit.root("ldr");
    install(&ldr, &["install", base.to_str().expect("path")]);
    install(&ldr, &["install", kb9.to_str().expect("path"), "/B:QFE"]);
    assert!(live(&ldr) == rtm_ldr, "the LDR build, a delta, is live");
    assert_store_holds(&ldr, &kb9);
}

#[test]
fn a_delta_decodes_against_a_reference_already_stored_or_written_again_when_damaged() {
    let kit = Kit::new("a_delta_decodes_against_a_reference_already_stored_or_written_again_when_damaged");
    let first = noise(11, BIG);
    let second = next_build(&first, 12);
    let third = next_build(&second, 13);
    let base = baseline(&kit);
    let kb9 = update(&kit, "KB9", 9, &[("RTM", "gdr", &first), ("RTM", "ldr", &second)]);
    // KB10's first blob is KB9's LDR build, stored whole; its LDR build is a delta of it.
    let kb10 = update(&kit, "KB10", 10, &[("RTM", "gdr", &second), ("RTM", "ldr", &third)]);
    let m = manifest(&kb10);
    let shared = m.blobs.first().map(|b| b.sha256).expect("a blob");
    assert!(m.blobs.iter().any(|b| b.encoding.is_delta() && b.reference == Some(shared)));

    for damaged in [false, true] {
        let root = kit.root(if damaged { "damaged" } else { "intact" });
        install(&root, &["install", base.to_str().expect("path")]);
        install(&root, &["install", kb9.to_str().expect("path")]);
        let blob = store_blob(&root, &shared.to_hex());
        assert!(fs::read(&blob).expect("stashed LDR build") == second);
        if damaged {
            fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).expect("chmod");
            fs::write(&blob, next_build(&second, 99)).expect("damage the stored blob");
        }
        install(&root, &["install", kb10.to_str().expect("path"), "/B:QFE"]);
        assert!(live(&root) == third, "damaged {damaged}: the delta decoded against the right reference");
        assert!(fs::read(&blob).expect("stored reference") == second, "damaged {damaged}");
        assert_store_holds(&root, &kb10);
    }
}
