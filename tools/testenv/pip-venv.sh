#!/usr/bin/env bash
# Builds one Python venv of the test environment in the tool cache, keyed by the package's version, with exact
# versions from a constraints file; skips the work when the venv already imports that version. Prints the venv.
#   pip-venv.sh <venv dir> <constraints file> <requirement> <python printing the installed version> <version>
# (moto-venv.sh and chromadb-venv.sh say what each venv is for.)
set -euo pipefail
VENV="$1" CONSTRAINTS="$2" REQUIREMENT="$3" CHECK="$4" VERSION="$5"
PYTHON="${PYTHON:-python3}"

complete() { [ "$("$VENV/bin/python" -c "$CHECK" 2>/dev/null)" = "$VERSION" ]; }
if complete; then echo "$VENV"; exit 0; fi

# A venv's scripts hard-code its path, so it is built in place; a half-built one is removed first.
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  -c "$CONSTRAINTS" "$REQUIREMENT" >&2
complete
echo "$VENV"
