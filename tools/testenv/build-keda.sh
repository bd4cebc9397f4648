#!/usr/bin/env bash
# Builds the KEDA operator from its Go module (github.com/kedacore/keda/v2) into a cache directory outside the repo,
# keyed by KEDA's and Go's versions, and keeps KEDA's CRDs beside it. Skips everything when both are there.
# KEDA is built as the main module (main-module.sh). Prints the cache directory.
set -euo pipefail
. "$(dirname "$0")/main-module.sh"
KEDA_VERSION="${KEDA_VERSION:-2.21.0}"
CACHE_ROOT="${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}"
GO_VERSION="$(go env GOVERSION)"
OUT="$CACHE_ROOT/keda-$KEDA_VERSION-$GO_VERSION"

complete() { [ -x "$OUT/bin/keda-operator" ] && [ "$(ls "$OUT/crds"/*.yaml 2>/dev/null | wc -l)" -ge 3 ]; }
if complete; then echo "$OUT"; exit 0; fi

export GOFLAGS=-mod=mod CGO_ENABLED=0
src="$CACHE_ROOT/src-keda-$KEDA_VERSION"
rm -rf "$OUT.partial"
copy_module_source github.com/kedacore/keda/v2 "$KEDA_VERSION" "$src"
mkdir -p "$OUT.partial/bin" "$OUT.partial/crds"
(cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=v$KEDA_VERSION" \
  -o "$OUT.partial/bin/keda-operator" ./cmd/operator)
cp "$src"/config/crd/bases/*.yaml "$OUT.partial/crds/"
rm -rf "$src" "$OUT"
mv "$OUT.partial" "$OUT"
complete
echo "$OUT"
