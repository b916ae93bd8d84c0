#!/usr/bin/env bash
# Install time of a one-component hotfix against the size of the root:
#   scaling.sh PKGTOOL HOTFIX KEY DIR NFILES REPS OUT.tsv
#
# Two roots of product "scale", each made by `hotfix init` and the install of an RTM
# baseline package: "small" holds 10 files (component bulk: 9, component app: 1), "big"
# NFILES files (bulk: NFILES-1, app: 1). Each root is made once and copied aside; before
# each timed run the copy is restored at the same path (untimed). Timed: `hotfix install`
# of a hotfix package for component app (one LDR variant, ~1 MiB in 3 files).
# OUT.tsv: root (small|big), median seconds, files in the root after the install.
set -euo pipefail
pkgtool=${1:?usage: scaling.sh PKGTOOL HOTFIX KEY DIR NFILES REPS OUT.tsv}
hotfix=${2:?} key=${3:?} dir=${4:?} nfiles=${5:?} reps=${6:?} out=${7:?}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

make_specs() { # make_specs NAME NBULK
    local d=$dir/$1
    [[ -f $d/.done ]] && return 0
    rm -rf "$d"
    mkdir -p "$d"
    python3 - "$d" "$2" <<'PY'
import os, random, sys
d, nbulk = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
bulk = os.path.join(d, "payload", "bulk")
for i in range(nbulk):
    # short paths and 1,000 distinct contents: a manifest of 100,000 files must stay under
    # the format's 16 MiB manifest limit (~125 bytes of JSON per file)
    sub = os.path.join(bulk, "b", f"{i // 1000:02d}")
    if i % 1000 == 0:
        os.makedirs(sub, exist_ok=True)
    body = (f"bulk file {i % 1000}\n" * (1 + (i % 1000) % 40)).encode()
    with open(os.path.join(sub, f"{i % 1000:03d}"), "wb") as f:
        f.write(body)
app = os.path.join(d, "payload", "app", "share", "app")
os.makedirs(app, exist_ok=True)
open(os.path.join(app, "README"), "w").write("app baseline\n")
open(os.path.join(d, "base.toml"), "w").write("""[package]
id = "SCALE-RTM"
kind = "baseline"
product = "scale"
title = "Scaling baseline"
baseline = { name = "RTM", level = 0 }

[[variant]]
component = "bulk"
version = "1.0"
dir = "payload/bulk"

[[variant]]
component = "app"
version = "1.0"
dir = "payload/app"
""")
PY
    "$pkgtool" build "$d/base.toml" --key "$key.key" -o "$d/base.pkg" -q
    touch "$d/.done"
}

make_hotfix() {
    local d=$dir/hotfix
    [[ -f $d/.done ]] && return 0
    rm -rf "$d"
    mkdir -p "$d"
    python3 - "$d" <<'PY'
import os, random, sys
d = sys.argv[1]
rng = random.Random(11)
p = os.path.join(d, "payload", "app")
os.makedirs(os.path.join(p, "lib"), exist_ok=True)
os.makedirs(os.path.join(p, "share", "app"), exist_ok=True)
# a binary-ish 1 MiB library: repeated blocks with mutations
block = rng.randbytes(4096)
data = bytearray()
while len(data) < 1 << 20:
    b = bytearray(block)
    for _ in range(64):
        b[rng.randrange(4096)] = rng.getrandbits(8)
    data += b
open(os.path.join(p, "lib", "libapp.so"), "wb").write(data)
open(os.path.join(p, "share", "app", "README"), "w").write("app with HF1\n")
open(os.path.join(p, "share", "app", "NOTICE"), "w").write("notice\n")
open(os.path.join(d, "hf1.toml"), "w").write("""[package]
id = "HF1"
kind = "hotfix"
product = "scale"
title = "One-component hotfix"

[[variant]]
component = "app"
baseline = "RTM"
branch = "ldr"
version = "1.0.1"
fixes = ["HF1"]
dir = "payload/app"
""")
PY
    "$pkgtool" build "$d/hf1.toml" --key "$key.key" -o "$d/hf1.pkg" -q
    touch "$d/.done"
}

make_root() { # make_root NAME — the root at DIR/NAME/root, its pristine copy at DIR/NAME/root.orig
    local d=$dir/$1 rc=0
    rm -rf "$d/root" "$d/root.orig"
    "$hotfix" --root "$d/root" -q init --product scale --trust "$key.pub"
    "$hotfix" --root "$d/root" -q install "$d/base.pkg" || rc=$?
    [[ $rc == 0 || $rc == 3 ]] || { echo "scaling: baseline install into $1 root exited $rc" >&2; exit 1; }
    cp -a "$d/root" "$d/root.orig"
}

: >"$out"
make_hotfix
for which in small big; do
    n=9
    [[ $which == big ]] && n=$((nfiles - 1))
    t0=$(date +%s)
    make_specs "$which" "$n"
    make_root "$which"
    echo "   $which root: $(find "$dir/$which/root" -type f -not -path '*/.servicing/*' | wc -l) files outside .servicing (prepared in $(($(date +%s) - t0)) s)"
    walls=()
    for ((i = 0; i < reps; i++)); do
        rm -rf "$dir/$which/root"
        cp -a "$dir/$which/root.orig" "$dir/$which/root"
        sync
        t0=$(date +%s%N)
        rc=0
        "$hotfix" --root "$dir/$which/root" -q install "$dir/hotfix/hf1.pkg" || rc=$?
        t1=$(date +%s%N)
        [[ $rc == 0 || $rc == 3 ]] || { echo "scaling: hotfix install into the $which root exited $rc" >&2; exit 1; }
        walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", (b-a)/1e9}')")
    done
    med=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
    echo "   $which root: hotfix install ${walls[*]} s (median $med)"
    printf '%s\t%s\t%s\n' "$which" "$med" "$(find "$dir/$which/root" -type f | wc -l)" >>"$out"
done
