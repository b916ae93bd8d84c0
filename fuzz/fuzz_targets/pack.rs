//! The pack splitter (`read::for_each_member`). Input: a member count, that many 16-bit
//! declared sizes, then the pack's content. Each member's declared hash is that of the
//! content at its declared place (when the content is long enough), so the splitter walks
//! every member and reaches its size checks. Properties: no panic; an accepted pack gives
//! each member exactly its declared bytes.
#![no_main]

use hotfix_schema::{Blob, Digest, Encoding, Member};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};

fuzz_target!(|data: &[u8]| {
    let mut c = hotfix_fuzz::Cursor(data);
    let count = c.u8() as usize % 16;
    let sizes: Vec<u64> = (0..count).map(|_| u64::from(c.u16())).collect();
    let content = c.rest();
    let mut at = 0usize;
    let members: Vec<Member> = sizes
        .iter()
        .map(|&size| {
            let end = at.saturating_add(size as usize).min(content.len());
            let part = &content[at.min(end)..end];
            at = end;
            Member { sha256: Digest(Sha256::digest(part).into()), size }
        })
        .collect();
    let blob = Blob {
        sha256: Digest(Sha256::digest(content).into()),
        size: content.len() as u64,
        encoding: Encoding::Zstd,
        reference: None,
        members,
    };
    let mut seen = Vec::new();
    let r = pkgtool::read::for_each_member(&mut &content[..], &blob, |m, r| {
        let mut got = Vec::new();
        r.read_to_end(&mut got)?;
        seen.push((m.size, got.len() as u64));
        Ok(())
    });
    if r.is_ok() {
        for (declared, got) in seen {
            assert_eq!(declared, got, "a member read other than its declared size");
        }
    }
});
