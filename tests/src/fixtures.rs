//! Fixture payloads and specs written into a test's own temporary directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

/// Writes `text` to `root/rel`, creating directories.
pub fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("a relative path has a parent")).expect("create fixture dir");
    fs::write(&p, text).expect("write fixture file");
    // Fixed permissions, whatever the umask: packages record modes, and vectors must not
    // depend on the machine that generates them.
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod fixture");
    p
}

/// A deterministic key pair written as `dir/name.key` and `dir/name.pub`.
pub fn key_pair(dir: &Path, name: &str, seed: u8) -> (PathBuf, PathBuf, SigningKey) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let secret = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    fs::write(&secret, key.to_pkcs8_pem(LineEnding::LF).expect("encode key").as_bytes()).expect("write key");
    fs::write(&public, key.verifying_key().to_public_key_pem(LineEnding::LF).expect("encode key")).expect("write key");
    (secret, public, key)
}

/// An update spec for one component at one baseline, both branches, with small payloads
/// (one file shared by both branches, so deduplication shows; `bin/kernel.dll` compresses,
/// `etc/kernel.conf` is too small to and is stored). Returns the spec path.
pub fn small_update(dir: &Path) -> PathBuf {
    write(dir, "p/gdr/bin/kernel.dll", &"kernel RTM GDR build, fixes KB2 KB4\n".repeat(8));
    write(dir, "p/gdr/etc/kernel.conf", "# shared configuration\n");
    write(dir, "p/ldr/bin/kernel.dll", &"kernel RTM LDR build, fixes KB1 KB2 KB3 KB4\n".repeat(8));
    write(dir, "p/ldr/etc/kernel.conf", "# shared configuration\n");
    let spec = r#"[package]
id = "KB4"
kind = "update"
product = "contoso"
title = "Security update for the kernel"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "gdr"
version = "5.2.3790.4"
fixes = ["KB2", "KB4"]
dir = "p/gdr"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1004"
fixes = ["KB1", "KB2", "KB3", "KB4"]
dir = "p/ldr"
"#;
    write(dir, "kb4.toml", spec)
}

/// A baseline (RTM) spec with one component. Returns the spec path.
pub fn small_baseline(dir: &Path) -> PathBuf {
    write(dir, "b/bin/kernel.dll", "kernel RTM base build\n");
    let spec = r#"[package]
id = "contoso-rtm"
kind = "baseline"
product = "contoso"
title = "Contoso Server RTM"
baseline = { name = "RTM", level = 0 }

[[variant]]
component = "kernel"
version = "5.2.3790.0"
dir = "b"
"#;
    write(dir, "rtm.toml", spec)
}

/// An x86-64 ELF file of code-like bytes: `funcs` functions of 96 bytes, each calling
/// others (`E8` rel32) and loading from a table after the code (`lea rax, [rip+d]`), with
/// `pad` bytes inserted after function `at`. Two builds that differ in where the padding
/// is have every operand that crosses it changed: what `bsdiff-x86-zstd` is for.
pub fn x86_program(funcs: usize, at: usize, pad: usize) -> Vec<u8> {
    code_program(funcs, at, pad, false, 0)
}

/// Where function `f` of a [`code_program`] starts: after a 64-byte header, 96 bytes a
/// function, `pad` more after function `at`; in a build with padding, the `hot` last
/// functions (rewritten, all alike) in another order.
fn function_start(f: usize, funcs: usize, at: usize, pad: usize, hot: usize) -> usize {
    let slot =
        if hot > 0 && pad > 0 && f > at && f + hot >= funcs { funcs - hot + (f + hot - funcs) * 5 % hot } else { f };
    64 + slot * 96 + if slot > at { pad } else { 0 }
}

