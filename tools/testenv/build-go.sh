#!/usr/bin/env bash
# Builds the Go half of the test environment (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kubectl)
# from the Go module proxy into a cache directory outside the repo, keyed by versions.
# Skips everything when the versioned bin directory is already complete.
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE_ROOT="${TESTENV_CACHE:-$HOME/.cache/receipt-embeddings-testenv}"
BIN="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin"
want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

complete() { for b in "${want[@]}"; do [ -x "$BIN/$b" ] || return 1; done; }
if complete; then echo "$BIN"; exit 0; fi

export GOFLAGS=-mod=mod CGO_ENABLED=0
work="$CACHE_ROOT/src-$K8S_VERSION-$ETCD_VERSION"
mkdir -p "$work/etcd" "$work/k8s" "$BIN.partial"

build_etcd() {
  cd "$work/etcd"
  [ -f go.mod ] || go mod init local/etcdbin >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN.partial/etcd" go.etcd.io/etcd/server/v3
}

build_k8s() {
  cd "$work/k8s"
  local minor="0.${K8S_VERSION#1.}" gm ld=""
  [ -f go.mod ] || go mod init local/k8sbins >/dev/null 2>&1
  gm=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import sys,json;print(json.load(sys.stdin)["GoMod"])')
  for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$gm"); do
    go mod edit "-replace=$m=$m@v$minor"
  done
  go mod edit "-require=k8s.io/kubernetes@v$K8S_VERSION"
  printf 'package tools\nimport (\n _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n _ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n _ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n _ "k8s.io/kubernetes/cmd/kubelet/app"\n _ "k8s.io/kubernetes/cmd/kubectl"\n)\n' > tools.go
  go mod tidy
  local k_minor; k_minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  ld="-s -w"   # stripped: the cache holds ~30% less
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k_minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ld" -o "$BIN.partial/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl
}

build_etcd
build_k8s
mkdir -p "$BIN"
mv "$BIN.partial"/* "$BIN"/
rmdir "$BIN.partial"
complete
echo "$BIN"
