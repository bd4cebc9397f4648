#!/usr/bin/env bash
# Creates the venv of the original system's own Chroma library, Python chromadb 1.5.x (exact versions from
# chromadb-constraints.txt), in a cache directory outside the repo keyed by its version. The tests use it to write
# snapshots and deltas as the original did (test/fixtures/lambda/write_fixtures.py) and to open this project's
# versions with it (the reverse interop test). Skips the work when the venv already imports that version.
# Prints the venv directory.
set -euo pipefail
CHROMADB_PY_VERSION="${CHROMADB_PY_VERSION:-1.5.9}"
CACHE_ROOT="${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}"
PYTHON="${PYTHON:-python3}"
VENV="$CACHE_ROOT/chromadb-py-$CHROMADB_PY_VERSION"
here="$(cd "$(dirname "$0")" && pwd)"

complete() {
  [ "$("$VENV/bin/python" -c 'import numpy, chromadb; print(chromadb.__version__)' 2>/dev/null)" = "$CHROMADB_PY_VERSION" ]
}
if complete; then echo "$VENV"; exit 0; fi

# A venv's scripts hard-code its path, so it is built in place; a half-built one is removed first.
rm -rf "$VENV"
mkdir -p "$CACHE_ROOT"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -c "$here/chromadb-constraints.txt" "chromadb==$CHROMADB_PY_VERSION" >&2
complete
echo "$VENV"
