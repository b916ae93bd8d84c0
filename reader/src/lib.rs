//! The reading half of the hotfix package format (`schema/FORMAT.md`): the archive reader,
//! authentication ([`read::verify`]) and then decoding ([`read::Verified::decode_into`]),
//! blob decoders (zstd, LZMA, PPMd, bsdiff-zstd, bsdiff-x86-zstd), extraction, and trusted keys.
//!
//! The layering is schema → reader → {pkgtool, runtime}: the builder (`pkgtool`) adds the
//! encoders and the spec parser on top; the runtime and the installer stub link only this.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bsdelta;
pub mod elftables;
pub mod error;
pub mod extract;
pub mod gz;
pub mod keys;
pub mod lzma;
pub mod ppmd;
pub mod read;
pub mod zipfmt;

pub use error::{Error, Integrity, Result};
pub use keys::TrustedKey;
pub use read::{Verified, verify};
