//! The packager: builds signed hotfix packages from a spec and reads them back —
//! verification, inspection and extraction (`schema/FORMAT.md` is the format).
//!
//! The `pkgtool` binary is a thin command line over this library; the runtime uses the
//! reading half ([`read::verify`] to authenticate, [`read::Verified::decode_into`] to decode) to
//! install packages.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bsdelta;
pub mod build;
pub mod encode;
pub mod error;
pub mod extract;
pub mod inspect;
pub mod keys;
pub mod lzma;
pub mod read;
pub mod spec;
pub mod tagcheck;
pub mod zipfmt;

pub use error::{Error, Integrity, Result};
pub use keys::TrustedKey;
pub use read::{Verified, verify};
