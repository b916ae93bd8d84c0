//! LZMA entries (zip method 14) for the `lzma` and `lzma-x86` encodings (FORMAT.md §4.4).
//!
//! The entry's data is a 9-byte header — two version bytes, the length of the properties
//! (5, little-endian `u16`), the LZMA properties (the `lc`/`lp`/`pb` byte and the
//! dictionary size as a little-endian `u32`) — then one raw LZMA stream ending with an
//! end-of-stream marker. For `lzma-x86` the stream decodes to the content passed through
//! the x86 branch filter (the BCJ filter of `xz --x86`, start offset 0).
//!
//! This is the decoder; the encoder is `pkgtool::lzma`.

use std::io::{self, BufRead};

use liblzma::bufread::XzDecoder;
use liblzma::stream::{Filters, Stream};

/// Bytes before the LZMA stream.
pub const HEADER_LEN: usize = 9;
/// A reader of the content of an LZMA entry whose data `inner` yields; `None` with the
/// reason when the header is malformed or asks for a dictionary over `2^max_dict_log`.
pub fn decoder<R: BufRead>(mut inner: R, x86: bool, max_dict_log: u32) -> io::Result<Result<XzDecoder<R>, String>> {
    let mut header = [0u8; HEADER_LEN];
    if let Err(e) = inner.read_exact(&mut header) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Err("shorter than the LZMA header".into())),
            _ => Err(e),
        };
    }
    if header[2..4] != 5u16.to_le_bytes() {
        return Ok(Err(format!("LZMA properties of {} bytes, not 5", u16::from_le_bytes([header[2], header[3]]))));
    }
    let props = &header[4..9];
    let dict = u32::from_le_bytes([props[1], props[2], props[3], props[4]]);
    if u64::from(dict) > 1u64 << max_dict_log.min(62) {
        return Ok(Err(format!("an LZMA dictionary of {dict} bytes is over the 2^{max_dict_log}-byte limit")));
    }
    let mut filters = Filters::new();
    if x86 {
        filters.x86();
    }
    if filters.lzma1_properties(props).is_err() {
        return Ok(Err(format!("invalid LZMA properties {props:02x?}")));
    }
    match Stream::new_raw_decoder(&filters) {
        Ok(stream) => Ok(Ok(XzDecoder::new_stream(inner, stream))),
        Err(e) => Ok(Err(format!("LZMA decoder: {e}"))),
    }
}
