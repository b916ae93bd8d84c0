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
//!
//! The `bsdiff-x86-zstd` encoding is the same patch taken against a *translated*
//! reference ([`translate`]): where a build inserted a few bytes, every x86 call, jump and
//! RIP-relative operand that reaches across the insertion changes, and bsdiff pays a
//! difference byte for each. The controls already say where each stretch of the
//! reference went ([`Moves`]); rewriting the reference's operands to point where their
//! targets went makes those differences zero. The decoder derives the same moves from the
//! same controls, so nothing is sent for them.
//!
//! `bsdiff-elf2-zstd` and `bsdiff-elf3-zstd` translate the reference as ELF
//! ([`crate::elftables`]); `bsdiff-elf3-zstd` also learns, as it decodes, where each
//! target the moves could not place went ([`Learner`]), and keeps its extra bytes'
//! operands absolute ([`absolute_operands`]).

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

/// [`frame`], decoded with `prefix` as its reference prefix (`bsdiff-elf2-zstd`'s extra
/// bytes: new code shares short runs with the reference that bsdiff's matches missed).
fn frame_with_prefix<'a>(
    data: &'a [u8],
    prefix: &'a [u8],
    window_log_max: u32,
) -> io::Result<zstd::stream::read::Decoder<'a, io::BufReader<&'a [u8]>>> {
    let mut d = zstd::stream::read::Decoder::with_ref_prefix(io::BufReader::new(data), prefix)?.single_frame();
    d.window_log_max(window_log_max)?;
    Ok(d)
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), String> {
    r.read_exact(buf).map_err(|e| format!("{what} stream ends early or does not decode: {e}"))
}

/// Shortest add run taken as evidence of where a stretch of the reference went.
pub const MIN_MOVE: usize = 32;

/// Where the controls put the reference's bytes: non-overlapping stretches of the
/// reference, sorted, each with where it starts in the new content.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// (reference start, new start, length).
    blocks: Vec<(usize, usize, usize)>,
}

impl Moves {
    /// The moves of a control sequence (add, copy, seek) over a reference of `ref_len`
    /// bytes: every add of at least [`MIN_MOVE`] bytes, clipped to the reference; sorted by
    /// reference position (ties in control order), an add that overlaps an earlier-kept
    /// one dropped. Controls are assumed checked (non-negative add and copy, no overflow).
    pub fn from_controls(controls: impl IntoIterator<Item = (i64, i64, i64)>, ref_len: usize) -> Moves {
        let mut b = MovesBuilder::new(ref_len);
        for (add, copy, seek) in controls {
            b.push(add, copy, seek);
        }
        b.finish()
    }

    /// The moves of `bsdiff-elf2-zstd`: as [`Moves::from_controls`], except that an add
    /// overlapping an earlier-kept one keeps its part after that one, if that part is at
    /// least [`MIN_MOVE`] bytes (dropping it whole lost, in one library, a 43 KB move that
    /// overlapped the one before it by 112 bytes, and with it every string in `.rodata`).
    pub fn from_controls_clipped(controls: impl IntoIterator<Item = (i64, i64, i64)>, ref_len: usize) -> Moves {
        let mut b = MovesBuilder::new(ref_len);
        for (add, copy, seek) in controls {
            b.push(add, copy, seek);
        }
        b.finish_clipped()
    }

    /// Where reference position `x` went: as [`Moves::map`], else by the last move that
    /// starts before it, if `x` is less than `reach` bytes past its end.
    pub fn map_near(&self, x: usize, reach: usize) -> Option<i64> {
        let i = self.blocks.partition_point(|b| b.0 <= x).checked_sub(1)?;
        let (start, to, len) = self.blocks[i];
        (x - start < len.saturating_add(reach)).then(|| to as i64 + (x - start) as i64)
    }

    /// Where reference position `x` went, if a move covers it.
    pub fn map(&self, x: usize) -> Option<i64> {
        let i = self.blocks.partition_point(|b| b.0 <= x).checked_sub(1)?;
        let (start, to, len) = self.blocks[i];
        (x < start + len).then(|| to as i64 + (x - start) as i64)
    }
}

/// Collects [`Moves`] one control at a time, keeping only the adds long enough to count
/// (at most one per [`MIN_MOVE`] bytes of output).
struct MovesBuilder {
    ref_len: usize,
    old: i64,
    new: i64,
    blocks: Vec<(usize, usize, usize)>,
}

impl MovesBuilder {
    fn new(ref_len: usize) -> Self {
        MovesBuilder { ref_len, old: 0, new: 0, blocks: Vec::new() }
    }

