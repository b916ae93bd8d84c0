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
