//! `pkgtool` through its binary: keys, build, verify, inspect, extract, and the format's
//! promises that show on disk (deduplication, zip compatibility, reproducibility).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hotfix_tests::fixtures;
use hotfix_tests::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Nothing of pkgtool's temporary files or directories is left in `dir`.
fn assert_no_temporaries(dir: &Path) {
    let leftovers: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".pkgtool"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A key pair and the small update built with it, in `dir`.
fn built_update(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, public, _) = fixtures::key_pair(dir, "vendor", 7);
    let spec = fixtures::small_update(dir);
    let pkg = dir.join("kb4.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    (pkg, public)
}

#[test]
fn keygen_writes_a_0600_secret_key_and_a_public_key_and_shows_the_key_id() {
    let t = tempfile::tempdir().unwrap();
    let name = t.path().join("vendor");
    let out = pkgtool(["keygen", s(&name)]);
    out.expect_code(0);
    let secret = fs::metadata(t.path().join("vendor.key")).unwrap();
    assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    let public = fs::read_to_string(t.path().join("vendor.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    let key = pkgtool::TrustedKey::load(&t.path().join("vendor.pub")).unwrap();
    assert!(out.stdout.contains(&format!("key id {}", key.id_hex())), "{}", out.stdout);
}

#[test]
fn keygen_refuses_to_overwrite_an_existing_key() {
    let t = tempfile::tempdir().unwrap();
    let name = t.path().join("vendor");
    pkgtool(["keygen", s(&name)]).expect_code(0);
    let before = fs::read(t.path().join("vendor.key")).unwrap();
    let out = pkgtool(["keygen", s(&name)]);
    out.expect_code(1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert_eq!(fs::read(t.path().join("vendor.key")).unwrap(), before);
}

#[test]
fn keys_made_by_openssl_genpkey_sign_and_verify() {
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("o.key");
    let public = t.path().join("o.pub");
    let made =
        std::process::Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out", s(&key)]).status();
    if !made.is_ok_and(|st| st.success()) {
        eprintln!("skipping: openssl is not available");
        return;
    }
    assert!(
        std::process::Command::new("openssl")
            .args(["pkey", "-in", s(&key), "-pubout", "-out", s(&public)])
            .status()
            .unwrap()
            .success()
    );
    let spec = fixtures::small_update(t.path());
    let pkg = t.path().join("o.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    pkgtool(["verify", s(&pkg), "--trust", s(&public)]).expect_code(0);
}

#[test]
fn build_verify_inspect_extract_round_trip_writes_every_variant_on_disk() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, public) = built_update(t.path());
    let v = pkgtool(["verify", s(&pkg), "--trust", s(&public)]);
    v.expect_code(0);
    assert!(v.stdout.contains("OK"), "{}", v.stdout);

    let out = t.path().join("x");
    pkgtool(["extract", s(&pkg), s(&out), "--trust", s(&public)]).expect_code(0);
    for (branch, src) in [("gdr", "p/gdr"), ("ldr", "p/ldr")] {
        for rel in ["bin/kernel.dll", "etc/kernel.conf"] {
            let got = fs::read(out.join("RTM").join(branch).join("kernel").join(rel)).unwrap();
            assert_eq!(got, fs::read(t.path().join(src).join(rel)).unwrap(), "{branch}/{rel}");
            let mode =
                fs::metadata(out.join("RTM").join(branch).join("kernel").join(rel)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
    assert_no_temporaries(t.path());
}

#[test]
fn executable_modes_survive_build_and_extract() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    let tool = t.path().join("p/ldr/bin/tool.sh");
    fs::write(&tool, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let pkg = t.path().join("kb4.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    let out = t.path().join("x");
    pkgtool(["extract", s(&pkg), s(&out), "--trust", s(&public)]).expect_code(0);
    let mode = fs::metadata(out.join("RTM/ldr/kernel/bin/tool.sh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn identical_contents_are_stored_once() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _) = built_update(t.path());
    let m = hotfix_schema::Manifest::from_json(&manifest_json(&pkg), &hotfix_schema::Limits::default()).unwrap();
    // Four files, three distinct contents (the configuration file is shared), each held
    // once: by a blob of its own or as a pack member.
    let held: Vec<_> = m.blobs.iter().flat_map(|b| b.contents()).map(|c| c.0).collect();
    assert_eq!(held.len(), 3, "{held:?}");
    assert_eq!(m.content_index().len(), 3);
    let mut zip = zip::ZipArchive::new(fs::File::open(&pkg).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len()).map(|i| zip.by_index_raw(i).unwrap().name().unwrap().to_string()).collect();
    assert_eq!(names.len(), m.blobs.len() + 1, "{names:?}");
    assert_eq!(names[0], "manifest.json");
    assert!(names[1..].iter().all(|n| n.starts_with("blobs/")));
}

fn manifest_json(pkg: &Path) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(fs::File::open(pkg).unwrap()).unwrap();
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("manifest.json").unwrap(), &mut json).unwrap();
    json
}

/// Forty small similar "modules" (as libc's gconv modules are), and their next builds
/// with one line changed in each.
fn small_modules(dir: &Path) {
    for i in 0..40 {
        let body: String =
            (0..300).map(|l| format!("module {i:02} table row {l} maps {} to {}\n", l * 7, l * 13)).collect();
        fs::create_dir_all(dir.join("p/gdr/lib/gconv")).unwrap();
        fs::create_dir_all(dir.join("p/ldr/lib/gconv")).unwrap();
        fs::write(dir.join(format!("p/gdr/lib/gconv/M{i:02}.so")), &body).unwrap();
        fs::write(dir.join(format!("p/ldr/lib/gconv/M{i:02}.so")), body.replace("row 5 ", "row five ")).unwrap();
    }
}

#[test]
fn small_first_builds_are_packed_and_their_next_builds_are_one_delta_against_the_pack() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    small_modules(t.path());
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let (packed, unpacked) = (t.path().join("packed.pkg"), t.path().join("unpacked.pkg"));
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&packed)]).expect_code(0);
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&unpacked), "--no-pack"]).expect_code(0);
    let m = hotfix_schema::Manifest::from_json(&manifest_json(&packed), &hotfix_schema::Limits::default()).unwrap();
    let packs: Vec<_> = m.blobs.iter().filter(|b| b.is_pack()).collect();
    // The gdr files are first builds: the two of prose in one pack, the forty modules
    // (tables, by their digits) in another. Their ldr builds follow: the modules' as one
    // pack that is a delta against theirs; the kernel's alone, as a blob.
    assert_eq!(packs.len(), 3, "{:?}", m.blobs);
    let sizes: Vec<usize> = packs.iter().map(|p| p.members.len()).collect();
    assert_eq!(sizes, [2, 40, 40], "{:?}", m.blobs);
    assert_eq!(packs[2].reference, Some(packs[1].sha256), "{:?}", packs[2]);
    let (a, b) = (fs::metadata(&packed).unwrap().len(), fs::metadata(&unpacked).unwrap().len());
    assert!(a * 2 < b, "packed {a} bytes, unpacked {b}");
    pkgtool(["verify", s(&packed), "--trust", s(&public)]).expect_code(0);
    let shown = pkgtool(["inspect", s(&packed)]);
    assert!(
        shown.stdout.contains(&format!(
            "{} distinct contents in {} blobs (3 packs)",
            m.content_index().len(),
            m.blobs.len()
        )),
        "{}",
        shown.stdout
    );
    let x = t.path().join("x");
    pkgtool(["extract", s(&packed), s(&x), "--trust", s(&public)]).expect_code(0);
    for branch in ["gdr", "ldr"] {
        for i in [0, 17, 39] {
            let name = format!("lib/gconv/M{i:02}.so");
            let want = fs::read(t.path().join(format!("p/{branch}/{name}"))).unwrap();
            assert!(fs::read(x.join(format!("RTM/{branch}/kernel/{name}"))).unwrap() == want, "{branch} {name}");
        }
    }
}

