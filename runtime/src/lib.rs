//! Servicing runtime library: everything `hotfix` does to a system root.
//!
//! [`engine`] is the servicing decision as a pure function over data: which baseline the
//! root is at, which branch and which variant of every component is active and why, whether
//! a package applies, and the file-level difference between two active states. The store,
//! the transactions and the command line are built on top of it and never decide on their own.
#![forbid(unsafe_code)]

pub mod engine;
