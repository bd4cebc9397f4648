#!/usr/bin/env bash
# Builds the project's Dockerfile with podman, without any image registry, and runs `--help` of each entry point
# inside the result. Not part of `npm test` (slow; needs root, apt and podman). See docs/deploy.md "Image".
#
#   tools/image/build.sh            # build localhost/receipt-embeddings:dev and smoke-test it
#   IMAGE=localhost/x:y tools/image/build.sh
#   SAVE=/tmp/image.tar tools/image/build.sh   # also `podman save` a docker-archive (for `kind load image-archive`)
#   SAVE_DIR=dir tools/image/build.sh          # the real node's images: dir/app.tar (this image) and dir/pause.tar
#                                              # (the pod sandbox image), re-saved only when an image changed
#
# How it works (details: ../shared/reference/containers.md):
# 1. A Debian bookworm rootfs from debootstrap (--variant=minbase) is imported as localhost/base:bookworm, once.
# 2. A stand-in for the official Node image is made from it: the host's Node 20 binary, npm and headers copied to
#    /usr/local (the official image's layout), tagged docker.io/library/node:20.20.2-bookworm-slim, so the
#    Dockerfile's `FROM` resolves locally with --pull=never. The real image is used wherever a registry is reachable.
# 3. podman build with private storage/config under $WORK (nothing global is touched): runc as runtime and ulimits
#    at the host's hard limits (this VM lacks CAP_SYS_RESOURCE), overlay storage.
# The build stage itself still downloads npm packages (registry.npmjs.org) and the C++ toolchain (Debian mirror).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${IMAGE_WORK:-$HOME/.cache/receipt-embeddings-image}"
IMAGE="${IMAGE:-localhost/receipt-embeddings:dev}"
NODE_TAG="docker.io/library/node:20.20.2-bookworm-slim"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$WORK"
t0=$(date +%s)
log() { printf '[image %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need debootstrap || ! need runc; then
  log "installing podman buildah debootstrap runc from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah debootstrap runc >/dev/null
fi

nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=32768
[ "$nproc" -gt 32768 ] && nproc=32768
cat > "$WORK/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
CONF
cat > "$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf" CONTAINERS_CONF="$WORK/containers.conf"

# A build killed half-way leaves buildah working containers in the store; they pin the dangling layers and make the
# final prune fail ("image is in use by a container"). The store is this script's own, so all of them are ours.
stale=$(podman ps -a --external --format '{{.ID}}')
if [ -n "$stale" ]; then
  log "removing $(echo "$stale" | wc -l) working container(s) left by an interrupted build"
  # shellcheck disable=SC2086
  podman rm -f $stale >/dev/null
fi

# 1. base image
if ! podman image exists localhost/base:bookworm; then
  if [ ! -f "$WORK/base.tar" ]; then
    log "debootstrap minbase bookworm from $MIRROR"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" --numeric-owner -cf "$WORK/base.tar" .
    rm -rf "$WORK/rootfs"
  fi
  log "importing base image"
  podman import --change 'CMD ["/bin/bash"]' "$WORK/base.tar" localhost/base:bookworm >/dev/null
fi

# 2. stand-in for node:20.20.2-bookworm-slim (skipped when a real one is already in the store)
if ! podman image exists "$NODE_TAG"; then
  log "making a local stand-in for $NODE_TAG from the host's node $(node --version)"
  ctx="$WORK/nodebase"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$(readlink -f "$(command -v node)")" "$ctx/node"
  cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$ctx/npm"
  cp -a /usr/include/node "$ctx/include-node"
  cat > "$ctx/Dockerfile" <<'DF'
FROM localhost/base:bookworm
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY include-node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
CMD ["node"]
DF
  podman build --pull=never --network=none -q -t "$NODE_TAG" "$ctx" >/dev/null
fi

# 3. the project image, from the committed tree (git archive HEAD) so that half-written files in the work tree do
#    not leak into it; CONTEXT=worktree builds the work tree as it is.
if [ "${CONTEXT:-head}" = worktree ]; then
  ctxdir="$ROOT"
else
  ctxdir="$WORK/context"
  rm -rf "$ctxdir"; mkdir -p "$ctxdir"
  git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$ctxdir"
  log "context: git archive of $(git -C "$ROOT" rev-parse --short HEAD)"
fi
log "podman build $IMAGE"
b0=$(date +%s)
# Build-time only mounts (never in a layer): the host's CA bundle (this VM's egress proxy re-signs TLS) and the
# host's npm cache (saves downloading ~800 MB of packages again).
mounts=()
ca="${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$ca" ] && mounts+=(-v "$ca:/etc/ssl/build-ca.crt:ro")
[ -d "$HOME/.npm/_cacache" ] && mounts+=(-v "$HOME/.npm/_cacache:/root/.npm/_cacache")
# --network=host: the build's RUN steps reach the registries through the host's network; podman's default would
# create a CNI bridge (cni-podman0) on the host and leave it there.
# The build stage is tagged too: untagged, its layers (apt toolchain, npm ci) are dangling once the final image is
# made, the prune at the end removes them, and every build ran apt and npm ci again (≈ 2 min of a 2.5-min build).
build_tag="localhost/receipt-embeddings-build:cache"
podman build --pull=never --network=host --layers "${mounts[@]}" --target build -t "$build_tag" \
  -f "$ctxdir/Dockerfile" "$ctxdir" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