#[test]
fn packages_are_read_by_ordinary_zip_tools() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _) = built_update(t.path());
    // The zip crate lists every entry and reads the (deflated) manifest.
    let mut zip = zip::ZipArchive::new(fs::File::open(&pkg).unwrap()).unwrap();
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("manifest.json").unwrap(), &mut manifest).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(m["package"]["id"], "KB4");
    assert!(String::from_utf8_lossy(zip.comment()).starts_with("HFXSIG/1 ed25519-sha256 key="));
    // Info-ZIP, when installed, lists it without complaint.
    match std::process::Command::new("unzip").args(["-l", s(&pkg)]).output() {
        Ok(out) => {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains("manifest.json"));
        }
        Err(_) => eprintln!("unzip not installed; listed with the zip crate only"),
    }
}

#[test]
fn build_is_byte_for_byte_reproducible_and_honours_source_date_epoch() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _) = built_update(t.path());
    let key = t.path().join("vendor.key");
    let spec = t.path().join("kb4.toml");
    let again = t.path().join("again.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&again)]).expect_code(0);
    assert!(fs::read(&pkg).unwrap() == fs::read(&again).unwrap(), "two builds differ");

    let dated = |name: &str| {
        let out = t.path().join(name);
        let st = std::process::Command::new(hotfix_tests::run::bin("pkgtool"))
            .args(["build", s(&spec), "--key", s(&key), "-o", s(&out), "-q"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .status()
            .unwrap();
        assert!(st.success());
        fs::read(out).unwrap()
    };
    let (a, b) = (dated("a.pkg"), dated("b.pkg"));
    assert!(a == b, "builds with the same SOURCE_DATE_EPOCH differ");
    assert!(a != fs::read(&pkg).unwrap(), "SOURCE_DATE_EPOCH did not reach the timestamps");
    let zip = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
    let when = zip.clone().by_index_raw(0).unwrap().last_modified().unwrap();
    assert_eq!((when.year(), when.month(), when.day()), (2023, 11, 14));
}

#[test]
fn inspect_says_not_verified_without_a_key_and_verified_with_one() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, public) = built_update(t.path());
    let plain = pkgtool(["inspect", s(&pkg)]);
    plain.expect_code(0);
    assert!(plain.stdout.contains("NOT verified"), "{}", plain.stdout);
    for needle in
        ["KB4 (update, release)", "baselines  RTM", "components kernel", "KB1, KB2, KB3, KB4", "5.2.3790.1004"]
    {
        assert!(plain.stdout.contains(needle), "missing {needle:?} in\n{}", plain.stdout);
    }
    let checked = pkgtool(["inspect", s(&pkg), "--trust", s(&public)]);
    checked.expect_code(0);
    assert!(checked.stdout.contains("(verified)"), "{}", checked.stdout);
}

