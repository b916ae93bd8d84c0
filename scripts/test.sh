#!/usr/bin/env bash
# Runs the whole test suite: builds the binaries the end-to-end tests drive, then every
# test of the workspace. Extra test material that lives outside the repository (Debian's
# libwine PE files, a pefile virtual environment) is fetched by the scripts it names when
# HOTFIX_FETCH_CORPORA=1 (CI sets it); tests that need it skip with a message otherwise.
#
# The build is the same as examples/contoso/run.sh's (`cargo build --locked --workspace
# --bins`, the dev profile in target/debug), so running both builds the workspace once.
#
# A test that skips still counts as passed in cargo's own summary, so its message must be
# seen: tests print a line starting with `SKIP` or `skipping` when they skip, the run shows
# passing tests' output to this script (--show-output) but not to you, and a summary of
# the skips, with each test's name, is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${HOTFIX_FETCH_CORPORA:-0}" == 1 ]]; then
  for fetch in filever/tests/fetch-libwine.sh filever/tests/pefile-venv.sh; do
    if [[ -x "$fetch" ]]; then
      "$fetch" || echo "warning: $fetch failed; the tests that need it will skip" >&2
    fi
  done
fi

# The update-channel tests serve repositories with a real nginx on loopback; Debian's
# package is installed when missing (needs root; without it those tests skip, or fail when
# HOTFIX_REQUIRE_NGINX=1, as in CI).
scripts/ensure-nginx.sh || echo "warning: nginx is not installed; the update-channel tests will skip" >&2

cargo build --locked --workspace --bins

# --show-output goes after the caller's own test-binary arguments, if any.
args=("$@")
if [[ " ${args[*]-} " == *" -- "* ]]; then args+=(--show-output); else args+=(-- --show-output); fi
skips="$(mktemp)"
trap 'rm -f "$skips"' EXIT
# Passing tests' output (between "successes:" and "test result:") is hidden except the
# skip lines, which are collected with the name of the test that printed them.
set +e
cargo test --locked --workspace "${args[@]}" 2>&1 | awk -v skips="$skips" '
  /^successes:$/ { quiet = 1; next }
  /^test result:/ { quiet = 0 }
  quiet && /^---- .* stdout ----$/ { name = $2; next }
  quiet && /^(SKIP|skipping)/ { print name ": " $0 >> skips; next }
  !quiet { print }
'
status=${PIPESTATUS[0]}
# The reader as the installer stub has it: without preflate (FORMAT.md §4.4, `-gz` level 0).
cargo test --locked -p hotfix-reader --no-default-features --lib -q 2>&1 | tail -n 3
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
set -e
if [[ -s "$skips" ]]; then
  echo
  echo "SKIPPED: $(sort -u "$skips" | wc -l) test(s) did not run their checks (cargo counts them as passed):"
  sort -u "$skips" | sed 's/^/  /'
else
  echo
  echo "SKIPPED: none"
fi
exit "$status"
