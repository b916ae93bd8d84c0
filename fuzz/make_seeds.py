#!/usr/bin/env python3
"""Regenerates the committed seed corpora under fuzz/seeds/ from schema/vectors/, the
contoso specs and small hand-made inputs (zstd and xz frames made with the zstd and xz
command-line tools). Deterministic: running it again changes nothing. The PE corpus and
the built contoso packages are not committed; scripts/fuzz.sh adds them at run time."""

import os
import pathlib
import shutil
import struct
import tempfile
import subprocess
import sys
import zipfile
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
VECTORS = ROOT / "schema" / "vectors"
MAX_PKG = 8 << 10  # small seeds only


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def tool(args, data):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def zst(data):
    return tool(["zstd", "-q", "-c", "--no-check", "-19"], data)


def xz(data, x86=False):
    # An .xz stream, with the x86 BCJ filter before LZMA2 for the x86 variant.
    args = ["xz", "-c", "-q", "--check=none"] + (["--x86", "--lzma2"] if x86 else [])
    return tool(args, data)


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    pkgs = sorted(p for p in VECTORS.glob("*.pkg") if p.stat().st_size <= MAX_PKG)
    for p in pkgs:
        data = p.read_bytes()
        put("package", p.name, data)
        if p.name.startswith(("valid_", "entry_", "file_", "eocd_", "cd_", "signature_")):
            put("zip", p.name, data)
        put("sigblock", p.stem, data[-177:])
        try:
            with zipfile.ZipFile(p) as z:
                put("manifest", p.stem + ".json", z.read("manifest.json"))
        except Exception:
            pass  # a hostile vector that no zip tool reads

    # Blob decoders: selector, ref_len u16, size u32, crc u32, reference, entry.
    content = b"hotfix " * 40 + bytes(range(256))
    crc = zlib.crc32(content)
    def blob(sel, entry, ref=b"", size=len(content), c=crc):
        return bytes([sel]) + struct.pack("<HII", len(ref), size, c) + ref + entry
    put("blob", "stored", blob(0, content))
    put("blob", "zstd", blob(1, zst(content)))
    put("blob", "lzma", blob(2, xz(content)))
    put("blob", "lzma_x86", blob(3, xz(content, x86=True)))
    reference = content[::-1] + content[:100]
    with tempfile.TemporaryDirectory() as t:
        (pathlib.Path(t) / "ref").write_bytes(reference)
        (pathlib.Path(t) / "new").write_bytes(content)
        delta = tool(["zstd", "-q", "-c", "--no-check", f"--patch-from={t}/ref", f"{t}/new"], b"")
    put("blob", "zstd_delta", blob(4, delta, ref=reference))

    # bsdiff-zstd: header (ctrl len, diff len), then ctrl, diff, extra frames.
    ref = b"abcdefgh" * 8
    new = bytes((b + 1) & 0xFF for b in ref[:32]) + b"EXTRA-BYTES"
    ctrl = struct.pack("<qqq", 32, 11, 0)
    diff = bytes((n - o) & 0xFF for n, o in zip(new[:32], ref[:32]))
    c, d, e = zst(ctrl), zst(diff), zst(new[32:])
    patch = struct.pack("<II", len(c), len(d)) + c + d + e
    put("bsdiff", "add_and_extra", struct.pack("<HI", len(ref), len(new)) + ref + patch)
    put("blob", "bsdiff", blob(5, patch, ref=ref, size=len(new), c=zlib.crc32(new)))

    # bsdiff-elf-zstd: a small x86-64 ELF file whose unwind tables, symbol and relocation
    # name the code at 0x1000, and a patch that moves everything after 0x800 16 bytes on.
    elf = bytearray(0x3000)
    def at(o, b):
        elf[o:o + len(b)] = b
    at(0, b"\x7fELF\x02\x01\x01")
    at(18, struct.pack("<H", 62))
    at(0x20, struct.pack("<QQ", 64, 0x600))
    at(0x36, struct.pack("<HHHHH", 56, 1, 64, 6, 5))
    at(64, struct.pack("<I", 1))
    at(64 + 0x20, struct.pack("<Q", 0x3000))
    at(0x200, bytes([1, 0x1B, 0x03, 0x3B]) + struct.pack("<iIii", 0x300 - 0x204, 1, 0x1000 - 0x200, 0x318 - 0x200))
    at(0x300, struct.pack("<II", 0x14, 0) + bytes([1, ord("z"), ord("R"), 0, 1, 0x78, 16, 1, 0x1B]))
    at(0x318, struct.pack("<IIiI", 0x14, 0x1C, 0x1000 - 0x320, 0x40))
    at(0x418, struct.pack("<IBBHQQ", 0, 0, 0, 1, 0x1000, 0))
    at(0x480, struct.pack("<QQQ", 0x2000, 8, 0x1000))
    at(0x500, b"\0.eh_frame_hdr\0.eh_frame\0.dynsym\0.rela.dyn\0.shstrtab\0")
    for k, (name, off, size) in enumerate([(1, 0x200, 0x14), (15, 0x300, 0x30), (25, 0x400, 0x30), (33, 0x480, 0x18), (43, 0x500, 0x40)]):
        at(0x600 + (k + 1) * 64, struct.pack("<IIQQQQ", name, 1, 0, off, off, size))
    elf = bytes(elf)
    ctrl = struct.pack("<qqq", 0x800, 16, 0) + struct.pack("<qqq", 0x2800, 0, 0)
    c, d, e = zst(ctrl), zst(bytes(0x3000)), zst(b"\x90" * 16)
    patch = struct.pack("<II", len(c), len(d)) + c + d + e
    put("bsdiff", "elf_tables", struct.pack("<HI", len(elf), 0x3010 | 1 << 30) + elf + patch)
    # The same as bsdiff-elf2-zstd, the reference a pack of two halves whose first is an
    # ELF file with an executable load holding a conditional jump, a lea of a jump table
    # in a read-only load after it, and a call (the extra frame made without the prefix decodes the same with
    # it; these controls are 24-byte records, read as LEB128 they make other controls).
    elf2 = bytearray(elf)
    elf2[64 + 4:64 + 8] = struct.pack("<I", 5)
    elf2[64 + 0x20:64 + 0x28] = struct.pack("<Q", 0x1600)
    # A second, read-only load after the code: the jump table's.
    elf2[0x38:0x3A] = struct.pack("<H", 2)
    elf2[120:176] = struct.pack("<IIQQQQQQ", 1, 4, 0x1600, 0x1600, 0x1600, 0x200, 0x200, 8)
    elf2[0x1000:0x1006] = bytes([0x0F, 0x85]) + struct.pack("<i", 0x1400 - 0x1006)
    elf2[0x1006:0x100D] = bytes([0x48, 0x8D, 0x05]) + struct.pack("<i", 0x1700 - 0x100D)
    elf2[0x100D:0x1012] = bytes([0xE8]) + struct.pack("<i", 0x1200 - 0x1012)
    elf2[0x1700:0x1708] = struct.pack("<ii", 0x1400 - 0x1700, 0x1410 - 0x1700)
    elf2 = bytes(elf2)
    put("bsdiff", "elf2_pack", struct.pack("<HI", len(elf2), 0x3010 | 1 << 29) + elf2 + patch)
    # The same reference for bsdiff-elf3-zstd (selector bit 28), with LEB128 controls
    # that make the declared size: its sites (the jump, the lea, the call, the table's
    # entries) are learned and predicted, the extra bytes' call made relative again.
    def leb(v):
        out = bytearray()
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)
    ctrl3 = leb(0x800) + leb(16) + leb(0) + leb(0x2800) + leb(0) + leb(0)
    c3, e3 = zst(ctrl3), zst(bytes([0xE8]) + struct.pack("<i", 0x40) + b"\x90" * 11)
    patch3 = struct.pack("<II", len(c3), len(d)) + c3 + d + e3
    put("bsdiff", "elf3_pack", struct.pack("<HI", len(elf2), 0x3010 | 1 << 28) + elf2 + patch3)

    # PPMd (selector 11): the header (order 6, 1 MiB, restart), then the stream with its
    # end marker; pyppmd is 7-Zip's coder, as the reader's is.
    try:
        import pyppmd
        enc = pyppmd.Ppmd8Encoder(6, 1 << 20, restore_method=pyppmd.PPMD8_RESTORE_METHOD_RESTART)
        stream = enc.encode(content) + enc.flush(endmark=True)
        put("blob", "ppmd", blob(11, struct.pack("<H", 5) + stream))
    except ImportError:
        print("make_seeds: no pyppmd, no PPMd seed", file=sys.stderr)

    # Packs: count, sizes u16, content.
    put("pack", "three", bytes([3]) + struct.pack("<HHH", 5, 0, 7) + b"helloworld!!")
    put("pack", "short", bytes([2]) + struct.pack("<HH", 5, 9) + b"hello")

    # Specs: the contoso specs, their payload directories renamed to the harness's.
    for spec in sorted((ROOT / "examples" / "contoso").glob("*.toml")):
        text = spec.read_text()
        lines = [('dir = "payload"' if l.startswith("dir = ") else l) for l in text.splitlines()]
        put("spec", spec.name, ("\n".join(lines) + "\n").encode())

    # Switches: NUL-separated command lines.
    for i, line in enumerate([
        ["hotfix", "/quiet", "/norestart", "kb1.pkg"],
        ["hotfix", "--root", "/srv", "install", "/extract:/tmp/x", "/log:l.txt"],
        ["installer", "/B:SP1QFE", "/passive", "--", "/quiet"],
        ["hotfix", "/?"],
        ["installer", "/uninstall", "/forcerestart", "/help"],
    ]):
        put("switches", f"line{i}", b"\0".join(w.encode() for w in line))

    # filever: a minimal ELF header and a minimal MZ/PE header (the PE corpus and the
    # system's ELF files are added at run time by scripts/fuzz.sh).
    elf = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    put("filever", "elf_header", elf)
    mz = bytearray(0x100)
    mz[0:2] = b"MZ"
    mz[0x3C:0x40] = struct.pack("<I", 0x80)
    mz[0x80:0x84] = b"PE\0\0"
    mz[0x84:0x98] = struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, 0xF0, 0x22)
    put("filever", "pe_header", bytes(mz))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
