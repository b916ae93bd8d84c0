//! `filever` on PE and ELF images (and anything else). Properties: no panic, and the
//! same bytes read twice give the same answer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = format!("{:?}", filever::read_bytes(data));
    let b = format!("{:?}", filever::read_bytes(data));
    assert_eq!(a, b, "filever is not deterministic");
});
