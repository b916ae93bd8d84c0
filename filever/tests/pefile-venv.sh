#!/usr/bin/env bash
# Creates a Python virtual environment with `pefile`, an independent PE reader that the
# filever tests compare against (tests/pefile_dump.py runs in it).
#
# Usage: pefile-venv.sh [VENV_DIR]   (default: /tmp/hotfix-corpus/pefile-venv)
# The tests use $FILEVER_PEFILE_PYTHON, whose default is VENV_DIR/bin/python.
set -euo pipefail

venv="${1:-/tmp/hotfix-corpus/pefile-venv}"
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pefile
"$venv/bin/python" -c 'import pefile; print("pefile", pefile.__version__, "in", "'"$venv"'")'
