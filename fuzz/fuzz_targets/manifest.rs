//! The manifest parser and validator. Properties: no panic; an accepted manifest's
//! canonical encoding parses back to the same manifest, and is a fixed point.
#![no_main]

use hotfix_schema::{Limits, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(m) = Manifest::from_json(data, &limits) else { return };
    let json = m.to_json();
    let again = Manifest::from_json(&json, &limits).unwrap_or_else(|e| panic!("canonical form is refused: {e}"));
    assert_eq!(m, again, "canonical form parses to another manifest");
    assert_eq!(json, again.to_json(), "canonical form is not a fixed point");
    let _ = m.content_index();
});
