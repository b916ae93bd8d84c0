#!/usr/bin/env bash
# Fetches Debian's `libwine` package and unpacks it, so the filever tests can read several
# hundred real Windows PE files with version resources.
#
# Usage: fetch-libwine.sh [CACHE_DIR]   (default: $FILEVER_CORPUS_CACHE or /tmp/hotfix-corpus/libwine)
# Afterwards the PE files are in CACHE_DIR/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/
# (the tests read FILEVER_LIBWINE_DIR, whose default is that path). Safe to run again.
set -euo pipefail

cache="${1:-${FILEVER_CORPUS_CACHE:-/tmp/hotfix-corpus/libwine}}"
mkdir -p "$cache"
cd "$cache"

if ! ls libwine_*.deb >/dev/null 2>&1; then
    if ! apt-get download libwine; then
        echo "apt-get download failed; running apt-get update and trying again" >&2
        apt-get update
        apt-get download libwine
    fi
fi

deb="$(ls libwine_*.deb | head -n 1)"
dpkg-deb -x "$deb" "$cache"
echo "unpacked $deb into $cache"
ls -d "$cache/usr/lib/"*/wine/*-windows 2>/dev/null || true
