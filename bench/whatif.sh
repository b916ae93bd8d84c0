#!/usr/bin/env bash
# What delta encoding (and cross-file context) would save on the Debian pairs:
#   whatif.sh PAYLOAD PACKAGE OUT_DIR HAVE_BSDIFF
#
# PAYLOAD is <component>/{gdr,ldr}/... (bench/prep_debian.sh); PACKAGE is today's package
# of it. Writes OUT_DIR/whatif.tsv, one row per LDR-only content (an LDR file that is not
# byte-identical to a GDR file): component, path, kind (changed: a GDR file of the same path
# differs; new: no GDR file there), its blob's size in PACKAGE today, zstd -19
# --patch-from=GDR file, and bsdiff (bzip2 inside). For "new" rows both equal today's size.
# Writes OUT_DIR/whatif-summary.tsv (key, bytes):
#   package         today's package
#   blobs           sum of its blob entries' compressed sizes (the rest is manifest + zip)
#   ldr_part        sum of today's blob sizes over the rows (what LDR adds today)
#   patch_from      the same rows as zstd -19 --patch-from
#   bsdiff          the same rows as bsdiff
#   gdr_solid_zstd  GDR trees, one solid tar+zstd -19 --long per component
#   gdr_solid_xz86  GDR trees, one solid tar+xz -9e with the x86 BCJ filter per component
set -euo pipefail
payload=${1:?usage: whatif.sh PAYLOAD PACKAGE OUT_DIR HAVE_BSDIFF}
pkg=${2:?}
out=${3:?}
have_bsdiff=${4:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# blob sha256 -> compressed size in today's package
zipinfo -l "$pkg" | awk '$NF ~ /^blobs\// {sub("blobs/", "", $NF); print $NF, $6}' | sort >"$tmp/blobs"
blobs_total=$(awk '{s+=$2} END{print s+0}' "$tmp/blobs")
# every GDR content (those are stored today whatever LDR does)
(cd "$payload" && find ./*/gdr -type f -print0 | xargs -0 sha256sum) | awk '{print $1}' | sort -u >"$tmp/gdr.sha"

# per-component solid GDR, on the other core while the rows are computed
(
    gz=0 gx=0
    for cdir in "$payload"/*/; do
        c=$(basename "$cdir")
        tar -C "$payload" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$tmp/gdr.tar" "$c/gdr"
        a=$(zstd -q -19 --long=27 -c "$tmp/gdr.tar" | wc -c)
        b=$(xz -q -9e --x86 --lzma2=preset=9e -c "$tmp/gdr.tar" | wc -c)
        gz=$((gz + a)) gx=$((gx + b))
    done
    echo "$gz $gx" >"$tmp/solid"
) &
solid_pid=$!

rows=$out/whatif.tsv
printf 'component\tpath\tkind\ttoday\tpatch_from\tbsdiff\n' >"$rows"
: >"$tmp/seen"
for cdir in "$payload"/*/; do
    c=$(basename "$cdir")
    (cd "$payload/$c/ldr" && find . -type f | sed 's|^\./||' | sort) | while IFS= read -r p; do
        old=$payload/$c/gdr/$p new=$payload/$c/ldr/$p
        sha=$(sha256sum "$new" | cut -d' ' -f1)
        grep -qx "$sha" "$tmp/gdr.sha" && continue      # stored once already (identical to a GDR file)
        grep -qx "$sha" "$tmp/seen" && continue         # counted already
        echo "$sha" >>"$tmp/seen"
        today=$(awk -v s="$sha" '$1 == s {print $2}' "$tmp/blobs")
        [[ -n $today ]] || { echo "whatif: $c/ldr/$p: no blob $sha in $pkg" >&2; exit 1; }
        if [[ -f $old ]]; then
            kind=changed
            patch=$(zstd -q -19 --no-check --patch-from="$old" -c "$new" 2>/dev/null | wc -c)
            ((patch < today)) || patch=$today
            bs=$today
            if [[ $have_bsdiff == 1 ]]; then
                bsdiff "$old" "$new" "$tmp/p"
                bs=$(stat -c %s "$tmp/p")
                ((bs < today)) || bs=$today
            fi
        else
            kind=new patch=$today bs=$today
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$p" "$kind" "$today" "$patch" "$bs"
    done
done >>"$rows"

wait "$solid_pid"
read -r gz gx <"$tmp/solid"
{
    printf 'package\t%s\n' "$(stat -c %s "$pkg")"
    printf 'blobs\t%s\n' "$blobs_total"
    awk -F'\t' 'NR>1{t+=$4; p+=$5; b+=$6} END{printf "ldr_part\t%d\npatch_from\t%d\nbsdiff\t%d\n", t, p, b}' "$rows"
    printf 'gdr_solid_zstd\t%s\ngdr_solid_xz86\t%s\n' "$gz" "$gx"
} >"$out/whatif-summary.tsv"

echo "   LDR-only contents: $(($(wc -l <"$rows") - 1)); largest (bytes today, patch-from, bsdiff):"
tail -n +2 "$rows" | sort -t$'\t' -k4,4nr | awk 'NR <= 5' |
    awk -F'\t' '{printf "     %-12s %-46s %-7s %9d %9d %9d\n", $1, $2, $3, $4, $5, $6}'
sed 's/^/     /' "$out/whatif-summary.tsv"
