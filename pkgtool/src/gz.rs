//! The `zstd-gz` and `zstd-delta-gz` entry encoder (FORMAT.md §4.4; the layout and the
//! decoder are [`hotfix_reader::gz`]): finds the members that are gzip files zlib
//! reproduces (or preflate rebuilds) and PEM files, and lays out their expanded form and
//! the entry's records.

use hotfix_reader::gz::{Rezip, decode_pem, deflate, inflate, parse, parse_pem};

pub use hotfix_reader::gz::{PEM, RECORD_LEN, encode_pem, expand_reference, parse_entry};

/// Levels tried, in order: `gzip -9` (Debian's), then zlib's default.
const LEVELS: [u8; 2] = [9, 6];

/// The members of `content` (sizes `sizes`) that are gzip files zlib deflates back to
/// exactly their bytes or, with `preflate`, that preflate rebuilds from a little
/// correction data, or PEM files whose base64 body encodes back to itself, with the
/// expanded content (recorded members as header, inflated
/// content and correction data, the others as they are) — or `None` when there is no
/// such member or the expanded content would exceed `limit` bytes.
pub fn plan(content: &[u8], sizes: &[u64], limit: usize, preflate: bool) -> Option<(Vec<Rezip>, Vec<u8>)> {
    let mut records = Vec::new();
    let mut expanded = Vec::with_capacity(content.len());
    let mut at = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        let member = content.get(at..at + usize::try_from(size).ok()?)?;
        at += member.len();
        let room = limit.checked_sub(expanded.len())?;
        let gzip = parse(member).and_then(|g| {
            let inflated = inflate(&g, room.checked_sub(g.header.len())?)?;
            match LEVELS.into_iter().find(|&l| deflate(&inflated, l).is_ok_and(|d| d == g.body)) {
                Some(level) => Some((g.header, inflated, Vec::new(), level)),
                None if preflate => {
                    let corrections = corrections(g.body, &inflated)?;
                    (g.header.len() + inflated.len() + corrections.len() <= room).then_some((
                        g.header,
                        inflated,
                        corrections,
                        0,
                    ))
                }
                None => None,
            }
        });
        // A PEM file (a certificate): its base64 body decoded, the text after it as the
        // record's "correction data".
        let pem = || {
            let p = parse_pem(member)?;
            let data = decode_pem(&p, room.checked_sub(p.header.len() + p.trailer.len())?)?;
            Some((p.header, data, p.trailer.to_vec(), PEM))
        };
        match gzip.or_else(pem) {
            Some((header, inflated, corrections, level)) => {
                records.push(Rezip {
                    index: u32::try_from(i).ok()?,
                    header_len: u32::try_from(header.len()).ok()?,
                    inflated_len: u32::try_from(inflated.len()).ok()?,
                    corrections_len: u32::try_from(corrections.len()).ok()?,
                    level,
                });
                expanded.extend_from_slice(header);
                expanded.extend_from_slice(&inflated);
                expanded.extend_from_slice(&corrections);
            }
            None => expanded.extend_from_slice(member),
        }
        if expanded.len() > limit {
            return None;
        }
    }
    (!records.is_empty() && at == content.len()).then_some((records, expanded))
}

/// preflate's correction data for `body`, whose inflated bytes are `inflated`, if it
/// rebuilds `body` exactly and is under a quarter of it (a stream preflate predicts badly
/// is better left as it is).
fn corrections(body: &[u8], inflated: &[u8]) -> Option<Vec<u8>> {
    // Verified below by the reader's own rebuild, not twice.
    let config = preflate_rs::PreflateConfig {
        plain_text_limit: inflated.len(),
        verify_compression: false,
        ..Default::default()
    };
    let (chunk, plain) =
        std::panic::catch_unwind(|| preflate_rs::preflate_whole_deflate_stream(body, &config)).ok()?.ok()?;
    let whole = chunk.compressed_size == body.len() && plain.text() == inflated;
    let small = !chunk.corrections.is_empty() && chunk.corrections.len() < body.len() / 4;
    (whole && small && hotfix_reader::gz::reconstruct(inflated, &chunk.corrections).ok()? == body)
        .then_some(chunk.corrections)
}