    fn push(&mut self, add: i64, copy: i64, seek: i64) {
        let start = self.old.max(0);
        let end = self.old.saturating_add(add).min(self.ref_len as i64);
        if end - start >= MIN_MOVE as i64 {
            let to = self.new.saturating_add(start - self.old);
            if let (Ok(s), Ok(t), Ok(l)) = (usize::try_from(start), usize::try_from(to), usize::try_from(end - start)) {
                self.blocks.push((s, t, l));
            }
        }
        self.old = self.old.saturating_add(add).saturating_add(seek);
        self.new = self.new.saturating_add(add).saturating_add(copy);
    }

    fn finish_clipped(mut self) -> Moves {
        self.blocks.sort_by_key(|b| b.0);
        let mut kept: Vec<(usize, usize, usize)> = Vec::with_capacity(self.blocks.len());
        for (start, to, len) in self.blocks {
            let cut = kept.last().map_or(0, |k| (k.0 + k.2).saturating_sub(start));
            if len.saturating_sub(cut) >= MIN_MOVE {
                kept.push((start + cut, to + cut, len - cut));
            }
        }
        Moves { blocks: kept }
    }

    fn finish(mut self) -> Moves {
        self.blocks.sort_by_key(|b| b.0);
        let mut kept: Vec<(usize, usize, usize)> = Vec::with_capacity(self.blocks.len());
        for b in self.blocks {
            if kept.last().is_none_or(|k| b.0 >= k.0 + k.2) {
                kept.push(b);
            }
        }
        Moves { blocks: kept }
    }
}

/// One-byte opcodes whose ModR/M byte can name a RIP-relative operand with no immediate
/// after it: mov, lea, the ALU operations, test, movsxd, xchg, and `FF` (call, jmp, push).
pub(crate) const RIP_OPS: [u8; 26] = [
    0x01, 0x03, 0x09, 0x0B, 0x11, 0x13, 0x19, 0x1B, 0x21, 0x23, 0x29, 0x2B, 0x31, 0x33, 0x38, 0x39, 0x3A, 0x3B, 0x63,
    0x85, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8D,
];
/// Their `0F`-prefixed kin: SSE moves and arithmetic, movzx and movsx.
pub(crate) const RIP_OPS_0F: [u8; 18] =
    [0x10, 0x11, 0x28, 0x29, 0x2E, 0x2F, 0x51, 0x54, 0x57, 0x58, 0x59, 0x5C, 0x5E, 0x6F, 0x7F, 0xB6, 0xB7, 0xBE];

/// A byte-indexed set of opcodes: the scans test every byte of code, and `contains` on a
/// short slice is a call to `memchr` (5% of an install's samples).
pub(crate) struct OpSet([bool; 256]);

impl OpSet {
    const fn of(ops: &[u8]) -> OpSet {
        let mut set = [false; 256];
        let mut i = 0;
        while i < ops.len() {
            set[ops[i] as usize] = true;
            i += 1;
        }
        OpSet(set)
    }

    /// Whether `op` is in the set.
    #[inline]
    pub(crate) fn has(&self, op: u8) -> bool {
        self.0[op as usize]
    }
}

/// [`RIP_OPS`] with `FF`, as a set.
pub(crate) static RIP_OP: OpSet = OpSet::of(&{
    let mut ops = [0xFF; 27];
    let mut i = 0;
    while i < RIP_OPS.len() {
        ops[i] = RIP_OPS[i];
        i += 1;
    }
    ops
});
/// [`RIP_OPS_0F`] as a set.
pub(crate) static RIP_OP_0F: OpSet = OpSet::of(&RIP_OPS_0F);

/// The reference with its x86 relative operands pointed where their targets went.
///
/// Scanning from the first byte: `E8`/`E9` (call, jmp) take a 32-bit operand at +1 that
/// ends the instruction; an opcode of [`RIP_OPS`] (or `FF`) followed by a ModR/M byte
/// with mod 00 and r/m 101 takes one at +2, `0F` and an opcode of [`RIP_OPS_0F`] with such
/// a ModR/M byte one at +3, each ending the instruction. For such a candidate at `i`,
/// with operand `d` at `f` and the instruction's end `e`, the target is `e + d`. If the
/// target lies inside the reference, the scan resumes at `e`; and if both `f` and the
/// target are covered by moves, the operand is replaced by `map(target) - (map(f) + (e -
/// f))` when that fits in 32 bits. Otherwise the scan moves one byte on. Positions are
/// file offsets: a target in another segment is off by that segment's skew, which only
/// costs a worse prediction, never a wrong result (the encoder compares).
pub fn translate(reference: &[u8], moves: &Moves) -> Vec<u8> {
    let mut out = reference.to_vec();
    let n = reference.len();
    let mut i = 0usize;
    while i + 5 <= n {
        let op = reference[i];
        let rip = |at: usize| reference.get(at).is_some_and(|m| m & 0xC7 == 0x05);
        let (field, end) = if op == 0xE8 || op == 0xE9 {
            (i + 1, i + 5)
        } else if RIP_OP.has(op) && i + 6 <= n && rip(i + 1) {
            (i + 2, i + 6)
        } else if op == 0x0F && i + 7 <= n && RIP_OP_0F.has(reference[i + 1]) && rip(i + 2) {
            (i + 3, i + 7)
        } else {
            i += 1;
            continue;
        };
        let d =
            i32::from_le_bytes([reference[field], reference[field + 1], reference[field + 2], reference[field + 3]]);
        let target = end as i64 + i64::from(d);
        if target < 0 || target >= n as i64 {
            i += 1;
            continue;
        }
        if let (Some(from), Some(to)) = (moves.map(field), moves.map(target as usize))
            && let Ok(d2) = i32::try_from(to - (from + (end - field) as i64))
        {
            out[field..field + 4].copy_from_slice(&d2.to_le_bytes());
        }
        i = end;
    }
    out
}

