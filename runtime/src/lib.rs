//! Servicing runtime library: everything `hotfix` does to a system root.
//!
//! [`engine`] is the servicing decision as a pure function over data: which baseline the
//! root is at, which branch and which variant of every component is active and why, whether
//! a package applies, and the file-level difference between two active states. The store,
//! the transactions and the command line are built on top of it and never decide on their own.
//!
//! - [`layout`]: where the servicing state lives (`ROOT/.servicing/`);
//! - [`inventory`]: the SQLite inventory (packages, active files, the pending transaction);
//! - [`rootfs`]: directory handles that never follow a link: the only way to a root's files;
//! - [`fsutil`]: durable writes, batched fsyncs and bounded hashing over those handles;
//! - [`store`]: the content-addressed blob store, the stash included;
//! - [`txn`]: applying a plan as a crash-safe transaction, and rolling it back;
//! - [`lock`], [`trust`], [`oplog`]: one operation at a time, trusted keys, the log;
//! - [`ops`]: the commands; [`report`]: what a change says; [`progress`]: progress bars;
//! - [`switches`]: the Windows-style switches (`/quiet`, `/log:FILE`, `/B:QFE`, …);
//! - [`selfpkg`]: recognising a self-contained installer; [`rootcfg`]: which root, when
//!   `--root` is not given;
//! - [`cli`]: the `hotfix` command line and the self-contained installer's, with their
//!   output, exit codes, `/log:FILE` and generated man pages and completions;
//! - [`crash`]: the `HOTFIX_CRASH_AT` fault-injection hook used by the crash tests;
//! - [`sys`]: the two C library calls the standard library lacks (the only `unsafe` code).
#![deny(unsafe_code)]

pub mod cli;
pub mod crash;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod inventory;
pub mod layout;
pub mod lock;
pub mod oplog;
pub mod ops;
pub mod progress;
pub mod report;
pub mod rootcfg;
pub mod rootfs;
pub mod selfpkg;
pub mod store;
pub mod switches;
pub mod sys;
pub mod trust;
pub mod txn;

#[cfg(test)]
mod testutil;

pub use error::{Error, Result};
