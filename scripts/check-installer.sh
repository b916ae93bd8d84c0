#!/usr/bin/env bash
# Builds the installer stub as it ships (scripts/build-installer.sh: the size flags) and
# checks that an installer made with it works: it verifies its own file, describes its
# package (--what-if), and extracts it. Run by CI after the test suite (which tests the
# dev-profile stub); bench/installer.sh measures its size and install time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-installer.sh -q
stub=target/installer/hotfix-installer
pkgtool=target/debug/pkgtool
[[ -x $pkgtool ]] || cargo build --locked -q -p pkgtool
work=$(mktemp -d -t hotfix-check-installer-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$pkgtool" keygen "$work/k" >/dev/null
"$pkgtool" build examples/contoso/kb4.toml --key "$work/k.key" -o "$work/KB4.run" --stub "$stub" -q
"$work/KB4.run" --what-if --trust "$work/k.pub" >"$work/whatif.txt"
grep -q "KB4 (update)" "$work/whatif.txt"
"$work/KB4.run" /extract:"$work/x" --trust "$work/k.pub" /quiet
[[ -f $work/x/RTM/ldr/kernel/bin/kernel.dll ]]
# A damaged copy says so (exit 6).
head -c -1 "$work/KB4.run" >"$work/KB4-truncated.run"
chmod +x "$work/KB4-truncated.run"
rc=0
"$work/KB4-truncated.run" --what-if --trust "$work/k.pub" >/dev/null 2>&1 || rc=$?
[[ $rc == 6 ]] || { echo "check-installer: a truncated installer exited $rc, not 6" >&2; exit 1; }
# Issue 11's size target: every installer carries the stub.
size=$(stat -c %s "$stub")
(( size <= 2500000 )) || { echo "check-installer: the stub is $size bytes, over the 2,500,000-byte target" >&2; exit 1; }
echo "check-installer: the shipped stub ($size bytes) verifies, describes and extracts its package"
