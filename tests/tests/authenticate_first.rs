//! Issue #10 §2, "authenticate every byte before decoding or writing anything", through the
//! binaries: a forged package (the vendor's key id, a signature by another key, one small
//! zstd frame that decodes to 256 MiB) is refused by `hotfix install`, `pkgtool extract`
//! and the self-contained installer with exit 6 `[bad-signature]` before anything is
//! decoded or written — the root, its store and a canary file outside the root are
//! compared byte for byte, and no temporary file is left. A correctly signed package whose
//! blob does not match its manifest is authentic but broken: `pkgtool verify` accepts it,
//! `verify --deep`, extract and install refuse it. And the decode pass reads the file the
//! authentication pass read, whatever happens at its path in between.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use hotfix_schema::{Digest, Limits};
use hotfix_tests::craft::{RawPackage, forge};
use hotfix_tests::root::{Kit, Tree, hotfix, installed_ids, run_installer, tree};
use hotfix_tests::run::pkgtool;
use pkgtool::read::ContentSink;
use pkgtool::{Error, TrustedKey};
use sha2::{Digest as _, Sha256};

/// What the forged blob decodes to: 256 MiB of zeros, from a frame of about 8 KB.
const BOMB: u64 = 256 << 20;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A one-file hotfix for contoso's kernel at RTM (one blob, no pack), as the spec `KB9`.
fn hotfix_spec(kit: &Kit) -> PathBuf {
    hotfix_tests::fixtures::write(kit.path(), "KB9/rtm/bin/kernel.dll", &"contoso kernel RTM LDR KB9\n".repeat(64));
    kb9_spec(kit, "Hotfix whose blob a forger replaces")
}

/// The spec `KB9`: an LDR build of contoso's kernel at RTM, of whatever is in `KB9/rtm`.
fn kb9_spec(kit: &Kit, title: &str) -> PathBuf {
    let spec = format!(
        r#"[package]
id = "KB9"
kind = "hotfix"
product = "contoso"
title = "{title}"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1009"
fixes = ["KB9"]
dir = "KB9/rtm"
"#
    );
    hotfix_tests::fixtures::write(kit.path(), "KB9.toml", &spec)
}

/// The vendor's secret key (the kit's).
fn vendor(kit: &Kit) -> SigningKey {
    pkgtool::keys::load_secret(&kit.key).expect("the kit's key")
}

/// Another key: the forger's.
fn forger() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

/// `genuine` with its blob replaced by the zstd bomb the forged manifest declares, the
/// vendor's key id kept and the signature made by the forger; written to `out`
/// (executable, for an installer).
fn forge_bomb(kit: &Kit, genuine: &Path, out: &Path) -> PathBuf {
    let zeros = vec![0u8; BOMB as usize];
    let mut raw = RawPackage::parse(&fs::read(genuine).expect("read package"));
    raw.replace_last_blob(zstd::bulk::compress(&zeros, 3).expect("compress"), BOMB, crc32fast::hash(&zeros));
    let mut bytes = raw.write(&vendor(kit), |_| {});
    forge(&mut bytes, &forger());
    assert!(bytes.len() < (raw.prefix.len() + 12_000), "the forged package stays small: {} bytes", bytes.len());
    fs::write(out, &bytes).expect("write forged package");
    fs::set_permissions(out, fs::Permissions::from_mode(0o755)).expect("chmod");
    out.to_path_buf()
}

/// `genuine` with its blob replaced by a frame of other bytes of the same size (and their
/// CRC-32), signed by the vendor: authentic, but the blob is not its manifest's content.
fn broken_but_signed(kit: &Kit, genuine: &Path, out: &Path) -> PathBuf {
    let mut raw = RawPackage::parse(&fs::read(genuine).expect("read package"));
    let size = raw.entries.last().expect("a blob").uncompressed as usize;
    let other = vec![b'x'; size];
    raw.replace_last_blob(zstd::bulk::compress(&other, 3).expect("compress"), size as u64, crc32fast::hash(&other));
    fs::write(out, raw.write(&vendor(kit), |_| {})).expect("write package");
    out.to_path_buf()
}

/// Everything that must not change: the live tree, the store (every blob byte for byte),
/// the installed packages, and a canary file outside the root.
#[derive(Debug, PartialEq)]
struct Watched {
    live: Tree,
    store: Tree,
    installed: Vec<String>,
    canary: Vec<u8>,
}

fn watched(root: &Path, canary: &Path) -> Watched {
    let store = tree(&root.join(".servicing/store"));
    Watched { live: tree(root), store, installed: installed_ids(root), canary: fs::read(canary).expect("the canary") }
}