#[test]
fn inspect_json_has_the_documented_shape() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, public) = built_update(t.path());
    let out = pkgtool(["inspect", s(&pkg), "--json", "--trust", s(&public)]);
    out.expect_code(0);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["verification"], "verified");
    assert_eq!(j["signer_key_id"].as_str().unwrap().len(), 16);
    assert_eq!(j["stub_size"], 0);
    assert_eq!(j["components"], serde_json::json!(["kernel"]));
    assert_eq!(j["manifest"]["package"]["kind"], "update");
    assert_eq!(j["manifest"]["variants"][1]["branch"], "ldr");
    assert_eq!(j["variant_sizes"].as_array().unwrap().len(), 2);
}

#[test]
fn verify_accepts_any_of_several_trusted_keys_and_prints_json() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, public) = built_update(t.path());
    let (_, other, _) = fixtures::key_pair(t.path(), "other", 9);
    let out = pkgtool(["verify", s(&pkg), "--trust", s(&other), "--trust", s(&public), "--json"]);
    out.expect_code(0);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["verified"], true);
    assert_eq!(j["id"], "KB4");
}

#[test]
fn untrusted_signer_is_refused_with_exit_6_naming_both_keys() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, _) = built_update(t.path());
    let (_, other, _) = fixtures::key_pair(t.path(), "other", 9);
    let out = pkgtool(["verify", s(&pkg), "--trust", s(&other)]);
    out.expect_code(6);
    assert!(out.stderr.contains("not trusted") && out.stderr.contains("other.pub"), "{}", out.stderr);
}

