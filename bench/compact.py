#!/usr/bin/env python3
"""Compactness on payloads the benchmark has not seen (issue 16).

For each Debian pair fetched by bench/fetch_debian_wide.sh (and for all of them as one
package), builds the update package (GDR build = the point release's, LDR build = the
security update's, as bench/prep_debian.sh lays them out) and reports, per pair and in
aggregate:

* package / tar+zstd-19-long of both trees (target <= 0.90);
* build time / that tar | zstd run (target <= 1.0; wall clock, so a loaded machine
  shows in it: the load average is printed);
* LDR marginal (package - GDR-only package) / the best per-file delta peer: for every
  LDR file, zstd -19 --patch-from, bsdiff and xdelta3 -9 against the GDR file of the same
  path (a new file: zstd -19 of it), the smallest of the three per file, summed
  (target <= 0.5);
* GDR-only package / tar+zstd-19-long of the GDR tree (information).

And a per-file table of what dominates the LDR marginal: the LDR contents that are not
in the GDR build, with the bytes our package spends on each (its blob's stored size; a
pack member's share of its pack by size) against each peer's.

  bench/compact.py WIDE_DIR [--pkgtool PATH] [--out DIR] [--only PKG,...] [--reps N]

Needs zstd, bsdiff, xdelta3 (apt-get install zstd bsdiff xdelta3).
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TAR = ["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-cf", "-"]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, **kw):
    t0 = time.monotonic()
    run(cmd, **kw)
    return time.monotonic() - t0


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def files_under(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out[os.path.relpath(p, root)] = p
    return out


def size_of(cmd_out_path):
    return os.path.getsize(cmd_out_path)


def peer_sizes(gdr, ldr, scratch):
    """Per LDR file (changed or new): bytes of zstd --patch-from, bsdiff, xdelta3."""
    g, l = files_under(gdr), files_under(ldr)
    rows = {}
    for rel, lp in sorted(l.items()):
        gp = g.get(rel)
        if gp and sha256(gp) == sha256(lp):
            continue
        z = os.path.join(scratch, "p.zst")
        if gp:
            # --long so that a file larger than the default window is still patched
            win = max(os.path.getsize(gp), os.path.getsize(lp)).bit_length() + 1
            run(["zstd", "-q", "-f", "-19", f"--long={max(win, 10)}", f"--patch-from={gp}", lp, "-o", z],
                stderr=subprocess.DEVNULL)
            zs = size_of(z)
            b = os.path.join(scratch, "p.bsdiff")
            run(["bsdiff", gp, lp, b])
            bs = size_of(b)
            x = os.path.join(scratch, "p.xd3")
            # -D: no external recompression (xdelta3 would otherwise gunzip .gz inputs and
            # re-gzip at apply time with the gzip program found then: not a delta encoding
            # a package format can rely on)
            run(["xdelta3", "-q", "-f", "-D", "-9", "-e", "-s", gp, lp, x])
            xs = size_of(x)
        else:
            run(["zstd", "-q", "-f", "-19", lp, "-o", z])
            zs = bs = xs = size_of(z)
        rows[rel] = {"zstd": zs, "bsdiff": bs, "xdelta3": xs, "size": os.path.getsize(lp), "new": gp is None}
    return rows


def package_costs(pkg, pkgtool):
    """content sha256 -> bytes the package spends on it (own blob, or pack share)."""
    with zipfile.ZipFile(pkg) as z:
        stored = {i.filename.removeprefix("blobs/"): i.compress_size for i in z.infolist()}
    # zipfile cannot decode a Zstandard manifest (method 93): pkgtool reads it.
    out = subprocess.run([pkgtool, "inspect", pkg, "--json"], check=True, capture_output=True).stdout
    manifest = json.loads(out)["manifest"]
    cost = {"manifest.json": stored.get("manifest.json", 0)}
    for b in manifest["blobs"]:
        entry = stored.get(b["sha256"], 0)
        members = b.get("members") or []
        if members:
            total = sum(m["size"] for m in members) or 1
            for m in members:
                cost[m["sha256"]] = entry * m["size"] / total
        else:
            cost[b["sha256"]] = entry
    return manifest, cost


def gdr_only_spec(spec_text):
    """The spec with only the GDR builds, as a hotfix (an update needs both branches)."""
    out, block = [], []
    blocks = spec_text.split("[[variant]]")
    head = blocks[0].replace('kind = "update"', 'kind = "hotfix"').replace('id = "DEBSEC1"', 'id = "DEBSEC1-GDR"')
    out.append(head)
    for b in blocks[1:]:
        if 'branch = "gdr"' in b:
            out.append("[[variant]]" + b.replace('branch = "gdr"', 'branch = "ldr"'))
    return "".join(out)


def measure(name, debs, work, pkgtool, key, reps):
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus)
    for i, d in enumerate(debs):
        os.symlink(d, os.path.join(corpus, f"{i:03d}.deb"))
    prep = os.path.join(work, "prep")
    run([os.path.join(HERE, "prep_debian.sh"), corpus, prep], stdout=subprocess.DEVNULL)
    with open(os.path.join(prep, "spec.toml")) as f:
        spec = f.read()
    with open(os.path.join(prep, "gdr.toml"), "w") as f:
        f.write(gdr_only_spec(spec))
    pkg = os.path.join(work, "update.pkg")
    tzst = os.path.join(work, "trees.tar.zst")
    ours_t, peer_t = [], []
    for _ in range(reps):
        ours_t.append(timed([pkgtool, "build", "spec.toml", "--key", key, "-o", pkg, "-q"], cwd=prep))
        peer_t.append(timed(["bash", "-c", f'{" ".join(TAR)} payload | zstd -q -19 --long=27 -T2 -f -o "{tzst}"'], cwd=prep))
    gpkg = os.path.join(work, "gdr.pkg")
    run([pkgtool, "build", "gdr.toml", "--key", key, "-o", gpkg, "-q"], cwd=prep)
    gtzst = os.path.join(work, "gdr.tar.zst")
    run(["bash", "-c", f'{" ".join(TAR)} payload/*/gdr | zstd -q -19 --long=27 -T2 -f -o "{gtzst}"'], cwd=prep)
    peers, table = {"zstd": 0, "bsdiff": 0, "xdelta3": 0, "best": 0}, []
    manifest, cost = package_costs(pkg, pkgtool)
    by_path = {}
    for v in manifest["variants"]:
        by_path[(v["component"], v["branch"])] = {f["path"]: f["sha256"] for f in v["files"]}
    scratch = os.path.join(work, "scratch")
    os.makedirs(scratch)
    for comp in sorted(os.listdir(os.path.join(prep, "payload"))):
        rows = peer_sizes(os.path.join(prep, "payload", comp, "gdr"), os.path.join(prep, "payload", comp, "ldr"), scratch)
        gdr_contents = set(by_path.get((comp, "gdr"), {}).values())
        for rel, r in rows.items():
            for k in ("zstd", "bsdiff", "xdelta3"):
                peers[k] += r[k]
            best = min(r["zstd"], r["bsdiff"], r["xdelta3"])
            peers["best"] += best
            digest = by_path.get((comp, "ldr"), {}).get(rel)
            ours = cost.get(digest, 0) if digest and digest not in gdr_contents else 0
            table.append((ours, comp, rel, r, best))
    res = {
        "name": name,
        "payload": sum(os.path.getsize(p) for p in files_under(os.path.join(prep, "payload")).values()),
        "package": os.path.getsize(pkg),
        "tar_zstd": os.path.getsize(tzst),
        "build_s": statistics.median(ours_t),
        "tar_zstd_s": statistics.median(peer_t),
        "gdr_package": os.path.getsize(gpkg),
        "gdr_tar_zstd": os.path.getsize(gtzst),
        "manifest": cost["manifest.json"],
        "peers": peers,
        "table": sorted(table, key=lambda t: -t[0]),
    }
    res["ldr_marginal"] = res["package"] - res["gdr_package"]
    return res


def verdict(ratio, target):
    return "ok" if ratio <= target else "MISSED"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wide")
    ap.add_argument("--pkgtool", default=os.path.join(REPO, "target", "release", "pkgtool"))
    ap.add_argument("--out", default=None, help="keep the work here (default: a temporary directory)")
    ap.add_argument("--only", default="", help="comma-separated packages")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_BUILD_REPS", "1")))
    ap.add_argument("--top", type=int, default=12, help="rows of the per-file table")
    ap.add_argument("--no-aggregate", action="store_true")
    a = ap.parse_args()
    for tool in ("zstd", "bsdiff", "xdelta3"):
        if not shutil.which(tool):
            sys.exit(f"compact.py: {tool} is missing (apt-get install zstd bsdiff xdelta3)")
    pairs = []
    with open(os.path.join(a.wide, "pairs.tsv")) as f:
        for line in f:
            pkg, shape, old, new, suite = line.rstrip("\n").split("\t")
            if a.only and pkg not in a.only.split(","):
                continue
            d = os.path.join(a.wide, pkg)
            pairs.append((pkg, shape, old, new, [os.path.join(d, "old.deb"), os.path.join(d, "new.deb")]))
    work = a.out or tempfile.mkdtemp(prefix="hotfix-compact-")
    os.makedirs(work, exist_ok=True)
    key = os.path.join(work, "k")
    if not os.path.exists(key + ".key"):
        run([a.pkgtool, "keygen", key], stdout=subprocess.DEVNULL)
    results = []
    sets = [(p[0], p[4], p[1]) for p in pairs]
    if not a.no_aggregate and len(pairs) > 1:
        sets.append(("ALL", [d for p in pairs for d in p[4]], "aggregate"))
    for name, debs, shape in sets:
        w = os.path.join(work, name)
        shutil.rmtree(w, ignore_errors=True)
        os.makedirs(w)
        r = measure(name, debs, w, os.path.abspath(a.pkgtool), key + ".key", a.reps)
        r["shape"] = shape
        results.append(r)
        print(f"measured {name}", file=sys.stderr)
    hdr = ("set", "shape", "payload MB", "pkg/tar+zstd", "build/tar+zstd", "LDR marginal KB",
           "best per-file KB", "marginal/best", "zstd-pf KB", "bsdiff KB", "xdelta3 KB", "GDR pkg/tar+zstd")
    print("| " + " | ".join(hdr) + " |")
    print("|" + " --- |" * len(hdr))
    for r in results:
        p = r["peers"]
        size_ratio = r["package"] / r["tar_zstd"]
        time_ratio = r["build_s"] / r["tar_zstd_s"] if r["tar_zstd_s"] else 0
        marg = r["ldr_marginal"] / p["best"] if p["best"] else 0
        print(f"| {r['name']} | {r['shape']} | {r['payload'] / 1e6:.1f} | {size_ratio:.3f} {verdict(size_ratio, 0.90)} "
              f"| {time_ratio:.2f} {verdict(time_ratio, 1.0)} | {r['ldr_marginal'] / 1e3:.1f} | {p['best'] / 1e3:.1f} "
              f"| {marg:.3f} {verdict(marg, 0.5)} | {p['zstd'] / 1e3:.1f} | {p['bsdiff'] / 1e3:.1f} | {p['xdelta3'] / 1e3:.1f} "
              f"| {r['gdr_package'] / r['gdr_tar_zstd']:.3f} |")
    agg = results[-1]
    print(f"\nPer-file: what the LDR marginal of {agg['name']} is spent on (top {a.top}; ours = bytes the package "
          "spends on the LDR content, a pack member's share by size; 0 = shared with GDR or stored in a pack counted elsewhere)\n")
    print("| component | file | size KB | new? | ours KB | zstd-pf KB | bsdiff KB | xdelta3 KB | ours/best |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for ours, comp, rel, r, best in agg["table"][: a.top]:
        print(f"| {comp} | {rel} | {r['size'] / 1e3:.1f} | {'new' if r['new'] else ''} | {ours / 1e3:.1f} | "
              f"{r['zstd'] / 1e3:.1f} | {r['bsdiff'] / 1e3:.1f} | {r['xdelta3'] / 1e3:.1f} | {ours / best if best else 0:.2f} |")
    print(f"\nload average: {open('/proc/loadavg').read().split()[:3]}")
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
