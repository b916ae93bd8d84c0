#!/usr/bin/env bash
# Builds the self-contained installer's stub, size first: target/installer/hotfix-installer,
# which `pkgtool build --self-contained` picks up (see README, "Self-contained installers").
#
# On top of the `installer` profile (opt-level z, fat LTO, one codegen unit, panic=abort,
# stripped; Cargo.toml) and the trimmed SQLite (.cargo/config.toml), three things only a
# build's flags can say (cargo has no per-profile RUSTFLAGS on stable):
#   * zstd without its block compressors beyond `fast`: the stub compresses only the
#     inventory's rows (level 3, which falls back to `fast`), and the table of every
#     strategy would otherwise link them all (~300 KB);
#   * no unwind tables (the stub aborts on a panic; there is nothing to unwind to);
#   * identical code folded by the linker, and curve25519's portable backend (one
#     signature check per run does not need AVX2).
# A plain `cargo build --profile installer --bin hotfix-installer` makes a working stub
# ~0.3 MB larger. `-p hotfix-runtime` keeps the other workspace members' features out: the
# stub's reader is built without preflate (FORMAT.md §4.4, `-gz` level 0; 171 KB), which
# pkgtool's own dependency on the reader would otherwise turn on. Arguments are passed to
# cargo (e.g. --target-dir).
set -euo pipefail
cd "$(dirname "$0")/.."
zstd_defines=""
for s in DFAST GREEDY LAZY LAZY2 BTLAZY2 BTOPT BTULTRA; do
  zstd_defines+=" -DZSTD_EXCLUDE_${s}_BLOCK_COMPRESSOR"
done
export CFLAGS="${CFLAGS:-}${zstd_defines} -fno-asynchronous-unwind-tables"
export RUSTFLAGS="${RUSTFLAGS:-} -C force-unwind-tables=no -C link-arg=-Wl,--icf=all --cfg curve25519_dalek_backend=\"serial\""
exec cargo build --locked --profile installer -p hotfix-runtime --bin hotfix-installer --no-default-features "$@"
