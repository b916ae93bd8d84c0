#!/usr/bin/env bash
# What the runtime keeps for a package of many small files:
#   manyfiles.sh PKGTOOL HOTFIX DIR NFILES [OUT.tsv]
#
# Makes a baseline package (product "many", baseline RTM) of one component holding NFILES
# files under long paths (about 170 bytes each, so the manifest is about 320 bytes per file
# as in issue #10: 100,000 files make a 32 MB manifest) with only 64 distinct contents (so
# the package itself stays small), initialises a root, installs the package with
# `/usr/bin/time -v`, and prints, tab separated: files, package bytes, manifest bytes,
# install wall seconds, install peak RSS (KiB), bytes of the log line the install appended,
# bytes of the inventory (inventory.db plus its -wal and -shm files), and the bound
# 2 × manifest + 64 MiB in KiB. Appends the same row to OUT.tsv when given.
set -euo pipefail
pkgtool=${1:?usage: manyfiles.sh PKGTOOL HOTFIX DIR NFILES [OUT.tsv]}
hotfix=${2:?} dir=${3:?} nfiles=${4:?} out=${5:-}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
work=$dir/n$nfiles
if [[ ! -f $work/.done ]]; then
    rm -rf "$work"
    mkdir -p "$work"
    python3 - "$work" "$nfiles" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
root = os.path.join(d, "payload")
stem = "share/many/locale-resources/translations/components/long-directory-name-for-realism"
for i in range(n):
    sub = os.path.join(root, stem, f"group-{i // 1000:04d}", f"bucket-{(i // 100) % 10}")
    if i % 100 == 0:
        os.makedirs(sub, exist_ok=True)
    name = f"resource-file-with-a-descriptive-name-{i:07d}.translation-data"
    with open(os.path.join(sub, name), "wb") as f:
        f.write((f"content {i % 64}\n" * (1 + i % 64)).encode())
with open(os.path.join(d, "base.toml"), "w") as f:
    f.write("""[package]
id = "MANY-RTM"
kind = "baseline"
product = "many"
title = "A baseline of many small files"
baseline = { name = "RTM", level = 0 }

[[variant]]
component = "bulk"
version = "1.0"
dir = "payload"
""")
PY
    (cd "$work" && "$pkgtool" keygen key >/dev/null)
    "$pkgtool" build "$work/base.toml" --key "$work/key.key" -o "$work/base.pkg" -q
    rm -rf "$work/payload"
    touch "$work/.done"
fi
root=$work/root
rm -rf "$root"
"$hotfix" --root "$root" -q init --product many --trust "$work/key.pub"
log=$root/.servicing/log
log0=$(stat -c %s "$log")
rc=0
/usr/bin/time -v -o "$work/time.txt" "$hotfix" --root "$root" -q install "$work/base.pkg" || rc=$?
[[ $rc == 0 || $rc == 3 ]] || { echo "manyfiles: install exited $rc" >&2; cat "$work/time.txt" >&2; exit 1; }
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
logline=$(($(stat -c %s "$log") - log0))
inv=0
for f in "$root"/.servicing/inventory.db "$root"/.servicing/inventory.db-wal "$root"/.servicing/inventory.db-shm; do
    [[ -f $f ]] && inv=$((inv + $(stat -c %s "$f")))
done
manifest=$(unzip -Zl "$work/base.pkg" manifest.json 2>/dev/null | awk 'NR == 1 {print $4}')
[[ -n $manifest ]] || manifest=$(python3 -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo("manifest.json").file_size)' "$work/base.pkg")
bound=$(((2 * manifest + (64 << 20)) / 1024))
row=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$nfiles" "$(stat -c %s "$work/base.pkg")" "$manifest" "$wall" "$rss" "$logline" "$inv" "$bound")
printf 'files\tpackage_bytes\tmanifest_bytes\twall_s\tpeak_rss_kib\tlog_line_bytes\tinventory_bytes\trss_bound_kib\n%s\n' "$row"
[[ -z $out ]] || printf '%s\n' "$row" >>"$out"
