//! Test vectors (`schema/vectors/`): every run regenerates them and compares them byte for
//! byte with the committed files — which pins the generator, the builder's output and its
//! reproducibility — then runs each through `pkgtool verify`, `pkgtool verify --deep` and
//! `pkgtool extract` and checks the two verdicts its `.expect` file names (extract has the
//! deep one, and writes nothing when it refuses). `UPDATE_VECTORS=1` rewrites the
//! committed files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use hotfix_tests::craft::{RawPackage, forge, patch_all};
use hotfix_tests::fixtures;
use hotfix_tests::run::pkgtool;
use pkgtool::build::{BuildOptions, build, resign};
use pkgtool::zipfmt::METHOD_ZSTD;

/// A vector: its bytes, the verdict of `verify` (the authentication pass), the verdict of
/// `verify --deep` (every blob decoded too), and what it is.
struct Vector {
    bytes: Vec<u8>,
    verify: &'static str,
    deep: &'static str,
    what: &'static str,
}

impl Vector {
    /// The `.expect` file: both verdicts, then the description.
    fn expect_text(&self) -> String {
        format!("verify: {}\nverify --deep: {}\n# {}\n", self.verify, self.deep, self.what)
    }
}

/// The two verdicts an `.expect` file names.
fn parse_expect(text: &str) -> Option<(&str, &str)> {
    let mut lines = text.lines();
    let verify = lines.next()?.strip_prefix("verify: ")?.trim();
    let deep = lines.next()?.strip_prefix("verify --deep: ")?.trim();
    Some((verify, deep))
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/vectors")
}

/// Builds `spec` with `key` into memory; without packs unless `pack`, so that most
/// vectors keep one blob per content.
fn built(spec: &Path, key: &SigningKey, stub: Option<&Path>) -> Vec<u8> {
    built_with(spec, key, stub, false)
}

fn built_with(spec: &Path, key: &SigningKey, stub: Option<&Path>, pack: bool) -> Vec<u8> {
    let out = spec.with_extension(if pack { "packed.pkg" } else { "pkg" });
    let opts = BuildOptions { stub: stub.map(Path::to_path_buf), pack, ..Default::default() };
    build(spec, key, &out, &opts).expect("fixture builds");
    fs::read(out).expect("read package")
}

