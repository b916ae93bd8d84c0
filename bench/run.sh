#!/usr/bin/env bash
# The benchmark suite: hotfix packages against peer formats on the same bytes, same run.
#
#   bench/run.sh                 fast: the Debian security pairs (a few minutes at most)
#   BENCH_FULL=1 bench/run.sh    + the ~1 GiB synthetic package, the 100,000-file root
#                                  and the profiles of verify and build
#   BENCH_ONLY=verify bench/run.sh   only the verify rows (packages built untimed if absent)
#
# Environment (all optional):
#   BENCH_BIN_DIR    where pkgtool and hotfix are      (default: <repo>/target/release)
#   BENCH_DIR        scratch and cache directory       (default: /tmp/hotfix-bench)
#   BENCH_CORPUS     the Debian pairs                  (default: <repo>/../shared/corpus/debian-security-pairs)
#   BENCH_FULL       1 = also the large sets           (default: 0)
#   BENCH_REPS       repetitions of each fast timing   (default: 3; the median is reported)
#   BENCH_BUILD_REPS repetitions of each Debian build  (default: 3)
#   BENCH_PROFILE    1 = profile verify/build (default: BENCH_FULL)
#   BENCH_ONLY       verify = only `verify`, `verify --deep` and their peers (default: all)
#   BENCH_SYNTH_COMPONENTS  components of the synthetic set (default: 22 -> ~1.03 GiB package)
#   BENCH_SCALE_FILES       files in the big root of the scaling test (default: 100000)
#
# Writes $BENCH_DIR/results/results.tsv (one row per figure) and measurements.tsv (one row
# per timed command), and prints the table. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BIN=${BENCH_BIN_DIR:-$repo/target/release}
BENCH_DIR=${BENCH_DIR:-/tmp/hotfix-bench}
CORPUS=${BENCH_CORPUS:-$repo/../shared/corpus/debian-security-pairs}
FULL=${BENCH_FULL:-0}
REPS=${BENCH_REPS:-3}
BUILD_REPS=${BENCH_BUILD_REPS:-3}
PROFILE=${BENCH_PROFILE:-$FULL}
ONLY=${BENCH_ONLY:-}
[[ -z $ONLY || $ONLY == verify ]] || die "BENCH_ONLY=$ONLY: only 'verify' is known"
SYNTH_COMPONENTS=${BENCH_SYNTH_COMPONENTS:-22}
SCALE_FILES=${BENCH_SCALE_FILES:-100000}

