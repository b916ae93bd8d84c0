//! The LZMA entry encoder for the `lzma` and `lzma-x86` encodings (FORMAT.md §4.4); the
//! entry layout and the decoder are [`hotfix_reader::lzma`].
//!
//! LZMA's context-modelled range coder takes about a tenth off what Zstandard leaves of
//! executables, at a tenth of its decoding speed; the encoder uses it where that pays.

use std::io;

pub use hotfix_reader::lzma::{HEADER_LEN, decoder};
use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};

/// The version bytes writers put first (liblzma 5.8); readers ignore them.
const VERSION: [u8; 2] = [5, 8];
/// `lc` = 3, `lp` = 0, `pb` = 2: `(pb * 5 + lp) * 9 + lc`, LZMA's defaults.
const LCLPPB: u8 = (2 * 5) * 9 + 3;
/// Smallest dictionary writers use.
const MIN_DICT: u32 = 4096;

/// Encodes `data` as an entry of the `lzma` (or, with `x86`, `lzma-x86`) encoding at
/// `xz -9` strength, with a dictionary no larger than the content needs.
pub fn encode(data: &[u8], x86: bool) -> io::Result<Vec<u8>> {
    encode_preset(data, x86, 9)
}

/// [`encode`] at `xz` preset `preset` (0–9): a low one is a fast probe.
pub fn encode_preset(data: &[u8], x86: bool, preset: u32) -> io::Result<Vec<u8>> {
    let dict = u32::try_from(data.len().max(1).next_power_of_two()).unwrap_or(1 << 30).clamp(MIN_DICT, 64 << 20);
    let mut opts = LzmaOptions::new_preset(preset).map_err(io::Error::other)?;
    opts.dict_size(dict).literal_context_bits(3).literal_position_bits(0).position_bits(2);
    let mut filters = Filters::new();
    if x86 {
        filters.x86();
    }
    filters.lzma1(&opts);
    let mut stream = Stream::new_raw_encoder(&filters).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(HEADER_LEN + data.len() / 3 + 64);
    out.extend_from_slice(&VERSION);
    out.extend_from_slice(&5u16.to_le_bytes());
    out.push(LCLPPB);
    out.extend_from_slice(&dict.to_le_bytes());
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(1 << 16));
        }
        let before = stream.total_in();
        let status = stream.process_vec(input, &mut out, Action::Finish).map_err(io::Error::other)?;
        let used = usize::try_from(stream.total_in() - before).unwrap_or(input.len());
        input = &input[used.min(input.len())..];
        if status == Status::StreamEnd {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(entry: &[u8], x86: bool) -> io::Result<Vec<u8>> {
        let mut d = decoder(entry, x86, 27)?.map_err(io::Error::other)?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
    }

    fn code_like(n: usize) -> Vec<u8> {
        // Calls (E8 rel32) to a few targets from many places, as in a code section.
        let mut v = Vec::with_capacity(n);
        let mut i = 0u32;
        while v.len() + 8 <= n {
            let target = [0x1000u32, 0x2400, 0x7777][(i % 3) as usize];
            let rel = target.wrapping_sub(v.len() as u32 + 5);
            v.push(0xE8);
            v.extend_from_slice(&rel.to_le_bytes());
            v.extend_from_slice(&[0x48, 0x89, (i % 7) as u8]);
            i += 1;
        }
        v
    }

    #[test]
    fn lzma_and_lzma_x86_entries_round_trip() {
        for data in [Vec::new(), b"hello hello hello".to_vec(), code_like(100_000)] {
            for x86 in [false, true] {
                let e = encode(&data, x86).unwrap();
                assert_eq!(decode(&e, x86).unwrap(), data, "x86={x86}, {} bytes", data.len());
            }
        }
    }

    #[test]
    fn the_x86_filter_shrinks_code_with_repeated_call_targets() {
        let data = code_like(200_000);
        let plain = encode(&data, false).unwrap().len();
        let filtered = encode(&data, true).unwrap().len();
        assert!(filtered < plain, "x86 {filtered} vs plain {plain}");
    }

    #[test]
    fn an_oversized_dictionary_is_refused_before_allocating() {
        let mut e = encode(b"abc", false).unwrap();
        e[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decoder(&e[..], false, 27), Ok(Err(why)) if why.contains("dictionary")));
    }

    #[test]
    fn a_truncated_or_garbled_stream_is_an_error() {
        let data = code_like(50_000);
        let e = encode(&data, false).unwrap();
        assert!(decode(&e[..e.len() / 2], false).is_err());
        let mut bad = e.clone();
        bad[HEADER_LEN + 10] ^= 0xFF;
        assert!(decode(&bad, false).map(|d| d != data).unwrap_or(true));
        assert!(matches!(decoder(&e[..4], false, 27), Ok(Err(_))));
    }
}
