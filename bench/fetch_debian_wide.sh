#!/usr/bin/env bash
# Fetches the broadened compactness set (issue 16): for each candidate Debian package, the
# version in the point release (bookworm/main) and the newer one in bookworm-security or
# bookworm-updates, whatever they are when this runs (versions move; the script
# discovers them with apt). Writes OUT/<package>/{old,new}.deb and OUT/pairs.tsv
# (package, shape, old version, new version, suite).
#
#   bench/fetch_debian_wide.sh OUT [MAX]     MAX pairs at most (default: all candidates)
#
# Needs apt with bookworm, bookworm-updates and bookworm-security sources (a Debian 12
# machine); runs `apt-get update` first when root. A candidate with no newer version in
# either suite is skipped with a note; fewer than 10 pairs is an error.
set -euo pipefail
out=${1:?usage: fetch_debian_wide.sh OUT [MAX]}
max=${2:-1000}
# package:shape — executables that relink, libraries, interpreters with many small files,
# data-heavy packages. The five pairs of ../shared/corpus are left out (the stable
# reference set).
candidates=(
  openssh-client:executables curl:executables git:executables sudo:executables
  libcurl4:library libgnutls30:library libnss3:library libsqlite3-0:library libtiff6:library
  libglib2.0-0:library libkrb5-3:library libpq5:library libxslt1.1:library libwebp7:library
  bind9-libs:library bind9-dnsutils:executables
  libpython3.11-stdlib:interpreter python3.11-minimal:interpreter libperl5.36:interpreter
  perl-modules-5.36:interpreter
  tzdata:data distro-info-data:data ca-certificates:data postgresql-client-15:executables
)
if [[ $(id -u) == 0 ]]; then
  apt-get update -qq >/dev/null 2>&1 || echo "fetch: apt-get update failed; using the lists there are" >&2
fi
mkdir -p "$out"
: >"$out/pairs.tsv"
n=0
for c in "${candidates[@]}"; do
  ((n < max)) || break
  pkg=${c%%:*} shape=${c#*:}
  madison=$(apt-cache madison "$pkg" 2>/dev/null | grep ' amd64 Packages\| all Packages' || true)
  old=$(awk -F' \\| ' '$3 ~ /debian bookworm\/main/ {gsub(/ /, "", $2); print $2; exit}' <<<"$madison")
  newline=$(awk -F' \\| ' '$3 ~ /bookworm-security\/main|bookworm-updates\/main/ {print; exit}' <<<"$madison")
  new=$(awk -F' \\| ' '{gsub(/ /, "", $2); print $2}' <<<"$newline")
  suite=$(grep -o 'bookworm-[a-z]*' <<<"$newline" | head -1 || true)
  if [[ -z $old || -z $new || $old == "$new" ]]; then
    echo "fetch: $pkg: no newer version than the point release's (${old:-none}); skipped" >&2
    continue
  fi
  if ! dpkg --compare-versions "$old" lt "$new"; then
    echo "fetch: $pkg: $new is not newer than $old; skipped" >&2
    continue
  fi
  d=$out/$pkg
  mkdir -p "$d"
  if [[ ! -s $d/old.deb || ! -s $d/new.deb ]]; then
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download -qq "$pkg=$old" "$pkg=$new" >/dev/null 2>&1); then
      echo "fetch: $pkg: download of $old / $new failed; skipped" >&2
      rm -rf "$tmp" "$d"
      continue
    fi
    for f in "$tmp"/*.deb; do
      v=$(dpkg-deb -f "$f" Version)
      if [[ $v == "$old" ]]; then mv "$f" "$d/old.deb"; else mv "$f" "$d/new.deb"; fi
    done
    rm -rf "$tmp"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$pkg" "$shape" "$old" "$new" "$suite" >>"$out/pairs.tsv"
  n=$((n + 1))
  echo "fetch: $pkg ($shape): $old -> $new ($suite)" >&2
done
if ((n < 10)); then
  echo "fetch: only $n pairs found; the broadened set needs at least 10" >&2
  exit 1
fi
