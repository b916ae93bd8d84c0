//! The signature block parser. Properties: no panic; a block it accepts is exactly the
//! canonical encoding of what it read (one spelling per key id and signature).
#![no_main]

use hotfix_schema::sigblock::SigBlock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(b) = SigBlock::parse(data) else { return };
    let mut canonical = SigBlock::header(b.key_id);
    canonical.extend_from_slice(&SigBlock::signature_text(&b.signature));
    assert_eq!(canonical, data, "an accepted block is not in canonical form");
});
