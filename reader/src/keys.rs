//! Signing keys: generation, the PKCS#8 / SPKI PEM files (compatible with
//! `openssl genpkey -algorithm ed25519`), key ids, and rejection of weak public keys.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hotfix_schema::sigblock::key_id_hex;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Largest key file read, in bytes; PEM Ed25519 keys are about 120 bytes.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// The key id of a public key: the first 8 bytes of SHA-256 of its 32 raw bytes.
pub fn key_id(key: &VerifyingKey) -> [u8; 8] {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// A public key trusted to sign packages, with the file it came from.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    /// The key.
    pub key: VerifyingKey,
    /// Its key id.
    pub id: [u8; 8],
    /// Where it was read from.
    pub source: PathBuf,
}

impl TrustedKey {
    /// The key id as 16 hex digits.
    pub fn id_hex(&self) -> String {
        key_id_hex(&self.id)
    }

    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`) and refuses weak keys
    /// (small-order points, which would let forged signatures verify).
    pub fn load(path: &Path) -> Result<TrustedKey> {
        let text = read_small(path)?;
        let bad = |msg: String| Error::PublicKey { path: path.to_path_buf(), msg };
        let text = std::str::from_utf8(&text).map_err(|_| bad("not a PEM public key (not text)".into()))?;
        let key = VerifyingKey::from_public_key_pem(text.trim())
            .map_err(|e| bad(format!("not an Ed25519 public key in SPKI PEM form ({e})")))?;
        if key.is_weak() {
            return Err(bad("weak public key (a small-order point): refusing to trust it".into()));
        }
        Ok(TrustedKey { id: key_id(&key), key, source: path.to_path_buf() })
    }
}

/// Reads a PKCS#8 PEM Ed25519 secret key (`-----BEGIN PRIVATE KEY-----`).
pub fn load_secret(path: &Path) -> Result<SigningKey> {
    let text = read_small(path)?;
    let bad = |msg: String| Error::SecretKey { path: path.to_path_buf(), msg };
    let text = std::str::from_utf8(&text).map_err(|_| bad("not a PEM private key (not text)".into()))?;
    SigningKey::from_pkcs8_pem(text.trim())
        .map_err(|e| bad(format!("not an Ed25519 private key in PKCS#8 PEM form ({e})")))
}

/// Writes `NAME.key` (PKCS#8 PEM, mode 0600) and `NAME.pub` (SPKI PEM) for a fresh key.
/// Refuses to overwrite either file. Returns the public key.
pub fn generate(name: &Path) -> Result<TrustedKey> {
    let secret_path = with_suffix(name, "key");
    let public_path = with_suffix(name, "pub");
    for p in [&secret_path, &public_path] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(Error::Refused { path: p.clone(), msg: "already exists; not overwriting a key".into() });
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::SecretKey {
        path: secret_path.clone(),
        msg: format!("no randomness from the operating system: {e}"),
    })?;
    let signing = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let secret_pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::SecretKey { path: secret_path.clone(), msg: format!("cannot encode: {e}") })?;
    let verifying = signing.verifying_key();
    let public_pem = verifying
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::PublicKey { path: public_path.clone(), msg: format!("cannot encode: {e}") })?;

    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret_path)
        .map_err(Error::io(&secret_path))?;
    f.write_all(secret_pem.as_bytes()).and_then(|()| f.sync_all()).map_err(Error::io(&secret_path))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&public_path)
        .map_err(Error::io(&public_path))?;
    f.write_all(public_pem.as_bytes()).and_then(|()| f.sync_all()).map_err(Error::io(&public_path))?;
    Ok(TrustedKey { id: key_id(&verifying), key: verifying, source: public_path })
}

fn with_suffix(name: &Path, ext: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn read_small(path: &Path) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(Error::io(path))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(Error::Refused { path: path.to_path_buf(), msg: "too large to be a key file".into() });
    }
    fs::read(path).map_err(Error::io(path))
}
