//! Tests of the servicing engine: the vendor's scenarios, applicability and inconsistent
//! inputs, the file diff, and property tests over generated package sets.

mod files;
pub(crate) mod fixtures;
mod props;
mod rules;
mod scenarios;
