#!/usr/bin/env bash
# The main job on the shipped example: make a signing key, build the contoso packages
# (RTM and SP1 baselines, the KB4 update for two baselines x two branches, and the KB1
# hotfix), verify, inspect and extract KB4, then service a scratch root with them: RTM,
# KB4 (GDR), the KB1 hotfix (the root migrates to KB4's LDR build from the store), the
# SP1 service pack, and status at each step. Everything goes to a scratch directory
# (first argument, or a new temporary one), which is printed at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$(mktemp -d -t contoso-XXXXXX)}"
mkdir -p "$out"

# The same build as scripts/test.sh (dev profile, target/debug), shown as it goes: the
# first one takes minutes (see the README), later ones seconds.
cargo build --locked --manifest-path "$repo/Cargo.toml" --workspace --bins
pkgtool="$repo/target/debug/pkgtool"
hotfix="$repo/target/debug/hotfix"

step() { printf '\n== %s\n' "$*"; }

step "pkgtool keygen $out/vendor"
[[ -e "$out/vendor.key" ]] || "$pkgtool" keygen "$out/vendor"
for spec in rtm sp1 kb4 kb1; do
  step "pkgtool build examples/contoso/$spec.toml"
  "$pkgtool" build "$here/$spec.toml" --key "$out/vendor.key" -o "$out/$spec.pkg"
done
step "pkgtool verify kb4.pkg"
"$pkgtool" verify "$out/kb4.pkg" --trust "$out/vendor.pub"
step "pkgtool inspect kb4.pkg"
"$pkgtool" inspect "$out/kb4.pkg" --trust "$out/vendor.pub"
step "pkgtool extract kb4.pkg"
rm -rf "$out/kb4-extracted"
"$pkgtool" extract "$out/kb4.pkg" "$out/kb4-extracted" --trust "$out/vendor.pub"
(cd "$out/kb4-extracted" && find . -type f | sort)
root="$out/root"
rm -rf "$root"
step "hotfix init: a scratch root for contoso at $root"
"$hotfix" --root "$root" init --product contoso --trust "$out/vendor.pub"
for pkg in rtm kb4 kb1 sp1; do
  step "hotfix install $pkg.pkg"
  "$hotfix" --root "$root" install "$out/$pkg.pkg"
  step "hotfix status"
  "$hotfix" --root "$root" status
done
step "hotfix query --fix KB3 (exit 0: present)"
"$hotfix" --root "$root" query --fix KB3
step "hotfix check"
"$hotfix" --root "$root" check

# The update channel: the same packages published to a TUF repository (a directory here,
# read through file:// as from removable media; any static HTTP server serves it as is),
# and a second root that gets them from there.
keys="$out/repo-keys"
mkdir -p "$keys"
for role in root targets snapshot timestamp; do
  [[ -e "$keys/$role.key" ]] || "$pkgtool" -q keygen "$keys/$role"
done
online=(--targets-key "$keys/targets.key" --snapshot-key "$keys/snapshot.key" --timestamp-key "$keys/timestamp.key")
channel="$out/repo"
rm -rf "$channel"
step "pkgtool repo init $channel"
"$pkgtool" repo init "$channel" --root-key "$keys/root.key" "${online[@]}"
for pkg in kb4 kb1; do
  step "pkgtool repo add $pkg.pkg"
  "$pkgtool" repo add "$channel" "$out/$pkg.pkg" --trust "$out/vendor.pub" "${online[@]}"
done
fleet="$out/root-from-channel"
rm -rf "$fleet"
"$hotfix" --root "$fleet" init --product contoso --trust "$out/vendor.pub" >/dev/null
"$hotfix" --root "$fleet" install "$out/rtm.pkg" >/dev/null
step "hotfix subscribe file://$channel/"
"$hotfix" --root "$fleet" subscribe "file://$channel/" --root-json "$channel/root.json"
step "hotfix scan (KB1 is a hotfix: offered only when named)"
"$hotfix" --root "$fleet" scan
step "hotfix update"
"$hotfix" --root "$fleet" update
step "hotfix update --hotfix KB1"
"$hotfix" --root "$fleet" update --hotfix KB1
step "hotfix status"
"$hotfix" --root "$fleet" status
step "done: everything is in $out"