#[test]
fn extract_refuses_a_non_empty_target_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, public) = built_update(t.path());
    let target = t.path().join("busy");
    fixtures::write(&target, "mine.txt", "keep me");
    let out = pkgtool(["extract", s(&pkg), s(&target), "--trust", s(&public)]);
    out.expect_code(1);
    assert!(out.stderr.contains("not empty"), "{}", out.stderr);
    let left: Vec<_> = fs::read_dir(&target).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("mine.txt")]);
}

#[test]
fn extract_of_a_tampered_package_leaves_no_target_and_no_temporary_directory() {
    let t = tempfile::tempdir().unwrap();
    let (pkg, public) = built_update(t.path());
    let mut bytes = fs::read(&pkg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&pkg, bytes).unwrap();
    let target = t.path().join("x");
    pkgtool(["extract", s(&pkg), s(&target), "--trust", s(&public)]).expect_code(6);
    assert!(!target.exists());
    assert_no_temporaries(t.path());
}

#[test]
fn a_failed_build_leaves_no_output_and_no_temporary_files() {
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    fs::write(&spec, fs::read_to_string(&spec).unwrap().replace("dir = \"p/ldr\"", "dir = \"p/missing\"")).unwrap();
    let out_dir = t.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let pkg = out_dir.join("kb4.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(1);
    assert_eq!(fs::read_dir(&out_dir).unwrap().count(), 0);
}

#[test]
fn a_bad_secret_key_is_an_error_that_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    let key = fixtures::write(t.path(), "bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let out = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&t.path().join("x.pkg"))]);
    out.expect_code(1);
    assert!(out.stderr.contains("bad.key"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    pkgtool(["build"]).expect_code(2);
    pkgtool(["verify", "x.pkg"]).expect_code(2);
    pkgtool(["frobnicate"]).expect_code(2);
}

#[test]
fn a_stub_that_is_not_an_executable_is_refused_and_nothing_is_built() {
    let t = tempfile::tempdir().unwrap();
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let spec = fixtures::small_update(t.path());
    let stub = fixtures::write(t.path(), "notes.txt", "not a program");
    let out = t.path().join("kb4.run");
    let r = pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&out), "--stub", s(&stub)]);
    r.expect_code(1);
    assert!(r.stderr.contains("notes.txt") && r.stderr.contains("not an executable"), "{}", r.stderr);
    assert!(!out.exists());
}

/// A 320 KiB "executable" (too large to be packed) and its next build, where every 16th
/// byte (an address) moved by one: exact-match deltas break at every address, bsdiff's
/// byte-wise differences do not.
fn shifted_builds() -> (Vec<u8>, Vec<u8>) {
    let mut x = 7u32;
    let old: Vec<u8> = (0..320 << 10)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8 & 0x3f
        })
        .collect();
    let new = old.iter().enumerate().map(|(i, b)| if i % 16 == 0 { b.wrapping_add(1) } else { *b }).collect();
    (old, new)
}

