#!/usr/bin/env bash
# Where `pkgtool verify` and `pkgtool build` spend their time. Run by bench/run.sh
# (BENCH_PROFILE=1, or BENCH_FULL=1), after it has built the packages; standalone:
#   BENCH_DIR=/tmp/hotfix-bench BENCH_BIN_DIR=target/release bench/profile.sh
#
# Uses the synthetic package when run.sh made it (full mode), else the Debian one. Writes
# $BENCH_DIR/results/profile.txt:
#   * perf's top symbols for verify and for build (perf from Debian's linux-perf; skipped
#     with a note when perf cannot sample here);
#   * verify against plain reads and hashes of the same file: cat, sha256sum (coreutils),
#     openssl dgst -sha256 (SHA-NI), and the share of the package's blobs that are stored;
#   * build time by content class: zstd -19 vs -3 over the payload's incompressible assets.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BIN=${BENCH_BIN_DIR:-$repo/target/release}
BENCH_DIR=${BENCH_DIR:-/tmp/hotfix-bench}
RES=$BENCH_DIR/results
KEY=$BENCH_DIR/key/bench
PKGTOOL=$BIN/pkgtool
mkdir -p "$RES"
report=$RES/profile.txt
: >"$report"
log() { echo "$*" | tee -a "$report" >&2; }

if [[ -f $BENCH_DIR/out/synth/update.pkg ]]; then
    set_=synth pkg=$BENCH_DIR/out/synth/update.pkg src=$BENCH_DIR/synth
else
    set_=debian pkg=$BENCH_DIR/out/debian/update.pkg src=$BENCH_DIR/debian
fi
[[ -f $pkg ]] || { echo "profile: no package yet; run bench/run.sh first" >&2; exit 1; }
log "# profile of pkgtool on the $set_ set: $pkg ($(stat -c %s "$pkg") bytes)"

have_perf=0
if command -v perf >/dev/null || { [[ $(id -u) == 0 ]] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null 2>&1; }; then
    perf record -q -o "$BENCH_DIR/tmp/perf.probe" -- true >/dev/null 2>&1 && have_perf=1
fi
[[ $have_perf == 1 ]] || log "(perf unavailable or not permitted here: symbol profiles skipped)"

top_symbols() { # top_symbols LABEL CMD... — perf's 12 hottest symbols
    local data=$BENCH_DIR/tmp/perf.$1.data
    perf record -q -F 499 -o "$data" -- "${@:2}" >/dev/null 2>&1
    log ""
    log "## perf: $1 (self time by symbol)"
    perf report -i "$data" --stdio --no-children --sort dso,symbol 2>/dev/null |
        grep -v '^#' | grep -v '^$' | awk 'NR <= 12 {printf "  %7s  %-18s %s\n", $1, $2, $4}' | tee -a "$report" >&2
}

t() { # t CMD... — wall seconds of one run
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}'
}

cat "$pkg" >/dev/null
log ""
log "## verify vs reading and hashing the same file (warm cache, one run each, seconds)"
log "  pkgtool verify        $(t "$PKGTOOL" verify "$pkg" --trust "$KEY.pub")"
log "  cat > /dev/null       $(t cat "$pkg")"
log "  sha256sum             $(t sha256sum "$pkg")"
command -v openssl >/dev/null && log "  openssl dgst -sha256  $(t openssl dgst -sha256 "$pkg")"
log "  $(zipinfo -l "$pkg" | awk '$NF ~ /^blobs\// {n++; u+=$4; c+=$6; if ($7 == "stor") {s++; su+=$4}} END {printf "blobs: %d, decoded %.0f MB, %.0f MB in the package; stored (not compressed) blobs: %d (%.0f MB)", n, u/1e6, c/1e6, s, su/1e6}')"
[[ $have_perf == 1 ]] && top_symbols "verify" "$PKGTOOL" verify "$pkg" --trust "$KEY.pub"

# build: a two-component slice of the synthetic set (the whole set takes minutes), or the
# Debian spec
if [[ $set_ == synth ]]; then
    spec=$src/slice.toml
    awk '/^\[\[variant\]\]/{v++} v == 0 || v <= 8' "$src/spec.toml" >"$spec"
else
    spec=$src/spec.toml
fi
log ""
log "## build: $spec"
(cd "$src" && log "  pkgtool build         $(t "$PKGTOOL" build "$spec" --key "$KEY.key" -o "$BENCH_DIR/tmp/slice.pkg" -q)")
[[ $have_perf == 1 ]] && (cd "$src" && top_symbols "build" "$PKGTOOL" build "$spec" --key "$KEY.key" -o "$BENCH_DIR/tmp/slice.pkg" -q)

if [[ $set_ == synth ]]; then
    # the already-compressed assets: what level 19 buys on them, and what it costs
    pak=$(find "$src/payload/synth000/rtm/gdr" -name '*.pak' | head -1)
    so=$(find "$src/payload/synth000/rtm/gdr" -name '*.so' | head -1)
    log ""
    log "## one core, zstd CLI: level 19 vs 3 by content class"
    for f in "$pak" "$so"; do
        n=$(stat -c %s "$f")
        for l in 19 3; do
            t0=$(date +%s%N)
            c=$(zstd -q -$l --no-check -T1 -c "$f" | wc -c)
            t1=$(date +%s%N)
            log "  $(basename "$f") ($((n / 1048576)) MiB) -$l: $(awk -v c="$c" -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f of its size in %.2f s (%.1f MB/s)", c/n, (b-a)/1e9, n/((b-a)/1e3)}')"
        done
    done
fi
log ""
log "written: $report"