/// How a control frame spells its controls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Controls {
    /// BSDIFF40's: three 8-byte sign-and-magnitude integers (`bsdiff-zstd`,
    /// `bsdiff-x86-zstd`, `bsdiff-elf-zstd`; unclipped moves).
    Fixed,
    /// `bsdiff-elf2-zstd`'s: three LEB128 integers, `add` and `copy` unsigned, `seek`
    /// zigzag-signed (a third smaller under zstd; clipped moves).
    Varint,
}

/// The next control of `r`, `None` at the end of the stream; an error when the stream
/// ends inside a control or an integer does not fit.
fn next_control(r: &mut impl Read, how: Controls) -> Result<Option<(i64, i64, i64)>, String> {
    let zerr = |e: io::Error| format!("stream does not decode: {e}");
    let early = || "control stream ends inside a control".to_string();
    match how {
        Controls::Fixed => {
            let mut control = [0u8; CONTROL_LEN];
            match read_full(r, &mut control).map_err(zerr)? {
                0 => Ok(None),
                CONTROL_LEN => {
                    Ok(Some((decode_int(&control[0..8]), decode_int(&control[8..16]), decode_int(&control[16..24]))))
                }
                _ => Err(early()),
            }
        }
        Controls::Varint => {
            let mut byte = [0u8; 1];
            let mut values = [0u64; 3];
            for (k, value) in values.iter_mut().enumerate() {
                let mut shift = 0u32;
                loop {
                    if read_full(r, &mut byte).map_err(zerr)? == 0 {
                        return if k == 0 && shift == 0 { Ok(None) } else { Err(early()) };
                    }
                    let bits = u64::from(byte[0] & 0x7f);
                    if shift == 63 && bits > 1 || shift > 63 {
                        return Err("an integer in a control over 64 bits".into());
                    }
                    *value |= bits << shift;
                    if byte[0] & 0x80 == 0 {
                        break;
                    }
                    shift += 7;
                }
            }
            let length = |v: u64| i64::try_from(v).map_err(|_| "a length in a control of 2^63 or more".to_string());
            let seek = (values[2] >> 1) as i64 ^ -((values[2] & 1) as i64);
            Ok(Some((length(values[0])?, length(values[1])?, seek)))
        }
    }
}

