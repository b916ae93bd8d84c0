//! The signature block: the last 177 bytes of every package, stored as the zip archive's
//! comment (FORMAT.md §6). It is ASCII, so ordinary zip tools print it as a readable line:
//!
//! ```text
//! HFXSIG/1 ed25519-sha256 key=<16 hex digits> sig=<128 hex digits>
//! ```
//!
//! * `HFXSIG/1` — magic and block version;
//! * `ed25519-sha256` — the algorithm: Ed25519 (RFC 8032, strict verification) over
//!   [`signed_message`], i.e. a domain prefix and the SHA-256 of the covered bytes;
//! * `key=` — the signer's key id: the first 8 bytes of SHA-256 of the 32-byte public key;
//! * `sig=` — the 64-byte signature in lowercase hex: the last 128 bytes of the file.
//!
//! The signature covers every byte of the file before its own 128 hex digits: any stub,
//! every entry, the central directory, the end record with its comment length, and the
//! first 49 bytes of this block.

/// Length of the block, and so of the zip comment.
pub const SIG_BLOCK_LEN: usize = 177;
/// Length of the hex signature at the very end of the file: the only bytes not covered.
pub const SIGNATURE_LEN: usize = 128;
/// The magic that starts the block.
pub const SIG_MAGIC: &[u8] = b"HFXSIG/";
/// The only block version this crate knows.
pub const SIG_BLOCK_VERSION: &str = "1";
/// The only algorithm this crate knows.
pub const ALG_ED25519_SHA256: &str = "ed25519-sha256";
/// Domain separation prefix of the signed message.
pub const SIGNED_MESSAGE_PREFIX: &[u8] = b"hotfix-package/v1 ed25519-sha256\0";

/// A parsed signature block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigBlock {
    /// Signer's key id.
    pub key_id: [u8; 8],
    /// The signature.
    pub signature: [u8; 64],
}

/// Why a signature block was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigBlockError {
    /// Not a signature block at all, or a malformed one.
    NotABlock(String),
    /// A block version or algorithm this crate does not know.
    Unknown(String),
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl SigBlock {
    /// Reads a block from exactly [`SIG_BLOCK_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<SigBlock, SigBlockError> {
        let not = |why: &str| SigBlockError::NotABlock(why.to_string());
        if bytes.len() != SIG_BLOCK_LEN || !bytes.starts_with(SIG_MAGIC) {
            return Err(not("the archive comment is not a signature block"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| not("signature block is not ASCII"))?;
        let fields: Vec<&str> = text.split(' ').collect();
        let [magic, alg, key, sig] = fields[..] else {
            return Err(not("signature block does not have four fields"));
        };
        let version = magic.strip_prefix("HFXSIG/").unwrap_or_default();
        if version != SIG_BLOCK_VERSION {
            return Err(SigBlockError::Unknown(format!("signature block version {version:?}")));
        }
        if alg != ALG_ED25519_SHA256 {
            return Err(SigBlockError::Unknown(format!("algorithm {:?}", alg.escape_debug().to_string())));
        }
        let key_id = key.strip_prefix("key=").and_then(unhex::<8>).ok_or_else(|| not("malformed key id"))?;
        let signature = sig.strip_prefix("sig=").and_then(unhex::<64>).ok_or_else(|| not("malformed signature"))?;
        Ok(SigBlock { key_id, signature })
    }

    /// The covered start of a block, as a signer writes it before signing.
    pub fn header(key_id: [u8; 8]) -> Vec<u8> {
        format!("HFXSIG/{SIG_BLOCK_VERSION} {ALG_ED25519_SHA256} key={} sig=", crate::text::hex(&key_id)).into_bytes()
    }

    /// The signature as it ends the file.
    pub fn signature_text(signature: &[u8; 64]) -> Vec<u8> {
        crate::text::hex(signature).into_bytes()
    }
}

/// The message that `ed25519-sha256` signs: the domain prefix, then the SHA-256 of the
/// covered bytes.
pub fn signed_message(covered_sha256: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_MESSAGE_PREFIX.len() + 32);
    m.extend_from_slice(SIGNED_MESSAGE_PREFIX);
    m.extend_from_slice(covered_sha256);
    m
}

/// Formats a key id as 16 hex digits.
pub fn key_id_hex(id: &[u8; 8]) -> String {
    crate::text::hex(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_and_has_the_fixed_length() {
        let mut block = SigBlock::header([0xab; 8]);
        block.extend(SigBlock::signature_text(&[7; 64]));
        assert_eq!(block.len(), SIG_BLOCK_LEN);
        assert_eq!(SigBlock::parse(&block), Ok(SigBlock { key_id: [0xab; 8], signature: [7; 64] }));
    }

    #[test]
    fn unknown_algorithm_is_told_apart_from_garbage() {
        let mut block = SigBlock::header([1; 8]);
        block.extend(SigBlock::signature_text(&[7; 64]));
        block[9..23].copy_from_slice(b"ed25519-sha512");
        assert!(matches!(SigBlock::parse(&block), Err(SigBlockError::Unknown(_))));
        block[0] = b'X';
        assert!(matches!(SigBlock::parse(&block), Err(SigBlockError::NotABlock(_))));
    }
}
