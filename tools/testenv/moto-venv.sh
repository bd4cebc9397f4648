#!/usr/bin/env bash
# Creates the moto server venv (moto[server], exact versions from moto-constraints.txt) in a cache directory
# outside the repo, keyed by moto's version. Skips the work when the venv already imports that moto version.
# Prints the venv directory.
set -euo pipefail
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
CACHE_ROOT="${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}"
PYTHON="${PYTHON:-python3}"
VENV="$CACHE_ROOT/moto-$MOTO_VERSION"
here="$(cd "$(dirname "$0")" && pwd)"

complete() {
  [ -x "$VENV/bin/moto_server" ] &&
    [ "$("$VENV/bin/python" -c 'import flask, moto; print(moto.__version__)' 2>/dev/null)" = "$MOTO_VERSION" ]
}
if complete; then echo "$VENV"; exit 0; fi

# A venv's scripts hard-code its path, so it is built in place; a half-built one is removed first.
rm -rf "$VENV"
mkdir -p "$CACHE_ROOT"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -c "$here/moto-constraints.txt" "moto[server]==$MOTO_VERSION" >&2
complete
echo "$VENV"
