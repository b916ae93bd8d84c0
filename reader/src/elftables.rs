//! The ELF half of the `bsdiff-elf-zstd` translation (FORMAT.md §4.4): the tables of an
//! x86-64 ELF file whose values are addresses of code, rewritten in the translated
//! reference to where the bsdiff controls' [`Moves`] put their targets.
//!
//! When a build inserts or removes a few bytes of code, bsdiff pays a difference byte not
//! only for every call that reaches across the change (the x86 half, `translate`) but for
//! every unwind-table entry and symbol after it: `.eh_frame_hdr`'s sorted table of
//! function starts, each `.eh_frame` FDE's start, `.dynsym`'s values, `.rela.dyn`'s
//! addends and the pointers at their places. In libnss3.so those were 7,600 of the
//! 12,000 bytes that still differed.
//!
//! Only the reference is parsed, with every offset checked against it; a reference that
//! is not a 64-bit little-endian ELF file, or a table that does not parse, is left as it
//! is. Values are virtual addresses, turned into file offsets by the reference's `PT_LOAD`
//! segments; a value moves by how far the moves carried its target's offset (less how far
//! they carried its base, for a relative one). A value in a segment laid out anew is off
//! by that segment's skew, which costs compression, never correctness.
//!
//! [`translate2`] is `bsdiff-elf2-zstd`'s translation (code, jump tables, fixed
//! addresses, then these tables, member by member); [`translate3`] is the same and also
//! records the values `bsdiff-elf3-zstd` learns from ([`Site`]).

use crate::bsdelta::Moves;

/// `PT_LOAD`.
const PT_LOAD: u32 = 1;
/// `R_X86_64_RELATIVE`.
const R_X86_64_RELATIVE: u32 = 8;
/// DWARF pointer encoding: 4-byte signed, relative to the field (`DW_EH_PE_pcrel|sdata4`).
const PCREL_SDATA4: u8 = 0x1b;
/// 4-byte signed, relative to `.eh_frame_hdr`'s start (`DW_EH_PE_datarel|sdata4`).
const DATAREL_SDATA4: u8 = 0x3b;
/// 4-byte unsigned (`DW_EH_PE_udata4`).
const UDATA4: u8 = 0x03;
/// Most sections and segments read from a header.
const MAX_HEADERS: usize = 4096;
/// Most `PT_LOAD` segments: linkers write two to five. Every value translated looks its
/// address up among them, so a hostile reference with thousands would make each of
/// millions of table entries cost thousands of steps; one with more is not translated.
const MAX_LOADS: usize = 16;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at.checked_add(2)?).map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}
fn usize_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64_at(b, at)?).ok()
}

/// A section: file offset, size, virtual address.
#[derive(Clone, Copy)]
struct Section {
    offset: usize,
    size: usize,
    addr: u64,
}

/// The reference's layout: its `PT_LOAD` segments (offset, vaddr, size in the file) and
/// the sections the translation reads.
struct Layout {
    segments: Vec<(usize, u64, usize)>,
    /// Every `PT_LOAD` segment: (file offset, vaddr, size in the file, size in memory,
    /// executable).
    loads: Vec<Load>,
    sections: Vec<(Vec<u8>, Section)>,
    /// `ET_EXEC`: linked at fixed addresses, so pointers are absolute and unrelocated.
    exec_type: bool,
}

/// A `PT_LOAD` segment.
#[derive(Clone, Copy, Debug)]
struct Load {
    offset: usize,
    vaddr: u64,
    filesz: usize,
    memsz: u64,
    exec: bool,
}

impl Layout {
    fn parse(r: &[u8]) -> Option<Layout> {
        // ELF64, little-endian, x86-64.
        if !r.starts_with(b"\x7fELF\x02\x01") || u16_at(r, 18)? != 62 {
            return None;
        }
        let (phoff, shoff) = (usize_at(r, 0x20)?, usize_at(r, 0x28)?);
        let (phentsize, phnum) = (u16_at(r, 0x36)?, u16_at(r, 0x38)?);
        let (shentsize, shnum, shstrndx) = (u16_at(r, 0x3a)?, u16_at(r, 0x3c)?, u16_at(r, 0x3e)?);
        if phentsize != 56 || shentsize != 64 || phnum > MAX_HEADERS || shnum > MAX_HEADERS {
            return None;
        }
        let mut segments = Vec::new();
        let mut loads = Vec::new();
        for k in 0..phnum {
            let at = phoff.checked_add(k * 56)?;
            if u32_at(r, at)? == PT_LOAD {
                segments.push((usize_at(r, at + 8)?, u64_at(r, at + 0x10)?, usize_at(r, at + 0x20)?));
                let (offset, filesz) = (usize_at(r, at + 8)?, usize_at(r, at + 0x20)?);
                if offset.checked_add(filesz).is_some_and(|e| e <= r.len()) {
                    loads.push(Load {
                        offset,
                        vaddr: u64_at(r, at + 0x10)?,
                        filesz,
                        memsz: u64_at(r, at + 0x28)?,
                        exec: u32_at(r, at + 4)? & 1 != 0,
                    });
                }
            }
        }
        if segments.len() > MAX_LOADS {
            return None;
        }
        let header = |k: usize| -> Option<(u32, Section)> {
            let at = shoff.checked_add(k.checked_mul(64)?)?;
            let s =
                Section { offset: usize_at(r, at + 0x18)?, size: usize_at(r, at + 0x20)?, addr: u64_at(r, at + 0x10)? };
            // Sections without file bytes (.bss) have nothing to translate.
            let in_file = u32_at(r, at + 4)? != 8 && s.offset.checked_add(s.size).is_some_and(|e| e <= r.len());
            Some((u32_at(r, at)?, if in_file { s } else { Section { size: 0, ..s } }))
        };
        let (_, strtab) = header(shstrndx)?;
        let names = r.get(strtab.offset..strtab.offset + strtab.size)?;
        let mut sections = Vec::new();
        for k in 0..shnum {
            let (name_at, s) = header(k)?;
            let name = names.get(usize::try_from(name_at).ok()?..)?;
            let name = &name[..name.iter().position(|&b| b == 0)?];
            sections.push((name.to_vec(), s));
        }
        Some(Layout { segments, loads, sections, exec_type: u16_at(r, 16)? == 2 })
    }