#[test]
fn a_bsdiff_delta_blob_verifies_and_extracts_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    let (old, new) = shifted_builds();
    fs::write(t.path().join("p/gdr/bin/core.so"), &old).unwrap();
    fs::write(t.path().join("p/ldr/bin/core.so"), &new).unwrap();
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let pkg = t.path().join("kb4.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    let out = pkgtool(["inspect", s(&pkg), "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let encodings: Vec<&str> =
        j["manifest"]["blobs"].as_array().unwrap().iter().map(|b| b["encoding"].as_str().unwrap()).collect();
    assert!(encodings.contains(&"bsdiff-zstd"), "{encodings:?}");
    pkgtool(["verify", s(&pkg), "--trust", s(&public)]).expect_code(0);
    let x = t.path().join("x");
    pkgtool(["extract", s(&pkg), s(&x), "--trust", s(&public)]).expect_code(0);
    assert!(fs::read(x.join("RTM/ldr/kernel/bin/core.so")).unwrap() == new, "LDR build differs after extraction");
    assert!(fs::read(x.join("RTM/gdr/kernel/bin/core.so")).unwrap() == old, "GDR build differs after extraction");
}

/// Builds `spec` through the binary, checks that its blobs use `encoding`, and extracts
/// it: every file of both branches must come out as its source's bytes.
fn built_with_encoding_extracts_byte_for_byte(dir: &Path, spec: &Path, sources: &str, component: &str, encoding: &str) {
    let (key, public, _) = fixtures::key_pair(dir, "vendor", 7);
    for (pack, name) in [(true, "packed.pkg"), (false, "unpacked.pkg")] {
        let pkg = dir.join(name);
        let mut args = vec!["build", s(spec), "--key", s(&key), "-o", s(&pkg)];
        if !pack {
            args.push("--no-pack");
        }
        pkgtool(args).expect_code(0);
        let out = pkgtool(["inspect", s(&pkg), "--json"]);
        let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let encodings: Vec<&str> =
            j["manifest"]["blobs"].as_array().unwrap().iter().map(|b| b["encoding"].as_str().unwrap()).collect();
        assert!(encodings.iter().any(|e| e.contains(encoding)), "{name}: {encodings:?}");
        pkgtool(["verify", s(&pkg), "--deep", "--trust", s(&public)]).expect_code(0);
        let x = dir.join(format!("x-{name}"));
        pkgtool(["extract", s(&pkg), s(&x), "--trust", s(&public)]).expect_code(0);
        for branch in ["gdr", "ldr"] {
            let from = dir.join(sources).join(branch);
            for entry in walk(&from) {
                let rel = entry.strip_prefix(&from).unwrap();
                let got = fs::read(x.join("RTM").join(branch).join(component).join(rel)).unwrap();
                assert!(
                    got == fs::read(&entry).unwrap(),
                    "{name}: {branch}/{} differs after extraction",
                    rel.display()
                );
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn an_executable_whose_code_moved_is_a_bsdiff_x86_delta_and_extracts_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::x86_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "x86", "app", "bsdiff-x86-zstd");
}

#[test]
fn a_shared_library_whose_code_moved_is_a_bsdiff_elf_delta_and_extracts_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::elf_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "x86", "app", "bsdiff-elf-zstd");
}

#[test]
fn an_executable_whose_jumps_moved_is_a_bsdiff_elf2_delta_and_extracts_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::elf2_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "x86", "app", "bsdiff-elf2-zstd");
}

/// An executable whose called functions were rewritten where no move places them: the
/// first call to each says where it went, the others are predicted from it
/// (`bsdiff-elf3-zstd`), and it extracts byte for byte.
#[test]
fn an_executable_whose_called_functions_were_rewritten_is_a_bsdiff_elf3_delta_and_extracts_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::elf3_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "x86", "app", "bsdiff-elf3-zstd");
}