/// Every vector by name.
fn generate() -> BTreeMap<String, Vector> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (_, _, key) = fixtures::key_pair(dir, "vectors", 1);
    let (_, _, other) = fixtures::key_pair(dir, "other", 2);
    let update = built(&fixtures::small_update(dir), &key, None);
    let baseline = built(&fixtures::small_baseline(dir), &key, None);
    let stub =
        fixtures::write(dir, "stub.sh", &format!("#!/bin/sh\necho 'installer stub'\nexit 0\n{}\n", "#".repeat(200)));
    let stubbed = built(&dir.join("kb4.toml"), &key, Some(&stub));
    let untrusted = built(&dir.join("kb4.toml"), &other, None);

    let mut v: BTreeMap<String, Vector> = BTreeMap::new();
    // One verdict for both: authentication already finds the defect (or none).
    macro_rules! add {
        ($name:expr, $bytes:expr, $expect:expr, $what:expr $(,)?) => {
            v.insert($name.to_string(), Vector { bytes: $bytes, verify: $expect, deep: $expect, what: $what })
        };
    }
    // Authentic but broken: correctly signed, so `verify` accepts it; decoding a blob finds
    // the defect, so `verify --deep`, extract and install refuse it.
    macro_rules! deep_only {
        ($name:expr, $bytes:expr, $deep:expr, $what:expr $(,)?) => {
            v.insert($name.to_string(), Vector { bytes: $bytes, verify: "ok", deep: $deep, what: $what })
        };
    }
    let raw = RawPackage::parse(&update);
    let blob = |i: usize| raw.entries[i].clone();

    add!("valid_update", update.clone(), "ok", "an update: one component, gdr and ldr, one shared file");
    add!("valid_baseline", baseline.clone(), "ok", "a baseline package (RTM)");
    add!("valid_with_stub", stubbed.clone(), "ok", "an update preceded by an installer stub");

    // Signature and signer.
    let mut b = stubbed.clone();
    b[20] ^= 0x01;
    add!("signature_stub_bit_flipped", b, "bad-signature", "one bit of the stub flipped: covered by the signature");
    let mut b = update.clone();
    let n = b.len();
    b[n - 1] = if b[n - 1] == b'0' { b'1' } else { b'0' };
    add!("signature_digit_changed", b, "bad-signature", "the last hex digit of the signature changed");
    add!("signature_untrusted_key", untrusted, "untrusted-key", "signed by a key that is not trusted");
    add!(
        "signature_unknown_algorithm",
        patch_all(&update, b"ed25519-sha256", b"ed25519-sha512", &key),
        "unknown-signature-algorithm",
        "the signature block names an algorithm this reader does not know",
    );

    // The attack authentication comes first for: the vendor's key id, a signature by
    // another key, and one small zstd frame that decodes to 256 MiB (which the forged
    // manifest declares). A reader that decoded before checking the signature would
    // produce 256 MiB and then report a hash mismatch; this one reads 9 KB and stops.
    add!(
        "signature_forged_zstd_bomb",
        forged_bomb(&raw, &key, &other),
        "bad-signature",
        "the vendor's key id, signed by another key; one blob is a 9 KB zstd frame of 256 MiB of zeros",
    );

    // File-level damage.
    add!("file_truncated", update[..update.len() - 40].to_vec(), "truncated", "the last 40 bytes cut off");
    let mut b = update.clone();
    b.extend_from_slice(b"appended");
    add!("file_trailing_bytes", b, "truncated", "bytes appended after the signature");

    // Entries.
    let mut r = raw.clone();
    let content = b"not part of the package";
    r.entries.push(hotfix_tests::craft::RawEntry {
        name: format!("blobs/{}", hotfix_schema::Digest(sha(content)).to_hex()).into_bytes(),
        method: 0,
        crc32: crc32fast::hash(content),
        uncompressed: content.len() as u32,
        data: content.to_vec(),
        external_attrs: 0o100_644 << 16,
    });
    add!(
        "entry_not_in_manifest",
        r.write(&key, |_| {}),
        "entry-not-in-manifest",
        "a signed extra blob the manifest does not list",
    );
    let mut r = raw.clone();
    let mut e = blob(1);
    e.name = b"evil.txt".to_vec();
    r.entries.push(e);
    add!("entry_unknown_name", r.write(&key, |_| {}), "entry-not-in-manifest", "a signed extra entry evil.txt");
    let mut r = raw.clone();
    r.entries.pop();
    add!("entry_missing", r.write(&key, |_| {}), "entry-missing", "a blob the manifest lists is not in the archive");
    let mut r = raw.clone();
    r.entries.push(blob(1));
    add!("entry_duplicate_name", r.write(&key, |_| {}), "duplicate-entry", "the same blob entry twice");
    add!(
        "entry_overlapping",
        raw.write(&key, |cd| cd[2].offset = cd[1].offset),
        "overlapping-entries",
        "two directory records point at the same local entry",
    );
    add!(
        "entry_gap",
        raw.write(&key, |cd| cd[1].compressed -= 1),
        "unaccounted-bytes",
        "an entry's stored size one byte short: a byte belongs to no entry",
    );
    for (name, bad, what) in [
        ("entry_name_dotdot", b"blobs/../../etc/passwd".to_vec(), "an entry name with '..'"),
        ("entry_name_absolute", b"/etc/passwd".to_vec(), "an absolute entry name"),
        ("entry_name_backslash", b"blobs\\..\\evil".to_vec(), "an entry name with backslashes"),
        ("entry_name_nul", b"blobs/a\0b".to_vec(), "an entry name with a NUL byte"),
    ] {
        let mut r = raw.clone();
        r.entries[1].name = bad;
        add!(name, r.write(&key, |_| {}), "bad-entry-name", what);
    }
    let mut r = raw.clone();
    r.entries[1].external_attrs = 0o120_777 << 16;
    add!("entry_symlink", r.write(&key, |_| {}), "symlink-entry", "a blob entry marked as a symbolic link");
    let mut b = raw.write(&key, |_| {});
    let at = raw.prefix.len() + 30 + raw.entries[0].name.len() + raw.entries[0].data.len() + 10;
    b[at] ^= 0x01;
    resign(&mut b, &key);
    add!("entry_local_header_mismatch", b, "malformed-archive", "a local header that disagrees with the directory");

    // Blob content: the first blob as a Zstandard frame, whatever the encoder chose for it.
    let as_zstd = |r: &mut RawPackage| {
        let mut m = r.manifest();
        m["blobs"][0]["encoding"] = "zstd".into();
        r.set_manifest(&m);
        r.entries[1].method = pkgtool::zipfmt::METHOD_ZSTD;
    };
    let mut r = raw.clone();
    as_zstd(&mut r);
    let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 19).expect("compress");
    r.entries[1].data = bomb;
    deep_only!(
        "blob_decompression_bomb",
        r.write(&key, |_| {}),
        "size-mismatch",
        "a blob that decodes to 1 MiB while a few hundred bytes are declared",
    );
    let mut r = raw.clone();
    as_zstd(&mut r);
    let size = r.entries[1].uncompressed as usize;
    let other_content = vec![b'x'; size];
    r.entries[1].data = zstd::bulk::compress(&other_content, 19).expect("compress");
    r.entries[1].crc32 = crc32fast::hash(&other_content);
    deep_only!(
        "blob_hash_mismatch",
        r.write(&key, |_| {}),
        "hash-mismatch",
        "a blob whose content is not the one its name and the manifest declare",
    );

    // Delta references.
    let m = raw.manifest();
    let delta = m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .position(|b| b["encoding"] == "zstd-delta")
        .expect("the fixture has a delta blob");
    let with_blob = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m = m.clone();
        f(&mut m["blobs"][delta]);
        let mut r = raw.clone();
        r.set_manifest(&m);
        r.write(&key, |_| {})
    };
    add!(
        "delta_reference_not_a_blob",
        with_blob(&|b| b["reference"] = "ab".repeat(32).into()),
        "invalid-manifest",
        "a delta blob whose reference is not in the package",
    );
    add!(
        "delta_reference_to_itself",
        with_blob(&|b| b["reference"] = b["sha256"].clone()),
        "invalid-manifest",
        "a delta blob that references itself (references must be earlier blobs)",
    );
    add!(
        "delta_without_reference",
        with_blob(&|b| {
            b.as_object_mut().unwrap().remove("reference");
        }),
        "invalid-manifest",
        "a zstd-delta blob with no reference",
    );

    // The manifest.
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut m = m.clone();
        f(&mut m);
        let mut r = raw.clone();
        r.set_manifest(&m);
        r.write(&key, |_| {})
    };
    for (name, path) in [
        ("manifest_path_dotdot", "../../etc/passwd"),
        ("manifest_path_absolute", "/etc/passwd"),
        ("manifest_path_backslash", "bin\\..\\..\\evil.dll"),
        ("manifest_path_nul", "bin/kernel\u{0}.dll"),
        ("manifest_path_servicing", ".servicing/inventory.db"),
    ] {
        add!(
            name,
            with(&|m| m["variants"][0]["files"][0]["path"] = path.into()),
            "malformed-manifest",
            "a file path that would leave the root or touch the runtime's state",
        );
    }
    add!(
        "manifest_format_version_2",
        with(&|m| m["format_version"] = 2.into()),
        "unknown-format-version",
        "format_version 2",
    );
    add!(
        "manifest_hotfix_with_gdr",
        with(&|m| m["package"]["kind"] = "hotfix".into()),
        "invalid-manifest",
        "a hotfix that carries a gdr variant",
    );
    add!(
        "manifest_file_and_directory",
        with(&|m| m["variants"][0]["files"][1]["path"] = "bin/kernel.dll/kernel.conf".into()),
        "file-and-directory",
        "one variant with both bin/kernel.dll and bin/kernel.dll/kernel.conf: a root cannot hold both",
    );
    add!(
        "manifest_mode_setuid",
        with(&|m| m["variants"][0]["files"][0]["mode"] = "4755".into()),
        "malformed-manifest",
        "a setuid mode",
    );
    // Packs and LZMA entries.
    let packed = built_with(&dir.join("kb4.toml"), &key, None, true);
    add!(
        "valid_update_packed",
        packed.clone(),
        "ok",
        "the update with its gdr files in one pack and a delta against a member",
    );
    let praw = RawPackage::parse(&packed);
    let pm = praw.manifest();
    let pack_at = pm["blobs"].as_array().unwrap().iter().position(|b| b.get("members").is_some()).expect("a pack");
    let member = pm["blobs"][pack_at]["members"][0]["sha256"].as_str().unwrap().to_string();
    let json = serde_json::to_string(&pm).unwrap().replace(&member, &"cd".repeat(32));
    let mut r = praw.clone();
    r.set_manifest_bytes(json.as_bytes());
    deep_only!(
        "pack_member_hash_mismatch",
        r.write(&key, |_| {}),
        "hash-mismatch",
        "a pack member (and every use of it) renamed: the pack is intact, the member's hash is not the declared one",
    );
    let mut m2 = pm.clone();
    let size = m2["blobs"][pack_at]["members"][0]["size"].as_u64().unwrap();
    m2["blobs"][pack_at]["members"][0]["size"] = (size + 1).into();
    let mut r = praw.clone();
    r.set_manifest(&m2);
    add!(
        "pack_member_sizes_wrong",
        r.write(&key, |_| {}),
        "invalid-manifest",
        "a pack whose members' sizes do not add up to its size",
    );
    let pack_content = fs::read(dir.join("p/gdr/bin/kernel.dll"))
        .and_then(|a| fs::read(dir.join("p/gdr/etc/kernel.conf")).map(|b| [a, b].concat()))
        .expect("pack members");
    assert_eq!(
        sha(&pack_content),
        hotfix_schema::Digest::from_hex(pm["blobs"][pack_at]["sha256"].as_str().unwrap()).unwrap().0
    );
    let as_lzma = |x86: bool, dict: Option<u32>| {
        let mut data = pkgtool::lzma::encode(&pack_content, x86).expect("lzma");
        if let Some(d) = dict {
            data[5..9].copy_from_slice(&d.to_le_bytes());
        }
        let mut m = pm.clone();
        m["blobs"][pack_at]["encoding"] = (if x86 { "lzma-x86" } else { "lzma" }).into();
        let mut r = praw.clone();
        r.set_manifest(&m);
        r.entries[pack_at + 1].method = pkgtool::zipfmt::METHOD_LZMA;
        r.entries[pack_at + 1].data = data;
        r.write(&key, |_| {})
    };
    add!("valid_lzma_blob", as_lzma(false, None), "ok", "the pack as an lzma entry (zip method 14)");
    add!(
        "valid_lzma_x86_blob",
        as_lzma(true, None),
        "ok",
        "the pack as an lzma-x86 entry (x86 branch filter, then LZMA)",
    );
    deep_only!(
        "blob_lzma_dictionary_too_large",
        as_lzma(false, Some(1 << 28)),
        "bad-compressed-data",
        "an lzma entry asking for a 256 MiB dictionary (limit 2^27 bytes)",
    );

    let as_ppmd = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut data = pkgtool::ppmd::encode(&pack_content, 27).expect("ppmd");
        edit(&mut data);
        let mut m = pm.clone();
        m["blobs"][pack_at]["encoding"] = "ppmd".into();
        let mut r = praw.clone();
        r.set_manifest(&m);
        r.entries[pack_at + 1].method = pkgtool::zipfmt::METHOD_PPMD;
        r.entries[pack_at + 1].data = data;
        r.write(&key, |_| {})
    };
    add!("valid_ppmd_blob", as_ppmd(&|_| {}), "ok", "the pack as a ppmd entry (zip method 98, PPMd variant I)");
    deep_only!(
        "blob_ppmd_memory_too_large",
        as_ppmd(&|d| d[..2].copy_from_slice(&pkgtool::ppmd::header(16, 256))),
        "bad-compressed-data",
        "a ppmd entry asking for 256 MiB of model (limit 2^27 bytes), refused before it is allocated",
    );
    deep_only!(
        "blob_ppmd_order_one",
        as_ppmd(&|d| d[0] &= 0xf0),
        "bad-compressed-data",
        "a ppmd entry whose header asks for a model of order 1",
    );
    deep_only!(
        "blob_ppmd_without_end_marker",
        as_ppmd(&|d| d.truncate(d.len() - 4)),
        "bad-compressed-data",
        "a ppmd entry cut before its end marker",
    );

    // An executable's LDR build as `bsdiff-x86-zstd` against its GDR build; and the same
    // entry labelled `bsdiff-zstd`, which a reader that skipped the translation would
    // apply: authentic, and the wrong content.
    let x86 = built(&fixtures::x86_update(dir), &key, None);
    let xraw = RawPackage::parse(&x86);
    let xm = xraw.manifest();
    let at = xm["blobs"].as_array().unwrap().iter().position(|b| b["encoding"] == "bsdiff-x86-zstd");
    let at = at.expect("the LDR build of an x86 program is encoded as bsdiff-x86-zstd");
    add!("valid_bsdiff_x86_blob", x86.clone(), "ok", "an x86-64 program's LDR build as a bsdiff-x86-zstd delta");
    let mut relabelled = xm.clone();
    relabelled["blobs"][at]["encoding"] = "bsdiff-zstd".into();
    let mut r = xraw.clone();
    r.set_manifest(&relabelled);
    deep_only!(
        "blob_bsdiff_x86_as_plain_bsdiff",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a bsdiff-x86-zstd entry labelled bsdiff-zstd: applied without translating the reference, it is other bytes (CRC-32 differs)",
    );

    // A shared library's LDR build as `bsdiff-elf-zstd`; and the same entry labelled
    // `bsdiff-x86-zstd`: authentic, and the wrong content.
    let edir = dir.join("elf");
    let elf = built(&fixtures::elf_update(&edir), &key, None);
    let eraw = RawPackage::parse(&elf);
    let em = eraw.manifest();
    let at = em["blobs"].as_array().unwrap().iter().position(|b| b["encoding"] == "bsdiff-elf-zstd");
    let at = at.expect("the LDR build of a shared library is encoded as bsdiff-elf-zstd");
    add!(
        "valid_bsdiff_elf_blob",
        elf.clone(),
        "ok",
        "a shared library's LDR build as a bsdiff-elf-zstd delta (its unwind tables and symbols translated)",
    );
    let mut relabelled = em.clone();
    relabelled["blobs"][at]["encoding"] = "bsdiff-x86-zstd".into();
    let mut r = eraw.clone();
    r.set_manifest(&relabelled);
    deep_only!(
        "blob_bsdiff_elf_as_x86",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a bsdiff-elf-zstd entry labelled bsdiff-x86-zstd: applied without translating the ELF tables, it is other bytes",
    );

    // An executable's LDR build as `bsdiff-elf2-zstd`; and the same entry labelled
    // `bsdiff-elf-zstd`: authentic, and the wrong content.
    let e2dir = dir.join("elf2");
    let elf2 = built(&fixtures::elf2_update(&e2dir), &key, None);
    let e2raw = RawPackage::parse(&elf2);
    let e2m = e2raw.manifest();
    let at = e2m["blobs"].as_array().unwrap().iter().position(|b| b["encoding"] == "bsdiff-elf2-zstd");
    let at = at.expect("the LDR build of an executable with conditional jumps is encoded as bsdiff-elf2-zstd");
    add!(
        "valid_bsdiff_elf2_blob",
        elf2.clone(),
        "ok",
        "an executable's LDR build as a bsdiff-elf2-zstd delta (its jumps, calls and tables translated as ELF, the extra bytes against the reference)",
    );
    let mut relabelled = e2m.clone();
    relabelled["blobs"][at]["encoding"] = "bsdiff-elf-zstd".into();
    let mut r = e2raw.clone();
    r.set_manifest(&relabelled);
    deep_only!(
        "blob_bsdiff_elf2_as_elf",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a bsdiff-elf2-zstd entry labelled bsdiff-elf-zstd: its extra frame needs the reference as prefix, and its conditional jumps are not translated",
    );

    // An executable whose called functions were rewritten, its LDR build as
    // `bsdiff-elf3-zstd`; and the same entry labelled `bsdiff-elf2-zstd`: authentic, and
    // the wrong content (no learned targets, the extra bytes' operands left absolute).
    let e3dir = dir.join("elf3");
    let elf3 = built(&fixtures::elf3_update(&e3dir), &key, None);
    let e3raw = RawPackage::parse(&elf3);
    let e3m = e3raw.manifest();
    let at = e3m["blobs"].as_array().unwrap().iter().position(|b| b["encoding"] == "bsdiff-elf3-zstd");
    let at = at.expect("the LDR build of an executable whose called functions moved unseen is bsdiff-elf3-zstd");
    add!(
        "valid_bsdiff_elf3_blob",
        elf3.clone(),
        "ok",
        "an executable's LDR build as a bsdiff-elf3-zstd delta (calls predicted from the first decoded call to the same function, the extra bytes' operands absolute)",
    );
    let mut relabelled = e3m.clone();
    relabelled["blobs"][at]["encoding"] = "bsdiff-elf2-zstd".into();
    let mut r = e3raw.clone();
    r.set_manifest(&relabelled);
    deep_only!(
        "blob_bsdiff_elf3_as_elf2",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a bsdiff-elf3-zstd entry labelled bsdiff-elf2-zstd: without the learned targets and with the extra bytes' operands absolute, it is other bytes",
    );

    // Gzip files stored inflated: one blob each, and packed; then an entry whose record
    // names another deflate level (the member deflates to another length) and one whose
    // record claims a 2 GiB expansion (over the window limit).
    let gz_spec = fixtures::gz_update(dir);
    let gz = built(&gz_spec, &key, None);
    let gzraw = RawPackage::parse(&gz);
    let gzm = gzraw.manifest();
    let encodings: Vec<&str> =
        gzm["blobs"].as_array().unwrap().iter().map(|b| b["encoding"].as_str().unwrap()).collect();
    assert!(encodings.contains(&"zstd-delta-gz"), "{encodings:?}");
    add!(
        "valid_gz_blobs",
        gz.clone(),
        "ok",
        "gzip files stored inflated (zlib level 9, and preflate for another deflate's): zstd-gz or lzma-gz, and zstd-delta-gz",
    );
    let gz_packed = built_with(&gz_spec, &key, None, true);
    let packed_encodings: Vec<String> = RawPackage::parse(&gz_packed).manifest()["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["encoding"].as_str().unwrap().to_string())
        .collect();
    assert!(packed_encodings.iter().any(|e| e.ends_with("-gz")), "{packed_encodings:?}");
    add!("valid_gz_pack", gz_packed.clone(), "ok", "packs whose gzip members are stored inflated");
    // The lzma-gz pack with its inner entry made PPMd: ppmd-gz.
    let mut r = RawPackage::parse(&gz_packed);
    let mut m = r.manifest();
    let at = packed_encodings.iter().position(|e| e == "lzma-gz").expect("an lzma-gz pack");
    let members = m["blobs"][at]["members"].as_array().unwrap().len();
    let (records, frame) = pkgtool::gz::parse_entry(&r.entries[at + 1].data, members).unwrap();
    let mut expanded = Vec::new();
    std::io::Read::read_to_end(&mut pkgtool::lzma::decoder(frame, false, 27).unwrap().unwrap(), &mut expanded).unwrap();
    let ppmd_entry = pkgtool::gz::entry(&records, &pkgtool::ppmd::encode(&expanded, 27).unwrap());
    m["blobs"][at]["encoding"] = "ppmd-gz".into();
    r.set_manifest(&m);
    r.entries[at + 1].method = pkgtool::zipfmt::METHOD_PPMD;
    r.entries[at + 1].data = ppmd_entry;
    add!(
        "valid_ppmd_gz_pack",
        r.write(&key, |_| {}),
        "ok",
        "a pack of gzip files stored inflated, PPMd inside (ppmd-gz)"
    );
    r.entries[at + 1].data.extend_from_slice(b"tail");
    deep_only!(
        "blob_ppmd_gz_bytes_after_stream",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a ppmd-gz entry with bytes after the PPMd stream's end marker",
    );
    let at = (0..encodings.len())
        .find(|&i| encodings[i] == "zstd-delta-gz" && gzraw.entries[i + 1].data[20] == 9)
        .expect("a zstd-delta-gz blob whose first member zlib reproduces at level 9");
    let mut r = gzraw.clone();
    r.entries[at + 1].data[20] = 1;
    deep_only!(
        "blob_gz_level_changed",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a zstd-delta-gz record naming deflate level 1: the member deflates to another length than declared",
    );
    // The record of the member preflate rebuilds, its level changed to 9: correction data
    // with a zlib level is a malformed record.
    let preflated = encodings.iter().enumerate().find_map(|(i, e)| {
        let data = &gzraw.entries[i + 1].data;
        let n = e.ends_with("-gz").then(|| u32::from_le_bytes(data[..4].try_into().unwrap()) as usize)?;
        (0..n).map(|k| 4 + k * 17 + 16).find(|&at| data[at] == 0).map(|at| (i, at))
    });
    let (pi, level_at) = preflated.expect("a member rebuilt by preflate");
    let mut r = gzraw.clone();
    r.entries[pi + 1].data[level_at] = 9;
    deep_only!(
        "blob_gz_corrections_with_zlib_level",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a -gz record with preflate correction data and deflate level 9 (correction data goes with level 0 only)",
    );
    let mut r = gzraw.clone();
    r.entries[at + 1].data[12..16].copy_from_slice(&(1u32 << 31).to_le_bytes());
    deep_only!(
        "blob_gz_expansion_too_large",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a zstd-delta-gz record claiming 2 GiB of inflated content (over the 2^27-byte window limit)",
    );

    // Certificates stored decoded (level-64 records); one record relabelled a gzip level.
    let pem = built_with(&fixtures::pem_update(dir), &key, None, true);
    let praw = RawPackage::parse(&pem);
    let pm = praw.manifest();
    let at = pm["blobs"].as_array().unwrap().iter().position(|b| b["encoding"].as_str().unwrap().ends_with("-gz"));
    let at = at.expect("the certificates' pack is a -gz entry");
    assert_eq!(praw.entries[at + 1].data[4 + 16], pkgtool::gz::PEM, "its first record is a PEM one");
    add!("valid_pem_pack", pem.clone(), "ok", "a pack of PEM certificates stored decoded (-gz records of level 64)");
    let mut r = praw.clone();
    r.entries[at + 1].data[4 + 16] = 9;
    deep_only!(
        "blob_pem_record_as_gzip",
        r.write(&key, |_| {}),
        "bad-compressed-data",
        "a PEM record relabelled deflate level 9: the member deflates to another length than declared",
    );

    let mut r = raw.clone();
    r.set_manifest_bytes(b"this is not json");
    add!("manifest_not_json", r.write(&key, |_| {}), "malformed-manifest", "a manifest that is not JSON");
    let mut r = raw.clone();
    let mut big = serde_json::to_vec(&m).expect("json");
    big.truncate(big.len() - 1);
    big.extend(std::iter::repeat_n(b' ', 65 << 20));
    big.push(b'}');
    r.set_manifest_bytes(&big);
    add!(
        "manifest_too_large",
        r.write(&key, |_| {}),
        "manifest-too-large",
        "a 65 MiB manifest (limit 64 MiB), deflated to 64 KB",
    );
    // A Zstandard manifest (method 93): what pkgtool writes when it is 10% smaller than
    // deflate. Its frame must decode to exactly the declared size, within a window no
    // larger than the manifest.
    let json = serde_json::to_vec(&raw.manifest()).expect("json");
    let zstd_frame = |data: &[u8], window_log: Option<u32>| {
        let mut e = zstd::stream::Encoder::new(Vec::new(), 19).expect("zstd");
        if let Some(w) = window_log {
            e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(w)).expect("window");
            e.include_contentsize(false).expect("no content size");
        } else {
            e.set_pledged_src_size(Some(data.len() as u64)).expect("pledge");
        }
        e.write_all(data).expect("zstd");
        e.finish().expect("zstd")
    };
    let mut r = raw.clone();
    r.set_manifest_entry(METHOD_ZSTD, zstd_frame(&json, None), &json);
    add!("valid_manifest_zstd", r.write(&key, |_| {}), "ok", "the update with its manifest as one Zstandard frame");
    let mut longer = json.clone();
    longer.push(b' ');
    let mut r = raw.clone();
    r.set_manifest_entry(METHOD_ZSTD, zstd_frame(&longer, None), &json);
    add!(
        "manifest_zstd_longer_than_declared",
        r.write(&key, |_| {}),
        "malformed-manifest",
        "a Zstandard manifest that decodes to one byte more than the directory declares",
    );
    let mut r = raw.clone();
    r.set_manifest_entry(METHOD_ZSTD, zstd_frame(&json, Some(27)), &json);
    add!(
        "manifest_zstd_window_too_large",
        r.write(&key, |_| {}),
        "malformed-manifest",
        "a 2 KB Zstandard manifest whose frame asks for a 128 MiB window (a manifest's window is at most its size)",
    );
    v
}