    fn section(&self, name: &[u8]) -> Option<Section> {
        self.sections.iter().find(|(n, s)| n == name && s.size > 0).map(|(_, s)| *s)
    }

    /// The file offset of virtual address `v`, if a segment holds it.
    fn offset_of(&self, v: u64) -> Option<usize> {
        let holds = |&&(_, vaddr, size): &&(usize, u64, usize)| v.checked_sub(vaddr).is_some_and(|d| d < size as u64);
        let &(off, vaddr, _) = self.segments.iter().find(holds)?;
        off.checked_add(usize::try_from(v - vaddr).ok()?)
    }
}

impl Layout {
    /// The loads whose file bytes hold offset `off` and are executable.
    fn is_code(&self, off: usize) -> bool {
        self.loads.iter().any(|l| l.exec && off >= l.offset && off - l.offset < l.filesz)
    }

    /// The file offset whose shift stands for virtual address `v` (`bsdiff-elf2-zstd`):
    /// through the first load whose memory holds `v`, its own offset when the load's file
    /// bytes hold it, else the load's last file byte (`.bss` follows `.data`).
    fn anchor_of(&self, v: u64) -> Option<usize> {
        self.anchor(v).map(|(a, _)| a)
    }

    /// [`Layout::anchor_of`], and whether the load's file bytes hold `v` itself.
    fn anchor(&self, v: u64) -> Option<(usize, bool)> {
        let l = self.loads.iter().find(|l| v.checked_sub(l.vaddr).is_some_and(|d| d < l.memsz.max(l.filesz as u64)))?;
        let d = usize::try_from(v - l.vaddr).ok()?;
        if d < l.filesz {
            Some((l.offset.checked_add(d)?, true))
        } else {
            Some(((l.offset + l.filesz).checked_sub(1).filter(|_| l.filesz > 0)?, false))
        }
    }
}

/// One ELF file inside the reference: its bytes, where they start in the reference (the
/// moves are the reference's), and what absolute values have taken off their shift.
struct Member<'a> {
    r: &'a [u8],
    base: usize,
    moves: &'a Moves,
    layout: Layout,
    /// `Some(0)` for `bsdiff-elf-zstd`; the shift of the file's first byte for
    /// `bsdiff-elf2-zstd` (a pack's member moves as a whole), `None` when no move covers it
    /// (absolute values are then left alone).
    abs_base: Option<i64>,
    /// How far past the end of a move a position still moves with it: 0 for
    /// `bsdiff-elf-zstd`, [`REACH`] for `bsdiff-elf2-zstd`.
    reach: usize,
    /// Which member of the reference this is (the high byte of its sites' keys).
    index: u64,
}

/// A 4-byte value in the reference, relative or absolute, whose target `bsdiff-elf3-zstd`
/// learns: where it is in the reference, its value there, and its target (a virtual
/// address, the member's index in the high byte). A later value with the same target is
/// predicted from what the last decoded one said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    /// Offset of the value in the reference.
    pub at: u32,
    /// The value there.
    pub value: i32,
    /// Its target's virtual address (low 56 bits), the member's index (high byte).
    pub key: u64,
    /// Offset in the reference of the place whose move the value's own follows: its own
    /// offset for a code operand or an FDE start, the table's start for a jump-table
    /// entry; [`ABSOLUTE`] for an absolute value.
    pub base: u32,
    /// How far the moves carried the base ([`NOWHERE`] if no move did, or the shift is
    /// not an `i32` other than `i32::MIN`).
    pub base_moved: i32,
}

/// [`Site::base_moved`] of a base no move carried.
pub const NOWHERE: i32 = i32::MIN;
/// [`Site::base`] of an absolute value (an address below 2^31 in a fixed-address
/// executable: the low four bytes of a pointer, or a `mov r32, imm32`).
pub const ABSOLUTE: u32 = u32::MAX;

/// Most sites recorded for one reference: 24 bytes each, with a learned value per target
/// (python3.11's 6.8 MB has 254,566).
pub const MAX_SITES: usize = 1 << 21;

/// Where [`translate3`] records sites, and the members' code.
struct Sites<'a> {
    out: &'a mut Vec<Site>,
    code: &'a mut Vec<std::ops::Range<usize>>,
}

impl Sites<'_> {
    fn push(&mut self, m: &Member<'_>, f: usize, value: i32, target: u64, base_off: usize) {
        let global = |x: usize| m.base.checked_add(x).and_then(|a| u32::try_from(a).ok());
        let (Some(at), Some(base)) = (global(f), global(base_off)) else { return };
        let base_moved = m.shift(base_off).and_then(|s| i32::try_from(s).ok()).filter(|&s| s != NOWHERE);
        if self.out.len() < MAX_SITES {
            let key = (target & (u64::MAX >> 8)) | (m.index << 56);
            self.out.push(Site { at, value, key, base, base_moved: base_moved.unwrap_or(NOWHERE) });
        }
    }

    /// An absolute address `v` at `f`, if it is below 2^31.
    fn push_absolute(&mut self, m: &Member<'_>, f: usize, v: u64) {
        let (Some(at), Ok(value)) = (m.base.checked_add(f).and_then(|a| u32::try_from(a).ok()), i32::try_from(v))
        else {
            return;
        };
        if self.out.len() < MAX_SITES {
            let key = (v & (u64::MAX >> 8)) | (m.index << 56);
            self.out.push(Site { at, value, key, base: ABSOLUTE, base_moved: NOWHERE });
        }
    }
}

/// How far past the end of a move `bsdiff-elf2-zstd` takes a position to have moved with
/// it: a function whose code changed is often where the code before it put it, and the
/// calls and jumps to it then are predicted (python3.11's patch 12 KB smaller).
pub const REACH: usize = 1024;