/// Encodes controls as `bsdiff-elf2-zstd` spells them (see [`Controls::Varint`]).
pub fn varint_controls(controls: impl IntoIterator<Item = (i64, i64, i64)>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |mut v: u64| {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    for (add, copy, seek) in controls {
        put(add as u64);
        put(copy as u64);
        put(((seek << 1) ^ (seek >> 63)) as u64);
    }
    out
}

/// The moves of a control frame, checking counts and signs as [`decode`] does.
fn read_moves(ctrl: &[u8], ref_len: usize, size: usize, window_log_max: u32, how: Controls) -> Result<Moves, String> {
    let zerr = |e: io::Error| format!("stream does not decode: {e}");
    let mut r = io::BufReader::new(frame(ctrl, window_log_max).map_err(zerr)?);
    let mut moves = MovesBuilder::new(ref_len);
    let mut produced = 0usize;
    let mut controls_left = size.saturating_add(64);
    loop {
        let Some((add, copy, seek)) = next_control(&mut r, how)? else {
            return Ok(match how {
                Controls::Varint => moves.finish_clipped(),
                Controls::Fixed => moves.finish(),
            });
        };
        controls_left = controls_left.checked_sub(1).ok_or("more controls than the declared size allows")?;
        let (Ok(a), Ok(c)) = (usize::try_from(add), usize::try_from(copy)) else {
            return Err("negative length in a control".into());
        };
        produced = a
            .checked_add(c)
            .and_then(|n| n.checked_add(produced))
            .filter(|&e| e <= size)
            .ok_or_else(|| format!("controls produce more than the declared {size} bytes"))?;
        moves.push(add, copy, seek);
    }
}

/// Applies an encoded `bsdiff-x86-zstd` patch: the controls are read first, the reference
/// is [`translate`]d by their moves, and the patch is applied to that. The translated copy
/// is held while the patch is applied (at most the reference's size again).
pub fn decode_x86(reference: &[u8], data: &[u8], size: u64, window_log_max: u32) -> Result<Vec<u8>, String> {
    decode_translated(reference, data, size, window_log_max, translate)
}

/// Applies an encoded `bsdiff-elf-zstd` patch: as [`decode_x86`], the reference also
/// translated by [`translate_elf`].
pub fn decode_elf(reference: &[u8], data: &[u8], size: u64, window_log_max: u32) -> Result<Vec<u8>, String> {
    decode_translated(reference, data, size, window_log_max, translate_elf)
}

/// [`translate`], then the code addresses in the reference's ELF tables pointed where the
/// moves put their targets ([`crate::elftables`]).
pub fn translate_elf(reference: &[u8], moves: &Moves) -> Vec<u8> {
    let mut out = translate(reference, moves);
    crate::elftables::translate(reference, moves, &mut out);
    out
}

fn decode_translated(
    reference: &[u8],
    data: &[u8],
    size: u64,
    window_log_max: u32,
    translation: fn(&[u8], &Moves) -> Vec<u8>,
) -> Result<Vec<u8>, String> {
    let size_usize = usize::try_from(size).map_err(|_| "declared size does not fit in memory".to_string())?;
    let (ctrl, _, _) = split(data)?;
    let moves = read_moves(ctrl, reference.len(), size_usize, window_log_max, Controls::Fixed)?;
    let translated = translation(reference, &moves);
    decode(&translated, data, size, window_log_max)
}

/// Applies an encoded `bsdiff-elf2-zstd` patch: the controls are read first, the reference
/// is translated by [`translate_elf2`] (each member of a reference pack, `sizes` being
/// their sizes, on its own), the differences are taken against that, and the extra frame
/// is decoded with the reference itself as its prefix.
pub fn decode_elf2(
    reference: &[u8],
    sizes: &[u64],
    data: &[u8],
    size: u64,
    window_log_max: u32,
) -> Result<Vec<u8>, String> {
    let moves = varint_moves(reference, data, size, window_log_max)?;
    let translated = translate_elf2(reference, sizes, &moves);
    apply(&translated, data, size, window_log_max, Some(reference), None)
}

/// The (clipped) moves of an elf2 or elf3 entry's LEB128 controls, checked as the
/// applier checks them.
fn varint_moves(reference: &[u8], data: &[u8], size: u64, window_log_max: u32) -> Result<Moves, String> {
    let size = usize::try_from(size).map_err(|_| "declared size does not fit in memory".to_string())?;
    let (ctrl, _, _) = split(data)?;
    read_moves(ctrl, reference.len(), size, window_log_max, Controls::Varint)
}

/// Applies an encoded `bsdiff-elf3-zstd` patch: as [`decode_elf2`], and each relative
/// value the translation knows ([`crate::elftables::Site`]) is predicted, where an earlier
/// value with the same target has been decoded, from what that one said ([`Learner`]).
pub fn decode_elf3(
    reference: &[u8],
    sizes: &[u64],
    data: &[u8],
    size: u64,
    window_log_max: u32,
) -> Result<Vec<u8>, String> {
    let moves = varint_moves(reference, data, size, window_log_max)?;
    let (mut sites, mut code) = (Vec::new(), Vec::new());
    let translated = translate_elf3(reference, sizes, &moves, &mut sites, &mut code);
    let prefix = absolute_prefix(&translated, &code, &moves);
    let mut learner = Learner::new(&sites);
    apply(&translated, data, size, window_log_max, Some(&prefix), Some(&mut learner))
}

/// Calls the relative operands of `code` with the offset of each: found by scanning bytes
/// as [`translate`] does — `E8`/`E9` (call, jmp), `0F 80`–`0F 8F` (conditional jumps),
/// and the RIP-relative operands of [`RIP_OPS`] (or `FF`) and `0F` [`RIP_OPS_0F`] — each
/// operand skipped once found. The scan reads opcode and ModR/M bytes, never an
/// operand's, so it finds the same operands after [`absolute_operands`] as before.
fn relative_operands(code: &[u8], mut visit: impl FnMut(usize)) {
    let mut i = 0;
    while i + 5 <= code.len() {
        let rip = |at: usize| code.get(at).is_some_and(|m| m & 0xC7 == 0x05);
        let op = code[i];
        let jcc = op == 0x0F && i + 6 <= code.len() && (0x80..0x90).contains(&code[i + 1]);
        let field = if op == 0xE8 || op == 0xE9 {
            i + 1
        } else if jcc || (RIP_OP.has(op) && i + 6 <= code.len() && rip(i + 1)) {
            i + 2
        } else if op == 0x0F && i + 7 <= code.len() && RIP_OP_0F.has(code[i + 1]) && rip(i + 2) {
            i + 3
        } else {
            i += 1;
            continue;
        };
        visit(field);
        i = field + 4;
    }
}

/// `bsdiff-elf3-zstd`'s extra bytes, one copy run at output position `at`: each relative
/// operand ([`relative_operands`]) made (`to_absolute`) the address of its target as the
/// output counts addresses (`at` + its offset + 4 + the operand), or made relative again.
/// Calls to one function then read alike wherever they are, and alike to the reference's
/// in [`absolute_prefix`].
pub fn absolute_operands(run: &mut [u8], at: usize, to_absolute: bool) {
    let mut fields = Vec::new();
    relative_operands(run, |f| fields.push(f));
    for f in fields {
        let end = (at as u64).wrapping_add(f as u64 + 4) as u32;
        let v = u32::from_le_bytes([run[f], run[f + 1], run[f + 2], run[f + 3]]);
        let v2 = if to_absolute { v.wrapping_add(end) } else { v.wrapping_sub(end) };
        run[f..f + 4].copy_from_slice(&v2.to_le_bytes());
    }
}

/// The prefix `bsdiff-elf3-zstd`'s extra bytes are compressed against: the translated
/// reference's code (`code`, ranges of it in order, as [`translate_elf3`] gives them),
/// each range scanned for relative operands on its own and each operand whose place a
/// move carried (or ended less than [`crate::elftables::REACH`] before) made absolute as
/// [`absolute_operands`] does, at the place the move carried it to. (The extra bytes are
/// new code; python3.11's compress 0.2% larger against its code alone than against all
/// of it, in 60% of the time.)
pub fn absolute_prefix(translated: &[u8], code: &[std::ops::Range<usize>], moves: &Moves) -> Vec<u8> {
    let mut out = Vec::new();
    for range in code {
        let Some(bytes) = translated.get(range.clone()) else { continue };
        let at = out.len();
        out.extend_from_slice(bytes);
        let run = &mut out[at..];
        let mut fields = Vec::new();
        relative_operands(run, |f| fields.push(f));
        for f in fields {
            let Some(q) = moves.map_near(range.start + f, crate::elftables::REACH).and_then(|q| u64::try_from(q).ok())
            else {
                continue;
            };
            let end = q.wrapping_add(4) as u32;
            let v = u32::from_le_bytes([run[f], run[f + 1], run[f + 2], run[f + 3]]);
            run[f..f + 4].copy_from_slice(&v.wrapping_add(end).to_le_bytes());
        }
    }
    out
}

/// The reference as `bsdiff-elf3-zstd` translates it, its sites in `sites` and its
/// members' code loads in `code` ([`crate::elftables::translate3`]).
pub fn translate_elf3(
    reference: &[u8],
    sizes: &[u64],
    moves: &Moves,
    sites: &mut Vec<crate::elftables::Site>,
    code: &mut Vec<std::ops::Range<usize>>,
) -> Vec<u8> {
    let mut out = reference.to_vec();
    crate::elftables::translate3(reference, sizes, moves, &mut out, sites, code);
    out
}

/// What `bsdiff-elf3-zstd` learns as it goes: for each target, how far it moved, as the
/// last decoded relative value naming it said. A function the translation could not place
/// (its code changed, bsdiff matched it nowhere) is called from many places; the first
/// call pays in differences, the others are predicted. Both sides run it over the same
/// bytes in the same order: the encoder over the target, the applier over what it has just
/// decoded.
pub struct Learner<'a> {
    sites: &'a [crate::elftables::Site],
    moved: std::collections::HashMap<u64, i64>,
}

