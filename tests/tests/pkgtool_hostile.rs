//! Hostile input to `pkgtool`: every single-bit change to a package is rejected, bad
//! public keys are refused, and a rejected package never leaves files behind.

use std::fs;
use std::path::Path;

use hotfix_schema::Limits;
use hotfix_tests::fixtures;
use hotfix_tests::run::pkgtool;
use pkgtool::{Error, TrustedKey};

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// SPKI PEM around 32 raw public-key bytes.
fn spki_pem(raw: [u8; 32]) -> String {
    use std::fmt::Write;
    let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    der.extend_from_slice(&raw);
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &x)| n | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b.push('=');
            }
        }
    }
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    let _ = writeln!(pem, "{b}");
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

#[test]
fn every_single_bit_flip_anywhere_in_a_package_is_rejected() {
    let t = tempfile::tempdir().unwrap();
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    let stub = fixtures::write(t.path(), "stub", "#!/bin/sh\nexit 0\n");
    let pkg = t.path().join("kb4.pkg");
    let opts = pkgtool::build::BuildOptions { stub: Some(stub), ..Default::default() };
    pkgtool::build::build(&spec, &pkgtool::keys::load_secret(&key).unwrap(), &pkg, &opts).unwrap();
    let trusted = [TrustedKey::load(&public).unwrap()];
    let limits = Limits::default();
    let original = fs::read(&pkg).unwrap();
    pkgtool::verify(&pkg, &trusted, &limits, &mut |_, _| {}).expect("the unmodified package verifies");

    let flipped = t.path().join("flipped.pkg");
    let mut accepted = Vec::new();
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 1 << (i % 8);
        fs::write(&flipped, &bytes).unwrap();
        match pkgtool::verify(&flipped, &trusted, &limits, &mut |_, _| {}) {
            Ok(_) => accepted.push(i),
            Err(Error::Integrity { .. }) => {}
            Err(other) => panic!("byte {i}: expected an integrity error, got {other}"),
        }
        // Every 37th position also goes through the binary: exit 6, a message naming the file.
        if i % 37 == 0 {
            let out = pkgtool(["verify", s(&flipped), "--trust", s(&public)]);
            out.expect_code(6);
            assert!(out.stderr.contains("flipped.pkg"), "{}", out.stderr);
        }
    }
    assert!(accepted.is_empty(), "bit flips accepted at byte offsets {accepted:?} of {}", original.len());
}

#[test]
fn a_weak_public_key_is_refused_with_exit_6() {
    let t = tempfile::tempdir().unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1; // the identity point: small order, verifies forged signatures
    let weak = fixtures::write(t.path(), "weak.pub", &spki_pem(identity));
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/vectors/valid_update.pkg");
    let out = pkgtool(["verify", s(&vectors), "--trust", s(&weak)]);
    out.expect_code(6);
    assert!(out.stderr.contains("weak.pub") && out.stderr.contains("weak public key"), "{}", out.stderr);
}

#[test]
fn a_malformed_public_key_is_refused_with_exit_6() {
    let t = tempfile::tempdir().unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/vectors/valid_update.pkg");
    for (name, text) in [
        ("empty.pub", String::new()),
        ("garbage.pub", "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n".to_string()),
        ("rsa.pub", "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END PUBLIC KEY-----\n".to_string()),
        ("secret-instead.pub", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\n-----END PRIVATE KEY-----\n".to_string()),
    ] {
        let key = fixtures::write(t.path(), name, &text);
        let out = pkgtool(["verify", s(&vectors), "--trust", s(&key)]);
        out.expect_code(6);
        assert!(out.stderr.contains(name), "{name}: {}", out.stderr);
    }
    let missing = t.path().join("missing.pub");
    let out = pkgtool(["verify", s(&vectors), "--trust", s(&missing)]);
    out.expect_code(1);
    assert!(out.stderr.contains("missing.pub"), "{}", out.stderr);
}

#[test]
fn extracting_any_hostile_vector_writes_nothing_anywhere() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/vectors");
    let key = dir.join("vectors.pub");
    for e in fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        let expect = fs::read_to_string(path.with_extension("expect")).unwrap_or_default();
        if path.extension().is_none_or(|x| x != "pkg") || expect.contains("verify --deep: ok") {
            continue;
        }
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("x");
        let out = pkgtool(["extract", s(&path), s(&target), "--trust", s(&key)]);
        out.expect_code(6);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "{}: something was written", path.display());
    }
}

#[test]
fn the_builder_refuses_a_manifest_over_the_limit_instead_of_writing_an_unreadable_package() {
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    let pkg = t.path().join("kb4.pkg");
    let limits = Limits { max_manifest_bytes: 1000, ..Limits::default() };
    let opts = pkgtool::build::BuildOptions { limits, ..Default::default() };
    let err = pkgtool::build::build(&spec, &pkgtool::keys::load_secret(&key).unwrap(), &pkg, &opts).unwrap_err();
    assert!(err.to_string().contains("over the format's 1000-byte limit"), "{err}");
    assert!(!pkg.exists());
}
