//! The whole package reader: the input, re-signed with the test key, is written to a
//! file and verified. Properties: no panic; an accepted package verifies again to the same
//! manifest and structure; it extracts, and extraction writes only regular files and
//! directories inside its target, as many files and bytes as it reports.
#![no_main]

use std::fs;
use std::path::Path;

use hotfix_schema::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    hotfix_fuzz::resign(&mut bytes);
    let Ok(scratch) = tempfile::tempdir() else { return };
    let pkg = scratch.path().join("input.pkg");
    if fs::write(&pkg, &bytes).is_err() {
        return;
    }
    let trusted = [hotfix_fuzz::trusted_key()];
    let limits = Limits::default();
    let Ok(first) = pkgtool::verify(&pkg, &trusted, &limits, &mut |_, _| {}) else { return };
    let second = pkgtool::verify(&pkg, &trusted, &limits, &mut |_, _| {});
    let second = second.unwrap_or_else(|e| panic!("an accepted package no longer verifies: {e}"));
    assert_eq!(first.manifest, second.manifest, "two verifications disagree on the manifest");
    assert_eq!(first.archive.entries, second.archive.entries, "two verifications disagree on the entries");
    assert_eq!(first.archive.cd_bytes, second.archive.cd_bytes);
    assert_eq!(first.signer.id, second.signer.id);

    let jail = scratch.path().join("jail");
    if fs::create_dir(&jail).is_err() {
        return;
    }
    let target = jail.join("out");
    let report = pkgtool::extract::extract(&pkg, &target, &trusted, &limits, &mut |_, _| {});
    // An authentic package may still be broken (a signed blob that does not decode to its
    // manifest hash, FORMAT.md §8): extraction then refuses it as an integrity failure
    // and leaves nothing behind.
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e.exit_code(), 6, "a verified package fails to extract other than by integrity: {e}");
            assert!(names(&jail).is_empty(), "a refused extraction left something in the jail");
            return;
        }
    };

    // Nothing but the input and the jail at the top; nothing but the target in the jail.
    let mut top: Vec<_> = names(scratch.path());
    top.sort();
    assert_eq!(top, ["input.pkg", "jail"], "extraction wrote beside its target");
    assert_eq!(names(&jail), ["out"], "extraction left something beside its target");
    let (files, bytes) = walk(&target);
    assert_eq!((files, bytes), (report.files, report.bytes), "extraction reports other than it wrote");
});

fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Counts regular files and their bytes under `dir`; anything else is a finding.
fn walk(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let Ok(it) = fs::read_dir(dir) else { return (0, 0) };
    for e in it.filter_map(|e| e.ok()) {
        let meta = fs::symlink_metadata(e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        if meta.is_dir() {
            let (f, b) = walk(&e.path());
            files += f;
            bytes += b;
        } else if meta.is_file() {
            files += 1;
            bytes += meta.len();
        } else {
            panic!("extraction made {} of type {:?}", e.path().display(), meta.file_type());
        }
    }
    (files, bytes)
}
