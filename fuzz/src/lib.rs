//! Helpers shared by the fuzz targets: the fixed test signing key (the vectors' key,
//! secret `0x01…01`), re-signing an input so the reader gets past the signature check to
//! the structural and content checks, and a small byte cursor for splitting an input
//! into the parts a target needs.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use hotfix_schema::sigblock::SIGNATURE_LEN;
use pkgtool::TrustedKey;

/// The vectors' test key (schema/vectors/README.md): never a real one.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[1u8; 32])
}

/// The public half of [`signing_key`], as the reader's trusted key.
pub fn trusted_key() -> TrustedKey {
    let key = signing_key().verifying_key();
    TrustedKey { id: pkgtool::keys::key_id(&key), key, source: PathBuf::from("fuzz-test-key") }
}

/// Replaces the last 128 bytes (the signature's hex digits) by a valid signature of
/// everything before them with [`signing_key`]; shorter inputs are left alone.
pub fn resign(bytes: &mut Vec<u8>) {
    if bytes.len() >= SIGNATURE_LEN {
        pkgtool::build::resign(bytes, &signing_key());
    }
}

/// Takes fixed-size little-endian numbers and slices off the front of an input.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    /// One byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    /// A little-endian `u16`, missing bytes as 0.
    pub fn u16(&mut self) -> u16 {
        let b = self.take(2);
        u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)])
    }
    /// A little-endian `u32`, missing bytes as 0.
    pub fn u32(&mut self) -> u32 {
        (self.u16() as u32) | ((self.u16() as u32) << 16)
    }
    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}