/// Four shared objects packed: the LDR pack is one bsdiff-elf2-zstd delta against the
/// GDR pack, each member translated on its own; and it extracts byte for byte, packed
/// or not.
#[test]
fn a_pack_of_shared_objects_whose_jumps_moved_is_a_bsdiff_elf2_delta_and_extracts_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    fixtures::modules(t.path(), fixtures::elf2_program);
    let spec = fixtures::x86_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "x86", "app", "bsdiff-elf2-zstd");
    let out = pkgtool(["inspect", s(&t.path().join("packed.pkg")), "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let packs = fixtures::pack_encodings(&j["manifest"]);
    assert_eq!(packs.len(), 2, "{packs:?}");
    assert_eq!(packs[1], "bsdiff-elf2-zstd", "{packs:?}");
}

#[test]
fn certificates_stored_decoded_extract_to_their_exact_bytes() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::pem_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "pem", "certs", "-gz");
    // Packed, every certificate is a level-64 record of the pack's entry.
    let raw = hotfix_tests::craft::RawPackage::parse(&fs::read(t.path().join("packed.pkg")).unwrap());
    let m = raw.manifest();
    let (i, pack) =
        m["blobs"].as_array().unwrap().iter().enumerate().find(|(_, b)| b.get("members").is_some()).unwrap();
    let members = pack["members"].as_array().unwrap().len();
    let (records, _) = pkgtool::gz::parse_entry(&raw.entries[i + 1].data, members).unwrap();
    assert_eq!(records.len(), members, "{pack}");
    assert!(records.iter().all(|r| r.level == pkgtool::gz::PEM), "{records:?}");
}

#[test]
fn gzip_files_stored_inflated_extract_to_their_exact_bytes() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::gz_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "gz", "kerneldoc", "-gz");
}

#[test]
fn text_is_ppmd_packed_and_alone_extracts_byte_for_byte_and_fast_decode_avoids_it() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::text_update(t.path());
    built_with_encoding_extracts_byte_for_byte(t.path(), &spec, "text", "kernelmods", "ppmd");
    // Packed, the small modules and the manual page are one pack, PPMd with the page
    // inflated (ppmd-gz); the manual is a PPMd blob of its own.
    let m =
        hotfix_schema::Manifest::from_json(&manifest_json(&t.path().join("packed.pkg")), &Default::default()).unwrap();
    use hotfix_schema::Encoding::{Ppmd, PpmdGz};
    assert!(m.blobs.iter().any(|b| b.encoding == PpmdGz && b.members.len() == 5), "{:?}", m.blobs);
    assert!(m.blobs.iter().any(|b| b.encoding == Ppmd && !b.is_pack() && b.size > 256 << 10), "{:?}", m.blobs);
    let (key, _, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let fast = t.path().join("fast.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&fast), "--fast-decode"]).expect_code(0);
    let m = hotfix_schema::Manifest::from_json(&manifest_json(&fast), &Default::default()).unwrap();
    assert!(m.blobs.iter().all(|b| !matches!(b.encoding, Ppmd | PpmdGz)), "--fast-decode: {:?}", m.blobs);

    // One byte of a PPMd entry changed and the package signed again: authentic but broken.
    a_damaged_entry_is_refused_when_decoded(t.path(), &t.path().join("packed.pkg"), pkgtool::zipfmt::METHOD_PPMD);
    assert_no_temporaries(t.path());
}

/// Changes one byte in the middle of the first entry of `method` in the package at `pkg`
/// (signed by the fixture key "vendor" 7 in `dir`) and signs it again: verify accepts it,
/// verify --deep and extract refuse it with exit 6, and extract writes nothing.
fn a_damaged_entry_is_refused_when_decoded(dir: &Path, pkg: &Path, method: u16) {
    let (_, public, secret) = fixtures::key_pair(dir, "vendor", 7);
    let mut raw = hotfix_tests::craft::RawPackage::parse(&fs::read(pkg).unwrap());
    let at = raw.entries.iter().position(|e| e.method == method).expect("an entry of the method");
    let mid = raw.entries[at].data.len() / 2;
    raw.entries[at].data[mid] ^= 0x20;
    let bad = dir.join("bad.pkg");
    fs::write(&bad, raw.write(&secret, |_| {})).unwrap();
    pkgtool(["verify", s(&bad), "--trust", s(&public)]).expect_code(0);
    let out = pkgtool(["verify", "--deep", s(&bad), "--trust", s(&public)]);
    out.expect_code(6);
    assert!(
        ["[bad-compressed-data]", "[hash-mismatch]", "[size-mismatch]"].iter().any(|c| out.stderr.contains(c)),
        "{}",
        out.stderr
    );
    let x = dir.join("x-bad");
    pkgtool(["extract", s(&bad), s(&x), "--trust", s(&public)]).expect_code(6);
    assert!(!x.exists());
}

/// The levels of every `-gz` record of the package at `pkg`.
fn gz_levels(pkg: &Path) -> Vec<u8> {
    let raw = hotfix_tests::craft::RawPackage::parse(&fs::read(pkg).unwrap());
    let m = raw.manifest();
    let mut levels = Vec::new();
    for (i, b) in m["blobs"].as_array().unwrap().iter().enumerate() {
        if b["encoding"].as_str().unwrap().ends_with("-gz") {
            let members = b["members"].as_array().map_or(1, Vec::len);
            let (records, _) = pkgtool::gz::parse_entry(&raw.entries[i + 1].data, members).unwrap();
            levels.extend(records.iter().map(|r| r.level));
        }
    }
    levels
}

#[test]
fn a_self_contained_installer_never_needs_preflate_which_its_stub_lacks() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::gz_update(t.path());
    let (_, _, key) = fixtures::key_pair(t.path(), "vendor", 7);
    let stub = fixtures::write(t.path(), "stub.sh", "#!/bin/sh\nexit 0\n");
    let build = |stub: Option<&Path>, out: &str| {
        let out = t.path().join(out);
        let opts = pkgtool::build::BuildOptions { stub: stub.map(Path::to_path_buf), ..Default::default() };
        pkgtool::build::build(&spec, &key, &out, &opts).unwrap();
        out
    };
    // A package: NEWS.gz (another deflate's) is rebuilt by preflate, level 0.
    assert!(gz_levels(&build(None, "kb8.pkg")).contains(&0));
    // An installer: never level 0; NEWS.gz is left as it is.
    let levels = gz_levels(&build(Some(&stub), "kb8.run"));
    assert!(!levels.is_empty() && !levels.contains(&0), "{levels:?}");
}