impl<'a> Learner<'a> {
    /// A learner over `sites` (in reference order), having learned nothing.
    pub fn new(sites: &'a [crate::elftables::Site]) -> Self {
        Learner { sites, moved: std::collections::HashMap::new() }
    }

    /// Goes over an add run that took `len` bytes from reference position `old` to output
    /// position `new`, site by site (each wholly inside it): `visit` gets the site's offset
    /// in the run and its predicted value if its target has been learned, and returns the
    /// value the output has there, which is learned.
    pub fn run(&mut self, old: i64, new: usize, len: usize, mut visit: impl FnMut(usize, Option<[u8; 4]>) -> [u8; 4]) {
        let (Ok(start), Ok(new)) = (usize::try_from(old), i64::try_from(new)) else { return };
        let Some(end) = start.checked_add(len) else { return };
        let first = self.sites.partition_point(|s| (s.at as usize) < start);
        for site in &self.sites[first..] {
            let at = site.at as usize;
            if at.checked_add(4).is_none_or(|e| e > end) {
                break;
            }
            let offset = at - start;
            // How far the value's base moved: with the run, if the run holds it, else as
            // the moves say.
            let base = site.base as usize;
            let place = if site.base == crate::elftables::ABSOLUTE {
                0
            } else if (start..end).contains(&base) {
                match new.checked_add((base - start) as i64).and_then(|q| q.checked_sub(base as i64)) {
                    Some(p) => p,
                    None => continue,
                }
            } else if site.base_moved != crate::elftables::NOWHERE {
                i64::from(site.base_moved)
            } else {
                continue;
            };
            let predicted = self
                .moved
                .get(&site.key)
                .and_then(|m| i64::from(site.value).checked_add(*m)?.checked_sub(place))
                .and_then(|v| i32::try_from(v).ok())
                .map(i32::to_le_bytes);
            let value = i32::from_le_bytes(visit(offset, predicted));
            if let Some(m) = i64::from(value).checked_sub(i64::from(site.value)).and_then(|d| d.checked_add(place)) {
                self.moved.insert(site.key, m);
            }
        }
    }
}

