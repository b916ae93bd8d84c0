#!/usr/bin/env bash
# Runs the whole test suite: builds the binaries the end-to-end tests drive, then every
# test of the workspace. Extra test material that lives outside the repository (Debian's
# libwine PE files, a pefile virtual environment) is fetched by the scripts it names when
# HOTFIX_FETCH_CORPORA=1 (CI sets it); tests that need it skip with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${HOTFIX_FETCH_CORPORA:-0}" == 1 ]]; then
  for fetch in filever/tests/fetch-libwine.sh filever/tests/pefile-venv.sh; do
    if [[ -x "$fetch" ]]; then
      "$fetch" || echo "warning: $fetch failed; the tests that need it will skip" >&2
    fi
  done
fi

cargo build --locked --workspace --bins
cargo test --locked --workspace "$@"
