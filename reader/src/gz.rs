//! The `zstd-gz` and `zstd-delta-gz` blob encodings (FORMAT.md §4.4): gzip files stored
//! inflated, and deflated again as they are read.
//!
//! A gzip file changes completely when one line of what it holds changes (Debian's
//! changelogs and manual pages: every page of a PostgreSQL minor release names the new
//! version), so neither a delta nor a compressor gets anything out of two builds of it.
//! Most were made by `gzip -9n`, whose output zlib's deflate reproduces bit for bit at
//! level 9. The writer stores such a file as its gzip header and its inflated content
//! (which a delta against the previous build's inflated content makes small) with the
//! level that reproduces it; the reader deflates it again and appends the trailer. A file
//! another deflate made (GNU gzip's own, for larger files) is rebuilt instead from its
//! inflated content and a few bytes of correction data by preflate (level 0, feature
//! `preflate`); files that do not round-trip either way are stored as they are. Every rebuilt content is then checked
//! against its SHA-256 like any other, so a deflate that produced other bytes fails as
//! `hash-mismatch`, never installs them.
//!
//! The same records carry PEM files (certificates, level [`PEM`]): the base64 body is
//! stored decoded and encoded again on read, since base64 spends a third more bytes on
//! keys and signatures that no compressor shrinks.

use std::io::{self, Read};

/// Bytes of one record in an entry's header.
pub const RECORD_LEN: usize = 17;
/// The level of a record for a PEM file (a certificate) whose base64 body is stored
/// decoded: its header is the text up to its body, its "correction data" the text after.
pub const PEM: u8 = 64;
/// Base64 characters on each full line of a PEM body.
const PEM_LINE: usize = 64;

/// A member stored inflated: which one, its gzip header's length, its inflated length, the
/// length of its correction data and the deflate level that reproduces it (0: preflate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rezip {
    /// Index among the blob's members (0 for a blob that is not a pack).
    pub index: u32,
    /// Length of the gzip header (10 bytes and its optional fields).
    pub header_len: u32,
    /// Length of the inflated content.
    pub inflated_len: u32,
    /// Length of the preflate correction data after the inflated content (level 0 only).
    pub corrections_len: u32,
    /// zlib deflate level, 1–9; 0: rebuilt by preflate from the correction data; [`PEM`]:
    /// a PEM body encoded again in base64.
    pub level: u8,
}

/// The parts of a single-member gzip file.
pub struct Gzip<'a> {
    /// The header: 10 bytes, then the optional extra field, name, comment and header CRC.
    pub header: &'a [u8],
    /// The raw deflate stream.
    pub body: &'a [u8],
    /// The trailer's CRC-32 of the inflated content.
    pub crc32: u32,
    /// The trailer's inflated length modulo 2^32.
    pub isize: u32,
}

/// Splits `b` into a gzip header, body and trailer: magic `1F 8B`, method 8, no reserved
/// flag bits, the optional fields the flags announce, and eight trailer bytes. Whether the
/// body inflates to the trailer's content is [`inflate`]'s question.
pub fn parse(b: &[u8]) -> Option<Gzip<'_>> {
    if b.len() < 18 || b[..3] != [0x1F, 0x8B, 8] || b[3] & 0xE0 != 0 {
        return None;
    }
    let flags = b[3];
    let mut at = 10usize;
    if flags & 4 != 0 {
        let xlen = usize::from(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]));
        at = at.checked_add(2 + xlen)?;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            at += b.get(at..)?.iter().position(|&c| c == 0)? + 1;
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    let body_end = b.len().checked_sub(8)?;
    if at > body_end {
        return None;
    }
    let t = &b[body_end..];
    Some(Gzip {
        header: &b[..at],
        body: &b[at..body_end],
        crc32: u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
        isize: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
    })
}

/// The parts of a PEM file (RFC 7468's strict form, as certificate stores hold them).
pub struct Pem<'a> {
    /// Everything up to and including the first line that starts with `-----BEGIN `.
    pub header: &'a [u8],
    /// The base64 lines after it: 64 characters and a line feed each, the last 1–64.
    pub body: &'a [u8],
    /// Everything from the line that starts with `-----END ` on.
    pub trailer: &'a [u8],
}