/// Decoded size of the forged bomb blob.
const BOMB: u64 = 256 << 20;

/// `raw` with its last blob replaced by one zstd frame of [`BOMB`] zero bytes that the
/// manifest declares, written with the key id of `vendor` and signed by `forger`.
fn forged_bomb(raw: &RawPackage, vendor: &SigningKey, forger: &SigningKey) -> Vec<u8> {
    let zeros = vec![0u8; BOMB as usize];
    let mut r = raw.clone();
    r.replace_last_blob(zstd::bulk::compress(&zeros, 3).expect("compress"), BOMB, crc32fast::hash(&zeros));
    let mut b = r.write(vendor, |_| {});
    forge(&mut b, forger);
    b
}

fn sha(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[test]
fn committed_vectors_match_the_generator_byte_for_byte() {
    let dir = vectors_dir();
    let vectors = generate();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, public, _) = fixtures::key_pair(tmp.path(), "vectors", 1);
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "pkg" || x == "expect") {
                fs::remove_file(e.path()).expect("remove old vector");
            }
        }
        fs::create_dir_all(&dir).expect("vectors dir");
        fs::copy(&public, dir.join("vectors.pub")).expect("write key");
        for (name, v) in &vectors {
            fs::write(dir.join(format!("{name}.pkg")), &v.bytes).expect("write vector");
            fs::write(dir.join(format!("{name}.expect")), v.expect_text()).expect("write expect");
        }
    }
    assert_eq!(
        fs::read(dir.join("vectors.pub")).ok(),
        fs::read(&public).ok(),
        "vectors.pub differs; run with UPDATE_VECTORS=1"
    );
    let committed: Vec<String> = fs::read_dir(&dir)
        .expect("schema/vectors exists")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".pkg")).map(String::from))
        .collect();
    let mut committed_sorted = committed.clone();
    committed_sorted.sort();
    let generated: Vec<String> = vectors.keys().cloned().collect();
    assert_eq!(committed_sorted, generated, "the set of vectors changed; run with UPDATE_VECTORS=1 and commit");
    for (name, v) in &vectors {
        let on_disk = fs::read(dir.join(format!("{name}.pkg"))).expect("vector");
        assert!(on_disk == v.bytes, "{name}.pkg differs from what the generator makes now (not reproducible?)");
        let exp = fs::read_to_string(dir.join(format!("{name}.expect"))).expect("expect file");
        assert_eq!(exp, v.expect_text(), "{name}.expect differs; run with UPDATE_VECTORS=1");
    }
}

