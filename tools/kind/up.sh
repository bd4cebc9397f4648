#!/usr/bin/env bash
# Local cluster for users with Docker (or podman): kind + KEDA + an in-cluster AWS emulator + the project image +
# charts synthesized with the `kind` environment. See docs/deploy.md "kind".
#
#   tools/kind/up.sh            # create (or reuse) the cluster and deploy
#   tools/kind/up.sh --down     # delete the cluster
#
# Needs: kind, kubectl, helm (or network access to the KEDA release manifest), docker or podman, node/npm.
# Environment: KEDA_VERSION (2.20.2), CLUSTER (receipt-embeddings), BUILD_IMAGE=1 to build the images first (docker
#              build of each Dockerfile target, or tools/image/build.sh with podman): the `kind` environment's
#              localhost/receipt-embeddings-{controller,worker,compactor}:dev.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CLUSTER="${CLUSTER:-receipt-embeddings}"
IMAGES=(localhost/receipt-embeddings-controller:dev localhost/receipt-embeddings-worker:dev
  localhost/receipt-embeddings-compactor:dev)
KEDA_VERSION="${KEDA_VERSION:-2.20.2}"
NS=receipt-embeddings
OUT="${OUT:-$ROOT/build/charts-kind}"
log() { printf '[kind] %s\n' "$*"; }

if [ "${1:-}" = "--down" ]; then
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

for bin in kind kubectl; do command -v "$bin" >/dev/null || { echo "missing $bin" >&2; exit 1; }; done
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
elif command -v podman >/dev/null; then ENGINE=podman; export KIND_EXPERIMENTAL_PROVIDER=podman
else echo "kind needs docker or podman" >&2; exit 1; fi
log "container engine: $ENGINE"

# 1. cluster
mkdir -p /tmp/receipt-embeddings-kind/chroma
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "creating cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config "$ROOT/tools/kind/kind-config.yaml" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null
# The hostPath PV's directory must be writable by the pods' uid/gid 10001 (hostPath ignores fsGroup).
docker_exec() { "$ENGINE" exec "$CLUSTER-control-plane" "$@"; }
docker_exec sh -c 'mkdir -p /var/local/receipt-embeddings/chroma && chown 10001:10001 /var/local/receipt-embeddings/chroma'

# 2. KEDA (CRDs + operator)
if command -v helm >/dev/null; then
  log "installing KEDA $KEDA_VERSION with helm"
  helm repo add kedacore https://kedacore.github.io/charts >/dev/null 2>&1 || true
  helm repo update kedacore >/dev/null
  helm upgrade --install keda kedacore/keda --version "$KEDA_VERSION" --namespace keda --create-namespace --wait
else
  log "installing KEDA $KEDA_VERSION from the release manifest"
  kubectl apply --server-side -f "https://github.com/kedacore/keda/releases/download/v$KEDA_VERSION/keda-$KEDA_VERSION.yaml"
  kubectl -n keda rollout status deploy/keda-operator --timeout=180s
fi

# 3. AWS emulator + its resources + the credentials Secret the kind environment references
kubectl apply -f "$ROOT/tools/kind/aws-emulator.yaml"
kubectl -n aws-emulator rollout status deploy/aws-emulator --timeout=180s
kubectl -n aws-emulator exec deploy/aws-emulator -- python -c '
import boto3
kw = dict(endpoint_url="http://localhost:5000", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sqs = boto3.client("sqs", **kw)
for q in ["receipt-embed", "receipt-embed-dlq", "receipt-lines", "receipt-words", "receipt-compaction-dlq"]:
    sqs.create_queue(QueueName=q)
s3 = boto3.client("s3", **kw)
for b in ["receipt-artifacts", "receipt-vectors"]:
    s3.create_bucket(Bucket=b)
ddb = boto3.client("dynamodb", **kw)
if "receipts" not in ddb.list_tables()["TableNames"]:
    ddb.create_table(TableName="receipts", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
print("emulator resources ready")
'

# 4. images (one per program, docs/adr/0016)
if [ "${BUILD_IMAGE:-0}" = 1 ]; then
  if [ "$ENGINE" = docker ]; then
    for image in "${IMAGES[@]}"; do
      target=${image#localhost/receipt-embeddings-}; docker build --target "${target%%:*}" -t "$image" "$ROOT"
    done
  else "$ROOT/tools/image/build.sh"; fi
fi
log "loading ${IMAGES[*]} into the cluster"
if [ "$ENGINE" = docker ]; then
  kind load docker-image "${IMAGES[@]}" --name "$CLUSTER"
else
  archive=$(mktemp --suffix=.tar); podman save --multi-image-archive -o "$archive" "${IMAGES[@]}"
  kind load image-archive "$archive" --name "$CLUSTER"; rm -f "$archive"
fi

# 5. charts for the kind environment
( cd "$ROOT" && npx tsx cdk8s/main.ts --env kind --out "$OUT" )
kubectl apply -f "$OUT/0000-namespace.k8s.yaml"
kubectl -n "$NS" create secret generic aws-emulator-credentials \
  --from-literal=AWS_ACCESS_KEY_ID=test --from-literal=AWS_SECRET_ACCESS_KEY=test \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" get secret openai >/dev/null 2>&1 || log "no Secret 'openai' (key api-key): workers fall back to OPENAI_BASE_URL / fail embedding calls"
kubectl apply -f "$OUT/0001-crds.k8s.yaml"
kubectl wait --for=condition=Established --timeout=60s crd/embeddingjobs.embedding.receipts.dev
kubectl apply -f "$OUT"
kubectl -n "$NS" rollout status deploy/embedctl-controller --timeout=180s
log "ready: kubectl -n $NS get embeddingjobs,jobs,pods; KEDA scales embedctl-compactor 0↔1 on the LINES/WORDS queues"