/// Splits `b` into a PEM header, body and trailer; whether the body decodes and encodes
/// back to itself is [`decode_pem`]'s question.
pub fn parse_pem(b: &[u8]) -> Option<Pem<'_>> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    let begin = (0..b.len()).find(|&i| (i == 0 || b[i - 1] == b'\n') && b[i..].starts_with(BEGIN))?;
    let body_start = begin + b[begin..].iter().position(|&c| c == b'\n')? + 1;
    let mut at = body_start;
    loop {
        let line = &b[at..];
        if line.starts_with(END) {
            break;
        }
        let len = line.iter().position(|&c| c == b'\n')?;
        let base64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
        if len == 0 || len > PEM_LINE || !line[..len].iter().all(base64) {
            return None;
        }
        at += len + 1;
        // Only the last line is short.
        if len < PEM_LINE && !b[at..].starts_with(END) {
            return None;
        }
    }
    (at > body_start).then(|| Pem { header: &b[..body_start], body: &b[body_start..at], trailer: &b[at..] })
}

/// `data` in base64 (RFC 4648, padded) as PEM body lines: 64 characters and `\n` each.
pub fn encode_pem(data: &[u8]) -> Vec<u8> {
    use base64ct::Encoding;
    let text = base64ct::Base64::encode_string(data);
    let mut out = Vec::with_capacity(text.len() + text.len() / PEM_LINE + 1);
    for line in text.as_bytes().chunks(PEM_LINE) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// The bytes a PEM body holds, if it decodes and [`encode_pem`] gives it back exactly, in
/// at most `max` bytes.
pub fn decode_pem(p: &Pem<'_>, max: usize) -> Option<Vec<u8>> {
    use base64ct::Encoding;
    let text: Vec<u8> = p.body.iter().copied().filter(|&c| c != b'\n').collect();
    let data = base64ct::Base64::decode_vec(std::str::from_utf8(&text).ok()?).ok()?;
    (!data.is_empty() && data.len() <= max && encode_pem(&data) == p.body).then_some(data)
}

/// The inflated content of `g`, if its body is one complete deflate stream that uses every
/// byte, inflates to at most `max` bytes, and matches the trailer's CRC-32 and length.
pub fn inflate(g: &Gzip<'_>, max: usize) -> Option<Vec<u8>> {
    let mut d = flate2::bufread::DeflateDecoder::new(g.body);
    let mut out = Vec::with_capacity(g.body.len().saturating_mul(3).min(max).min(1 << 24));
    (&mut d).take(max as u64 + 1).read_to_end(&mut out).ok()?;
    let whole = d.total_in() == g.body.len() as u64;
    let ok = whole && out.len() <= max && crc32fast::hash(&out) == g.crc32 && out.len() as u32 == g.isize;
    ok.then_some(out)
}

/// `data` as one raw deflate stream by zlib at `level` (window 2^15, memory level 8, the
/// default strategy: what `gzip -9n` output is reproduced with).
pub fn deflate(data: &[u8], level: u8) -> io::Result<Vec<u8>> {
    let mut c = flate2::Compress::new(flate2::Compression::new(u32::from(level)), false);
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    loop {
        let consumed = usize::try_from(c.total_in()).map_err(io::Error::other)?;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let status = c
            .compress_vec(data.get(consumed..).unwrap_or(&[]), &mut out, flate2::FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if status == flate2::Status::StreamEnd {
            return Ok(out);
        }
    }
}

/// The deflate stream preflate rebuilds from `inflated` and its `corrections` (what
/// [`preflate_rs::preflate_whole_deflate_stream`] recorded). A panic in the rebuild of
/// damaged correction data is an error here, not a crash.
#[cfg(feature = "preflate")]
pub fn reconstruct(inflated: &[u8], corrections: &[u8]) -> Result<Vec<u8>, String> {
    match std::panic::catch_unwind(|| preflate_rs::recreate_whole_deflate_stream(inflated, corrections)) {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(format!("preflate correction data does not rebuild it: {e:?}")),
        Err(_) => Err("preflate correction data does not rebuild it (the rebuild failed)".into()),
    }
}

/// Without the `preflate` feature (the installer stub) such a member cannot be rebuilt.
#[cfg(not(feature = "preflate"))]
pub fn reconstruct(_inflated: &[u8], _corrections: &[u8]) -> Result<Vec<u8>, String> {
    Err("a gzip file rebuilt by preflate, which this reader was built without".into())
}

/// A reference's *expanded* form, against which a `zstd-delta-gz` frame is decoded: each of
/// its members (`sizes`, in order; one member if they do not add up to its length) that
/// is a gzip file whose body inflates exactly to its trailer's content becomes its header
/// followed by that content, and each other that is a PEM file whose body round-trips its
/// header, its decoded body and its trailer, as long as the expanded form stays within
/// `limit` bytes; every other member stays as it is.
pub fn expand_reference(content: &[u8], sizes: &[u64], limit: usize) -> Vec<u8> {
    let whole = [content.len() as u64];
    let sizes = if sizes.iter().sum::<u64>() == content.len() as u64 { sizes } else { &whole[..] };
    let mut out = Vec::with_capacity(content.len());
    let mut at = 0usize;
    for &size in sizes {
        let Some(member) = usize::try_from(size).ok().and_then(|n| content.get(at..at + n)) else {
            break;
        };
        at += member.len();
        let room = limit.saturating_sub(out.len());
        let gzip = || {
            let g = parse(member)?;
            let inflated = inflate(&g, room.checked_sub(g.header.len())?)?;
            Some((g.header, inflated, &[][..]))
        };
        let pem = || {
            let p = parse_pem(member)?;
            let data = decode_pem(&p, room.checked_sub(p.header.len() + p.trailer.len())?)?;
            Some((p.header, data, p.trailer))
        };
        match gzip().or_else(pem) {
            Some((header, inflated, trailer)) => {
                out.extend_from_slice(header);
                out.extend_from_slice(&inflated);
                out.extend_from_slice(trailer);
            }
            None => out.extend_from_slice(member),
        }
    }
    out
}

/// An entry's records and its inner entry: a little-endian `u32` count, then the records
/// of [`RECORD_LEN`] bytes (index, header length, inflated length, correction length as
/// `u32`, then the level), indexes strictly increasing and below `members`, levels 0–9,
/// correction data with level 0 and only with it.
pub fn parse_entry(data: &[u8], members: usize) -> Result<(Vec<Rezip>, &[u8]), String> {
    let n = data.get(..4).ok_or("shorter than its record count")?;
    let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
    if n > members {
        return Err(format!("{n} records for {members} members"));
    }
    let end = 4 + n * RECORD_LEN;
    let table = data.get(4..end).ok_or("records run past the entry")?;
    let mut records = Vec::with_capacity(n);
    for r in table.chunks_exact(RECORD_LEN) {
        let u = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        let rec = Rezip { index: u(0), header_len: u(4), inflated_len: u(8), corrections_len: u(12), level: r[16] };
        if records.last().is_some_and(|p: &Rezip| rec.index <= p.index) || rec.index as usize >= members {
            return Err("record indexes are not increasing member indexes".into());
        }
        let malformed = if rec.level == PEM {
            rec.inflated_len == 0
        } else {
            rec.level > 9 || rec.header_len < 10 || (rec.level == 0) != (rec.corrections_len > 0)
        };
        if malformed {
            return Err(format!("record for member {} is malformed", rec.index));
        }
        records.push(rec);
    }
    Ok((records, &data[end..]))
}

/// Length of the expanded content the records describe over members of `sizes`.
pub fn expanded_len(records: &[Rezip], sizes: &[u64]) -> Option<u64> {
    let mut total = 0u64;
    let mut r = records.iter().peekable();
    for (i, &size) in sizes.iter().enumerate() {
        let add = match r.next_if(|r| r.index as usize == i) {
            Some(rec) => u64::from(rec.header_len) + u64::from(rec.inflated_len) + u64::from(rec.corrections_len),
            None => size,
        };
        total = total.checked_add(add)?;
    }
    Some(total)
}

/// The blob's content from its expanded form: each recorded member deflated again at its
/// level, with its header before and its trailer after; each must come out at its
/// declared size.
pub fn rebuild(expanded: &[u8], records: &[Rezip], sizes: &[u64]) -> Result<Vec<u8>, String> {
    let total: u64 = sizes.iter().sum();
    let mut out = Vec::with_capacity(usize::try_from(total).map_err(|_| "size does not fit in memory")?);
    let mut at = 0usize;
    let mut r = records.iter().peekable();
    let short = || "expanded content ends early".to_string();
    for (i, &size) in sizes.iter().enumerate() {
        let size = usize::try_from(size).map_err(|_| "size does not fit in memory")?;
        match r.next_if(|r| r.index as usize == i) {
            Some(rec) => {
                let (h, n, c) = (rec.header_len as usize, rec.inflated_len as usize, rec.corrections_len as usize);
                let header = expanded.get(at..at + h).ok_or_else(short)?;
                let inflated = expanded.get(at + h..at + h + n).ok_or_else(short)?;
                let corrections = expanded.get(at + h + n..at + h + n + c).ok_or_else(short)?;
                at += h + n + c;
                if rec.level == PEM {
                    let body = encode_pem(inflated);
                    let rebuilt = h + body.len() + c;
                    if rebuilt != size {
                        return Err(format!("member {i} encodes to {rebuilt} bytes, {size} are declared"));
                    }
                    out.extend_from_slice(header);
                    out.extend_from_slice(&body);
                    out.extend_from_slice(corrections);
                    continue;
                }
                let body = if rec.level == 0 {
                    reconstruct(inflated, corrections).map_err(|e| format!("member {i}: {e}"))?
                } else {
                    deflate(inflated, rec.level).map_err(|e| format!("deflate failed: {e}"))?
                };
                let rebuilt = h + body.len() + 8;
                if rebuilt != size {
                    return Err(format!("member {i} deflates to {rebuilt} bytes, {size} are declared"));
                }
                out.extend_from_slice(header);
                out.extend_from_slice(&body);
                out.extend_from_slice(&crc32fast::hash(inflated).to_le_bytes());
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
            None => {
                out.extend_from_slice(expanded.get(at..at + size).ok_or_else(short)?);
                at += size;
            }
        }
    }
    if at != expanded.len() {
        return Err("expanded content longer than its members".into());
    }
    Ok(out)
}

/// The codec of the frame inside a `-gz` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// One Zstandard frame; with a reference, decoded against its expanded form.
    Zstd,
    /// An LZMA entry as `lzma` (FORMAT.md §4.4).
    Lzma {
        /// With the x86 branch filter (`lzma-x86`).
        x86: bool,
    },
    /// A PPMd entry as `ppmd` (FORMAT.md §4.4).
    Ppmd,
}

/// Decodes a `-gz` entry of a blob whose members are `sizes`: its records, then its inner
/// entry by `inner` — a Zstandard frame decoded against the expanded form of `reference`
/// (the reference's content and its members' sizes) when there is one. The expanded
/// content is bounded by 2^`window_log_max` bytes, as is the expanded reference.
pub fn decode(
    data: &[u8],
    sizes: &[u64],
    inner: Inner,
    reference: Option<(&[u8], &[u64])>,
    window_log_max: u32,
) -> Result<Vec<u8>, String> {
    let limit = 1usize << window_log_max.min(usize::BITS - 2);
    let (records, frame) = parse_entry(data, sizes.len())?;
    let len = expanded_len(&records, sizes)
        .filter(|&n| n <= limit as u64)
        .ok_or_else(|| format!("expanded content larger than the window limit of {limit} bytes"))?
        as usize;
    let zerr = |e: io::Error| format!("stream does not decode: {e}");
    let mut expanded = Vec::with_capacity(len);
    match inner {
        Inner::Zstd => {
            let prefix = reference.map(|(content, sizes)| expand_reference(content, sizes, limit));
            let mut d = match &prefix {
                Some(p) => zstd::stream::read::Decoder::with_ref_prefix(frame, p).map_err(zerr)?,
                None => zstd::stream::read::Decoder::with_buffer(frame).map_err(zerr)?,
            }
            .single_frame();
            d.window_log_max(window_log_max).map_err(zerr)?;
            (&mut d).take(len as u64 + 1).read_to_end(&mut expanded).map_err(zerr)?;
            if !d.get_ref().is_empty() {
                return Err("bytes follow the Zstandard frame".into());
            }
        }
        Inner::Lzma { x86 } => {
            let mut d = crate::lzma::decoder(frame, x86, window_log_max).map_err(zerr)??;
            (&mut d).take(len as u64 + 1).read_to_end(&mut expanded).map_err(zerr)?;
            if !d.get_ref().is_empty() {
                return Err("bytes follow the LZMA stream".into());
            }
        }
        Inner::Ppmd => {
            let mut rest = frame;
            {
                let mut d = crate::ppmd::decoder(&mut rest, window_log_max).map_err(zerr)??;
                (&mut d).take(len as u64 + 1).read_to_end(&mut expanded).map_err(zerr)?;
            }
            if !rest.is_empty() {
                return Err("bytes follow the PPMd stream".into());
            }
        }
    }
    if expanded.len() != len {
        return Err(format!("frame decodes to {} bytes, the records say {len}", expanded.len()));
    }
    rebuild(&expanded, &records, sizes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(content: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut b = flate2::GzBuilder::new();
        if let Some(n) = name {
            b = b.filename(n);
        }
        let mut e = b.write(Vec::new(), flate2::Compression::new(9));
        e.write_all(content).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzip_file_parses_inflates_and_deflates_back_to_its_bytes() {
        let text = b"PostgreSQL 15.20 manual page\n".repeat(200);
        let gz = gzip(&text, Some("psql.1"));
        let g = parse(&gz).unwrap();
        assert_eq!(g.header.len(), 10 + 7);
        assert_eq!(inflate(&g, 1 << 20).unwrap(), text);
        assert!(inflate(&g, text.len() - 1).is_none(), "over the limit");
        assert_eq!(deflate(&text, 9).unwrap(), g.body);
    }

    #[test]
    fn what_is_not_a_whole_gzip_file_is_not_inflated() {
        let gz = gzip(b"hello hello hello", None);
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let mut trailing = gz.clone();
        trailing.splice(n - 8..n - 8, [0u8]);
        for b in [&bad_crc[..], &trailing[..], &gz[..n - 1], b"\x1f\x8b\x08\xe0 not gzip at all"] {
            assert!(parse(b).and_then(|g| inflate(&g, 1 << 20)).is_none());
        }
        // Expanding leaves such members alone.
        let sizes = [bad_crc.len() as u64, gz.len() as u64];
        let both = [bad_crc.clone(), gz.clone()].concat();
        let e = expand_reference(&both, &sizes, 1 << 20);
        assert_eq!(e, [&bad_crc[..], &gz[..10], b"hello hello hello"].concat());
    }

    fn pem(data: &[u8]) -> Vec<u8> {
        [&b"# A comment\n-----BEGIN CERTIFICATE-----\n"[..], &encode_pem(data), b"-----END CERTIFICATE-----\n"].concat()
    }

    #[test]
    fn a_pem_file_decodes_and_encodes_back_to_its_bytes_and_only_a_strict_one_does() {
        let der: Vec<u8> = (0..200u32).map(|i| (i * 151 % 256) as u8).collect();
        let file = pem(&der);
        let p = parse_pem(&file).unwrap();
        assert_eq!(p.header, b"# A comment\n-----BEGIN CERTIFICATE-----\n");
        assert_eq!(p.trailer, b"-----END CERTIFICATE-----\n");
        assert_eq!(decode_pem(&p, 1 << 20).unwrap(), der);
        assert!(decode_pem(&p, der.len() - 1).is_none(), "over the limit");
        let text = String::from_utf8(file.clone()).unwrap();
        let crlf = text.replace('\n', "\r\n");
        let short_middle = text.replacen(
            &text[text.find("-----\n").unwrap() + 6..][..64],
            &text[text.find("-----\n").unwrap() + 6..][..63],
            1,
        );
        // The last character before the padding with a padding bit set: not canonical.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let last = text.find("=\n").unwrap() - 1;
        let v = ALPHABET.iter().position(|&c| c == text.as_bytes()[last]).unwrap();
        assert_eq!(v % 4, 0, "two bytes left: four bits of padding");
        let mut padding_bits = text.clone();
        padding_bits.replace_range(last..last + 1, &(ALPHABET[v + 1] as char).to_string());
        for bad in [crlf, short_middle, padding_bits, text.replace("-----END", "-----FIN"), "no pem here\n".into()] {
            assert!(parse_pem(bad.as_bytes()).and_then(|p| decode_pem(&p, 1 << 20)).is_none(), "{bad}");
        }
        // Expanding a reference decodes it; a record rebuilds it.
        let e = expand_reference(&file, &[file.len() as u64], 1 << 20);
        assert_eq!(e, [p.header, &der[..], p.trailer].concat());
        let rec = Rezip {
            index: 0,
            header_len: p.header.len() as u32,
            inflated_len: der.len() as u32,
            corrections_len: p.trailer.len() as u32,
            level: PEM,
        };
        assert_eq!(rebuild(&e, &[rec], &[file.len() as u64]).unwrap(), file);
        assert!(rebuild(&e, &[rec], &[file.len() as u64 + 1]).unwrap_err().contains("encodes to"));
    }

    #[test]
    fn damaged_correction_data_is_an_error_and_without_preflate_every_level_0_member_is() {
        let r = reconstruct(b"hello hello hello", b"\x01\x02\x03 not correction data");
        #[cfg(not(feature = "preflate"))]
        assert!(r.unwrap_err().contains("built without"));
        #[cfg(feature = "preflate")]
        assert!(r.is_err());
    }

    #[test]
    fn records_are_checked_before_anything_is_decoded() {
        let rec = |index: u32, level: u8| {
            let mut r = Vec::new();
            r.extend_from_slice(&index.to_le_bytes());
            r.extend_from_slice(&10u32.to_le_bytes());
            r.extend_from_slice(&5u32.to_le_bytes());
            r.extend_from_slice(&u32::from(level == 0).to_le_bytes());
            r.push(level);
            r
        };
        let entry = |recs: &[Vec<u8>]| [(recs.len() as u32).to_le_bytes().to_vec(), recs.concat()].concat();
        assert!(parse_entry(&entry(&[rec(0, 9), rec(1, 9)]), 2).is_ok());
        assert!(parse_entry(&entry(&[rec(1, 9), rec(0, 9)]), 2).is_err(), "decreasing");
        assert!(parse_entry(&entry(&[rec(2, 9)]), 2).is_err(), "no such member");
        assert!(parse_entry(&entry(&[rec(0, 0)]), 2).is_ok(), "level 0 with correction data");
        assert!(parse_entry(&entry(&[rec(0, 10)]), 2).is_err(), "level 10");
        assert!(parse_entry(&entry(&[rec(0, PEM)]), 2).is_ok(), "a PEM record");
        assert!(parse_entry(&entry(&[rec(0, PEM + 1)]), 2).is_err(), "level 65");
        let mut empty_pem = rec(0, PEM);
        empty_pem[4..12].copy_from_slice(&[0; 8]);
        assert!(parse_entry(&entry(&[empty_pem]), 2).is_err(), "a PEM record of nothing");
        let mut short_header = rec(0, PEM);
        short_header[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert!(parse_entry(&entry(&[short_header]), 2).is_ok(), "a PEM file may start with its BEGIN line");
        assert!(parse_entry(&entry(&[rec(0, 9), rec(1, 9)]), 1).is_err(), "more records than members");
        assert!(parse_entry(&[255, 255, 255, 255], 3).is_err());
    }
}