/// A root at RTM (so that the store holds blobs) and a canary file beside it.
fn setup(kit: &Kit) -> (PathBuf, PathBuf) {
    let root = kit.root("root");
    hotfix(&root, [Path::new("install"), &kit.contoso("rtm")]).expect_code(0);
    let canary = kit.path().join("canary.txt");
    fs::write(&canary, "outside the root; nothing may touch it\n").expect("write canary");
    (root, canary)
}

/// Every file under `dir` whose name marks a temporary of the runtime or of an extraction.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return found };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".hotfix-tmp") || name.starts_with(".pkgtool-extract") {
            found.push(e.path());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(temporaries(&e.path()));
        }
    }
    found
}

#[test]
fn forged_signature_with_zstd_bomb_is_refused_before_anything_is_written() {
    let kit = Kit::new("forged_signature_with_zstd_bomb_is_refused_before_anything_is_written");
    let (root, canary) = setup(&kit);
    let genuine = kit.build(&hotfix_spec(&kit), "KB9");
    let forged = forge_bomb(&kit, &genuine, &kit.path().join("KB9-forged.pkg"));
    let before = watched(&root, &canary);

    let out = hotfix(&root, [Path::new("install"), &forged]);
    out.expect_code(6);
    assert!(out.stderr.contains("[bad-signature]") && out.stderr.contains("Nothing was written"), "{}", out.stderr);
    assert_eq!(watched(&root, &canary), before);
    assert_eq!(temporaries(&root), Vec::<PathBuf>::new());
    // The genuine package still installs: the refusal left nothing in the way.
    hotfix(&root, [Path::new("install"), &genuine]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB9"]);
}

#[test]
fn forged_signature_with_zstd_bomb_is_refused_by_pkgtool_extract_before_anything_is_written() {
    let kit = Kit::new("forged_signature_with_zstd_bomb_is_refused_by_pkgtool_extract_before_anything_is_written");
    let genuine = kit.build(&hotfix_spec(&kit), "KB9");
    let forged = forge_bomb(&kit, &genuine, &kit.path().join("KB9-forged.pkg"));
    let out_dir = kit.path().join("out");
    fs::create_dir(&out_dir).expect("mkdir");
    let canary = kit.path().join("canary.txt");
    fs::write(&canary, "outside the target\n").expect("write canary");

    // A target that does not exist is not created.
    let target = out_dir.join("x");
    let out = pkgtool(["extract", s(&forged), s(&target), "--trust", s(&kit.public)]);
    out.expect_code(6);
    assert!(out.stderr.contains("[bad-signature]"), "{}", out.stderr);
    assert_eq!(fs::read_dir(&out_dir).expect("out dir").count(), 0, "nothing is created beside the target");
    // An empty target is left empty.
    fs::create_dir(&target).expect("mkdir");
    pkgtool(["extract", s(&forged), s(&target), "--trust", s(&kit.public)]).expect_code(6);
    assert_eq!(fs::read_dir(&target).expect("target").count(), 0);
    assert_eq!(fs::read_dir(&out_dir).expect("out dir").count(), 1);
    assert_eq!(fs::read_to_string(&canary).expect("canary"), "outside the target\n");
    // verify and verify --deep say the same, at once.
    for deep in [&[][..], &["--deep"][..]] {
        let args = ["verify", s(&forged), "--trust", s(&kit.public)].into_iter().chain(deep.iter().copied());
        let out = pkgtool(args);
        out.expect_code(6);
        assert!(out.stderr.contains("[bad-signature]"), "{}", out.stderr);
    }
}

#[test]
fn forged_self_contained_installer_with_zstd_bomb_is_refused_before_anything_is_written() {
    let kit = Kit::new("forged_self_contained_installer_with_zstd_bomb_is_refused_before_anything_is_written");
    let (root, canary) = setup(&kit);
    let genuine = kit.installer(&hotfix_spec(&kit), "KB9");
    let forged = forge_bomb(&kit, &genuine, &kit.path().join("KB9-forged.run"));
    let before = watched(&root, &canary);

    let out = run_installer(&forged, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]);
    out.expect_code(6);
    assert!(out.stderr.contains("[bad-signature]"), "{}", out.stderr);
    assert_eq!(watched(&root, &canary), before);
    assert_eq!(temporaries(&root), Vec::<PathBuf>::new());
    // Its /extract: writes nothing either.
    let x = kit.path().join("x");
    let out = run_installer(
        &forged,
        &kit.config_dir(),
        [format!("/extract:{}", s(&x)), "--trust".into(), s(&kit.public).into()],
        &[],
    );
    out.expect_code(6);
    assert!(out.stderr.contains("[bad-signature]"), "{}", out.stderr);
    assert!(!x.exists());
    assert_eq!(temporaries(kit.path()), Vec::<PathBuf>::new());
    // The genuine installer installs.
    run_installer(&genuine, &kit.config_dir(), ["--root", s(&root), "/quiet"], &[]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB9"]);
}

#[test]
fn signed_package_with_a_broken_blob_passes_verify_and_is_refused_by_verify_deep_extract_and_install() {
    let kit = Kit::new("signed_package_with_a_broken_blob_passes_verify_and_is_refused_by_verify_deep");
    let (root, canary) = setup(&kit);
    let genuine = kit.build(&hotfix_spec(&kit), "KB9");
    let broken = broken_but_signed(&kit, &genuine, &kit.path().join("KB9-broken.pkg"));

    let out = pkgtool(["verify", s(&broken), "--trust", s(&kit.public)]);
    out.expect_code(0);
    assert!(out.stdout.contains("not decoded (--deep decodes them)"), "{}", out.stdout);
    let out = pkgtool(["verify", "--deep", s(&broken), "--trust", s(&kit.public)]);
    out.expect_code(6);
    assert!(out.stderr.contains("[hash-mismatch]"), "{}", out.stderr);
    let out = pkgtool(["verify", "--deep", s(&genuine), "--trust", s(&kit.public)]);
    out.expect_code(0);
    assert!(out.stdout.contains("1 blobs decoded and checked"), "{}", out.stdout);

    let target = kit.path().join("x");
    let out = pkgtool(["extract", s(&broken), s(&target), "--trust", s(&kit.public)]);
    out.expect_code(6);
    assert!(out.stderr.contains("[hash-mismatch]"), "{}", out.stderr);
    assert!(!target.exists());
    assert_eq!(temporaries(kit.path()), Vec::<PathBuf>::new());

    let before = watched(&root, &canary);
    let out = hotfix(&root, [Path::new("install"), &broken]);
    out.expect_code(6);
    assert!(out.stderr.contains("[hash-mismatch]"), "{}", out.stderr);
    assert_eq!(watched(&root, &canary), before);
    assert_eq!(temporaries(&root), Vec::<PathBuf>::new());
}

/// Keeps every content handed over, to compare with what the package carries.
#[derive(Default)]
struct Collect(HashMap<Digest, Vec<u8>>);

impl ContentSink for Collect {
    fn wants(&mut self, _: &Digest, _: u64) -> io::Result<bool> {
        Ok(true)
    }
    fn take(&mut self, digest: &Digest, _: u64, content: &mut dyn Read) -> io::Result<()> {
        let mut bytes = Vec::new();
        content.read_to_end(&mut bytes)?;
        self.0.insert(*digest, bytes);
        Ok(())
    }
}

fn trusted(kit: &Kit) -> Vec<TrustedKey> {
    vec![TrustedKey::load(&kit.public).expect("the kit's public key")]
}

#[test]
fn a_package_replaced_at_its_path_after_authentication_is_decoded_from_the_authenticated_file() {
    let kit = Kit::new("a_package_replaced_at_its_path_after_authentication_is_decoded_from_the_authenticated_file");
    let genuine = kit.build(&hotfix_spec(&kit), "KB9");
    let path = kit.path().join("KB9-copy.pkg");
    fs::copy(&genuine, &path).expect("copy");
    let limits = Limits::default();
    let verified = pkgtool::read::verify(&path, &trusted(&kit), &limits, &mut |_, _| {}).expect("authentic");

    // Another package (authentic too, but not this one) is renamed over the path.
    let other = kit.path().join("other.pkg");
    fs::write(&other, fs::read(kit.contoso("rtm")).expect("read rtm")).expect("write");
    fs::rename(&other, &path).expect("rename over");

    let mut got = Collect::default();
    verified.decode_into(&limits, &mut |_, _| {}, &mut got).expect("the authenticated file is still there to decode");
    let blob = &verified.manifest.blobs[0];
    let content = got.0.get(&blob.sha256).expect("the manifest's content");
    assert_eq!(Digest(Sha256::digest(content).into()), blob.sha256);
    assert_eq!(String::from_utf8_lossy(content), "contoso kernel RTM LDR KB9\n".repeat(64));
}

#[test]
fn a_package_rewritten_in_place_after_authentication_fails_its_decode_pass() {
    let kit = Kit::new("a_package_rewritten_in_place_after_authentication_fails_its_decode_pass");
    let genuine = kit.build(&hotfix_spec(&kit), "KB9");
    let path = kit.path().join("KB9-copy.pkg");
    fs::copy(&genuine, &path).expect("copy");
    let limits = Limits::default();
    let verified = pkgtool::read::verify(&path, &trusted(&kit), &limits, &mut |_, _| {}).expect("authentic");

    // The blob's stored bytes are overwritten in the same file: a frame of other content.
    let entry = &verified.archive.entries[1];
    let other = zstd::bulk::compress(&vec![b'x'; entry.uncompressed as usize], 3).expect("compress");
    assert!(other.len() as u64 <= entry.compressed, "the replacement fits the entry");
    let mut f = fs::OpenOptions::new().write(true).open(&path).expect("open for writing");
    f.seek(SeekFrom::Start(entry.data_offset())).expect("seek");
    f.write_all(&other).expect("write");
    drop(f);

    let mut got = Collect::default();
    match verified.decode_into(&limits, &mut |_, _| {}, &mut got) {
        Err(Error::Integrity { kind, .. }) => {
            assert!(["hash-mismatch", "bad-compressed-data", "size-mismatch"].contains(&kind.class()), "{kind}");
        }
        other => panic!("expected an integrity error, got {other:?}"),
    }
    // Whatever was handed over before the check failed is not the manifest's content.
    for (digest, bytes) in &got.0 {
        assert_ne!(Digest(Sha256::digest(bytes).into()), *digest, "a changed content passed as authentic");
    }
}

/// Records every content offered to it, before reading it.
#[derive(Default)]
struct Offered(Vec<Digest>);

impl ContentSink for Offered {
    fn wants(&mut self, _: &Digest, _: u64) -> io::Result<bool> {
        Ok(true)
    }
    fn take(&mut self, digest: &Digest, _: u64, content: &mut dyn Read) -> io::Result<()> {
        self.0.push(*digest);
        io::copy(content, &mut io::sink()).map(drop)
    }
}

#[test]
fn of_two_broken_blobs_the_earlier_is_reported_and_no_content_after_it_reaches_the_sink() {
    let kit = Kit::new("of_two_broken_blobs_the_earlier_is_reported_and_no_content_after_it_reaches_the_sink");
    // Four files too large to be packed: four blobs, which the decode pass decodes ahead
    // on its second thread.
    for (seed, name) in [(1u64, "a"), (2, "b"), (3, "c"), (4, "d")] {
        // Unlike each other, so that none is a delta against another.
        let mut x = seed;
        let body: String = (0..25_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                format!("{:012x}\n", x >> 16)
            })
            .collect();
        hotfix_tests::fixtures::write(kit.path(), &format!("KB9/rtm/bin/{name}.dll"), &body);
    }
    let genuine = kit.build(&kb9_spec(&kit, "Hotfix with four blobs"), "KB9");
    let mut raw = RawPackage::parse(&fs::read(&genuine).expect("read package"));
    let blobs = raw.manifest()["blobs"].clone();
    assert_eq!(blobs.as_array().map(Vec::len), Some(4), "{blobs}");
    // The second and third are broken; the fourth is whole.
    for at in [1, 2] {
        let other = vec![b'0' + at as u8; 1000];
        raw.replace_blob(at, zstd::bulk::compress(&other, 3).expect("compress"), 1000, crc32fast::hash(&other));
    }
    let broken = kit.path().join("KB9-broken.pkg");
    fs::write(&broken, raw.write(&vendor(&kit), |_| {})).expect("write package");

    let limits = Limits::default();
    let verified = pkgtool::read::verify(&broken, &trusted(&kit), &limits, &mut |_, _| {}).expect("authentic");
    let mut offered = Offered::default();
    match verified.decode_into(&limits, &mut |_, _| {}, &mut offered) {
        Err(e @ Error::Integrity { .. }) => {
            let second = blobs[1]["sha256"].as_str().expect("a hash");
            assert!(e.to_string().contains(second), "the second blob is reported: {e}");
            assert!(e.to_string().contains("[hash-mismatch]"), "{e}");
        }
        other => panic!("expected an integrity error, got {other:?}"),
    }
    // Only the first blob was offered to the sink: not the broken ones, and not the whole
    // one after them.
    assert_eq!(offered.0, [verified.manifest.blobs[0].sha256]);
}
