//! The signature block: the last 80 bytes of every package, stored as the zip archive's
//! comment (FORMAT.md §6).
//!
//! ```text
//! offset  size  field
//!      0     6  magic "HFXSIG"
//!      6     1  block version (1)
//!      7     1  algorithm (1 = Ed25519 over SHA-256 of the covered bytes)
//!      8     8  key id: the first 8 bytes of SHA-256 of the 32-byte public key
//!     16    64  Ed25519 signature
//! ```
//!
//! The signature covers every byte of the file before its own 64 bytes: any stub, every
//! entry, the central directory, the end record with its comment length, and the first 16
//! bytes of this block.

/// Length of the block, and so of the zip comment.
pub const SIG_BLOCK_LEN: usize = 80;
/// Length of the signature at the very end of the file.
pub const SIGNATURE_LEN: usize = 64;
/// The block's magic bytes.
pub const SIG_MAGIC: &[u8; 6] = b"HFXSIG";
/// The only block version this crate knows.
pub const SIG_BLOCK_VERSION: u8 = 1;
/// Algorithm 1: Ed25519 (RFC 8032, strict verification) over [`signed_message`].
pub const ALG_ED25519_SHA256: u8 = 1;
/// Domain separation prefix of the signed message.
pub const SIGNED_MESSAGE_PREFIX: &[u8] = b"hotfix-package/v1 ed25519-sha256\0";

/// A parsed signature block. Parsing checks only the layout; the caller checks that the
/// version and algorithm are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigBlock {
    /// Block version byte.
    pub version: u8,
    /// Algorithm byte.
    pub algorithm: u8,
    /// Signer's key id.
    pub key_id: [u8; 8],
    /// The signature.
    pub signature: [u8; 64],
}

impl SigBlock {
    /// Reads a block from exactly [`SIG_BLOCK_LEN`] bytes; `None` when the magic is wrong.
    pub fn parse(bytes: &[u8; SIG_BLOCK_LEN]) -> Option<SigBlock> {
        if &bytes[..6] != SIG_MAGIC {
            return None;
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&bytes[8..16]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[16..80]);
        Some(SigBlock { version: bytes[6], algorithm: bytes[7], key_id, signature })
    }

    /// The 16 bytes before the signature, as written by a signer.
    pub fn header(key_id: [u8; 8]) -> [u8; SIG_BLOCK_LEN - SIGNATURE_LEN] {
        let mut out = [0u8; 16];
        out[..6].copy_from_slice(SIG_MAGIC);
        out[6] = SIG_BLOCK_VERSION;
        out[7] = ALG_ED25519_SHA256;
        out[8..].copy_from_slice(&key_id);
        out
    }
}

/// The message that algorithm 1 signs: the domain prefix, then the SHA-256 of the covered
/// bytes.
pub fn signed_message(covered_sha256: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_MESSAGE_PREFIX.len() + 32);
    m.extend_from_slice(SIGNED_MESSAGE_PREFIX);
    m.extend_from_slice(covered_sha256);
    m
}

/// Formats a key id as 16 hex digits.
pub fn key_id_hex(id: &[u8; 8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
