//! The packager: builds signed hotfix packages from a spec and reads them back —
//! verification, inspection and extraction (`schema/FORMAT.md` is the format).
//!
//! The reading half ([`read::verify`] to authenticate, [`read::Verified::decode_into`] to
//! decode, extraction, keys) lives in the `hotfix-reader` crate, which the runtime links
//! without the builder; it is re-exported here under its old paths. The `pkgtool` binary
//! is a thin command line over this library.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bsdelta;
pub mod build;
pub mod cumulative;
pub mod encode;
pub mod gz;
pub mod inspect;
pub mod lzma;
pub mod output;
pub mod ppmd;
pub mod spec;
pub mod tagcheck;

pub use hotfix_reader::{error, extract, keys, read, zipfmt};

pub use error::{Error, Integrity, Result};
pub use keys::TrustedKey;
pub use read::{Verified, verify};