say() { printf '== %s\n' "$*" >&2; }
note() { printf '   note: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
apt_updated=0
need() { # need COMMAND DEBIAN_PACKAGE [optional]
    command -v "$1" >/dev/null 2>&1 && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        if ((apt_updated == 0)); then
            say "apt-get update (to install $2)"
            apt-get update -qq >&2 || true
            apt_updated=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 || true
    fi
    command -v "$1" >/dev/null 2>&1 && return 0
    [[ ${3:-} == optional ]] && { note "$1 (Debian package $2) is unavailable; what needs it is skipped"; return 1; }
    die "$1 is required (Debian package $2) and could not be installed"
}
[[ -x /usr/bin/time ]] || need /usr/bin/time time
need zstd zstd
need zip zip
need xz xz-utils
need dpkg-deb dpkg
need sha256sum coreutils
need python3 python3
HAVE_BSDIFF=0; need bsdiff bsdiff optional && HAVE_BSDIFF=1

PKGTOOL=$BIN/pkgtool
HOTFIX=$BIN/hotfix
[[ -x $PKGTOOL ]] || die "no pkgtool at $PKGTOOL: run 'cargo build --release' in $repo or set BENCH_BIN_DIR"
HAVE_HOTFIX=0
if [[ -x $HOTFIX ]] && "$HOTFIX" --help 2>&1 | grep -q 'install'; then
    HAVE_HOTFIX=1
else
    note "no working hotfix runtime at $HOTFIX ('hotfix --help' lists no install): install figures skipped"
fi

if [[ ! -d $CORPUS ]] || ! ls "$CORPUS"/*.deb >/dev/null 2>&1; then
    echo "bench: SKIPPED: the Debian pairs are absent ($CORPUS); they come with ../shared/corpus beside the repository." >&2
    exit 0
fi

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RES=$BENCH_DIR/results
mkdir -p "$RES" "$BENCH_DIR/tmp"
RESULTS=$RES/results.tsv
MEAS=$RES/measurements.tsv
printf 'set\tmetric\tours\tpeer\tpeer_value\tunit\tratio\ttarget\tverdict\n' >"$RESULTS"
printf 'label\truns\twall_median_s\twall_min_s\tcpu_median_s\tmax_rss_kib\n' >"$MEAS"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: nproc=$(nproc) cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1) mem=$(free -g | awk '/Mem:/{print $2}')GiB"
    echo "pkgtool: $PKGTOOL ($(stat -c %y "$PKGTOOL" | cut -d. -f1))"
    echo "hotfix: $([[ $HAVE_HOTFIX == 1 ]] && echo "$HOTFIX" || echo absent)"
    echo "zstd: $(zstd --version | grep -o 'v[0-9.]*')  dpkg: $(dpkg-deb --version | grep -o '[0-9][0-9.]*' | head -1)  zip: $(zip -v | sed -n 2p | awk '{print $4}')"
    echo "mode: FULL=$FULL REPS=$REPS BUILD_REPS=$BUILD_REPS ONLY=${ONLY:-all}"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RES/env.txt"

# ---------------------------------------------------------------- measuring
# Each timed command runs under /usr/bin/time: wall time (date, ns), CPU time (user + sys)
# and peak RSS ("Maximum resident set size", the largest process of the command). Exit codes
# 0 and 3 (hotfix: success, restart required) count as success. Figures are medians over
# the repetitions (RSS: the maximum). Ours and the peer run alternately (A B A B ...) so
# that load from other processes falls on both alike.
SAMPLES=$BENCH_DIR/tmp/samples
key_of() { printf '%s' "$1" | sha256sum | cut -c1-16; }

# run_once LABEL SETUP CMD... — SETUP is a shell string run first, untimed (may be empty)
run_once() {
    local label=$1 setup=$2
    shift 2
    local log=$BENCH_DIR/tmp/last.log tf=$BENCH_DIR/tmp/time.out t0 t1 rc=0 k
    mkdir -p "$SAMPLES"
    k=$(key_of "$label")
    [[ -n $setup ]] && { eval "$setup" >>"$log.setup" 2>&1 || die "$label: setup failed (see $log.setup)"; }
    t0=$(date +%s%N)
    /usr/bin/time -f '%U %S %M' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
    t1=$(date +%s%N)
    if [[ $rc != 0 && $rc != 3 ]]; then
        tail -20 "$log" >&2
        die "$label: '$*' exited $rc"
    fi
    tail -1 "$tf" | awk -v a="$t0" -v b="$t1" '{printf "%.4f %.3f %d\n", (b-a)/1e9, $1+$2, $3}' >>"$SAMPLES/$k"
}

# summarize LABEL — sets M_WALL, M_CPU (medians, s), M_RSS (max, KiB); logs one row
summarize() {
    local label=$1 k f n
    k=$(key_of "$label")
    f=$SAMPLES/$k
    med() { sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
    M_WALL=$(cut -d' ' -f1 "$f" | med)
    M_CPU=$(cut -d' ' -f2 "$f" | med)
    M_RSS=$(cut -d' ' -f3 "$f" | sort -g | tail -1)
    n=$(wc -l <"$f")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$n" "$M_WALL" "$(cut -d' ' -f1 "$f" | sort -g | head -1)" "$M_CPU" "$M_RSS" >>"$MEAS"
    printf '   %-44s %9.3f s wall %9.3f s CPU %8d KiB  (%d runs)\n' "$label" "$M_WALL" "$M_CPU" "$M_RSS" "$n" >&2
    rm -f "$f"
}

# measure LABEL REPS SETUP CMD...
measure() {
    local label=$1 reps=$2 setup=$3 i
    shift 3
    for ((i = 0; i < reps; i++)); do run_once "$label" "$setup" "$@"; done
    summarize "$label"
}

# measure_ab REPS LABEL_A SETUP_A ARRAY_A LABEL_B SETUP_B ARRAY_B — A and B alternately;
# sets A_WALL A_CPU A_RSS and B_WALL B_CPU B_RSS
measure_ab() {
    local reps=$1 la=$2 sa=$3 lb=$5 sb=$6 i
    local -n ca=$4 cb=$7
    for ((i = 0; i < reps; i++)); do
        run_once "$la" "$sa" "${ca[@]}"
        run_once "$lb" "$sb" "${cb[@]}"
    done
    summarize "$la"; A_WALL=$M_WALL A_CPU=$M_CPU A_RSS=$M_RSS
    summarize "$lb"; B_WALL=$M_WALL B_CPU=$M_CPU B_RSS=$M_RSS
}

size() { stat -c %s "$1"; }
warm() { cat "$@" >/dev/null; } # measurements are taken with a warm page cache, for ours and the peer alike
warm_tree() { find "$@" -type f -print0 | xargs -0 cat >/dev/null; }

# result SET METRIC OURS PEER_NAME PEER_VALUE UNIT [TARGET]
#   TARGET "ratio<=X": met when OURS/PEER <= X; "abs<=X": met when OURS <= X (in UNIT);
#   empty: information only.
result() {
    local set=$1 metric=$2 ours=$3 pname=$4 pval=$5 unit=$6 target=${7:-} ratio verdict=info
    ratio=$(awk -v a="$ours" -v b="$pval" 'BEGIN{ if (a != "-" && b != "-" && b+0 > 0) printf "%.3f", a/b; else print "-" }')
    case $target in
        skipped*) verdict=SKIPPED ;;
        ratio\<=*) verdict=$(awk -v r="$ratio" -v x="${target#ratio<=}" 'BEGIN{print (r != "-" && r+0 <= x+0) ? "MET" : "NOT MET"}') ;;
        abs\<=*) verdict=$(awk -v a="$ours" -v x="${target#abs<=}" 'BEGIN{print (a+0 <= x+0) ? "MET" : "NOT MET"}') ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$metric" "$ours" "$pname" "$pval" "$unit" "$ratio" "${target:--}" "$verdict" >>"$RESULTS"
}

# retire DIR — moves DIR out of the way, to be deleted by bury after the measurements.
# Deleting a root between timed runs would charge the next run for it: ext4 skips inodes
# freed in the last seconds when it allocates new ones, a scan that grew to 0.5-1 s of
# system time per install in the runs recorded before session 10, and more for the tool
# that creates more files.
retire() {
    [[ -e $1 ]] || return 0
    mkdir -p "$BENCH_DIR/tmp/retired"
    mv "$1" "$(mktemp -d "$BENCH_DIR/tmp/retired/XXXXXX")/"
}
bury() { rm -rf "$BENCH_DIR/tmp/retired"; }

fresh_dpkg_root() { # fresh_dpkg_root DIR — an empty dpkg database under DIR
    retire "$1"
    mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" "$1/var/lib/dpkg/triggers"
    touch "$1/var/lib/dpkg/status" "$1/var/lib/dpkg/available"
}
# --refuse-unsafe-io: dpkg fsyncs every file (Debian container images set force-unsafe-io
# in /etc/dpkg/dpkg.cfg.d; the install target is "with fsync durability" on both sides)
DPKG_ROOT_OPTS=(--log=/dev/null --refuse-unsafe-io)
[[ $(id -u) == 0 ]] || DPKG_ROOT_OPTS+=(--force-not-root --force-bad-path)

fresh_hotfix_root() { # fresh_hotfix_root DIR PRODUCT [BASELINE_PKG]
    retire "$1"
    "$HOTFIX" --root "$1" init --product "$2" --trust "$KEY.pub" -q
    if [[ -n ${3:-} ]]; then
        local rc=0
        "$HOTFIX" --root "$1" -q install "$3" || rc=$?
        [[ $rc == 0 || $rc == 3 ]] || return "$rc"
    fi
}

# ---------------------------------------------------------------- key
KEY=$BENCH_DIR/key/bench
if [[ ! -f $KEY.key ]]; then
    mkdir -p "$BENCH_DIR/key"
    "$PKGTOOL" keygen "$KEY" >/dev/null
fi

# ---------------------------------------------------------------- Debian pairs: payload
DEB=$BENCH_DIR/debian
stamp=$( (sha256sum "$CORPUS"/*.deb; sha256sum "$here/prep_debian.sh") | sha256sum | cut -c1-16)
if [[ ! -f $DEB/.stamp || $(cat "$DEB/.stamp") != "$stamp" ]]; then
    say "preparing the Debian payload in $DEB"
    "$here/prep_debian.sh" "$CORPUS" "$DEB"
    echo "$stamp" >"$DEB/.stamp"
fi
payload_bytes=$(du -sb "$DEB/payload" | cut -f1)
payload_files=$(find "$DEB/payload" -type f | wc -l)
say "Debian pairs: $(wc -l <"$DEB/versions.tsv") packages, $payload_files files, $payload_bytes bytes (GDR + LDR trees)"

# ---------------------------------------------------------------- Debian pairs: build
O=$BENCH_DIR/out/debian
TAR=(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf -)
if [[ -z $ONLY ]]; then
    rm -rf "$O"
    mkdir -p "$O"
    warm_tree "$DEB/payload"
    say "build (median of $BUILD_REPS, alternating)"
    cd "$DEB"
    OURS=("$PKGTOOL" build spec.toml --key "$KEY.key" -o "$O/update.pkg" -q)
    PEER=(bash -c '"$@" payload | zstd -q -19 --long=27 -T2 -f -o "$0"' "$O/trees.tar.zst" "${TAR[@]}")
    measure_ab "$BUILD_REPS" "debian: pkgtool build" "" OURS "debian: tar | zstd -19 --long=27 -T2" "" PEER
    measure "debian: zip -9 -r" 1 "rm -f '$O/trees.zip'" zip -q -9 -r "$O/trees.zip" payload
    zip_build=$M_WALL
    measure "debian: dpkg-deb --build (xz)" 1 "" dpkg-deb --root-owner-group -Zxz --build debroot "$O/trees.deb"
    deb_build=$M_WALL
    # information: one tree alone (what a perfect delta would approach)
    bash -c '"$@" payload/*/gdr | zstd -q -19 --long=27 -T2 -f -o "$0"' "$O/gdr.tar.zst" "${TAR[@]}"
    cd - >/dev/null
    "$PKGTOOL" build "$DEB/base/spec.toml" --key "$KEY.key" -o "$O/base.pkg" -q
    # untimed: the verify rows read it before the ablation rows would build it
    (cd "$DEB" && "$PKGTOOL" build spec.toml --key "$KEY.key" -o "$O/update-fast-decode.pkg" -q --fast-decode)

    ours_size=$(size "$O/update.pkg")
    result debian "package size" "$ours_size" "tar+zstd-19-long" "$(size "$O/trees.tar.zst")" bytes "ratio<=0.90"
    result debian "package size" "$ours_size" "zip -9" "$(size "$O/trees.zip")" bytes
    result debian "package size" "$ours_size" "deb (xz)" "$(size "$O/trees.deb")" bytes
    result debian "package size" "$ours_size" "GDR tree alone, tar+zstd" "$(size "$O/gdr.tar.zst")" bytes
    result debian "build time" "$A_WALL" "tar+zstd-19-long" "$B_WALL" s "ratio<=1.0"
    result debian "build CPU time" "$A_CPU" "tar+zstd-19-long" "$B_CPU" s
    result debian "build peak RSS" "$A_RSS" "tar+zstd-19-long" "$B_RSS" KiB
    result debian "build time" "$A_WALL" "zip -9" "$zip_build" s
    result debian "build time" "$A_WALL" "dpkg-deb (xz)" "$deb_build" s
else # the packages and peers the verify rows read, built untimed when absent
    mkdir -p "$O"
    (
        cd "$DEB"
        [[ -f $O/update.pkg ]] || "$PKGTOOL" build spec.toml --key "$KEY.key" -o "$O/update.pkg" -q
        [[ -f $O/update-fast-decode.pkg ]] ||
            "$PKGTOOL" build spec.toml --key "$KEY.key" -o "$O/update-fast-decode.pkg" -q --fast-decode
        [[ -f $O/trees.tar.zst ]] || "${TAR[@]}" payload | zstd -q -19 --long=27 -T2 -f -o "$O/trees.tar.zst"
    )
fi
# the xz peer of verify --deep: the same tar, xz -6 (untimed, once)
[[ -f $O/trees.tar.xz ]] || (cd "$DEB" && "${TAR[@]}" payload | xz -6 -T2 -c >"$O/trees.tar.xz.part" && mv "$O/trees.tar.xz.part" "$O/trees.tar.xz")

# ---------------------------------------------------------------- verify
# `pkgtool verify` is the authentication pass (FORMAT.md §8 steps 1-13): every byte hashed
# and the signature checked, no blob decoded. Its peer is hashing the file: sha256sum.
verify_vs_sha() { # verify_vs_sha SET LABEL PKG TIME_TARGET [RSS_TARGET]
    warm "$3"
    local OURS=("$PKGTOOL" verify "$3" --trust "$KEY.pub") PEER=(sha256sum "$3") mb
    mb=$(awk -v b="$(size "$3")" 'BEGIN{printf "%.0f MB", b/1e6}')
    measure_ab "$REPS" "$1: pkgtool verify$2" "" OURS "$1: sha256sum$2" "" PEER
    result "$1" "verify$2 time ($mb)" "$A_WALL" "sha256sum" "$B_WALL" s "$4"
    result "$1" "verify$2 CPU time" "$A_CPU" "sha256sum" "$B_CPU" s
    result "$1" "verify$2 peak RSS" "$A_RSS" "sha256sum" "$B_RSS" KiB "${5:-}"
    if command -v openssl >/dev/null; then # information: a SHA-NI hash of the same file
        local t=$A_WALL
        measure "$1: openssl dgst -sha256$2" "$REPS" "" openssl dgst -sha256 "$3"
        result "$1" "verify$2 time" "$t" "openssl dgst -sha256" "$M_WALL" s
    fi
}
# `pkgtool verify --deep` adds the decode pass (step 14): every blob decoded and hashed.
# Its peers decompress the same payload as one tar: zstd -d of a tar+zstd --long=27
# archive, and xz -d of an xz -6 one (each to /dev/null, no hash).
deep_vs_decoders() { # deep_vs_decoders SET LABEL PKG TAR_ZST ZST_NAME [TAR_XZ]
    warm "$3" "$4" ${6:+"$6"}
    local OURS=("$PKGTOOL" verify --deep "$3" --trust "$KEY.pub") PEER=(zstd -d -q --long=27 -f -o /dev/null "$4")
    measure_ab "$REPS" "$1: pkgtool verify --deep$2" "" OURS "$1: zstd -d --long=27 ($5)$2" "" PEER
    result "$1" "verify --deep$2 time" "$A_WALL" "zstd -d of $5" "$B_WALL" s
    result "$1" "verify --deep$2 CPU time" "$A_CPU" "zstd -d of $5" "$B_CPU" s
    result "$1" "verify --deep$2 peak RSS" "$A_RSS" "zstd -d of $5" "$B_RSS" KiB
    if [[ -n ${6:-} ]]; then
        local t=$A_WALL
        measure "$1: xz -d (tar.xz -6)$2" "$REPS" "" bash -c 'xz -d -c "$0" >/dev/null' "$6"
        result "$1" "verify --deep$2 time" "$t" "xz -d of tar.xz -6" "$M_WALL" s
    fi
}
say "verify (median of $REPS, alternating)"
verify_vs_sha debian "" "$O/update.pkg" "ratio<=1.1"   # with LZMA blobs
verify_vs_sha debian ", --fast-decode package" "$O/update-fast-decode.pkg" "ratio<=1.1"
say "verify --deep (median of $REPS, alternating)"
deep_vs_decoders debian "" "$O/update.pkg" "$O/trees.tar.zst" "tar+zstd-19-long" "$O/trees.tar.xz"
deep_vs_decoders debian ", --fast-decode package" "$O/update-fast-decode.pkg" "$O/trees.tar.zst" "tar+zstd-19-long" "$O/trees.tar.xz"

if [[ -z $ONLY ]]; then
# ---------------------------------------------------------------- install
install_vs_dpkg() { # install_vs_dpkg SET PRODUCT BASE_PKG PKG DEB [RSS_TARGET]
    local set=$1 product=$2 base=$3 pkg=$4 deb=$5 memtarget=${6:-} hr=$BENCH_DIR/tmp/hroot dr=$BENCH_DIR/tmp/droot
    local PEER=(dpkg --root="$dr" "${DPKG_ROOT_OPTS[@]}" -i "$deb") OURS=("$HOTFIX" --root "$hr" -q install "$pkg")
    warm "$deb" "$pkg"
    local ok=$HAVE_HOTFIX rc=0
    if [[ $ok == 1 ]]; then # one untimed trial: a runtime that cannot install this package is noted, not fatal
        fresh_hotfix_root "$hr" "$product" "$base" >"$BENCH_DIR/tmp/trial.log" 2>&1 &&
            "$HOTFIX" --root "$hr" -q install "$pkg" >>"$BENCH_DIR/tmp/trial.log" 2>&1 || rc=$?
        if [[ $rc != 0 && $rc != 3 ]]; then
            ok=0
            note "hotfix install of $pkg failed (exit $rc): $(tail -1 "$BENCH_DIR/tmp/trial.log")"
        fi
    fi
    if [[ $ok == 1 ]]; then
        measure_ab "$REPS" "$set: hotfix install (fresh root)" "fresh_hotfix_root '$hr' '$product' '$base'; sync" OURS \
            "$set: dpkg -i --root (fresh root)" "fresh_dpkg_root '$dr'; sync" PEER
        result "$set" "install time" "$A_WALL" "dpkg -i" "$B_WALL" s "ratio<=1.0"
        result "$set" "install CPU time" "$A_CPU" "dpkg -i" "$B_CPU" s
        result "$set" "install peak RSS" "$A_RSS" "dpkg -i" "$B_RSS" KiB "$memtarget"
    else
        local why="skipped: no hotfix"
        [[ $HAVE_HOTFIX == 1 ]] && why="skipped: hotfix failed"
        measure "$set: dpkg -i --root (fresh root)" "$REPS" "fresh_dpkg_root '$dr'; sync" "${PEER[@]}"
        result "$set" "install time" "-" "dpkg -i" "$M_WALL" s "$why"
        result "$set" "install peak RSS" "-" "dpkg -i" "$M_RSS" KiB "$why"
    fi
    rm -rf "$hr" "$dr"
    bury
}
say "install (median of $REPS, alternating)"
install_vs_dpkg debian debian-bench "$O/base.pkg" "$O/update.pkg" "$O/trees.deb"

# ---------------------------------------------------------------- what each encoding adds
say "ablation: the same package without packs, and with Zstandard only"
(
    cd "$DEB"
    "$PKGTOOL" build spec.toml --key "$KEY.key" -o "$O/update-no-pack.pkg" -q --no-pack
    [[ -f $O/update-fast-decode.pkg ]] ||
        "$PKGTOOL" build spec.toml --key "$KEY.key" -o "$O/update-fast-decode.pkg" -q --fast-decode
)
tzs=$(size "$O/trees.tar.zst")
result debian "package size, --no-pack" "$(size "$O/update-no-pack.pkg")" "tar+zstd-19-long" "$tzs" bytes
result debian "package size, --fast-decode (no LZMA)" "$(size "$O/update-fast-decode.pkg")" "tar+zstd-19-long" "$tzs" bytes
fi

# ---------------------------------------------------------------- full mode: the large set
if [[ $FULL == 1 ]]; then
    SYN=$BENCH_DIR/synth
    sstamp=$( (echo "$SYNTH_COMPONENTS"; sha256sum "$here/gen_synth.py"; cat "$DEB/.stamp") | sha256sum | cut -c1-16)
    if [[ ! -f $SYN/.stamp || $(cat "$SYN/.stamp") != "$sstamp" ]]; then
        say "generating the synthetic set ($SYNTH_COMPONENTS components x 4 builds) in $SYN"
        rm -rf "$SYN"
        mkdir -p "$SYN"
        python3 "$here/gen_synth.py" "$DEB/payload" "$SYN" --components "$SYNTH_COMPONENTS" 2>/dev/null
        python3 - "$SYN" <<'PY'
import os, sys
syn = sys.argv[1]
# the RTM baseline for hotfix installs: one placeholder file per component
comps = sorted(os.listdir(os.path.join(syn, "payload")))
lines = ['[package]', 'id = "SYNTH-RTM"', 'kind = "baseline"', 'product = "bench"',
         'title = "Synthetic baseline"', 'baseline = { name = "RTM", level = 0 }', '']
for c in comps:
    d = os.path.join(syn, "base", "payload", c, "share", "baseline")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, c), "w").write(f"baseline placeholder for {c}\n")
    lines += ['[[variant]]', f'component = "{c}"', 'version = "1.0"', f'dir = "payload/{c}"', '']