/// Checks that `out` is `expect`: exit 0 for `ok`, otherwise exit 6 naming the class and the file.
#[track_caller]
fn assert_verdict(out: &hotfix_tests::run::Outcome, expect: &str, path: &Path, what: &str) {
    if expect == "ok" {
        assert_eq!(out.code, 0, "{} ({what}): expected success, got: {}", path.display(), out.stderr);
    } else {
        assert_eq!(out.code, 6, "{} ({what}): expected exit 6 [{expect}], got: {}", path.display(), out.stderr);
        assert!(
            out.stderr.contains(&format!("[{expect}]")),
            "{} ({what}): expected [{expect}], got: {}",
            path.display(),
            out.stderr
        );
        assert!(out.stderr.contains(&*path.to_string_lossy()), "the message names the file: {}", out.stderr);
    }
}

#[test]
fn every_committed_vector_gets_its_verdicts_from_verify_verify_deep_and_extract() {
    let dir = vectors_dir();
    let key = dir.join("vectors.pub");
    let mut checked = 0;
    let mut authentic_but_broken = 0;
    for e in fs::read_dir(&dir).expect("schema/vectors exists").flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "pkg") {
            continue;
        }
        let expect_text = fs::read_to_string(path.with_extension("expect")).expect("every vector has an .expect file");
        let (verify, deep) = parse_expect(&expect_text).expect("verify: and verify --deep: lines");
        let args = |extra: &[&'static str]| {
            let mut a = vec!["verify".as_ref(), path.as_os_str(), "--trust".as_ref(), key.as_os_str()];
            a.extend(extra.iter().map(|x| std::ffi::OsStr::new(*x)));
            a
        };
        assert_verdict(&pkgtool(args(&[])), verify, &path, "verify");
        assert_verdict(&pkgtool(args(&["--deep"])), deep, &path, "verify --deep");
        // Extraction decodes every blob: the deep verdict, and nothing written when refused.
        let t = tempfile::tempdir().expect("tempdir");
        let target = t.path().join("x");
        let out =
            pkgtool(["extract".as_ref(), path.as_os_str(), target.as_os_str(), "--trust".as_ref(), key.as_os_str()]);
        assert_verdict(&out, deep, &path, "extract");
        if deep != "ok" {
            assert_eq!(
                fs::read_dir(t.path()).expect("tempdir").count(),
                0,
                "{}: extract wrote something",
                path.display()
            );
        }
        if verify == "ok" && deep != "ok" {
            authentic_but_broken += 1;
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} vectors found");
    assert!(authentic_but_broken >= 3, "only {authentic_but_broken} vectors tell verify and verify --deep apart");
}
