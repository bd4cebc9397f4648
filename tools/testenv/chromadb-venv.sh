#!/usr/bin/env bash
# The venv of the original system's own Chroma library, Python chromadb 1.5.x (exact versions from
# chromadb-constraints.txt), in the tool cache keyed by its version (tools/testenv/pip-venv.sh). The tests use it to
# write snapshots and deltas as the original did (test/fixtures/lambda/write_fixtures.py) and to open this project's
# versions with it (the reverse interop test). Prints the venv directory.
set -euo pipefail
CHROMADB_PY_VERSION="${CHROMADB_PY_VERSION:-1.5.9}"
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/pip-venv.sh" "${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}/chromadb-py-$CHROMADB_PY_VERSION" \
  "$here/chromadb-constraints.txt" "chromadb==$CHROMADB_PY_VERSION" \
  'import numpy, chromadb; print(chromadb.__version__)' "$CHROMADB_PY_VERSION"