/// [`x86_program`], with `jcc` a conditional jump (`0F 85` rel32) to another function in
/// place of every other call; with `hot` > 0 every call and jump goes to one of the last
/// `hot` functions, whose code, in a build with padding before them, is other code.
fn code_program(funcs: usize, at: usize, pad: usize, jcc: bool, hot: usize) -> Vec<u8> {
    const HEADER: usize = 64;
    const BODY: usize = 96;
    let start = |f: usize| function_start(f, funcs, at, pad, hot);
    let table = start(funcs) + 64;
    let mut v = vec![0u8; HEADER];
    v[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    v[16] = 3; // ET_DYN
    v[18] = 62; // EM_X86_64
    for f in 0..funcs {
        if f == at + 1 {
            v.extend(std::iter::repeat_n(0x90, pad));
        }
        let base = v.len();
        let mut k = 0;
        while v.len() - base + if jcc { 15 } else { 13 } <= BODY {
            let callee =
                if hot > 0 { funcs.saturating_sub(1 + (f * 7 + k * 13) % hot) } else { (f * 7 + k * 13 + 3) % funcs };
            if jcc && k % 2 == 1 {
                let end = v.len() + 6;
                v.extend_from_slice(&[0x0F, 0x85]);
                v.extend_from_slice(&((start(callee) as i64 - end as i64) as i32).to_le_bytes());
            } else {
                let end = v.len() + 5;
                v.push(0xE8);
                v.extend_from_slice(&((start(callee) as i64 - end as i64) as i32).to_le_bytes());
            }
            let end = v.len() + 7;
            v.extend_from_slice(&[0x48, 0x8D, 0x05]);
            v.extend_from_slice(&((table as i64 + (k * 8) as i64 - end as i64) as i32).to_le_bytes());
            v.extend_from_slice(&[0x48, (f % 251) as u8]);
            k += 1;
        }
        v.resize(base + BODY, 0xCC);
        if hot > 0 && pad > 0 && f > at && f + hot >= funcs {
            // Rewritten (two-byte no-ops): no match for bsdiff, so no move says where the
            // function went.
            for (i, b) in v[base..].iter_mut().enumerate() {
                *b = if i % 2 == 0 { 0x66 } else { 0x90 };
            }
        }
    }
    v.resize(table, 0);
    v.extend((0..4096u32).map(|i| (i * 31 % 256) as u8));
    v
}

/// [`x86_program`] as a shared library with the tables a linker writes after its code,
/// each naming every function: `.eh_frame_hdr`'s sorted table, one `.eh_frame` FDE per
/// function (pc-relative starts), one `.dynsym` symbol per function, the section headers
/// and a `PT_LOAD` segment mapping the file at address 0. Two builds that differ in where
/// the padding is have every table entry after it changed: what `bsdiff-elf-zstd` is for.
pub fn elf_program(funcs: usize, at: usize, pad: usize) -> Vec<u8> {
    elf_with(funcs, at, pad, false, 0)
}

/// [`elf_program`] whose segment is executable and whose code has conditional jumps too:
/// the branches `bsdiff-elf2-zstd` translates and `bsdiff-elf-zstd` does not.
pub fn elf2_program(funcs: usize, at: usize, pad: usize) -> Vec<u8> {
    elf_with(funcs, at, pad, true, 0)
}

/// [`elf2_program`] whose calls and jumps all go to its last 12 functions, which a build
/// with padding before them (`at` = `funcs` − 13) rewrites: the moves cannot say where
/// they went, the first call to each can, and `bsdiff-elf3-zstd` learns it from there.
pub fn elf3_program(funcs: usize, at: usize, pad: usize) -> Vec<u8> {
    elf_with(funcs, at, pad, true, 12)
}

fn elf_with(funcs: usize, at: usize, pad: usize, jcc: bool, hot: usize) -> Vec<u8> {
    let start = |f: usize| function_start(f, funcs, at, pad, hot) as i64;
    let mut v = code_program(funcs, at, pad, jcc, hot);
    v.resize(v.len().next_multiple_of(8), 0);
    let put = |v: &mut Vec<u8>, bytes: &[u8]| v.extend_from_slice(bytes);
    let hdr = v.len();
    put(&mut v, &[1, 0x1b, 0x03, 0x3b]);
    let eh_frame = hdr + 12 + 8 * funcs;
    put(&mut v, &((eh_frame as i64 - (hdr as i64 + 4)) as i32).to_le_bytes());
    put(&mut v, &(funcs as u32).to_le_bytes());
    for f in 0..funcs {
        put(&mut v, &((start(f) - hdr as i64) as i32).to_le_bytes());
        put(&mut v, &((eh_frame + 24 + f * 24) as i64 - hdr as i64).to_le_bytes()[..4]);
    }
    // The CIE ("zR", pc-relative sdata4 pointers), then an FDE per function.
    put(&mut v, &20u32.to_le_bytes());
    put(&mut v, &[0, 0, 0, 0, 1, b'z', b'R', 0, 1, 0x78, 16, 1, 0x1b, 0, 0, 0, 0, 0, 0, 0]);
    for f in 0..funcs {
        let field = v.len() + 8;
        put(&mut v, &20u32.to_le_bytes());
        let cie_pointer = (v.len() - eh_frame) as u32;
        put(&mut v, &cie_pointer.to_le_bytes());
        put(&mut v, &((start(f) - field as i64) as i32).to_le_bytes());
        put(&mut v, &96u32.to_le_bytes());
        put(&mut v, &[0; 8]);
    }
    let dynsym = v.len();
    put(&mut v, &[0; 24]);
    for f in 0..funcs {
        put(&mut v, &[1, 0, 0, 0, 0x12, 0, 1, 0]);
        put(&mut v, &(start(f) as u64).to_le_bytes());
        put(&mut v, &96u64.to_le_bytes());
    }
    let names = v.len();
    put(&mut v, b"\0.eh_frame_hdr\0.eh_frame\0.dynsym\0.shstrtab\0\0\0");
    let shoff = v.len();
    put(&mut v, &[0; 64]);
    let sections = [
        (1, hdr, eh_frame - hdr),
        (15, eh_frame, dynsym - eh_frame),
        (25, dynsym, names - dynsym),
        (33, names, shoff - names),
    ];
    for (name, offset, size) in sections {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(&(name as u32).to_le_bytes());
        h[4] = 1;
        h[0x10..0x18].copy_from_slice(&(offset as u64).to_le_bytes());
        h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
        h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
        put(&mut v, &h);
    }
    let phoff = v.len();
    let total = phoff + 56;
    let mut ph = [0u8; 56];
    ph[0] = 1; // PT_LOAD, at offset and address 0
    if jcc {
        ph[4] = 5; // readable and executable
    }
    ph[0x20..0x28].copy_from_slice(&(total as u64).to_le_bytes());
    put(&mut v, &ph);
    v[0x20..0x28].copy_from_slice(&(phoff as u64).to_le_bytes());
    v[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    v[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    v[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    v[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    v[0x3c..0x3e].copy_from_slice(&5u16.to_le_bytes());
    v[0x3e..0x40].copy_from_slice(&4u16.to_le_bytes());
    v
}

/// An update whose one component is an x86-64 program of 100 KB, the LDR build 48 bytes
/// longer early on (see [`x86_program`]). Returns the spec path.
pub fn x86_update(dir: &Path) -> PathBuf {
    program_update(dir, x86_program)
}

/// [`x86_update`] with the program a shared library with its ELF tables
/// ([`elf_program`]); the spec is the same, at the same path.
pub fn elf_update(dir: &Path) -> PathBuf {
    program_update(dir, elf_program)
}

/// Four modules, `x86/{gdr,ldr}/lib/mod{i}.so`, each a `program` whose LDR build has 48
/// bytes inserted early on; with [`x86_update`] after it, the update packs them.
pub fn modules(dir: &Path, program: fn(usize, usize, usize) -> Vec<u8>) {
    for (branch, at, pad) in [("gdr", 700, 0), ("ldr", 20, 48)] {
        for i in 0..4 {
            let path = dir.join(format!("x86/{branch}/lib/mod{i}.so"));
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, program(800 + i * 7, at + i, pad)).expect("write");
        }
    }
}

/// The encodings of a manifest's packs (blobs with `members`), in order.
pub fn pack_encodings(manifest: &serde_json::Value) -> Vec<String> {
    let blobs = manifest["blobs"].as_array().map(Vec::as_slice).unwrap_or_default();
    blobs
        .iter()
        .filter(|b| b.get("members").is_some())
        .map(|b| b["encoding"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// [`x86_update`] with the program an [`elf2_program`]; the spec is the same, at the same
/// path.
pub fn elf2_update(dir: &Path) -> PathBuf {
    program_update(dir, elf2_program)
}

/// [`x86_update`] with the program an [`elf3_program`] of 1000 functions, its last 12
/// rewritten and reordered after padding in the LDR build; the spec is the same, at the
/// same path.
pub fn elf3_update(dir: &Path) -> PathBuf {
    program_builds(dir, |gdr| if gdr { elf3_program(1000, 1000, 0) } else { elf3_program(1000, 987, 37) })
}

fn program_update(dir: &Path, program: fn(usize, usize, usize) -> Vec<u8>) -> PathBuf {
    program_builds(dir, |gdr| if gdr { program(1000, 1000, 0) } else { program(1000, 10, 48) })
}

fn program_builds(dir: &Path, program: impl Fn(bool) -> Vec<u8>) -> PathBuf {
    for branch in ["gdr", "ldr"] {
        let path = dir.join(format!("x86/{branch}/bin/app"));
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, program(branch == "gdr")).expect("write");
    }
    let spec = r#"[package]
id = "KB7"
kind = "update"
product = "contoso"
title = "Update for the app"

[[variant]]
component = "app"
baseline = "RTM"
branch = "gdr"
version = "1.0.0.7"
fixes = ["KB7"]
dir = "x86/gdr"

[[variant]]
component = "app"
baseline = "RTM"
branch = "ldr"
version = "1.0.1007.7"
fixes = ["KB6", "KB7"]
dir = "x86/ldr"
"#;
    write(dir, "kb7.toml", spec)
}

/// A Debian-style changelog of `entries` entries, newest first, as `gzip -9n` makes it
/// (level 9, no name, no time), which zlib reproduces.
pub fn changelog_gz(entries: u32) -> Vec<u8> {
    use std::io::Write;
    let mut text = String::new();
    for e in (0..entries).rev() {
        text.push_str(&format!("contoso-kernel (5.2.3790.{e}) stable-security; urgency=medium\n\n"));
        for k in 0..6 {
            text.push_str(&format!(
                "  * Fix {k} for KB{e}: bounds check in the {} parser.\n",
                ["ASN.1", "URL", "DNS"][k % 3]
            ));
        }
        text.push_str(&format!("\n -- Contoso Servicing <servicing@contoso.example>  build {e}\n\n"));
    }
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::new(9));
    gz.write_all(text.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

/// An update whose builds carry gzip files that change every build (a changelog and a
/// manual page as `gzip -9n` makes them, and news by another deflate) and a plain file.
/// Returns the spec path.
pub fn gz_update(dir: &Path) -> PathBuf {
    for (branch, n) in [("gdr", 40), ("ldr", 42)] {
        let base = dir.join(format!("gz/{branch}"));
        fs::create_dir_all(base.join("doc")).expect("mkdir");
        fs::write(base.join("doc/changelog.gz"), changelog_gz(n)).expect("write");
        fs::write(base.join("doc/kernel.8.gz"), changelog_gz(n / 2)).expect("write");
        // Another deflate's output (zlib's level 1, which levels 9 and 6 do not
        // reproduce): rebuilt by preflate, except in a self-contained installer.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&changelog_gz(n)[..]), &mut text)
            .expect("gunzip");
        let mut news = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::new(1));
        std::io::Write::write_all(&mut news, text.replace("Fix", "News").as_bytes()).expect("gzip");
        fs::write(base.join("doc/NEWS.gz"), news.finish().expect("gzip")).expect("write");
        fs::write(base.join("doc/README"), "Contoso kernel documentation\n".repeat(20)).expect("write");
    }
    let spec = r#"[package]
id = "KB8"
kind = "update"
product = "contoso"
title = "Update for the kernel documentation"

[[variant]]
component = "kerneldoc"
baseline = "RTM"
branch = "gdr"
version = "5.2.3790.40"
fixes = ["KB8"]
dir = "gz/gdr"

[[variant]]
component = "kerneldoc"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1042"
fixes = ["KB7", "KB8"]
dir = "gz/ldr"
"#;
    write(dir, "kb8.toml", spec)
}

/// `n` bytes of English-like prose with some source-code lines: a Markov-free word salad
/// whose letters follow their words, which PPMd models tighter than LZMA matches it.
pub fn prose(n: usize, seed: u32) -> String {
    const WORDS: [&str; 24] = [
        "the",
        "servicing",
        "stack",
        "keeps",
        "both",
        "branches",
        "of",
        "every",
        "component",
        "so",
        "that",
        "a",
        "later",
        "hotfix",
        "can",
        "migrate",
        "without",
        "downgrade",
        "administrator",
        "reads",
        "which",
        "fix",
        "is",
        "present",
    ];
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut out = String::with_capacity(n + 64);
    while out.len() < n {
        let r = next();
        match r % 40 {
            0 => out.push_str(".\n\n"),
            1 => out.push_str(&format!(
                "\nsub {}_{} {{ my ($self) = @_; return $self->{{{}}}; }}\n",
                WORDS[(r >> 8) as usize % 24],
                WORDS[(r >> 16) as usize % 24],
                WORDS[(r >> 24) as usize % 24]
            )),
            2 | 3 => out.push_str(", "),
            _ => {
                if !out.is_empty() && !out.ends_with(['\n', ' ']) {
                    out.push(' ');
                }
                out.push_str(WORDS[(r >> 8) as usize % WORDS.len()]);
            }
        }
    }
    out.truncate(n);
    out
}

/// An update of documentation and modules: text files, small (packed, with a gzipped
/// manual page) and large (a blob of its own), the LDR build with a paragraph more in each.
pub fn text_update(dir: &Path) -> PathBuf {
    for (branch, extra) in [("gdr", ""), ("ldr", "\nThe LDR build also documents its hotfix.\n")] {
        let base = dir.join(format!("text/{branch}"));
        for (i, name) in ["Servicing.pm", "Store.pm", "Branch.pm", "Query.pm"].iter().enumerate() {
            write(&base, &format!("lib/{name}"), &(prose(20_000, i as u32 + 1) + extra));
        }
        write(&base, "doc/manual.txt", &(prose(400_000, 99) + extra));
        // A manual page as Debian ships it (`gzip -9n`, which zlib reproduces).
        let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, (prose(30_000, 7) + extra).as_bytes()).expect("gzip");
        fs::write(base.join("doc/kernelmods.8.gz"), gz.finish().expect("gzip")).expect("write");
    }
    let spec = r#"[package]
id = "KB9"
kind = "update"
product = "contoso"
title = "Update for the kernel's modules"

[[variant]]
component = "kernelmods"
baseline = "RTM"
branch = "gdr"
version = "5.2.3790.50"
fixes = ["KB9"]
dir = "text/gdr"

[[variant]]
component = "kernelmods"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1050"
fixes = ["KB8", "KB9"]
dir = "text/ldr"
"#;
    write(dir, "kb9.toml", spec)
}

/// A certificate store's update: PEM files of pseudo-random "DER" (what keys and
/// signatures look like to a compressor), the LDR build with one replaced and one added.
pub fn pem_update(dir: &Path) -> PathBuf {
    let der = |seed: u32, n: usize| -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        let mut v = b"\x30\x82\x05\x00\x30\x82\x03\xe8\xa0\x03\x02\x01\x02".to_vec();
        v.extend((0..n).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        v
    };
    let pem = |data: &[u8]| {
        let body = pkgtool::gz::encode_pem(data);
        [&b"-----BEGIN CERTIFICATE-----\n"[..], &body, b"-----END CERTIFICATE-----\n"].concat()
    };
    for (branch, certs) in [("gdr", &[1u32, 2, 3, 4, 5][..]), ("ldr", &[1, 2, 30, 4, 5, 6][..])] {
        let base = dir.join(format!("pem/{branch}/share/certs"));
        fs::create_dir_all(&base).expect("mkdir");
        for &c in certs {
            fs::write(base.join(format!("Root_CA_{c}.crt")), pem(&der(c, 700 + 97 * c as usize % 800))).expect("write");
        }
    }
    let spec = r#"[package]
id = "KB11"
kind = "update"
product = "contoso"
title = "Update for the certificate store"

[[variant]]
component = "certs"
baseline = "RTM"
branch = "gdr"
version = "1.0.0.11"
fixes = ["KB11"]
dir = "pem/gdr"

[[variant]]
component = "certs"
baseline = "RTM"
branch = "ldr"
version = "1.0.1011.11"
fixes = ["KB10", "KB11"]
dir = "pem/ldr"
"#;
    write(dir, "kb11.toml", spec)
}
