//! The zip profile reader (tail, signature block, central directory, layout). Properties:
//! no panic; an accepted archive's entries lie inside the file, after the prefix, in
//! order, without overlap, and before the central directory; its first entry is the
//! manifest.
#![no_main]

use std::io::Cursor;

use hotfix_schema::{Limits, MANIFEST_ENTRY};
use libfuzzer_sys::fuzz_target;
use pkgtool::zipfmt::Archive;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = Archive::parse(&mut Cursor::new(data), &Limits::default()) else { return };
    assert_eq!(a.len, data.len() as u64);
    assert_eq!(a.entries.first().map(|e| e.name.as_str()), Some(MANIFEST_ENTRY));
    let mut at = a.prefix_len;
    for e in &a.entries {
        assert!(e.offset >= at, "entry {:?} overlaps the one before it", e.name);
        at = e.end();
    }
    assert!(at <= a.cd_offset, "entries run into the central directory");
    assert!(a.cd_offset + a.cd_bytes.len() as u64 <= a.len);
    assert_eq!(&data[a.cd_offset as usize..a.cd_offset as usize + a.cd_bytes.len()], &a.cd_bytes[..]);
    assert_eq!(a.covered_len() + hotfix_schema::sigblock::SIGNATURE_LEN as u64, a.len);
});
