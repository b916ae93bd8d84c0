//! Support for the runtime's end-to-end tests: a kit per test case (its own temporary
//! directory named after the case, a signing key, packages built with the real `pkgtool`
//! from the contoso examples or from specs the test writes), running `hotfix` against a
//! root, and snapshots of a root's live tree to compare byte for byte.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotfix_schema::{Limits, Manifest};
use tempfile::TempDir;

use crate::fixtures;
use crate::run::{Outcome, bin, pkgtool};

/// The directory of the contoso example specs.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/contoso")
}

/// One test case's workspace.
pub struct Kit {
    dir: TempDir,
    /// The secret key packages are signed with.
    pub key: PathBuf,
    /// Its public half, trusted by the roots the kit makes.
    pub public: PathBuf,
}

impl Kit {
    /// A fresh workspace whose directory name starts with `case`.
    pub fn new(case: &str) -> Kit {
        let dir = tempfile::Builder::new().prefix(&format!("{case}-")).tempdir().expect("temporary directory");
        let (key, public, _) = fixtures::key_pair(dir.path(), "publisher", 7);
        Kit { dir, key, public }
    }

    /// The workspace directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Builds `spec` into `NAME.pkg` in the workspace (signed with the kit's key).
    pub fn build(&self, spec: &Path, name: &str) -> PathBuf {
        self.build_to(spec, &self.path().join(format!("{name}.pkg")), &[])
    }

    /// Builds `spec` to `out` with `extra` arguments, once (an existing `out` is reused).
    fn build_to(&self, spec: &Path, out: &Path, extra: &[&str]) -> PathBuf {
        if !out.exists() {
            let args = [OsStr::new("build"), spec.as_os_str(), "--key".as_ref(), self.key.as_os_str()];
            let args = args.into_iter().chain(["-o".as_ref(), out.as_os_str()]).chain(extra.iter().map(OsStr::new));
            pkgtool(args).expect_code(0);
        }
        out.to_path_buf()
    }

    /// The contoso hotfix KB7 for the SMTP transport, whose build declares `restart = true`:
    /// its spec, written into the workspace (build it with [`Kit::build`] or
    /// [`Kit::installer`] under the name `KB7`).
    pub fn restart_hotfix_spec(&self) -> PathBuf {
        fixtures::write(self.path(), "KB7/p/bin/smtp.dll", RESTART_HOTFIX_FILE);
        fixtures::write(self.path(), "KB7.toml", RESTART_HOTFIX_SPEC)
    }

    /// Builds the contoso example `NAME.toml` (`rtm`, `sp1`, `kb4`).
    pub fn contoso(&self, name: &str) -> PathBuf {
        self.build(&examples().join(format!("{name}.toml")), name)
    }

    /// Writes a spec `NAME.toml` and its payload files (`(path under the spec's dir, text)`),
    /// then builds it into `NAME.pkg`.
    pub fn spec(&self, name: &str, toml: &str, files: &[(&str, &str)]) -> PathBuf {
        for (rel, text) in files {
            fixtures::write(self.path(), &format!("{name}/{rel}"), text);
        }
        let spec = fixtures::write(self.path(), &format!("{name}.toml"), toml);
        self.build(&spec, name)
    }

    /// A new root `NAME` for product contoso, trusting the kit's key.
    pub fn root(&self, name: &str) -> PathBuf {
        let root = self.path().join(name);
        hotfix(
            &root,
            ["init", "--product", "contoso", "--trust"].iter().map(OsStr::new).chain([self.public.as_os_str()]),
        )
        .expect_code(0);
        root
    }
}

/// Runs `hotfix --root ROOT ARGS…`.
pub fn hotfix<I, S>(root: &Path, args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    hotfix_env(root, args, &[])
}

/// Runs `hotfix --root ROOT ARGS…` with extra environment variables.
pub fn hotfix_env<I, S>(root: &Path, args: I, env: &[(&str, &str)]) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin("hotfix"));
    cmd.arg("--root").arg(root).args(args).env_remove("HOTFIX_CRASH_AT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("hotfix runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A node of a live tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file: its bytes and permission bits.
    File(Vec<u8>, u32),
    /// Anything else.
    Other,
}