open(os.path.join(syn, "base", "spec.toml"), "w").write("\n".join(lines))
PY
        mkdir -p "$SYN/debroot/DEBIAN" "$SYN/debroot/opt/bench"
        cp -al "$SYN/payload/." "$SYN/debroot/opt/bench/"
        sed 's/^Package: .*/Package: hotfix-bench-synth/' "$DEB/debroot/DEBIAN/control" >"$SYN/debroot/DEBIAN/control"
        echo "$sstamp" >"$SYN/.stamp"
    fi
    OS=$BENCH_DIR/out/synth
    mkdir -p "$OS"
    say "synthetic set: $(find "$SYN/payload" -type f | wc -l) files, $(du -sb "$SYN/payload" | cut -f1) bytes; builds (1 run each)"
    cd "$SYN"
    warm_tree payload
    OURS=("$PKGTOOL" build spec.toml --key "$KEY.key" -o "$OS/update.pkg" -q)
    PEER=(bash -c '"$@" payload | zstd -q -19 --long=27 -T2 -f -o "$0"' "$OS/trees.tar.zst" "${TAR[@]}")
    if [[ -z $ONLY ]]; then
        measure_ab 1 "synth: pkgtool build" "" OURS "synth: tar | zstd -19 --long=27 -T2" "" PEER
        result synth "package size" "$(size "$OS/update.pkg")" "tar+zstd-19-long" "$(size "$OS/trees.tar.zst")" bytes "ratio<=0.90"
        result synth "build time" "$A_WALL" "tar+zstd-19-long" "$B_WALL" s "ratio<=1.0"
        result synth "build CPU time" "$A_CPU" "tar+zstd-19-long" "$B_CPU" s
        result synth "build peak RSS" "$A_RSS" "tar+zstd-19-long" "$B_RSS" KiB
    else # untimed, once
        # the zstd peer at -6, not -19 (an hour of CPU here): zstd decodes both about as fast
        [[ -f $OS/update.pkg && $OS/update.pkg -nt $SYN/.stamp ]] || "${OURS[@]}"
        [[ -f $OS/trees.tar.zst && $OS/trees.tar.zst -nt $SYN/.stamp ]] ||
            bash -c '"$@" payload | zstd -q -6 --long=27 -T2 -f -o "$0"' "$OS/trees.tar.zst" "${TAR[@]}"
    fi
    # the equivalent .deb, compressed with zstd -3 rather than xz so that it builds in
    # reasonable time (and installs faster: a stricter peer for the install figure)
    if [[ -z $ONLY ]] && [[ ! -f $OS/trees.deb || $OS/trees.deb -ot $SYN/.stamp ]]; then
        dpkg-deb --root-owner-group -Zzstd -z3 --build debroot "$OS/trees.deb" >/dev/null
    fi
    [[ -n $ONLY ]] || "$PKGTOOL" build base/spec.toml --key "$KEY.key" -o "$OS/base.pkg" -q
    cd - >/dev/null
    pkgsize=$(size "$OS/update.pkg")
    ((pkgsize >= 500 * 1000 * 1000)) || note "the synthetic package is only $pkgsize bytes (< 500 MB): raise BENCH_SYNTH_COMPONENTS"
    ((pkgsize >= 1 << 30)) || note "the synthetic package is $pkgsize bytes (< 1 GiB): the memory target wants 1 GiB"
    say "verify (median of $REPS)"
    verify_vs_sha synth "" "$OS/update.pkg" "ratio<=1.1" "abs<=65536"
    say "verify --deep (median of $REPS)"
    deep_vs_decoders synth "" "$OS/update.pkg" "$OS/trees.tar.zst" "tar+zstd --long=27"
    if [[ -z $ONLY ]]; then
        say "install (median of $REPS)"
        install_vs_dpkg synth bench "$OS/base.pkg" "$OS/update.pkg" "$OS/trees.deb" "abs<=65536"

        # ------------------------------------------------------------ scaling: root of N files
        if [[ $HAVE_HOTFIX == 1 ]]; then
            say "scaling: one-component hotfix into a root of 10 vs $SCALE_FILES files"
            if "$here/scaling.sh" "$PKGTOOL" "$HOTFIX" "$KEY" "$BENCH_DIR/scale" "$SCALE_FILES" "$REPS" "$RES/scaling.tsv" >&2; then
                small=$(awk -F'\t' '$1=="small"{print $2}' "$RES/scaling.tsv")
                big=$(awk -F'\t' '$1=="big"{print $2}' "$RES/scaling.tsv")
                result scaling "hotfix install, root of $SCALE_FILES files" "$big" "same, root of 10 files" "$small" s "ratio<=2.0"
            else
                note "the scaling test failed; see above"
                result scaling "hotfix install, root of $SCALE_FILES files" "-" "same, root of 10 files" "-" s "skipped: failed"
            fi
        else
            result scaling "hotfix install, root of $SCALE_FILES files" "-" "same, root of 10 files" "-" s "skipped: no hotfix"
        fi
    fi # not BENCH_ONLY
