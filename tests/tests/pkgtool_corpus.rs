//! `pkgtool` on real security-update pairs from `../shared/corpus/debian-security-pairs`:
//! the older build as GDR, the newer as LDR of one update. The LDR builds are stored as
//! deltas against the GDR ones (bsdiff-zstd for libcrypto), and everything round-trips
//! byte for byte, through extraction's random access to delta blobs too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotfix_tests::fixtures;
use hotfix_tests::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn pair() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/debian-security-pairs");
    let old = dir.join("libssl3_3.0.20-1~deb12u2_amd64.deb");
    let new = dir.join("libssl3_3.0.22-1~deb12u2_amd64.deb");
    if old.exists() && new.exists() && Command::new("dpkg-deb").arg("--version").output().is_ok() {
        Some((old, new))
    } else {
        eprintln!("skipping: ../shared/corpus/debian-security-pairs or dpkg-deb is absent");
        None
    }
}

/// Unpacks a .deb into `dir` and removes symbolic links (packages carry regular files).
fn unpack(deb: &Path, dir: &Path) {
    assert!(Command::new("dpkg-deb").args(["-x", s(deb), s(dir)]).status().unwrap().success());
    assert!(Command::new("find").args([s(dir), "-type", "l", "-delete"]).status().unwrap().success());
}

#[test]
fn a_real_security_update_pair_is_stored_as_a_delta_and_round_trips() {
    let Some((old, new)) = pair() else { return };
    let t = tempfile::tempdir().unwrap();
    unpack(&old, &t.path().join("gdr"));
    unpack(&new, &t.path().join("ldr"));
    let spec = fixtures::write(
        t.path(),
        "libssl.toml",
        "[package]\nid = \"DSA-5000\"\nkind = \"update\"\nproduct = \"debian\"\ntitle = \"libssl3 security update\"\n\n\
         [[variant]]\ncomponent = \"libssl3\"\nbaseline = \"RTM\"\nbranch = \"gdr\"\nversion = \"3.0.20\"\nfixes = [\"CVE-1\"]\ndir = \"gdr\"\n\n\
         [[variant]]\ncomponent = \"libssl3\"\nbaseline = \"RTM\"\nbranch = \"ldr\"\nversion = \"3.0.22\"\nfixes = [\"CVE-1\", \"CVE-2\"]\ndir = \"ldr\"\n",
    );
    let (key, public, _) = fixtures::key_pair(t.path(), "vendor", 7);
    let pkg = t.path().join("libssl.pkg");
    pkgtool(["build", s(&spec), "--key", s(&key), "-o", s(&pkg)]).expect_code(0);
    pkgtool(["verify", s(&pkg), "--trust", s(&public)]).expect_code(0);

    // libcrypto's LDR build is a delta against its GDR build, a fraction of a plain frame.
    let out = pkgtool(["inspect", s(&pkg), "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ldr_crypto = j["manifest"]["variants"][1]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("libcrypto.so.3"))
        .unwrap()["sha256"]
        .clone();
    let blob = j["manifest"]["blobs"].as_array().unwrap().iter().find(|b| b["sha256"] == ldr_crypto).unwrap().clone();
    let encoding = blob["encoding"].as_str().unwrap();
    let deltas =
        ["bsdiff-zstd", "bsdiff-x86-zstd", "bsdiff-elf-zstd", "bsdiff-elf2-zstd", "bsdiff-elf3-zstd", "zstd-delta"];
    assert!(deltas.contains(&encoding), "{blob}");
    let mut zip = zip::ZipArchive::new(fs::File::open(&pkg).unwrap()).unwrap();
    let stored = zip.by_name(&format!("blobs/{}", ldr_crypto.as_str().unwrap())).unwrap().compressed_size();
    // zstd --patch-from makes 421 KB of it, bsdiff with bzip2 204 KB.
    assert!(stored < 300_000, "libcrypto delta is {stored} bytes");

    let x = t.path().join("x");
    pkgtool(["extract", s(&pkg), s(&x), "--trust", s(&public)]).expect_code(0);
    for (branch, tree) in [("gdr", "gdr"), ("ldr", "ldr")] {
        let diff = Command::new("diff")
            .args(["-r", s(&t.path().join(tree)), s(&x.join("RTM").join(branch).join("libssl3"))])
            .output()
            .unwrap();
        assert!(diff.status.success(), "{branch}: {}", String::from_utf8_lossy(&diff.stdout));
    }
}

/// libcrypto 3.0.20 → 3.0.22: matched a second time against the reference as translated
/// (its call and jump operands already saying what the new build's say), the
/// `bsdiff-elf2-zstd` entry is far smaller than the first match's (135 → 83 KB when
/// written), and it still decodes to the new build byte for byte; `bsdiff-elf3-zstd`,
/// which the writer takes, is smaller again.
#[test]
fn a_second_match_against_the_translated_reference_shrinks_a_real_elf_patch() {
    use pkgtool::bsdelta::{decode_elf2, decode_elf3, encode_best, encode_elf2_matched};
    let Some((old, new)) = pair() else { return };
    let t = tempfile::tempdir().unwrap();
    unpack(&old, &t.path().join("gdr"));
    unpack(&new, &t.path().join("ldr"));
    let lib = "usr/lib/x86_64-linux-gnu/libcrypto.so.3";
    let (old, new) =
        (fs::read(t.path().join("gdr").join(lib)).unwrap(), fs::read(t.path().join("ldr").join(lib)).unwrap());
    let once = encode_elf2_matched(&old, &[], &new, 19, false).unwrap().expect("an ELF reference");
    let again = encode_elf2_matched(&old, &[], &new, 19, true).unwrap().expect("an ELF reference");
    assert!(again.len() * 4 < once.len() * 3, "matched again {} once {}", again.len(), once.len());
    assert_eq!(decode_elf2(&old, &[], &again, new.len() as u64, 27).unwrap(), new);
    assert_eq!(decode_elf2(&old, &[], &once, new.len() as u64, 27).unwrap(), new);
    // Learned targets and absolute branches in the extra bytes: smaller still.
    let (encoding, best) = encode_best(&old, &[], &new, 19, true).unwrap();
    assert_eq!(encoding, hotfix_schema::Encoding::BsdiffElf3Zstd);
    assert!(best.len() * 20 < again.len() * 19, "elf3 {} elf2 {}", best.len(), again.len());
    assert_eq!(decode_elf3(&old, &[], &best, new.len() as u64, 27).unwrap(), new);
}