impl Member<'_> {
    /// How far the moves carried the member's offset `x`.
    fn shift(&self, x: usize) -> Option<i64> {
        let x = self.base.checked_add(x)?;
        Some(self.moves.map_near(x, self.reach)? - i64::try_from(x).ok()?)
    }

    /// The 4-byte relative value at `f`, its base address `base` at offset `base_off`.
    fn rel32(&self, out: &mut [u8], f: usize, base: u64, base_off: usize) -> Option<()> {
        let v = i32::from_le_bytes(self.r.get(f..f.checked_add(4)?)?.try_into().ok()?);
        let target = base.checked_add_signed(i64::from(v))?;
        let moved = self.shift(self.layout.offset_of(target)?)? - self.shift(base_off)?;
        let v2 = i32::try_from(i64::from(v) + moved).ok()?;
        out.get_mut(f..f + 4)?.copy_from_slice(&v2.to_le_bytes());
        Some(())
    }

    /// The 8-byte absolute value at `f`.
    fn abs64(&self, out: &mut [u8], f: usize) -> Option<()> {
        let v = u64_at(self.r, f)?;
        let v2 = v.checked_add_signed(self.shift(self.layout.offset_of(v)?)? - self.abs_base?)?;
        out.get_mut(f..f + 8)?.copy_from_slice(&v2.to_le_bytes());
        Some(())
    }
}

/// Rewrites, in `out` (the reference, its x86 operands already translated), the code
/// addresses of the reference's ELF tables to where the moves put them; see the module
/// documentation. Leaves `out` as it is when the reference does not parse as x86-64 ELF.
pub fn translate(reference: &[u8], moves: &Moves, out: &mut [u8]) {
    let Some(layout) = Layout::parse(reference) else { return };
    tables(&Member { r: reference, base: 0, moves, layout, abs_base: Some(0), reach: 0, index: 0 }, out, None);
}

/// The table rules (`.eh_frame_hdr`, `.eh_frame`, `.dynsym`, `.rela.dyn`) of one member,
/// `out` being the member's bytes of the translated reference.
fn tables(m: &Member<'_>, out: &mut [u8], mut sites: Option<&mut Sites<'_>>) {
    let (r, layout) = (m.r, &m.layout);
    if let Some(h) = layout.section(b".eh_frame_hdr") {
        // Not sites: the table is sorted anew, and its values are relative to its start
        // (python3.11's patch 800 bytes larger with them).
        eh_frame_hdr(r, h, out, &mut |out, f, base, base_off| m.rel32(out, f, base, base_off));
    }
    let elf3 = sites.is_some();
    // Each FDE's start is a site.
    let mut rel32 = |out: &mut [u8], f: usize, base: u64, base_off: usize| {
        if let Some(s) = sites.as_deref_mut()
            && let Some(v) = r.get(f..f.checked_add(4)?).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes)
        {
            s.push(m, f, v, base.wrapping_add_signed(i64::from(v)), base_off);
        }
        m.rel32(out, f, base, base_off)
    };
    // elf3: an FDE's CIE pointer (how far back its CIE is) follows the moves too; with
    // one CIE for thousands of FDEs, every FDE after a change of size differs in it.
    let mut cie_pointer = |out: &mut [u8], f: usize, cie: usize| {
        if elf3 {
            let id = i64::from(u32_at(r, f)?);
            let v = u32::try_from(id + m.shift(f)? - m.shift(cie)?).ok().filter(|&v| v != 0)?;
            out.get_mut(f..f + 4)?.copy_from_slice(&v.to_le_bytes());
        }
        Some(())
    };
    if let Some(e) = layout.section(b".eh_frame") {
        eh_frame(r, e, out, &mut rel32, &mut cie_pointer);
    }
    // Symbol values (st_value at +8 of 24-byte entries; undefined ones are 0 and stay).
    if let Some(s) = layout.section(b".dynsym") {
        for at in (s.offset..s.offset + s.size / 24 * 24).step_by(24) {
            if u16_at(r, at + 6).is_some_and(|shndx| shndx != 0) {
                m.abs64(out, at + 8);
            }
        }
    }
    // Relocations: where (r_offset) and, for R_X86_64_RELATIVE, what (r_addend) and the
    // pointer the linker also left at that place (function tables in .data, the GOT).
    if let Some(s) = layout.section(b".rela.dyn") {
        for at in (s.offset..s.offset + s.size / 24 * 24).step_by(24) {
            m.abs64(out, at);
            if u32_at(r, at + 8) == Some(R_X86_64_RELATIVE) {
                m.abs64(out, at + 16);
                if let Some(place) = u64_at(r, at).and_then(|v| layout.offset_of(v)) {
                    m.abs64(out, place);
                }
            }
        }
    }
}

/// Most entries read from one jump table.
const MAX_TABLE: usize = 1 << 16;
/// Absolute values below this are taken for numbers, not addresses (`ET_EXEC` only).
const MIN_ABSOLUTE: u64 = 0x10000;

/// The `bsdiff-elf2-zstd` translation of `reference` into `out` (a copy of it): each
/// member (`sizes`, those of the reference pack's members; empty for one file) that parses
/// as x86-64 ELF gets its code rules, then the [`translate`] table rules; see FORMAT.md
/// §4.4. Returns whether any member parsed (nothing is done when `out` is not as long as
/// `reference`).
pub fn translate2(reference: &[u8], sizes: &[u64], moves: &Moves, out: &mut [u8]) -> bool {
    members(reference, sizes, moves, out, None)
}

/// [`translate2`] for `bsdiff-elf3-zstd`: also records, in reference order, the relative
/// values whose targets the applier learns (calls, jumps, conditional jumps and
/// RIP-relative operands in code, FDE starts; at most [`MAX_SITES`]).
///
/// `code` gets the file bytes of each member's code loads (those rule 1 scans), in order,
/// as ranges of the reference.
pub fn translate3(
    reference: &[u8],
    sizes: &[u64],
    moves: &Moves,
    out: &mut [u8],
    sites: &mut Vec<Site>,
    code: &mut Vec<std::ops::Range<usize>>,
) -> bool {
    sites.clear();
    code.clear();
    let any = members(reference, sizes, moves, out, Some(&mut Sites { out: sites, code }));
    // Stable: of two sites at one offset (a jump table entry that rule 3 reads too), the
    // first recorded is kept.
    sites.sort_by_key(|s| s.at);
    sites.dedup_by_key(|s| s.at);
    any
}