fi

if [[ $PROFILE == 1 ]]; then
    say "profiling verify and build"
    "$here/profile.sh" >&2 || note "profiling failed; see above"
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/env.txt"

# ---------------------------------------------------------------- table
human() { # human VALUE UNIT
    awk -v v="$1" -v u="$2" 'BEGIN{
        if (v == "-") { print "-"; exit }
        if (u == "bytes") printf "%.2f MB", v/1e6;
        else if (u == "KiB") printf "%.1f MiB", v/1024;
        else printf "%.3f s", v }'
}
{
    echo
    printf '%-8s %-44s %12s  %-26s %12s %7s  %-11s %s\n' set metric ours peer "peer value" ratio target verdict
    tail -n +2 "$RESULTS" | while IFS=$'\t' read -r set metric ours pname pval unit ratio target verdict; do
        printf '%-8s %-44s %12s  %-26s %12s %7s  %-11s %s\n' "$set" "$metric" "$(human "$ours" "$unit")" \
            "$pname" "$(human "$pval" "$unit")" "$ratio" "$target" "$verdict"
    done
    echo
    sed -n 's/^load average/load average/p' "$RES/env.txt"
    echo "results: $RESULTS; per command: $MEAS; environment: $RES/env.txt"
} | tee "$RES/table.txt"
