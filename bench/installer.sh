#!/usr/bin/env bash
# The self-contained installer's stub against the full `hotfix` as stub (issue #11):
# overhead bytes (installer − package) and the time to install the Debian pairs' update
# with each, into fresh roots, alternating, median of BENCH_REPS.
#
#   bench/installer.sh            builds what it needs (scripts/build-installer.sh,
#                                 cargo build --release --bins), prints the table
#   BENCH_STUB=PATH bench/installer.sh   another stub in place of target/installer's
#
# Needs ../shared/corpus/debian-security-pairs/ for the install rows (skips them without).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/hotfix-bench}
REPS=${BENCH_REPS:-7}
CORPUS=${BENCH_CORPUS:-$repo/../shared/corpus/debian-security-pairs}
cd "$repo"
if [[ -z ${BENCH_STUB:-} ]]; then
  scripts/build-installer.sh -q
  BENCH_STUB=$repo/target/installer/hotfix-installer
fi
cargo build --locked --release --bins -q
PKGTOOL=$repo/target/release/pkgtool
HOTFIX=$repo/target/release/hotfix
W=$BENCH_DIR/installer
rm -rf "$W"
mkdir -p "$W"
"$PKGTOOL" keygen "$W/k" >/dev/null
size() { stat -c %s "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Overhead: the contoso KB4 hotfix, as the first row of this benchmark always measured it.
"$PKGTOOL" build examples/contoso/kb4.toml --key "$W/k.key" -o "$W/kb4.pkg" -q
"$PKGTOOL" build examples/contoso/kb4.toml --key "$W/k.key" -o "$W/kb4-stub.run" --stub "$BENCH_STUB" -q
"$PKGTOOL" build examples/contoso/kb4.toml --key "$W/k.key" -o "$W/kb4-full.run" --stub "$HOTFIX" -q
over_stub=$(($(size "$W/kb4-stub.run") - $(size "$W/kb4.pkg")))
over_full=$(($(size "$W/kb4-full.run") - $(size "$W/kb4.pkg")))
verdict=$([[ $over_stub -le 2500000 ]] && echo met || echo "NOT met")
printf 'installer overhead, bytes: stub %s, full hotfix %s (target <= 2,500,000: %s)\n' "$over_stub" "$over_full" "$verdict"

if [[ ! -d $CORPUS ]]; then
  echo "SKIPPED install rows: no Debian pairs at $CORPUS"
  exit 0
fi
D=$BENCH_DIR/debian
stamp=$( (sha256sum "$CORPUS"/*.deb; sha256sum "$here/prep_debian.sh") | sha256sum | cut -c1-16)
if [[ ! -f $D/.stamp || $(cat "$D/.stamp") != "$stamp" ]]; then
  "$here/prep_debian.sh" "$CORPUS" "$D"
  echo "$stamp" >"$D/.stamp"
fi
(cd "$D" && "$PKGTOOL" build spec.toml --key "$W/k.key" -o "$W/update.pkg" -q &&
  "$PKGTOOL" build base/spec.toml --key "$W/k.key" -o "$W/base.pkg" -q &&
  "$PKGTOOL" build spec.toml --key "$W/k.key" -o "$W/update-stub.run" --stub "$BENCH_STUB" -q &&
  "$PKGTOOL" build spec.toml --key "$W/k.key" -o "$W/update-full.run" --stub "$HOTFIX" -q)
fresh() {
  rm -rf "$W/root"
  "$HOTFIX" --root "$W/root" init --product debian-bench --trust "$W/k.pub" -q
  "$HOTFIX" --root "$W/root" -q install "$W/base.pkg" || [[ $? == 3 ]]
}
ms() { # ms CMD...: wall milliseconds of one run
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
: >"$W/stub.ms"
: >"$W/full.ms"
for ((i = 0; i < REPS; i++)); do
  for which in stub full; do
    fresh
    sync
    rc=0
    ms "$W/update-$which.run" --root "$W/root" /quiet >>"$W/$which.ms" || rc=$?
    [[ $rc == 0 || $rc == 3 ]] || { echo "install with the $which stub failed: exit $rc" >&2; exit 1; }
  done
done
s=$(median <"$W/stub.ms")
f=$(median <"$W/full.ms")
printf 'install of DEBSEC1 (%s bytes), median of %s: stub %s ms, full hotfix %s ms, ratio %s\n' \
  "$(size "$W/update.pkg")" "$REPS" "$s" "$f" "$(awk -v a="$s" -v b="$f" 'BEGIN {printf "%.2f", a / b}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
