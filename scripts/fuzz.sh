#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read untrusted bytes (see FUZZING.md).
#
#   scripts/fuzz.sh install               cargo-fuzz, if missing
#   scripts/fuzz.sh build                 build every target
#   scripts/fuzz.sh smoke [SECONDS]       every target a few seconds over the committed seeds (CI)
#   scripts/fuzz.sh long TARGET SECONDS   one target, growing its corpus in fuzz/corpus/TARGET
#   scripts/fuzz.sh list                  the targets
#
# FUZZ_NICE (default 10) is the runs' niceness: 19 lets a long campaign use only the
# cycles nothing else wants. FUZZ_ARGS adds libFuzzer flags, e.g. "-max_len=65536" or
# "-runs=10000000".
#
# libFuzzer through cargo-fuzz, on the machine's stable toolchain: cargo-fuzz passes
# nightly-only flags (-Z, sanitizer options), which RUSTC_BOOTSTRAP=1 lets stable accept.
# The targets build without a sanitizer (`--sanitizer none`): the crates they reach
# forbid `unsafe`, so AddressSanitizer would find nothing the Rust checks do not, at half
# the speed; debug assertions (overflow checks) stay on. Set FUZZ_SANITIZER=address to
# use one anyway. Every run bounds each input's time (-timeout) and memory
# (-rss_limit_mb, which also caps any single allocation).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$repo/fuzz"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
sanitizer="${FUZZ_SANITIZER:-none}"
timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
cargo_fuzz_version="0.13.2"
targets=(package manifest zip sigblock bsdiff blob pack filever spec switches)

install() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version" >&2
    nice -n 10 cargo install --locked --version "$cargo_fuzz_version" cargo-fuzz
  fi
}

build() {
  install
  (cd "$fuzz" && nice -n 10 cargo fuzz build --sanitizer "$sanitizer" "$@")
}

dict_of() {
  case "$1" in
    package | zip) echo "$fuzz/dicts/package.dict" ;;
    manifest) echo "$fuzz/dicts/manifest.dict" ;;
    switches) echo "$fuzz/dicts/switches.dict" ;;
    spec) echo "$fuzz/dicts/spec.dict" ;;
    sigblock) echo "$fuzz/dicts/sigblock.dict" ;;
    *) echo "" ;;
  esac
}

# Inputs not in git, added to a long run's corpus when they are on this machine: the PE
# corpus beside the project (never committed; see its README) and a few system ELF files.
extra_seeds() {
  local target="$1" dir="$2" f
  case "$target" in
    package | zip)
      # The contoso example packages, built with a throwaway key (the harness re-signs).
      local pkgtool=""
      for f in "$repo/target/release/pkgtool" "$repo/target/debug/pkgtool"; do
        [[ -x "$f" ]] && { pkgtool="$f"; break; }
      done
      if [[ -z "$pkgtool" ]]; then
        echo "fuzz: no pkgtool binary under target/; build it (cargo build -p pkgtool) to seed with the contoso packages" >&2
        return 0
      fi
      local keys
      keys="$(mktemp -d -t hotfix-fuzz-keys-XXXXXX)"
      "$pkgtool" keygen "$keys/k" >/dev/null
      for spec in "$repo"/examples/contoso/*.toml; do
        "$pkgtool" build "$spec" --key "$keys/k.key" -o "$dir/contoso_$(basename "$spec" .toml).pkg" >/dev/null ||
          echo "fuzz: could not build $spec" >&2
      done
      rm -rf "$keys"
      ;;
    filever)
      local pe="${HOTFIX_CORPUS:-$repo/../shared/corpus}/pe-branch-tags"
      if [[ -d "$pe" ]]; then
        for f in "$pe"/*.dll "$pe"/*.exe; do [[ -f "$f" ]] && cp -f "$f" "$dir/"; done
      else
        echo "fuzz: no PE corpus at $pe; filever runs on its committed seeds" >&2
      fi
      for f in /bin/true /usr/lib/x86_64-linux-gnu/libdl.so.2; do
        [[ -f "$f" ]] && cp -fL "$f" "$dir/elf_$(basename "$f")"
      done
      ;;
  esac
  return 0
}

run() {
  # run TARGET SECONDS CORPUS... : libFuzzer with the bounds every run keeps.
  local target="$1" secs="$2"
  shift 2
  local bin="$fuzz/target/x86_64-unknown-linux-gnu/release/$target" dict
  dict="$(dict_of "$target")"
  local args=(-max_total_time="$secs" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" -print_final_stats=1
    -artifact_prefix="$fuzz/artifacts/$target/")
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags, split on purpose
  [[ -n "${FUZZ_ARGS:-}" ]] && args+=(${FUZZ_ARGS})
  mkdir -p "$fuzz/artifacts/$target"
  # Scratch files of the package and spec targets go to a fresh directory.
  local scratch
  scratch="$(mktemp -d -t hotfix-fuzz-XXXXXX)"
  local rc=0
  TMPDIR="$scratch" nice -n "${FUZZ_NICE:-10}" "$bin" "${args[@]}" "$@" || rc=$?
  rm -rf "$scratch"
  return $rc
}

case "${1:-}" in
  install) install ;;
  build) shift; build "$@" ;;
  list) printf '%s\n' "${targets[@]}" ;;
  smoke)
    secs="${2:-5}"
    build
    for t in "${targets[@]}"; do
      echo "== fuzz smoke: $t (${secs}s)"
      # A scratch copy of the seeds: libFuzzer adds what it finds to its first corpus.
      work="$(mktemp -d -t hotfix-fuzz-smoke-XXXXXX)"
      cp -r "$fuzz/seeds/$t/." "$work/"
      if ! run "$t" "$secs" "$work" 2>"$work.log"; then
        tail -40 "$work.log" >&2
        echo "fuzz smoke: $t FAILED (its input is under fuzz/artifacts/$t/)" >&2
        exit 1
      fi
      grep -E '^stat::number_of_executed_units|^#[0-9]+ +DONE' "$work.log" | tail -2 || true
      rm -rf "$work" "$work.log"
    done
    echo "fuzz smoke: ${#targets[@]} targets passed"
    ;;
  long)
    [[ $# -eq 3 ]] || { echo "usage: $0 long TARGET SECONDS" >&2; exit 2; }
    t="$2"
    build
    corpus="$fuzz/corpus/$t"
    mkdir -p "$corpus"
    extra_seeds "$t" "$corpus"
    run "$t" "$3" "$corpus" "$fuzz/seeds/$t"
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