fn members(reference: &[u8], sizes: &[u64], moves: &Moves, out: &mut [u8], mut sites: Option<&mut Sites<'_>>) -> bool {
    if out.len() != reference.len() {
        return false;
    }
    let whole = [reference.len() as u64];
    let sizes = if sizes.is_empty() { &whole[..] } else { sizes };
    let mut base = 0usize;
    let mut any = false;
    for (index, &size) in sizes.iter().enumerate() {
        let Some(end) = usize::try_from(size).ok().and_then(|s| base.checked_add(s)).filter(|&e| e <= reference.len())
        else {
            break;
        };
        let r = &reference[base..end];
        if let Some(layout) = Layout::parse(r) {
            let abs_base = moves.map_near(base, REACH).and_then(|to| Some(to - i64::try_from(base).ok()?));
            let m = Member { r, base, moves, layout, abs_base, reach: REACH, index: index as u64 & 0xff };
            if let Some(s) = sites.as_deref_mut() {
                s.code
                    .extend(scanned(&m.layout.loads, true).iter().map(|l| base + l.offset..base + l.offset + l.filesz));
            }
            code(&m, &mut out[base..end], sites.as_deref_mut());
            tables(&m, &mut out[base..end], sites.as_deref_mut());
            any = true;
        }
        base = end;
    }
    any
}

/// The code loads (`exec`) or the other loads, in header order, without those whose file
/// bytes overlap an earlier one's: a hostile file whose 16 loads all map it whole would
/// otherwise have it scanned 16 times.
fn scanned(loads: &[Load], exec: bool) -> Vec<Load> {
    let mut out: Vec<Load> = Vec::new();
    for l in loads.iter().filter(|l| l.exec == exec) {
        let overlaps = |k: &Load| l.offset < k.offset + k.filesz && k.offset < l.offset + l.filesz;
        if !out.iter().any(overlaps) {
            out.push(*l);
        }
    }
    out
}

/// The code rules of one member: x86 operands in its executable loads (calls, jumps,
/// conditional jumps, RIP-relative operands; under `ET_EXEC` also `mov r32, imm32`
/// addresses), the jump tables their `lea`s name, and under `ET_EXEC` the 8-byte
/// addresses in its other loads.
fn code(m: &Member<'_>, out: &mut [u8], mut sites: Option<&mut Sites<'_>>) {
    let (r, layout) = (m.r, &m.layout);
    // An address `v`, absolute: its new value, if every term is defined.
    let absolute = |v: u64| -> Option<u64> {
        if v < MIN_ABSOLUTE {
            return None;
        }
        v.checked_add_signed(m.shift(layout.anchor_of(v)?)? - m.abs_base?)
    };
    let mut bases: Vec<(usize, u64)> = Vec::new();
    for l in scanned(&layout.loads, true) {
        let (start, end) = (l.offset, l.offset + l.filesz);
        let mut i = start;
        while i + 5 <= end {
            let op = r[i];
            if layout.exec_type && (0xB8..0xC0).contains(&op) {
                let v = u64::from(u32::from_le_bytes([r[i + 1], r[i + 2], r[i + 3], r[i + 4]]));
                if v >= MIN_ABSOLUTE && layout.anchor_of(v).is_some() {
                    if let Some(v2) = absolute(v).and_then(|v2| u32::try_from(v2).ok()) {
                        out[i + 1..i + 5].copy_from_slice(&v2.to_le_bytes());
                    }
                    if let Some(s) = sites.as_deref_mut() {
                        s.push_absolute(m, i + 1, v);
                    }
                    i += 5;
                    continue;
                }
            }
            let rip = |at: usize| at < end && r[at] & 0xC7 == 0x05;
            let (field, e) = if op == 0xE8 || op == 0xE9 {
                (i + 1, i + 5)
            } else if (op == 0x0F && i + 6 <= end && (0x80..0x90).contains(&r[i + 1]))
                || (crate::bsdelta::RIP_OP.has(op) && i + 6 <= end && rip(i + 1))
            {
                // A conditional jump (`0F 8x`), or an operand after a ModR/M byte.
                (i + 2, i + 6)
            } else if op == 0x0F && i + 7 <= end && crate::bsdelta::RIP_OP_0F.has(r[i + 1]) && rip(i + 2) {
                (i + 3, i + 7)
            } else {
                i += 1;
                continue;
            };
            let d = i32::from_le_bytes([r[field], r[field + 1], r[field + 2], r[field + 3]]);
            let target = l.vaddr.wrapping_add((e - l.offset) as u64).wrapping_add_signed(i64::from(d));
            let Some((anchor, in_file)) = layout.anchor(target) else {
                i += 1;
                continue;
            };
            if op == 0x8D && field == i + 2 && in_file && !layout.is_code(anchor) {
                bases.push((anchor, target));
            }
            if let Some(s) = sites.as_deref_mut() {
                s.push(m, field, d, target, field);
            }
            if let (Some(a), Some(f)) = (m.shift(anchor), m.shift(field))
                && let Ok(d2) = i32::try_from(i64::from(d) + a - f)
            {
                out[field..field + 4].copy_from_slice(&d2.to_le_bytes());
            }
            i = e;
        }
    }
    // Jump tables: 4-byte entries, each its target less the table's address, from a base a
    // `lea` names, up to the first entry that does not land in code, the next base, or
    // MAX_TABLE entries.
    bases.sort_unstable();
    bases.dedup_by_key(|b| b.0);
    for (k, &(b, address)) in bases.iter().enumerate() {
        let limit = bases.get(k + 1).map_or(r.len(), |n| n.0);
        let Some(sb) = m.shift(b) else { continue };
        for j in 0..MAX_TABLE {
            let at = b + 4 * j;
            let Some(s) = r.get(at..at + 4).filter(|_| at + 4 <= limit) else { break };
            let v = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            let Some(t) = layout.offset_of(address.wrapping_add_signed(i64::from(v))).filter(|&t| layout.is_code(t))
            else {
                break;
            };
            if let Some(s) = sites.as_deref_mut() {
                s.push(m, at, v, address.wrapping_add_signed(i64::from(v)), b);
            }
            if let Some(st) = m.shift(t)
                && let Ok(v2) = i32::try_from(i64::from(v) + st - sb)
            {
                out[at..at + 4].copy_from_slice(&v2.to_le_bytes());
            }
        }
    }
    // Fixed-address executables: pointers in data (function tables, strings) are plain
    // 8-byte addresses, with no relocation to name them.
    if layout.exec_type {
        for l in scanned(&layout.loads, false) {
            let first = l.offset + (8 - (l.vaddr % 8) as usize) % 8;
            let end = l.offset + l.filesz;
            let mut at = first;
            while at + 8 <= end {
                if let Some(v) = u64_at(r, at) {
                    if let Some(v2) = absolute(v) {
                        out[at..at + 8].copy_from_slice(&v2.to_le_bytes());
                    }
                    if v >= MIN_ABSOLUTE
                        && layout.anchor_of(v).is_some()
                        && let Some(s) = sites.as_deref_mut()
                    {
                        s.push_absolute(m, at, v);
                    }
                }
                at += 8;
            }
        }
    }
}

