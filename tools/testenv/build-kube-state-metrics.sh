#!/usr/bin/env bash
# Builds kube-state-metrics from its Go module (k8s.io/kube-state-metrics/v2) into a cache directory outside the
# repo, keyed by its and Go's versions; skips the build when the binary is there. The real node's Prometheus scrapes
# it (test/harness/node/kube-state-metrics.ts) for the dashboard's and alerts' kube_* series. Built as the main
# module (main-module.sh). Prints the cache directory.
set -euo pipefail
. "$(dirname "$0")/main-module.sh"
KSM_VERSION="${KSM_VERSION:-2.20.0}"
CACHE_ROOT="${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}"
GO_VERSION="$(go env GOVERSION)"
OUT="$CACHE_ROOT/kube-state-metrics-$KSM_VERSION-$GO_VERSION"

if [ -x "$OUT/bin/kube-state-metrics" ]; then echo "$OUT"; exit 0; fi

export GOFLAGS=-mod=mod CGO_ENABLED=0
src="$CACHE_ROOT/src-kube-state-metrics-$KSM_VERSION"
rm -rf "$OUT.partial"
copy_module_source k8s.io/kube-state-metrics/v2 "$KSM_VERSION" "$src"
mkdir -p "$OUT.partial/bin"
# The version variables its Makefile sets (github.com/prometheus/common/version).
(cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=v$KSM_VERSION" \
  -o "$OUT.partial/bin/kube-state-metrics" .)
rm -rf "$src" "$OUT"
mv "$OUT.partial" "$OUT"
echo "$OUT"
