//! PPMd entries (zip method 98) for the `ppmd` encoding (FORMAT.md §4.4).
//!
//! The entry's data is the layout of APPNOTE 5.10: a little-endian `u16` holding the model
//! order minus one (bits 0–3), the model's memory in MiB minus one (bits 4–11) and the
//! restoration method (bits 12–15: 0 restart, 1 cut off), then the content range-coded by
//! PPMd variant I revision 1, ending with its end marker.
//!
//! PPMd predicts each byte from the longest context it has seen before, so prose and
//! source text come out a tenth smaller than under LZMA; it decodes at the speed it
//! encodes (several MB/s), which is why the encoder keeps it to text. The decoder is
//! `ppmd-rust` (7-Zip's code in Rust without `unsafe`); the model's memory is the
//! decoder's whole allocation, and is bounded by the window limit before it is made.

use std::io::{self, Read};

#[cfg(feature = "ppmd")]
use ppmd_rust::{Ppmd8Decoder, RestoreMethod};

/// How the model restores itself when its memory is full (without the decoder, the
/// header is still checked).
#[cfg(not(feature = "ppmd"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreMethod {
    /// Start again.
    Restart,
    /// Cut the model down.
    CutOff,
}

/// Bytes before the range-coded stream.
pub const HEADER_LEN: usize = 2;
/// Smallest model order the header can ask for (an order of 1 is not PPMd's).
pub const MIN_ORDER: u32 = 2;
/// Largest model order (variant I's).
pub const MAX_ORDER: u32 = 16;

/// The header for a model of `order` (2–16) in `mem_mib` MiB (1–256) that restarts when
/// its memory is full.
pub fn header(order: u32, mem_mib: u32) -> [u8; HEADER_LEN] {
    let word = (order.clamp(MIN_ORDER, MAX_ORDER) - 1) | ((mem_mib.clamp(1, 256) - 1) << 4);
    (word as u16).to_le_bytes()
}

/// The order, memory in bytes and restoration method a header asks for; the reason when
/// it is not one this format allows, or its memory is over `2^max_mem_log` bytes.
pub fn parse_header(header: [u8; HEADER_LEN], max_mem_log: u32) -> Result<(u32, u32, RestoreMethod), String> {
    let word = u32::from(u16::from_le_bytes(header));
    let order = (word & 0xf) + 1;
    let mem = ((word >> 4) & 0xff) + 1;
    let restore = word >> 12;
    if order < MIN_ORDER {
        return Err(format!("a PPMd model of order {order} (at least {MIN_ORDER})"));
    }
    let restore = match restore {
        0 => RestoreMethod::Restart,
        1 => RestoreMethod::CutOff,
        other => return Err(format!("PPMd restoration method {other} (0 or 1)")),
    };
    if u64::from(mem) << 20 > 1u64 << max_mem_log.min(62) {
        return Err(format!("a PPMd model of {mem} MiB is over the 2^{max_mem_log}-byte limit"));
    }
    Ok((order, mem << 20, restore))
}

/// Notes when the stream below the decoder runs out: the decoder treats that as the end
/// of the content, where this format wants the end marker.
struct NoteEnd<R> {
    inner: R,
    ran_out: bool,
}

impl<R: Read> Read for NoteEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ran_out = true;
        }
        Ok(n)
    }
}

/// A reader of the content of a PPMd entry.
pub struct Decoder<R: Read> {
    #[cfg(feature = "ppmd")]
    inner: Ppmd8Decoder<NoteEnd<R>>,
    /// Without the decoder no value is ever made.
    #[cfg(not(feature = "ppmd"))]
    inner: (NoteEnd<R>, std::convert::Infallible),
}

impl<R: Read> Decoder<R> {
    /// The stream below, for checking that nothing follows the end marker.
    pub fn get_mut(&mut self) -> &mut R {
        #[cfg(feature = "ppmd")]
        return &mut self.inner.get_mut().inner;
        #[cfg(not(feature = "ppmd"))]
        return &mut self.inner.0.inner;
    }
}

impl<R: Read> Read for Decoder<R> {
    #[cfg(feature = "ppmd")]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.get_ref().ran_out {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the PPMd stream ends before its end marker"));
        }
        Ok(n)
    }

    #[cfg(not(feature = "ppmd"))]
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.inner.1 {}
    }
}

/// A reader of the content of a PPMd entry whose data `inner` yields; `None` with the
/// reason when the header is malformed or asks for a model over `2^max_mem_log` bytes,
/// or the stream cannot start.
pub fn decoder<R: Read>(mut inner: R, max_mem_log: u32) -> io::Result<Result<Decoder<R>, String>> {
    let mut header = [0u8; HEADER_LEN];
    if let Err(e) = inner.read_exact(&mut header) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(Err("shorter than the PPMd header".into())),
            _ => Err(e),
        };
    }
    let (order, mem, restore) = match parse_header(header, max_mem_log) {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    #[cfg(feature = "ppmd")]
    return match Ppmd8Decoder::new(NoteEnd { inner, ran_out: false }, order, mem, restore) {
        Ok(inner) => Ok(Ok(Decoder { inner })),
        Err(ppmd_rust::Error::IoError(e)) if e.kind() != io::ErrorKind::UnexpectedEof => Err(e),
        Err(e) => Ok(Err(format!("PPMd decoder: {e}"))),
    };
    #[cfg(not(feature = "ppmd"))]
    {
        let _ = (inner, order, mem, restore);
        Ok(Err("a PPMd entry, which this reader was built without".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_named() {
        let h = header(16, 64);
        assert_eq!(parse_header(h, 27).map(|(o, m, _)| (o, m)), Ok((16, 64 << 20)));
        assert!(parse_header(header(16, 256), 27).unwrap_err().contains("over the 2^27-byte limit"));
        assert!(parse_header([0, 0], 27).unwrap_err().contains("order 1"));
        assert!(parse_header(0x2001u16.to_le_bytes(), 27).unwrap_err().contains("restoration method 2"));
        assert!(parse_header(header(8, 1), 19).unwrap_err().contains("over the 2^19-byte limit"));
    }

    /// The installer stub's reader: a well-formed entry is refused, saying why.
    #[cfg(not(feature = "ppmd"))]
    #[test]
    fn without_the_decoder_a_well_formed_entry_is_refused_by_name() {
        let entry = [&header(16, 8)[..], &[0u8; 16]].concat();
        assert!(matches!(decoder(&entry[..], 27), Ok(Err(why)) if why.contains("built without")));
    }

    #[test]
    fn a_short_entry_is_a_reason_not_a_panic() {
        assert!(matches!(decoder(&[0x0fu8][..], 27), Ok(Err(why)) if why.contains("shorter")));
        assert!(matches!(decoder(&header(6, 1)[..], 27), Ok(Err(_))));
    }
}
