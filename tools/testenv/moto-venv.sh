#!/usr/bin/env bash
# The moto server venv (moto[server], exact versions from moto-constraints.txt) in the tool cache, keyed by moto's
# version (tools/testenv/pip-venv.sh). Prints the venv directory.
set -euo pipefail
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/pip-venv.sh" "${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}/moto-$MOTO_VERSION" \
  "$here/moto-constraints.txt" "moto[server]==$MOTO_VERSION" \
  'import flask, moto, shutil, sys; print(moto.__version__ if shutil.which("moto_server", path=sys.prefix + "/bin") else "")' \
  "$MOTO_VERSION"
