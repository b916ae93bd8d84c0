#!/usr/bin/env bash
# The update channel's benchmark (issue #14): publishing 1,000 packages, the first scan of
# that repository, 10,000 simulated roots polling it through a real nginx on loopback
# when nothing changed, and the same idle poll by tough's own client (the peer) — with the
# ratio. Bounded: --seconds caps the polling phase (default 600 s).
#
#   bench/channel.sh [--packages N] [--roots N] [--threads N] [--seconds N] [--peer-sample N]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-nginx.sh
cargo build --locked --release -p hotfix-tests --example channel_poll
exec target/release/examples/channel_poll "$@"