/// The reference as `bsdiff-elf2-zstd` translates it: [`crate::elftables::translate2`] on
/// a copy (the reference unchanged where no member is x86-64 ELF).
pub fn translate_elf2(reference: &[u8], sizes: &[u64], moves: &Moves) -> Vec<u8> {
    let mut out = reference.to_vec();
    crate::elftables::translate2(reference, sizes, moves, &mut out);
    out
}

/// An entry's three frames: controls, differences, extra bytes.
type Frames<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The three frames of an entry.
fn split(data: &[u8]) -> Result<Frames<'_>, String> {
    let header = data.get(..HEADER_LEN).ok_or("shorter than its header")?;
    let clen = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let dlen = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let ctrl_end = HEADER_LEN.checked_add(clen).ok_or("frame lengths overflow")?;
    let diff_end = ctrl_end.checked_add(dlen).ok_or("frame lengths overflow")?;
    match (data.get(HEADER_LEN..ctrl_end), data.get(ctrl_end..diff_end), data.get(diff_end..)) {
        (Some(c), Some(d), Some(e)) => Ok((c, d, e)),
        _ => Err("frame lengths run past the entry".into()),
    }
}

/// Applies an encoded patch to `reference`, producing exactly `size` bytes or an error that
/// says what is wrong. Nothing is produced beyond `size`.
pub fn decode(reference: &[u8], data: &[u8], size: u64, window_log_max: u32) -> Result<Vec<u8>, String> {
    apply(reference, data, size, window_log_max, None, None)
}

