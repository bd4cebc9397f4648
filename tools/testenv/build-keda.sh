#!/usr/bin/env bash
# Builds the KEDA operator from its Go module (github.com/kedacore/keda/v2) into a cache directory outside the repo,
# keyed by KEDA's and Go's versions, and keeps KEDA's CRDs beside it. Skips everything when both are there.
# KEDA is built as the main module, from a copy of its module directory, so that its own go.mod `replace` and
# `exclude` lines and its go.sum apply (a wrapper module would ignore them). Prints the cache directory.
set -euo pipefail
KEDA_VERSION="${KEDA_VERSION:-2.21.0}"
CACHE_ROOT="${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}"
GO_VERSION="$(go env GOVERSION)"
OUT="$CACHE_ROOT/keda-$KEDA_VERSION-$GO_VERSION"

complete() { [ -x "$OUT/bin/keda-operator" ] && [ "$(ls "$OUT/crds"/*.yaml 2>/dev/null | wc -l)" -ge 3 ]; }
if complete; then echo "$OUT"; exit 0; fi

export GOFLAGS=-mod=mod CGO_ENABLED=0
src="$CACHE_ROOT/src-keda-$KEDA_VERSION"
mod_dir=$(go mod download -json "github.com/kedacore/keda/v2@v$KEDA_VERSION" |
  python3 -c 'import sys,json;print(json.load(sys.stdin)["Dir"])')
rm -rf "$src" "$OUT.partial"
cp -r "$mod_dir" "$src"
chmod -R u+w "$src"
mkdir -p "$OUT.partial/bin" "$OUT.partial/crds"
(cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=v$KEDA_VERSION" \
  -o "$OUT.partial/bin/keda-operator" ./cmd/operator)
cp "$src"/config/crd/bases/*.yaml "$OUT.partial/crds/"
rm -rf "$src" "$OUT"
mv "$OUT.partial" "$OUT"
complete
echo "$OUT"