/// An entry: the records, then the frame.
pub fn entry(records: &[Rezip], frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + records.len() * RECORD_LEN + frame.len());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.index.to_le_bytes());
        out.extend_from_slice(&r.header_len.to_le_bytes());
        out.extend_from_slice(&r.inflated_len.to_le_bytes());
        out.extend_from_slice(&r.corrections_len.to_le_bytes());
        out.push(r.level);
    }
    out.extend_from_slice(frame);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotfix_reader::gz::{Inner, decode};
    use std::io::Write;

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut e = flate2::GzBuilder::new().filename("page.1").write(Vec::new(), flate2::Compression::new(9));
        e.write_all(content).unwrap();
        e.finish().unwrap()
    }

    /// A changelog: varied lines, the newest entry first.
    fn page(entries: u32) -> Vec<u8> {
        let mut x = 7u32;
        let mut word = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ["fix", "buffer", "overflow", "in", "the", "parser", "CVE", "security", "update", "backport"]
                [(x >> 16) as usize % 10]
        };
        let mut out = String::new();
        for e in (0..entries).rev() {
            out.push_str(&format!("postgresql-15 (15.{e}-0+deb12u1) bookworm-security; urgency=medium\n"));
            for _ in 0..8 {
                let line: Vec<&str> = (0..9).map(|_| word()).collect();
                out.push_str(&format!("  * {}\n", line.join(" ")));
            }
        }
        out.into_bytes()
    }

    fn frame(data: &[u8], prefix: Option<&[u8]>) -> Vec<u8> {
        let mut e = match prefix {
            Some(p) => zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, p).unwrap(),
            None => zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap(),
        };
        e.set_pledged_src_size(Some(data.len() as u64)).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_new_build_of_a_gzip_file_is_a_small_delta_and_rebuilds_exactly() {
        let (old_gz, new_gz) = (gzip(&page(18)), gzip(&page(20)));
        let other = b"not compressed, kept as it is".to_vec();
        let new_pack = [other.clone(), new_gz.clone()].concat();
        let sizes = [other.len() as u64, new_gz.len() as u64];
        let (records, expanded) = plan(&new_pack, &sizes, 1 << 27, true).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].index, 1);
        let reference = expand_reference(&old_gz, &[], 1 << 27);
        let e = entry(&records, &frame(&expanded, Some(&reference)));
        // The gzip files share nothing; their contents differ in a version number per line.
        let plain_delta = frame(&new_gz, Some(&old_gz));
        assert!(e.len() * 4 < plain_delta.len(), "gz {} plain {}", e.len(), plain_delta.len());
        assert_eq!(decode(&e, &sizes, Inner::Zstd, Some((&old_gz, &[])), 27).unwrap(), new_pack);
        // Without the reference's expansion the frame does not decode to the content.
        assert_ne!(decode(&e, &sizes, Inner::Zstd, Some((&old_gz[..10], &[])), 27).ok(), Some(new_pack.clone()));
        // zstd-gz and lzma-gz: the same without a reference.
        let e = entry(&records, &frame(&expanded, None));
        assert_eq!(decode(&e, &sizes, Inner::Zstd, None, 27).unwrap(), new_pack);
        let e = entry(&records, &crate::lzma::encode(&expanded, false).unwrap());
        assert_eq!(decode(&e, &sizes, Inner::Lzma { x86: false }, None, 27).unwrap(), new_pack);
        assert!(decode(&[e.clone(), vec![0]].concat(), &sizes, Inner::Lzma { x86: false }, None, 27).is_err());
    }

    #[test]
    fn a_gzip_file_zlib_does_not_reproduce_is_not_recorded() {
        // Level 1 output: neither level 9 nor level 6 reproduces it.
        let mut e = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(1));
        e.write_all(&page(20)).unwrap();
        let gz = e.finish().unwrap();
        assert!(plan(&gz, &[gz.len() as u64], 1 << 27, false).is_none());
        // Nor one whose expansion would pass the limit.
        let good = gzip(&page(20));
        assert!(plan(&good, &[good.len() as u64], 1000, true).is_none());
    }

    #[test]
    fn a_gzip_file_another_deflate_made_is_rebuilt_by_preflate() {
        // zlib's level 1 is not what level 9 or 6 reproduces; preflate rebuilds it.
        let mut e = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(1));
        e.write_all(&page(20)).unwrap();
        let gz = e.finish().unwrap();
        let sizes = [gz.len() as u64];
        let (records, expanded) = plan(&gz, &sizes, 1 << 27, true).unwrap();
        assert_eq!((records[0].level, records[0].corrections_len > 0), (0, true));
        assert!((records[0].corrections_len as usize) < gz.len() / 4);
        let e = entry(&records, &frame(&expanded, None));
        assert_eq!(decode(&e, &sizes, Inner::Zstd, None, 27).unwrap(), gz);
        // Damaged correction data is an error, never other bytes passed off as the file.
        let mut bad = expanded.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        if let Ok(out) = decode(&entry(&records, &frame(&bad, None)), &sizes, Inner::Zstd, None, 27) {
            assert_ne!(out, gz);
        }
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let gz = gzip(&page(20));
        let sizes = [gz.len() as u64];
        let (records, expanded) = plan(&gz, &sizes, 1 << 27, true).unwrap();
        let e = entry(&records, &frame(&expanded, None));
        for i in 0..e.len() {
            let mut d = e.clone();
            d[i] ^= 0x55;
            if let Ok(out) = decode(&d, &sizes, Inner::Zstd, None, 27) {
                assert_eq!(out.len(), gz.len());
            }
        }
        for cut in 0..e.len() {
            assert!(decode(&e[..cut], &sizes, Inner::Zstd, None, 27).is_err());
        }
        // A record that claims a header longer than the member is refused, not trusted.
        let mut bad = records.clone();
        bad[0].header_len = u32::MAX;
        assert!(decode(&entry(&bad, &frame(&expanded, None)), &sizes, Inner::Zstd, None, 27).is_err());
    }
}