/// `.eh_frame_hdr`: version 1, its encodings, a pointer to `.eh_frame`, the count, then
/// the table of (function start, FDE) pairs relative to the section's start.
fn eh_frame_hdr(
    r: &[u8],
    h: Section,
    out: &mut [u8],
    rel32: &mut impl FnMut(&mut [u8], usize, u64, usize) -> Option<()>,
) {
    let at = h.offset;
    let Some(head) = r.get(at..at + 12) else { return };
    if head[0] != 1 || head[2] != UDATA4 || head[3] != DATAREL_SDATA4 {
        return;
    }
    if head[1] == PCREL_SDATA4 {
        rel32(out, at + 4, h.addr.wrapping_add(4), at + 4);
    }
    let count = u32_at(r, at + 8).map_or(0, |c| c as usize).min(h.size.saturating_sub(12) / 8);
    for k in 0..count {
        let f = at + 12 + k * 8;
        rel32(out, f, h.addr, at);
        rel32(out, f + 4, h.addr, at);
    }
}

/// `.eh_frame`: CIEs and FDEs; each FDE's first field (its function's start), in the
/// encoding its CIE's augmentation names, is translated when that is pc-relative `sdata4`.
fn eh_frame(
    r: &[u8],
    e: Section,
    out: &mut [u8],
    rel32: &mut impl FnMut(&mut [u8], usize, u64, usize) -> Option<()>,
    cie_pointer: &mut impl FnMut(&mut [u8], usize, usize) -> Option<()>,
) {
    let end = e.offset + e.size;
    // By offset: a hostile section of millions of CIEs must not make each FDE a search.
    let mut cies: std::collections::HashMap<usize, u8> = std::collections::HashMap::new();
    let mut at = e.offset;
    while at + 8 <= end {
        let Some(len) = u32_at(r, at) else { return };
        // A zero terminator, or a 64-bit record (not written by x86-64 toolchains).
        if len == 0 || len == u32::MAX {
            return;
        }
        let Some(next) = (at + 4).checked_add(len as usize).filter(|&n| n <= end) else { return };
        let Some(id) = u32_at(r, at + 4) else { return };
        if id == 0 {
            cies.insert(at, fde_encoding(r.get(at + 8..next).unwrap_or_default()));
        } else if let Some(cie) = (at + 4).checked_sub(id as usize)
            && let Some(&encoding) = cies.get(&cie)
        {
            cie_pointer(out, at + 4, cie);
            if encoding == PCREL_SDATA4 {
                let f = at + 8;
                rel32(out, f, e.addr.wrapping_add((f - e.offset) as u64), f);
            }
        }
        at = next;
    }
}