#[test]
fn a_self_contained_installer_never_holds_ppmd_which_its_stub_lacks() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::text_update(t.path());
    let (_, _, key) = fixtures::key_pair(t.path(), "vendor", 7);
    let stub = fixtures::write(t.path(), "stub.sh", "#!/bin/sh\nexit 0\n");
    let methods = |stub: Option<&Path>, out: &str| {
        let out = t.path().join(out);
        let opts = pkgtool::build::BuildOptions { stub: stub.map(Path::to_path_buf), ..Default::default() };
        pkgtool::build::build(&spec, &key, &out, &opts).unwrap();
        hotfix_tests::craft::RawPackage::parse(&fs::read(&out).unwrap())
            .entries
            .iter()
            .map(|e| e.method)
            .collect::<Vec<_>>()
    };
    assert!(methods(None, "kb9.pkg").contains(&pkgtool::zipfmt::METHOD_PPMD));
    let installer = methods(Some(&stub), "kb9.run");
    assert!(!installer.contains(&pkgtool::zipfmt::METHOD_PPMD), "{installer:?}");
}

#[test]
fn the_package_is_the_same_whatever_the_number_of_compression_threads() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    small_modules(t.path());
    let (_, _, key) = fixtures::key_pair(t.path(), "vendor", 7);
    let with = |threads: usize, pack: bool| {
        let out = t.path().join(format!("t{threads}-{pack}.pkg"));
        let opts = pkgtool::build::BuildOptions { threads, pack, ..Default::default() };
        pkgtool::build::build(&spec, &key, &out, &opts).unwrap();
        fs::read(out).unwrap()
    };
    for pack in [false, true] {
        let one = with(1, pack);
        assert!(with(2, pack) == one && with(5, pack) == one, "pack={pack}: output depends on the thread count");
    }
}

