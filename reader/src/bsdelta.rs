//! The `bsdiff-zstd` blob encoding (FORMAT.md §4.4): a bsdiff delta — add, copy and seek
//! instructions over a suffix-array match of the new build against its reference — with
//! its three streams (controls, byte-wise differences, extra bytes) each stored as one
//! Zstandard frame.
//!
//! bsdiff finds matches that differ in a few bytes (moved code whose relative addresses
//! shifted), which is where executables' builds differ; zstd's exact-match deltas cannot.
//! This is the applier (the encoder, over the `qbsdiff` crate's matcher, is
//! `pkgtool::bsdelta`): every length and position a (possibly hostile) patch names is
//! checked against the declared size and the reference before anything is written.

use std::io::{self, Read};

/// Controls are three 8-byte integers.
const CONTROL_LEN: usize = 24;
/// Bytes of the two frame lengths that start an entry.
pub const HEADER_LEN: usize = 8;

/// BSDIFF40 "offtin" integers: sign and magnitude, little-endian.
pub fn decode_int(b: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[..8]);
    let x = u64::from_le_bytes(raw);
    let magnitude = (x & (u64::MAX >> 1)) as i64;
    if x >> 63 == 1 { magnitude.wrapping_neg() } else { magnitude }
}

/// A decoder of one zstd frame within the window limit; what it may produce is bounded by
/// the controls, which are bounded by the declared size.
fn frame(data: &[u8], window_log_max: u32) -> io::Result<zstd::stream::read::Decoder<'static, io::BufReader<&[u8]>>> {
    let mut d = zstd::stream::read::Decoder::new(data)?.single_frame();
    d.window_log_max(window_log_max)?;
    Ok(d)
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), String> {
    r.read_exact(buf).map_err(|e| format!("{what} stream ends early or does not decode: {e}"))
}

/// Applies an encoded patch to `reference`, producing exactly `size` bytes or an error that
/// says what is wrong. Nothing is produced beyond `size`.
pub fn decode(reference: &[u8], data: &[u8], size: u64, window_log_max: u32) -> Result<Vec<u8>, String> {
    let size = usize::try_from(size).map_err(|_| "declared size does not fit in memory".to_string())?;
    let header = data.get(..HEADER_LEN).ok_or("shorter than its header")?;
    let clen = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let dlen = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let ctrl_end = HEADER_LEN.checked_add(clen).ok_or("frame lengths overflow")?;
    let diff_end = ctrl_end.checked_add(dlen).ok_or("frame lengths overflow")?;
    let (ctrl, diff, extra) = match (data.get(HEADER_LEN..ctrl_end), data.get(ctrl_end..diff_end), data.get(diff_end..))
    {
        (Some(c), Some(d), Some(e)) => (c, d, e),
        _ => return Err("frame lengths run past the entry".into()),
    };
    let zerr = |e: io::Error| format!("stream does not decode: {e}");
    let mut ctrl = frame(ctrl, window_log_max).map_err(zerr)?;
    let mut diff = frame(diff, window_log_max).map_err(zerr)?;
    let mut extra = frame(extra, window_log_max).map_err(zerr)?;

    let mut out: Vec<u8> = Vec::with_capacity(size.min(1 << 27));
    let mut old_pos: i64 = 0;
    let mut control = [0u8; CONTROL_LEN];
    let mut chunk = vec![0u8; 64 << 10];
    // Each useful control produces at least one byte; a few empty ones are tolerated.
    let mut controls_left = size.saturating_add(64);
    loop {
        // End of the control stream: every stream must be used up.
        let n = read_full(&mut ctrl, &mut control).map_err(zerr)?;
        if n == 0 {
            break;
        }
        if n != CONTROL_LEN {
            return Err("control stream ends inside a control".into());
        }
        controls_left = controls_left.checked_sub(1).ok_or("more controls than the declared size allows")?;
        let add = decode_int(&control[0..8]);
        let copy = decode_int(&control[8..16]);
        let seek = decode_int(&control[16..24]);
        let (Ok(add), Ok(copy)) = (usize::try_from(add), usize::try_from(copy)) else {
            return Err("negative length in a control".into());
        };
        if add.checked_add(copy).and_then(|n| n.checked_add(out.len())).is_none_or(|end| end > size) {
            return Err(format!("controls produce more than the declared {size} bytes"));
        }
        let mut left = add;
        while left > 0 {
            let k = left.min(chunk.len());
            read_exact_or(&mut diff, &mut chunk[..k], "difference")?;
            for (i, byte) in chunk[..k].iter().enumerate() {
                // As in bspatch: reference bytes outside the reference count as zero.
                let at = old_pos.checked_add(i as i64).and_then(|p| usize::try_from(p).ok());
                let old = at.and_then(|p| reference.get(p)).copied().unwrap_or(0);
                out.push(byte.wrapping_add(old));
            }
            old_pos = old_pos.checked_add(k as i64).ok_or("reference position overflows")?;
            left -= k;
        }
        let mut left = copy;
        while left > 0 {
            let k = left.min(chunk.len());
            read_exact_or(&mut extra, &mut chunk[..k], "extra")?;
            out.extend_from_slice(&chunk[..k]);
            left -= k;
        }
        old_pos = old_pos.checked_add(seek).ok_or("reference position overflows")?;
    }
    if out.len() != size {
        return Err(format!("controls produce {} bytes, the declared size is {size}", out.len()));
    }
    let mut probe = [0u8; 1];
    if read_full(&mut diff, &mut probe).map_err(zerr)? != 0 || read_full(&mut extra, &mut probe).map_err(zerr)? != 0 {
        return Err("bytes left over in the difference or extra stream".into());
    }
    Ok(out)
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
