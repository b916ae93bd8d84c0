//! The PPMd entry encoder for the `ppmd` encoding (FORMAT.md §4.4); the entry layout and
//! the decoder are [`hotfix_reader::ppmd`].
//!
//! PPMd variant I at order 16 takes 6–12% off what LZMA at `xz -9e` makes of prose and
//! source code (Perl modules, Python's standard library), at two to three times LZMA's
//! encoding speed; it loses to LZMA on tables and binaries, so the encoder tries it on
//! text only and keeps the smaller.

use std::io::{self, Write};

pub use hotfix_reader::ppmd::{HEADER_LEN, MAX_ORDER, header};
use ppmd_rust::{Ppmd8Encoder, RestoreMethod};

/// The model order the encoder uses: variant I's largest, the best on every text measured.
pub const ORDER: u32 = MAX_ORDER;

/// The model memory, in MiB, for `len` bytes of content: sixteen bytes of model a byte
/// of content (with less the model restarts more often: Perl's modules in 8 MiB packs came
/// out 1.2% larger with eight), at least 1 MiB and at most `2^max_mem_log` bytes or 256 MiB.
pub fn memory_mib(len: usize, max_mem_log: u32) -> u32 {
    let want = (len as u64).saturating_mul(16).next_power_of_two() >> 20;
    let cap = ((1u64 << max_mem_log.min(40)) >> 20).min(256);
    u32::try_from(want.clamp(1, cap.max(1))).unwrap_or(1)
}

/// Encodes `data` as a `ppmd` entry of order [`ORDER`] with [`memory_mib`] of model.
pub fn encode(data: &[u8], max_mem_log: u32) -> io::Result<Vec<u8>> {
    let mem = memory_mib(data.len(), max_mem_log);
    let mut out = Vec::with_capacity(HEADER_LEN + data.len() / 4 + 64);
    out.extend_from_slice(&header(ORDER, mem));
    let mut encoder = Ppmd8Encoder::new(out, ORDER, mem << 20, RestoreMethod::Restart)
        .map_err(|e| io::Error::other(e.to_string()))?;
    encoder.write_all(data)?;
    encoder.finish(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(entry: &[u8]) -> io::Result<Vec<u8>> {
        let mut d = hotfix_reader::ppmd::decoder(entry, 27)?.map_err(io::Error::other)?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
    }

    fn prose(n: usize) -> Vec<u8> {
        let words = ["the", "servicing", "stack", "keeps", "both", "branches", "of", "every", "component", "fix"];
        let mut v = Vec::with_capacity(n);
        let mut x = 7u32;
        while v.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(words[(x >> 16) as usize % words.len()].as_bytes());
            v.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
        }
        v.truncate(n);
        v
    }

    #[test]
    fn ppmd_entries_round_trip_and_consume_all_their_bytes() {
        for n in [0, 1, 100, 300_000] {
            let data = prose(n);
            let entry = encode(&data, 27).unwrap();
            assert_eq!(decode(&entry).unwrap(), data, "{n} bytes");
            // Nothing of the entry is left after the end marker.
            let mut take = io::Read::take(&entry[..], entry.len() as u64);
            let mut d = hotfix_reader::ppmd::decoder(&mut take, 27).unwrap().unwrap();
            io::copy(&mut d, &mut io::sink()).unwrap();
            assert_eq!(take.limit(), 0, "{n} bytes: the decoder stopped early");
        }
        let data = prose(300_000);
        assert!(encode(&data, 27).unwrap().len() < data.len() / 4);
    }

    #[test]
    fn a_ppmd_entry_cut_before_its_end_marker_is_refused() {
        let data = prose(50_000);
        let entry = encode(&data, 27).unwrap();
        let cut = &entry[..entry.len() - 6];
        let err = decode(cut).unwrap_err();
        assert!(err.to_string().contains("end marker") || err.kind() == io::ErrorKind::InvalidData, "{err}");
    }

    #[test]
    fn memory_grows_with_the_content_within_the_limit() {
        assert_eq!(memory_mib(0, 27), 1);
        assert_eq!(memory_mib(1 << 20, 27), 16);
        assert_eq!(memory_mib(8 << 20, 27), 128);
        assert_eq!(memory_mib(100 << 20, 27), 128);
        assert_eq!(memory_mib(100 << 20, 22), 4);
    }
}