/// A root's live tree (everything but `.servicing`), by relative path.
pub type Tree = BTreeMap<String, Node>;

/// Snapshots the live tree under `root`, `.servicing` excluded.
pub fn tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Tree) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries {
        let e = e.expect("directory entry");
        let path = e.path();
        let rel = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
        if rel == ".servicing" {
            continue;
        }
        let meta = fs::symlink_metadata(&path).expect("metadata");
        if meta.is_dir() {
            out.insert(rel, Node::Dir);
            walk(root, &path, out);
        } else if meta.is_file() {
            out.insert(rel, Node::File(fs::read(&path).expect("read"), meta.permissions().mode() & 0o7777));
        } else {
            out.insert(rel, Node::Other);
        }
    }
}

/// The regular files of a tree, as `path -> text` (for readable assertions).
pub fn file_texts(t: &Tree) -> BTreeMap<String, String> {
    t.iter()
        .filter_map(|(p, n)| match n {
            Node::File(b, _) => Some((p.clone(), String::from_utf8_lossy(b).into_owned())),
            _ => None,
        })
        .collect()
}

/// Copies a directory tree (the `.servicing` state included), keeping permission bits.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create copy");
    for e in fs::read_dir(src).expect("read dir") {
        let e = e.expect("entry");
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let meta = fs::symlink_metadata(&from).expect("metadata");
        if meta.is_dir() {
            copy_tree(&from, &to);
        } else {
            fs::copy(&from, &to).expect("copy file");
        }
        fs::set_permissions(&to, meta.permissions()).expect("chmod copy");
    }
}

/// The manifest of a package file (read without verification: the test built it).
pub fn manifest(pkg: &Path) -> Manifest {
    pkgtool::read::read_unverified(pkg, &Limits::default()).expect("a readable package").manifest
}

/// The path of blob `sha256` (hex) in a root's store.
pub fn store_blob(root: &Path, sha256: &str) -> PathBuf {
    root.join(".servicing/store").join(&sha256[..2]).join(sha256)
}

/// The ids of the packages installed on `root`, from `hotfix list --json`, in install order.
pub fn installed_ids(root: &Path) -> Vec<String> {
    let out = hotfix(root, ["list", "--json"]);
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("list --json is JSON");
    v["packages"]
        .as_array()
        .expect("a packages array")
        .iter()
        .map(|p| p["id"].as_str().expect("an id").to_string())
        .collect()
}

