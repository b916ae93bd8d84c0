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
    sections: Vec<(Vec<u8>, Section)>,
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
        for k in 0..phnum {
            let at = phoff.checked_add(k * 56)?;
            if u32_at(r, at)? == PT_LOAD {
                segments.push((usize_at(r, at + 8)?, u64_at(r, at + 0x10)?, usize_at(r, at + 0x20)?));
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
        Some(Layout { segments, sections })
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

/// How far the moves carried reference offset `x`.
fn shift(moves: &Moves, x: usize) -> Option<i64> {
    Some(moves.map(x)? - i64::try_from(x).ok()?)
}

/// Rewrites, in `out` (the reference, its x86 operands already translated), the code
/// addresses of the reference's ELF tables to where the moves put them; see the module
/// documentation. Leaves `out` as it is when the reference does not parse as x86-64 ELF.
pub fn translate(reference: &[u8], moves: &Moves, out: &mut [u8]) {
    let Some(layout) = Layout::parse(reference) else { return };
    let r = reference;
    // A 4-byte value at `f` relative to the virtual address `base` (file offset `base_off`).
    let mut rel32 = |out: &mut [u8], f: usize, base: u64, base_off: usize| -> Option<()> {
        let v = i32::from_le_bytes(r.get(f..f + 4)?.try_into().ok()?);
        let target = base.checked_add_signed(i64::from(v))?;
        let moved = shift(moves, layout.offset_of(target)?)? - shift(moves, base_off)?;
        let v2 = i32::try_from(i64::from(v) + moved).ok()?;
        out.get_mut(f..f + 4)?.copy_from_slice(&v2.to_le_bytes());
        Some(())
    };
    let abs64 = |out: &mut [u8], f: usize| -> Option<()> {
        let v = u64_at(r, f)?;
        let v2 = v.checked_add_signed(shift(moves, layout.offset_of(v)?)?)?;
        out.get_mut(f..f + 8)?.copy_from_slice(&v2.to_le_bytes());
        Some(())
    };
    if let Some(h) = layout.section(b".eh_frame_hdr") {
        eh_frame_hdr(r, h, out, &mut rel32);
    }
    if let Some(e) = layout.section(b".eh_frame") {
        eh_frame(r, e, out, &mut rel32);
    }
    // Symbol values (st_value at +8 of 24-byte entries; undefined ones are 0 and stay).
    if let Some(s) = layout.section(b".dynsym") {
        for at in (s.offset..s.offset + s.size / 24 * 24).step_by(24) {
            if u16_at(r, at + 6).is_some_and(|shndx| shndx != 0) {
                abs64(out, at + 8);
            }
        }
    }
    // Relocations: where (r_offset) and, for R_X86_64_RELATIVE, what (r_addend) and the
    // pointer the linker also left at that place (function tables in .data, the GOT).
    if let Some(s) = layout.section(b".rela.dyn") {
        for at in (s.offset..s.offset + s.size / 24 * 24).step_by(24) {
            abs64(out, at);
            if u32_at(r, at + 8) == Some(R_X86_64_RELATIVE) {
                abs64(out, at + 16);
                if let Some(place) = u64_at(r, at).and_then(|v| layout.offset_of(v)) {
                    abs64(out, place);
                }
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
fn eh_frame(r: &[u8], e: Section, out: &mut [u8], rel32: &mut impl FnMut(&mut [u8], usize, u64, usize) -> Option<()>) {
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
            && cies.get(&cie) == Some(&PCREL_SDATA4)
        {
            let f = at + 8;
            rel32(out, f, e.addr.wrapping_add((f - e.offset) as u64), f);
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
    }
}
