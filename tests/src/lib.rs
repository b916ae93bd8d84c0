//! Support for the end-to-end tests: finding and running the real binaries, writing
//! fixture payloads and specs, and crafting hostile packages that are still validly signed
//! (so that a reader's structural checks are exercised, not only its signature check).
#![forbid(unsafe_code)]

pub mod channel;
pub mod craft;
pub mod fixtures;
pub mod nginx;
pub mod root;
pub mod run;