/// The text of the live file `rel` under `root`.
pub fn live_text(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The text of an example payload file, `examples/contoso/payload/REL`.
pub fn payload(rel: &str) -> String {
    fs::read_to_string(examples().join("payload").join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Hotfix KB1 for contoso's kernel, built before SP1: an RTM LDR build only
/// (5.2.3790.1001, fix KB1), with an extra file in directories of its own
/// (`lib/kb1/trace.so`).
pub fn kb1(kit: &Kit) -> PathBuf {
    let spec = r#"[package]
id = "KB1"
kind = "hotfix"
product = "contoso"
title = "Hotfix for a kernel hang"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1001"
fixes = ["KB1"]
dir = "KB1/rtm"
"#;
    kit.spec(
        "KB1",
        spec,
        &[
            ("rtm/bin/kernel.dll", "contoso kernel RTM LDR build with fix KB1\n"),
            ("rtm/etc/kernel.conf", "# kernel configuration, KB1 tracing\n"),
            ("rtm/lib/kb1/trace.so", "KB1 trace helper\n"),
        ],
    )
}

/// Hotfix KB5 for contoso's kernel, built after SP1: LDR builds for RTM (5.2.3790.1005)
/// and SP1 (5.2.3791.1005), each with every fix KB1–KB5.
pub fn kb5(kit: &Kit) -> PathBuf {
    let spec = r#"[package]
id = "KB5"
kind = "hotfix"
product = "contoso"
title = "Hotfix for kernel memory pressure"

[[variant]]
component = "kernel"
baseline = "RTM"
branch = "ldr"
version = "5.2.3790.1005"
fixes = ["KB1", "KB2", "KB3", "KB4", "KB5"]
dir = "KB5/rtm"

[[variant]]
component = "kernel"
baseline = "SP1"
branch = "ldr"
version = "5.2.3791.1005"
fixes = ["KB1", "KB2", "KB3", "KB4", "KB5"]
dir = "KB5/sp1"
"#;
    kit.spec(
        "KB5",
        spec,
        &[
            ("rtm/bin/kernel.dll", "contoso kernel RTM LDR build with fixes KB1 KB2 KB3 KB4 KB5\n"),
            ("rtm/etc/kernel.conf", "# kernel configuration, KB5\n"),
            ("sp1/bin/kernel.dll", "contoso kernel SP1 LDR build with fixes KB1 KB2 KB3 KB4 KB5\n"),
            ("sp1/etc/kernel.conf", "# kernel configuration, SP1 KB5\n"),
        ],
    )
}

impl Kit {
    /// Builds `spec` into the self-contained installer `NAME.run` in the workspace (the
    /// `hotfix-installer` stub of this build's profile, signed with the kit's key; named
    /// explicitly so that a newer `target/installer/` stub does not change what is tested).
    pub fn installer(&self, spec: &Path, name: &str) -> PathBuf {
        let stub = bin("hotfix-installer");
        let stub = stub.to_str().expect("the target directory's path is UTF-8");
        self.build_to(spec, &self.path().join(format!("{name}.run")), &["--self-contained", "--stub", stub])
    }

    /// The self-contained installer of the contoso example `NAME.toml`.
    pub fn contoso_installer(&self, name: &str) -> PathBuf {
        self.installer(&examples().join(format!("{name}.toml")), name)
    }

    /// An empty configuration directory for `HOTFIX_CONFIG_DIR` (no product has a
    /// configured root), made once per kit.
    pub fn config_dir(&self) -> PathBuf {
        let dir = self.path().join("etc-hotfix");
        fs::create_dir_all(&dir).expect("create config dir");
        dir
    }
}

/// Runs a self-contained installer with `args` and extra environment variables, in a
/// controlled environment: no `HOTFIX_ROOT` unless `env` sets one, and `HOTFIX_CONFIG_DIR`
/// set to `config` (so the machine's `/etc/hotfix` plays no part). Retries while the
/// file is busy (another test thread may have forked while it was being written).
pub fn run_installer<I, S>(exe: &Path, config: &Path, args: I, env: &[(&str, &str)]) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut tries = 0;
    loop {
        let mut cmd = Command::new(exe);
        cmd.args(&args).env_remove("HOTFIX_ROOT").env_remove("HOTFIX_CRASH_AT").env("HOTFIX_CONFIG_DIR", config);
        for (k, v) in env {
            cmd.env(k, v);
        }
        match cmd.output() {
            Ok(out) => {
                return Outcome {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{} does not run: {e}", exe.display()),
        }
    }
}

/// Copies the installer `exe` to `dest` with one byte of its stub changed: a letter of the
/// compiler's note in the ELF `.comment` section, which the loader never maps, so the
/// program still runs and must find the change itself. Returns the changed offset.
pub fn flip_stub_byte(exe: &Path, dest: &Path) -> usize {
    let mut bytes = fs::read(exe).expect("read installer");
    let stub_len = pkgtool::read::read_unverified(exe, &Limits::default()).expect("a package").archive.prefix_len;
    let needle = b"rustc version";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .filter(|&i| (i as u64) < stub_len)
        .expect("the stub carries the compiler's note");
    bytes[at] ^= 0x20;
    fs::write(dest, &bytes).expect("write tampered installer");
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).expect("chmod tampered installer");
    at
}

/// The content of KB7's one file (see [`Kit::restart_hotfix_spec`]).
pub const RESTART_HOTFIX_FILE: &str = "contoso smtp RTM LDR build with fix KB7\n";

const RESTART_HOTFIX_SPEC: &str = r#"[package]
id = "KB7"
kind = "hotfix"
product = "contoso"
title = "Hotfix for the SMTP transport that needs a restart"

[[variant]]
component = "smtp-transport"
baseline = "RTM"
branch = "ldr"
version = "8.0.685.1007"
fixes = ["KB7"]
restart = true
dir = "KB7/p"
"#;