#[test]
fn lzma_is_used_only_where_it_shrinks_the_whole_package_by_two_percent() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    // Text that LZMA compresses well beyond Zstandard.
    let text: String =
        (0..4000).map(|i| format!("entry {i} = {} ; checksum {}\n", i * 7919 % 1000, i * 31 % 977)).collect();
    fs::create_dir_all(t.path().join("p/gdr/share")).unwrap();
    fs::write(t.path().join("p/gdr/share/table.txt"), &text).unwrap();
    let (_, _, key) = fixtures::key_pair(t.path(), "vendor", 7);
    let encodings = |name: &str| {
        let out = t.path().join(name);
        pkgtool::build::build(&spec, &key, &out, &Default::default()).unwrap();
        let m = hotfix_schema::Manifest::from_json(&manifest_json(&out), &hotfix_schema::Limits::default()).unwrap();
        m.blobs.iter().map(|b| b.encoding).collect::<Vec<_>>()
    };
    let is_lzma =
        |e: &hotfix_schema::Encoding| matches!(e, hotfix_schema::Encoding::Lzma | hotfix_schema::Encoding::LzmaX86);
    assert!(encodings("text.pkg").iter().any(is_lzma), "LZMA pays on the text alone");
    // Next to 4 MiB that nothing compresses, the same saving is under 2% of the package.
    let mut x = 1u64;
    let noise: Vec<u8> = (0..4 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(t.path().join("p/gdr/share/noise.bin"), noise).unwrap();
    assert!(!encodings("noise.pkg").iter().any(is_lzma), "LZMA kept for a saving under 2%");
}

#[test]
fn an_lzma_blob_extracts_byte_for_byte_fast_decode_avoids_it_and_a_damaged_one_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let spec = fixtures::small_update(t.path());
    // Over 256 KiB, so a blob of its own (not packed) that nothing references: the kind
    // verify decodes on its second thread.
    let text: String =
        (0..12000).map(|i| format!("entry {i} = {} ; checksum {}\n", i * 7919 % 1000, i * 31 % 977)).collect();
    assert!(text.len() > 256 << 10);
    fs::create_dir_all(t.path().join("p/gdr/share")).unwrap();
    fs::write(t.path().join("p/gdr/share/table.txt"), &text).unwrap();
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let encodings = |pkg: &Path| {
        let m = hotfix_schema::Manifest::from_json(&manifest_json(pkg), &hotfix_schema::Limits::default()).unwrap();
        m.blobs.iter().map(|b| b.encoding).collect::<Vec<_>>()
    };
    let is_lzma =
        |e: &hotfix_schema::Encoding| matches!(e, hotfix_schema::Encoding::Lzma | hotfix_schema::Encoding::LzmaX86);

    let (pkg, fast) = (t.path().join("kb4.pkg"), t.path().join("kb4-fast.pkg"));
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&fast), "--fast-decode"]).expect_code(0);
    let m = hotfix_schema::Manifest::from_json(&manifest_json(&pkg), &hotfix_schema::Limits::default()).unwrap();
    assert!(
        m.blobs.iter().any(|b| is_lzma(&b.encoding) && !b.is_pack() && b.size == text.len() as u64),
        "{:?}",
        m.blobs
    );
    assert!(!encodings(&fast).iter().any(is_lzma), "--fast-decode: {:?}", encodings(&fast));
    for p in [&pkg, &fast] {
        pkgtool(["verify", s(p), "--trust", s(&public)]).expect_code(0);
        let x = t.path().join(format!("x-{}", p.file_stem().unwrap().to_string_lossy()));
        pkgtool(["extract", s(p), s(&x), "--trust", s(&public)]).expect_code(0);
        assert!(fs::read_to_string(x.join("RTM/gdr/kernel/share/table.txt")).unwrap() == text);
    }

    // One byte of the LZMA entry changed and the package signed again: authentic but
    // broken. verify (the authentication pass) accepts it; verify --deep (which decodes
    // such a blob on its second thread) and extract refuse it; nothing is written.
    a_damaged_entry_is_refused_when_decoded(t.path(), &pkg, pkgtool::zipfmt::METHOD_LZMA);
    assert_no_temporaries(t.path());
}