/// The FDE pointer encoding a CIE's body (after its id) declares: its `R` augmentation,
/// absolute (0) without one, 0xff (none we translate) when the augmentation does not parse.
fn fde_encoding(body: &[u8]) -> u8 {
    let uleb = |b: &[u8], mut at: usize| -> Option<usize> {
        while *b.get(at)? & 0x80 != 0 {
            at += 1;
        }
        Some(at + 1)
    };
    let parse = || -> Option<u8> {
        let version = *body.first()?;
        let aug_end = 1 + body.get(1..)?.iter().position(|&b| b == 0)?;
        let aug = &body[1..aug_end];
        let mut at = uleb(body, uleb(body, aug_end + 1)?)?; // code, data alignment
        at = if version == 1 { at + 1 } else { uleb(body, at)? }; // return address register
        if aug.first() != Some(&b'z') {
            return Some(0);
        }
        at = uleb(body, at)?; // augmentation data length
        for &c in &aug[1..] {
            match c {
                b'R' => return body.get(at).copied(),
                b'L' => at += 1,
                b'P' => {
                    let size = match *body.get(at)? & 0x0f {
                        0x02 | 0x0a => 2,
                        0x03 | 0x0b => 4,
                        0x00 | 0x04 | 0x0c => 8,
                        _ => return None,
                    };
                    at += 1 + size;
                }
                b'S' | b'B' => {}
                _ => return None,
            }
        }
        Some(0)
    };
    parse().unwrap_or(0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: &mut [u8], at: usize, bytes: &[u8]) {
        v[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// A small x86-64 ELF file: one segment mapping it at address 0; `.eh_frame_hdr` at
    /// 0x200, `.eh_frame` (a CIE with `zR`, pcrel sdata4, and an FDE) at 0x300, `.dynsym`
    /// at 0x400, `.rela.dyn` at 0x480, section names at 0x500, headers at 0x600. Every
    /// table names the function at 0x1000.
    fn elf() -> Vec<u8> {
        let mut v = vec![0u8; 0x3000];
        put(&mut v, 0, b"\x7fELF\x02\x01\x01");
        put(&mut v, 18, &62u16.to_le_bytes());
        put(&mut v, 0x20, &64u64.to_le_bytes()); // e_phoff
        put(&mut v, 0x28, &0x600u64.to_le_bytes()); // e_shoff
        put(&mut v, 0x36, &56u16.to_le_bytes());
        put(&mut v, 0x38, &1u16.to_le_bytes());
        put(&mut v, 0x3a, &64u16.to_le_bytes());
        put(&mut v, 0x3c, &6u16.to_le_bytes());
        put(&mut v, 0x3e, &5u16.to_le_bytes());
        put(&mut v, 64, &PT_LOAD.to_le_bytes());
        put(&mut v, 64 + 0x20, &0x3000u64.to_le_bytes()); // p_filesz (offset, vaddr 0)
        // .eh_frame_hdr: pointer to .eh_frame, one entry: (0x1000, FDE at 0x318).
        put(&mut v, 0x200, &[1, PCREL_SDATA4, UDATA4, DATAREL_SDATA4]);
        put(&mut v, 0x204, &(0x300i32 - 0x204).to_le_bytes());
        put(&mut v, 0x208, &1u32.to_le_bytes());
        put(&mut v, 0x20c, &(0x1000i32 - 0x200).to_le_bytes());
        put(&mut v, 0x210, &(0x318i32 - 0x200).to_le_bytes());
        // .eh_frame: CIE (length 0x14), version 1, "zR", 1, -8, 16, 1 byte: pcrel sdata4.
        put(&mut v, 0x300, &0x14u32.to_le_bytes());
        put(&mut v, 0x308, &[1, b'z', b'R', 0, 1, 0x78, 16, 1, PCREL_SDATA4]);
        // FDE: its CIE 0x1c back, pc_begin relative to itself, pc_range 0x40.
        put(&mut v, 0x318, &0x14u32.to_le_bytes());
        put(&mut v, 0x31c, &0x1cu32.to_le_bytes());
        put(&mut v, 0x320, &(0x1000i32 - 0x320).to_le_bytes());
        put(&mut v, 0x324, &0x40u32.to_le_bytes());
        // .dynsym: the null symbol, then one defined in section 1 at 0x1000.
        put(&mut v, 0x418 + 6, &1u16.to_le_bytes());
        put(&mut v, 0x418 + 8, &0x1000u64.to_le_bytes());
        // .rela.dyn: a pointer at 0x2000 to 0x1000, which the linker also left there.
        put(&mut v, 0x480, &0x2000u64.to_le_bytes());
        put(&mut v, 0x488, &u64::from(R_X86_64_RELATIVE).to_le_bytes());
        put(&mut v, 0x490, &0x1000u64.to_le_bytes());
        put(&mut v, 0x2000, &0x1000u64.to_le_bytes());
        put(&mut v, 0x500, b"\0.eh_frame_hdr\0.eh_frame\0.dynsym\0.rela.dyn\0.shstrtab\0");
        for (k, (name, offset, size)) in
            [(1, 0x200, 0x14), (15, 0x300, 0x30), (25, 0x400, 0x30), (33, 0x480, 0x18), (43, 0x500, 0x40)]
                .into_iter()
                .enumerate()
        {
            let at = 0x600 + (k + 1) * 64;
            put(&mut v, at, &(name as u32).to_le_bytes());
            put(&mut v, at + 4, &1u32.to_le_bytes());
            put(&mut v, at + 0x10, &(offset as u64).to_le_bytes());
            put(&mut v, at + 0x18, &(offset as u64).to_le_bytes());
            put(&mut v, at + 0x20, &(size as u64).to_le_bytes());
        }
        v
    }

    fn i32_at(v: &[u8], at: usize) -> i32 {
        i32::from_le_bytes(v[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn code_addresses_in_unwind_tables_symbols_and_relocations_follow_the_moves() {
        let r = elf();
        // The first 0x800 bytes stay; everything after moved 16 bytes on.
        let moves = Moves::from_controls([(0x800, 16, 0), (0x2800, 0, 0)], r.len());
        assert_eq!(moves.map(0x1000), Some(0x1010));
        let mut out = r.clone();
        translate(&r, &moves, &mut out);
        assert_eq!(i32_at(&out, 0x204), 0x300 - 0x204, "eh_frame_ptr: both ends stayed");
        assert_eq!(i32_at(&out, 0x20c), 0x1010 - 0x200, "the table's function start");
        assert_eq!(i32_at(&out, 0x210), 0x318 - 0x200, "the table's FDE stayed");
        assert_eq!(i32_at(&out, 0x320), 0x1010 - 0x320, "the FDE's pc_begin");
        assert_eq!(u64_at(&out, 0x418 + 8), Some(0x1010), "the symbol's value");
        assert_eq!(u64_at(&out, 0x480), Some(0x2010), "the relocation's place");
        assert_eq!(u64_at(&out, 0x490), Some(0x1010), "the relocation's addend");
        assert_eq!(u64_at(&out, 0x2000), Some(0x1010), "the pointer at the relocation's place");
        let changed: Vec<usize> = (0..r.len()).filter(|&i| out[i] != r[i]).collect();
        let fields = [0x20c, 0x320, 0x420, 0x480, 0x490, 0x2000];
        assert!(changed.iter().all(|&i| fields.iter().any(|&f| (f..f + 8).contains(&i))), "{changed:x?}");
        // Nothing moved, or not an ELF file: nothing changes.
        let mut same = r.clone();
        translate(&r, &Moves::from_controls([(0x3000, 0, 0)], r.len()), &mut same);
        assert_eq!(same, r);
        // More PT_LOAD segments than linkers write: not translated (each lookup would scan them).
        let mut many = r.clone();
        put(&mut many, 0x20, &0x2800u64.to_le_bytes());
        put(&mut many, 0x38, &((MAX_LOADS + 1) as u16).to_le_bytes());
        for k in 0..=MAX_LOADS {
            put(&mut many, 0x2800 + k * 56, &PT_LOAD.to_le_bytes());
            put(&mut many, 0x2800 + k * 56 + 0x20, &0x3000u64.to_le_bytes());
        }
        let mut out = many.clone();
        translate(&many, &moves, &mut out);
        assert_eq!(out, many);
        let mut not_elf = r.clone();
        not_elf[18] = 3;
        let mut out = not_elf.clone();
        translate(&not_elf, &moves, &mut out);
        assert_eq!(out, not_elf);
    }

    #[test]
    fn damaged_headers_and_tables_are_left_alone_not_a_panic() {
        let r = elf();
        let moves = Moves::from_controls([(0x800, 16, 0), (0x2800, 0, 0)], r.len());
        let regions = (0..0x80).chain(0x200..0x220).chain(0x300..0x330).chain(0x600..0x7c0);
        for at in regions {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = r.clone();
                bad[at] ^= flip;
                let mut out = bad.clone();
                translate(&bad, &moves, &mut out);
                assert_eq!(out.len(), bad.len());
            }
        }
        for cut in [0, 10, 64, 0x210, 0x600, 0x650] {
            let mut out = r[..cut].to_vec();
            translate(&r[..cut], &moves, &mut out);
        }
        // The same for the elf2 translation, on a file with code and data loads, and with
        // member sizes that do not fit the reference.
        let r = two_loads(0x40_0000, true);
        let moves = Moves::from_controls([(0x1400, 16, 0), (0xC00, 16, 0), (0x800, 0, 0)], r.len());
        for at in (0..0x100).chain(0x1000..0x1040).chain(0x2100..0x2110).chain(0x200..0x240) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = r.clone();
                bad[at] ^= flip;
                let mut out = bad.clone();
                translate2(&bad, &[], &moves, &mut out);
                assert_eq!(out.len(), bad.len());
            }
        }
        for sizes in [&[u64::MAX][..], &[0, 0, 5], &[r.len() as u64 + 1], &[10, u64::MAX]] {
            let mut out = r.clone();
            translate2(&r, sizes, &moves, &mut out);
        }
        for cut in [0, 64, 0x100, 0x1010, 0x2104] {
            let mut out = r[..cut].to_vec();
            translate2(&r[..cut], &[], &moves, &mut out);
        }
    }

    #[test]
    fn elf2_scans_file_bytes_two_code_loads_share_once_the_first_wins() {
        let base = 0x40_0000u64;
        let r = two_loads(base, true);
        let moves = Moves::from_controls([(0x1400, 16, 0), (0xC00, 16, 0), (0x800, 0, 0)], r.len());
        let mut once = r.clone();
        translate2(&r, &[], &moves, &mut once);
        // A third load, executable, mapping the conditional jump's bytes again at an address
        // where its target would fall in the data (shift 32, not 16): not scanned.
        let mut three = r.clone();
        put(&mut three, 0x38, &3u16.to_le_bytes());
        let at = 64 + 2 * 56;
        put(&mut three, at, &PT_LOAD.to_le_bytes());
        put(&mut three, at + 4, &5u32.to_le_bytes());
        put(&mut three, at + 8, &0x1000u64.to_le_bytes());
        put(&mut three, at + 0x10, &(base + 0x3000).to_le_bytes());
        put(&mut three, at + 0x20, &0x10u64.to_le_bytes());
        put(&mut three, at + 0x28, &0x10u64.to_le_bytes());
        let mut out = three.clone();
        translate2(&three, &[], &moves, &mut out);
        assert_eq!(i32_at(&out, 0x1002) - i32_at(&r, 0x1002), 16, "the first code load's reading stands");
        assert_eq!(out[0x1000..0x2000], once[0x1000..0x2000]);
    }

    /// An x86-64 ELF file of two loads: code (readable, executable) at offset 0, address
    /// `base`, 0x2000 bytes; data at offset 0x2000, address `base` + 0x3000, 0x800 bytes in
    /// the file and 0x1000 in memory (`.bss` after it). No sections but the name table.
    fn two_loads(base: u64, exec_type: bool) -> Vec<u8> {
        let mut v = vec![0u8; 0x2800];
        put(&mut v, 0, b"\x7fELF\x02\x01\x01");
        put(&mut v, 16, &(if exec_type { 2u16 } else { 3 }).to_le_bytes());
        put(&mut v, 18, &62u16.to_le_bytes());
        put(&mut v, 0x20, &64u64.to_le_bytes());
        put(&mut v, 0x28, &0x200u64.to_le_bytes()); // e_shoff: one empty header
        put(&mut v, 0x36, &56u16.to_le_bytes());
        put(&mut v, 0x38, &2u16.to_le_bytes());
        put(&mut v, 0x3a, &64u16.to_le_bytes());
        put(&mut v, 0x3c, &1u16.to_le_bytes());
        // The one section is its own name table: one NUL at 0x300.
        put(&mut v, 0x204, &3u32.to_le_bytes());
        put(&mut v, 0x218, &0x300u64.to_le_bytes());
        put(&mut v, 0x220, &1u64.to_le_bytes());
        for (k, (flags, offset, vaddr, filesz, memsz)) in
            [(5u32, 0u64, base, 0x2000u64, 0x2000u64), (6, 0x2000, base + 0x3000, 0x800, 0x1000)]
                .into_iter()
                .enumerate()
        {
            let at = 64 + k * 56;
            put(&mut v, at, &PT_LOAD.to_le_bytes());
            put(&mut v, at + 4, &flags.to_le_bytes());
            put(&mut v, at + 8, &offset.to_le_bytes());
            put(&mut v, at + 0x10, &vaddr.to_le_bytes());
            put(&mut v, at + 0x20, &filesz.to_le_bytes());
            put(&mut v, at + 0x28, &memsz.to_le_bytes());
        }
        let rel = |from_end: u64, to: u64| ((to as i64) - (from_end as i64)) as i32;
        // jne to 0x1800; lea of the table at +0x3100; mov from .bss at +0x3900.
        put(&mut v, 0x1000, &[0x0F, 0x85]);
        put(&mut v, 0x1002, &rel(base + 0x1006, base + 0x1800).to_le_bytes());
        put(&mut v, 0x1010, &[0x48, 0x8D, 0x05]);
        put(&mut v, 0x1013, &rel(base + 0x1017, base + 0x3100).to_le_bytes());
        put(&mut v, 0x1020, &[0x8B, 0x05]);
        put(&mut v, 0x1022, &rel(base + 0x1026, base + 0x3900).to_le_bytes());
        // mov edi, imm32: the address of data at +0x3200.
        put(&mut v, 0x1030, &[0xBF]);
        put(&mut v, 0x1031, &((base + 0x3200) as u32).to_le_bytes());
        // The jump table: two entries into code, then one that is not.
        put(&mut v, 0x2100, &rel(base + 0x3100, base + 0x1800).to_le_bytes());
        put(&mut v, 0x2104, &rel(base + 0x3100, base + 0x1900).to_le_bytes());
        put(&mut v, 0x2108, &0x7fff_0000i32.to_le_bytes());
        // A pointer to code in data.
        put(&mut v, 0x2300, &(base + 0x1800).to_le_bytes());
        v
    }

    #[test]
    fn elf2_translates_conditional_jumps_jump_tables_bss_and_fixed_addresses() {
        // Code before 0x1400 stays, the rest of it moved 16 bytes on, the data 32.
        let moves = |len| Moves::from_controls([(0x1400, 16, 0), (0xC00, 16, 0), (0x800, 0, 0)], len);
        for (base, exec_type) in [(0u64, false), (0x40_0000, true)] {
            let r = two_loads(base, exec_type);
            let m = moves(r.len());
            let mut out = r.clone();
            assert!(translate2(&r, &[], &m, &mut out));
            let d = |v: &[u8], at: usize| i32_at(v, at) - i32_at(&r, at);
            assert_eq!(d(&out, 0x1002), 16, "the conditional jump");
            assert_eq!(d(&out, 0x1013), 32, "the lea of the table");
            assert_eq!(d(&out, 0x1022), 32, "the load from .bss follows the data's last byte");
            assert_eq!(d(&out, 0x2100), 16 - 32, "the table's entries");
            assert_eq!(d(&out, 0x2104), 16 - 32);
            assert_eq!(d(&out, 0x2108), 0, "the table ends at an entry that is not code");
            let abs = |at: usize| u64_at(&out, at).unwrap() as i64 - u64_at(&r, at).unwrap() as i64;
            if exec_type {
                assert_eq!(d(&out, 0x1031), 32, "mov r32, imm32 of a data address");
                assert_eq!(abs(0x2300), 16, "a code pointer in data");
            } else {
                assert_eq!(d(&out, 0x1031), 0, "a relocatable file's immediates are numbers");
                assert_eq!(abs(0x2300), 0, "its data pointers have relocations (none here)");
            }
            // As the second member of a pack, the same: its own addresses, the pack's moves.
            let pack = [vec![0x55u8; 0x100], r.clone()].concat();
            let m = Moves::from_controls([(0x1500, 16, 0), (0xC00, 16, 0), (0x800, 0, 0)], pack.len());
            let mut out = pack.clone();
            assert!(translate2(&pack, &[0x100, r.len() as u64], &m, &mut out));
            assert_eq!(i32_at(&out, 0x1102) - i32_at(&pack, 0x1102), 16);
            assert_eq!(i32_at(&out, 0x2200) - i32_at(&pack, 0x2200), 16 - 32);
            // Seen as one file, the pack is not ELF: nothing changes.
            let mut whole = pack.clone();
            assert!(!translate2(&pack, &[], &m, &mut whole));
            assert_eq!(whole, pack);
        }
    }

    /// `bsdiff-elf3-zstd`'s sites: the code's relative operands (relative to their own
    /// place), the jump table's entries (to the table's), FDE starts, and in a
    /// fixed-address file its absolute addresses; not `.eh_frame_hdr`'s sorted table. Its
    /// translation is elf2's, and FDEs' CIE pointers too.
    #[test]
    fn elf3_records_the_sites_it_learns_from_and_translates_as_elf2() {
        let moves = |len| Moves::from_controls([(0x1400, 16, 0), (0xC00, 16, 0), (0x800, 0, 0)], len);
        for (base, exec_type) in [(0u64, false), (0x40_0000, true)] {
            let r = two_loads(base, exec_type);
            let m = moves(r.len());
            let (mut two, mut three, mut sites) = (r.clone(), r.clone(), Vec::new());
            translate2(&r, &[], &m, &mut two);
            let mut code = Vec::new();
            assert!(translate3(&r, &[], &m, &mut three, &mut sites, &mut code));
            assert_eq!(
                code.iter().map(|c| (c.start, c.end)).collect::<Vec<_>>(),
                [(0, 0x2000)],
                "the code load's bytes"
            );
            assert_eq!(two, three, "the same translation (no FDE here)");
            assert!(sites.windows(2).all(|w| w[0].at < w[1].at), "in reference order, once each");
            let at = |a: usize| sites.iter().find(|s| s.at as usize == a).copied();
            let jump = at(0x1002).expect("the conditional jump");
            assert_eq!((jump.value, jump.base), (i32_at(&r, 0x1002), 0x1002));
            assert_eq!(jump.key & (u64::MAX >> 8), base + 0x1006 + i32_at(&r, 0x1002) as u64, "its target");
            let entry = at(0x2100).expect("a jump table entry");
            assert_eq!(entry.base, 0x2100, "relative to the table");
            assert_eq!(entry.base_moved, 32, "which moved with the data");
            assert!(at(0x1022).is_some(), "the load from .bss");
            assert_eq!(at(0x1031).map(|s| s.base), exec_type.then_some(ABSOLUTE), "mov r32, imm32");
            assert_eq!(at(0x2300).map(|s| s.base), exec_type.then_some(ABSOLUTE), "a pointer in data");
        }
        // The unwind tables: the FDE's start is a site, the sorted table's entries are not.
        let r = elf();
        let (mut out, mut sites) = (r.clone(), Vec::new());
        translate3(
            &r,
            &[],
            &Moves::from_controls([(0x800, 16, 0), (0x2800, 0, 0)], r.len()),
            &mut out,
            &mut sites,
            &mut Vec::new(),
        );
        let fde = sites.iter().find(|s| s.at == 0x320).expect("the FDE's start");
        assert_eq!((fde.key, fde.base), (0x1000, 0x320));
        assert!(!sites.iter().any(|s| (0x200..0x214).contains(&s.at)), "{sites:x?}");
        // Eight bytes inserted between the CIE (0x300) and its FDE (0x318): the FDE's CIE
        // pointer is 8 more for elf3, as it was for elf2.
        let m = Moves::from_controls([(0x310, 8, 0), (0x2CF0, 0, 0)], r.len());
        let (mut two, mut three) = (r.clone(), r.clone());
        translate2(&r, &[], &m, &mut two);
        translate3(&r, &[], &m, &mut three, &mut sites, &mut Vec::new());
        assert_eq!((i32_at(&two, 0x31c), i32_at(&three, 0x31c)), (0x1c, 0x1c + 8));
    }
}