podman build --pull=never --network=host --layers "${mounts[@]}" -t "$IMAGE" -f "$ctxdir/Dockerfile" "$ctxdir" >>"$WORK/build.log" 2>&1 || {
  tail -40 "$WORK/build.log"; exit 1; }
b1=$(date +%s)
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
log "built $IMAGE in $((b1 - b0)) s, size $((size / 1024 / 1024)) MiB (log: $WORK/build.log)"

# 4. smoke test: every entry point starts and prints its help, as the non-root user, read-only root, no network
for cmd in "--help" "controller --help" "worker --help" "compactor --help"; do
  # shellcheck disable=SC2086
  if out=$(podman run --rm --network=none --read-only --tmpfs /tmp --cap-drop=ALL --security-opt=no-new-privileges \
      "$IMAGE" $cmd 2>&1); then
    log "ok: embedctl $cmd ($(echo "$out" | head -1))"
  else
    echo "$out" | tail -20
    log "FAILED: embedctl $cmd"
    exit 1
  fi
done
user=$(podman run --rm --network=none --entrypoint id "$IMAGE" -u)
[ "$user" = 10001 ] || { log "image user is $user, expected 10001"; exit 1; }
log "image runs as uid $user"

if [ -n "${SAVE:-}" ]; then
  podman save -o "$SAVE" "$IMAGE"
  log "saved docker-archive $SAVE"
fi

# 5. the real node's images (test/harness/node): this image and a pause image for pod sandboxes, as docker-archives
#    that keep their tags, for `ctr images import`.
save_once() { # IMAGE TAR: saves only when the tar is missing or holds another image id
  local id; id=$(podman image inspect "$1" --format '{{.Id}}')
  if [ -f "$2" ] && [ "$(cat "$2.id" 2>/dev/null)" = "$id" ]; then return; fi
  rm -f "$2" "$2.id"; podman save -o "$2" "$1"; echo "$id" > "$2.id"
  log "saved $1 to $2"
}
if [ -n "${SAVE_DIR:-}" ]; then
  mkdir -p "$SAVE_DIR" "$WORK/pause"
  printf 'FROM localhost/base:bookworm\nCMD ["sleep", "infinity"]\n' > "$WORK/pause/Dockerfile"
  podman build --pull=never --network=none -q -t localhost/pause:local "$WORK/pause" >/dev/null
  save_once "$IMAGE" "$SAVE_DIR/app.tar"
  save_once localhost/pause:local "$SAVE_DIR/pause.tar"
fi
# drop the dangling images of earlier builds (layer cache stays); only housekeeping, so a failure is reported, not fatal
podman image prune -f >/dev/null || log "warning: podman image prune failed (the built images are fine)"
log "done in $(( $(date +%s) - t0 )) s"