/// [`decode`]; with `elf2_reference` (the untranslated reference of a `bsdiff-elf2-zstd`
/// entry) the extra frame is decoded with it as prefix and the controls are LEB128; with
/// `learner` (`bsdiff-elf3-zstd`) each add run's sites are predicted from it and each
/// copy run's operands are made relative again ([`absolute_operands`]).
fn apply(
    reference: &[u8],
    data: &[u8],
    size: u64,
    window_log_max: u32,
    elf2_reference: Option<&[u8]>,
    mut learner: Option<&mut Learner<'_>>,
) -> Result<Vec<u8>, String> {
    let size = usize::try_from(size).map_err(|_| "declared size does not fit in memory".to_string())?;
    let (ctrl, diff, extra) = split(data)?;
    let zerr = |e: io::Error| format!("stream does not decode: {e}");
    let mut ctrl = io::BufReader::new(frame(ctrl, window_log_max).map_err(zerr)?);
    let mut diff = frame(diff, window_log_max).map_err(zerr)?;
    let mut extra: Box<dyn Read> = match elf2_reference {
        Some(prefix) => Box::new(frame_with_prefix(extra, prefix, window_log_max).map_err(zerr)?),
        None => Box::new(frame(extra, window_log_max).map_err(zerr)?),
    };

    let mut out: Vec<u8> = Vec::with_capacity(size.min(1 << 27));
    let mut old_pos: i64 = 0;
    let mut chunk = vec![0u8; 64 << 10];
    // Each useful control produces at least one byte; a few empty ones are tolerated.
    let mut controls_left = size.saturating_add(64);
    let how = if elf2_reference.is_some() { Controls::Varint } else { Controls::Fixed };
    // Up to the end of the control stream; then every stream must be used up.
    while let Some((add, copy, seek)) = next_control(&mut ctrl, how)? {
        controls_left = controls_left.checked_sub(1).ok_or("more controls than the declared size allows")?;
        let (Ok(add), Ok(copy)) = (usize::try_from(add), usize::try_from(copy)) else {
            return Err("negative length in a control".into());
        };
        if add.checked_add(copy).and_then(|n| n.checked_add(out.len())).is_none_or(|end| end > size) {
            return Err(format!("controls produce more than the declared {size} bytes"));
        }
        let (run_old, run_new) = (old_pos, out.len());
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
        if let Some(l) = learner.as_deref_mut() {
            // The run holds translation + difference; a learned site holds its prediction
            // + difference instead.
            let run = &mut out[run_new..];
            l.run(run_old, run_new, add, |offset, predicted| {
                let field = &mut run[offset..offset + 4];
                if let Some(p) = predicted {
                    let at = usize::try_from(run_old).unwrap_or(0) + offset;
                    for (i, b) in field.iter_mut().enumerate() {
                        let t = reference.get(at + i).copied().unwrap_or(0);
                        *b = b.wrapping_sub(t).wrapping_add(p[i]);
                    }
                }
                [field[0], field[1], field[2], field[3]]
            });
        }
        let (mut left, run_new) = (copy, out.len());
        while left > 0 {
            let k = left.min(chunk.len());
            read_exact_or(&mut extra, &mut chunk[..k], "extra")?;
            out.extend_from_slice(&chunk[..k]);
            left -= k;
        }
        if learner.is_some() {
            absolute_operands(&mut out[run_new..], run_new, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_keep_long_adds_clipped_to_the_reference_without_overlap() {
        // add 40 at 0 → 0; copy 8; seek back 20 → add 40 at 20 (overlaps, dropped); seek to
        // 1000: add 100 at 1000, of which 24 inside a 1024-byte reference (too short).
        let m = Moves::from_controls([(40, 8, -20), (40, 0, 940), (100, 0, 0)], 1024);
        assert_eq!(m.blocks, vec![(0, 0, 40)]);
        assert_eq!(m.map(39), Some(39));
        assert_eq!(m.map(40), None);
        let m = Moves::from_controls([(10, 0, 0), (64, 5, 0)], 100);
        assert_eq!(m.blocks, vec![(10, 10, 64)]);
        assert_eq!(m.map(10), Some(10));
        let m = Moves::from_controls([(0, 16, 0), (64, 0, 0)], 100);
        assert_eq!(m.map(0), Some(16));
    }

    #[test]
    fn clipped_moves_keep_the_part_of_an_overlapping_add_after_the_earlier_one() {
        // add 40 at 0 → 0; copy 8; seek back 20 → add 80 at 20 → 48: its part from 40 on
        // (60 bytes) is kept, where the unclipped moves drop it whole.
        let controls = [(40, 8, -20), (80, 0, 0)];
        assert_eq!(Moves::from_controls(controls, 1024).blocks, vec![(0, 0, 40)]);
        let m = Moves::from_controls_clipped(controls, 1024);
        assert_eq!(m.blocks, vec![(0, 0, 40), (40, 68, 60)]);
        assert_eq!((m.map(39), m.map(40), m.map(99), m.map(100)), (Some(39), Some(68), Some(127), None));
        // A part after the overlap shorter than MIN_MOVE is dropped; one inside is too.
        let m = Moves::from_controls_clipped([(40, 8, -20), (50, 0, -45), (10, 0, 0)], 1024);
        assert_eq!(m.blocks, vec![(0, 0, 40)]);
        // Near a move: positions up to `reach` bytes past its end move with it.
        let m = Moves::from_controls_clipped(controls, 1024);
        assert_eq!((m.map(100), m.map_near(100, 0), m.map_near(100, 8)), (None, None, Some(128)));
        assert_eq!((m.map_near(107, 8), m.map_near(108, 8)), (Some(135), None));
    }

    #[test]
    fn leb128_controls_round_trip_and_bad_ones_are_errors() {
        let controls = [(0, 0, 0), (5, 300, -1), (i64::MAX, 1, i64::MIN), (1 << 40, 0, 1 << 50)];
        let bytes = varint_controls(controls);
        let mut r = &bytes[..];
        for c in controls {
            assert_eq!(next_control(&mut r, Controls::Varint).unwrap(), Some(c));
        }
        assert_eq!(next_control(&mut r, Controls::Varint).unwrap(), None);
        // Ends inside a control, or inside an integer.
        assert!(next_control(&mut &bytes[..2], Controls::Varint).unwrap_err().contains("inside a control"));
        assert!(next_control(&mut &[0x80u8][..], Controls::Varint).unwrap_err().contains("inside a control"));
        // An integer of more than 64 bits; a length of 2^63 or more.
        let long = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0];
        assert!(next_control(&mut &long[..], Controls::Varint).unwrap_err().contains("64 bits"));
        let huge = [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0];
        assert!(next_control(&mut &huge[..], Controls::Varint).unwrap_err().contains("2^63"));
    }

    #[test]
    fn translate_points_calls_and_rip_operands_where_their_targets_went() {
        // A call at 0 to 100 and a lea at 10 to 100; bytes 0..64 stay, 64.. moved 16 on.
        let mut r = vec![0u8; 200];
        r[0] = 0xE8;
        r[1..5].copy_from_slice(&95i32.to_le_bytes());
        r[10..13].copy_from_slice(&[0x48, 0x8D, 0x05]);
        r[13..17].copy_from_slice(&83i32.to_le_bytes());
        // A call whose target lies outside the reference is left alone.
        r[20] = 0xE8;
        r[21..25].copy_from_slice(&1000i32.to_le_bytes());
        let moves = Moves { blocks: vec![(0, 0, 64), (64, 80, 136)] };
        let t = translate(&r, &moves);
        assert_eq!(i32::from_le_bytes(t[1..5].try_into().unwrap()), 111);
        assert_eq!(i32::from_le_bytes(t[13..17].try_into().unwrap()), 99);
        assert_eq!(t[20..25], r[20..25]);
        // Nothing moved: nothing changes.
        assert_eq!(translate(&r, &Moves { blocks: vec![(0, 0, 200)] }), r);
        assert_eq!(translate(&r, &Moves::default()), r);
    }

    /// Absolute and back is the same bytes, whatever the bytes; a call's operand made
    /// absolute is its target as the output counts addresses.
    #[test]
    fn relative_operands_made_absolute_and_relative_again_are_the_same_bytes() {
        let mut x = 99u32;
        let bytes: Vec<u8> = (0..70_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                // Many opcodes: E8, E9, 0F 8x, 8B 05 and 0F 10 05 turn up often.
                [0xE8, 0xE9, 0x0F, 0x85, 0x8B, 0x05, 0x10, (x >> 16) as u8][(x >> 24) as usize % 8]
            })
            .collect();
        for at in [0usize, 7, 0xFFFF_FFF0] {
            let mut run = bytes.clone();
            absolute_operands(&mut run, at, true);
            assert_ne!(run, bytes);
            absolute_operands(&mut run, at, false);
            assert_eq!(run, bytes);
        }
        let mut call = vec![0x90, 0xE8, 0x10, 0, 0, 0, 0x90];
        absolute_operands(&mut call, 0x1000, true);
        assert_eq!(&call[2..6], &(0x1000u32 + 6 + 0x10).to_le_bytes());
        // The prefix: the same call in the reference at 0x200, moved to 0x1000, reads alike.
        let mut reference = vec![0u8; 0x400];
        reference[0x200..0x207].copy_from_slice(&[0x90, 0xE8, 0x10, 0, 0, 0, 0x90]);
        let moves = Moves::from_controls([(0x200, 0xE00, 0), (0x200, 0, 0)], 0x400);
        let whole = 0..reference.len();
        let prefix = absolute_prefix(&reference, std::slice::from_ref(&whole), &moves);
        assert_eq!(&prefix[0x202..0x206], &call[2..6]);
        // Only the code is the prefix: from 0x100, the call is 0x100 earlier in it.
        let code = 0x100..0x300;
        let prefix = absolute_prefix(&reference, std::slice::from_ref(&code), &moves);
        assert_eq!((prefix.len(), &prefix[0x102..0x106]), (0x200, &call[2..6]));
    }

    /// The learner predicts an operand from the last one decoded with the same target,
    /// wherever it is, and nothing for a target not seen yet.
    #[test]
    fn a_learned_target_predicts_later_operands_that_name_it() {
        use crate::elftables::{ABSOLUTE, NOWHERE, Site};
        // Two calls to one function (at 0x1000) from 0x100 and 0x200, one to another; and an
        // absolute pointer to the first.
        let sites = [
            Site { at: 0x100, value: 0x1000 - 0x104, key: 0x1000, base: 0x100, base_moved: NOWHERE },
            Site { at: 0x180, value: 0x3000 - 0x184, key: 0x3000, base: 0x180, base_moved: NOWHERE },
            Site { at: 0x200, value: 0x1000 - 0x204, key: 0x1000, base: 0x200, base_moved: NOWHERE },
            Site { at: 0x280, value: 0x1000, key: 0x1000, base: ABSOLUTE, base_moved: NOWHERE },
        ];
        let mut learner = Learner::new(&sites);
        let mut seen = Vec::new();
        // The function moved 0x40 on; the calls' runs 8 bytes on (one run from 0x100).
        learner.run(0x100, 0x108, 0x200, |offset, predicted| {
            seen.push((offset, predicted.map(i32::from_le_bytes)));
            let site = sites.iter().find(|s| s.at as usize == 0x100 + offset).unwrap();
            let value = if site.base == ABSOLUTE {
                0x1040
            } else {
                site.value + if site.key == 0x1000 { 0x40 - 8 } else { -8 }
            };
            value.to_le_bytes()
        });
        assert_eq!(
            seen,
            vec![(0, None), (0x80, None), (0x100, Some(0x1000 - 0x204 + 0x40 - 8)), (0x180, Some(0x1040))],
            "the first call pays; the second and the pointer are predicted"
        );
        // A run that holds a site only in part: not visited.
        let mut visited = false;
        Learner::new(&sites).run(0x102, 0, 0x10, |_, _| {
            visited = true;
            [0; 4]
        });
        assert!(!visited);
    }
}
