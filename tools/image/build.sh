#!/usr/bin/env bash
# Builds the project's Dockerfile with podman, without any image registry: one image per program (controller,
# worker, compactor; docs/adr/0016), each smoke-tested inside (its `--help` as the non-root user on a read-only root,
# and none of the packages it must not carry), with its size checked against a budget. Not part of `npm test` (slow;
# needs root, apt and podman). See docs/deploy.md "Images".
#
#   tools/image/build.sh            # build localhost/receipt-embeddings-{controller,worker,compactor}:dev
#   IMAGE_PREFIX=localhost/x TAG=y tools/image/build.sh      # localhost/x-controller:y, …
#   SAVE=/tmp/images.tar tools/image/build.sh   # also `podman save` all three into one docker-archive (for
#                                               # `kind load image-archive`)
#   SAVE_DIR=dir tools/image/build.sh          # the real node's images: dir/<program>.tar and dir/pause.tar (the pod
#                                              # sandbox image), re-saved only when an image changed
#
# How it works (details: ../shared/reference/containers.md):
# 1. A Debian bookworm rootfs from debootstrap (--variant=minbase), slimmed like the official debian:bookworm-slim
#    (no docs, man pages, info or locales; a dpkg config keeps them out), imported as localhost/base:bookworm-slim
#    and tagged docker.io/library/debian:bookworm-slim (the runtime images' base), once.
# 2. A stand-in for the official Node image is made from it: the host's Node 20 binary, npm and headers copied to
#    /usr/local (the official image's layout), tagged docker.io/library/node:20.20.2-bookworm-slim, so the
#    Dockerfile's `FROM` resolves locally with --pull=never. The real images are used wherever a registry is reachable.
# 3. podman build with private storage/config under $WORK (nothing global is touched): runc as runtime and ulimits
#    at the host's hard limits (this VM lacks CAP_SYS_RESOURCE), overlay storage.
# The build stage itself still downloads npm packages (registry.npmjs.org) and the C++ toolchain (Debian mirror).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${IMAGE_WORK:-$HOME/.cache/receipt-embeddings-image}"
IMAGE_PREFIX="${IMAGE_PREFIX:-localhost/receipt-embeddings}"
TAG="${TAG:-dev}"
# The Dockerfile's targets (tools/image/programs.ts).
PROGRAMS=(controller worker compactor)
# Size budgets in MB (10^6 bytes) of the stand-in-based images; issue 16: the controller at most 250.
declare -A MAX_MB=([controller]=250 [worker]=900 [compactor]=900)
# Packages an image must not carry (what its program never loads; the chromadb bindings alone are ~417 MB). The
# compactor loads better-sqlite3: it reads the original system's Chroma-directory deltas (core/chroma/dir-reader.ts).
declare -A ABSENT=([controller]="chromadb chromadb-js-bindings-linux-x64-gnu better-sqlite3 openai apache-arrow"
  [worker]="better-sqlite3" [compactor]="openai")
NODE_TAG="docker.io/library/node:20.20.2-bookworm-slim"
DEBIAN_TAG="docker.io/library/debian:bookworm-slim"
BASE="localhost/base:bookworm-slim"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$WORK"
t0=$(date +%s)
log() { printf '[image %4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
image_of() { echo "$IMAGE_PREFIX-$1:$TAG"; }

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

# 1. base image: debootstrap minbase, then what debuerreotype's --slimify does for the official -slim images
if ! podman image exists "$BASE"; then
  if [ ! -f "$WORK/base-slim.tar" ]; then
    log "debootstrap minbase bookworm from $MIRROR"
    rootfs="$WORK/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/usr/share/locale/"* \
      "$rootfs/usr/share/groff/"* "$rootfs/usr/share/lintian/"*
    cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
DPKG
    tar -C "$rootfs" --numeric-owner -cf "$WORK/base-slim.tar" .
    rm -rf "$rootfs"
  fi
  log "importing base image"
  podman import --change 'CMD ["/bin/bash"]' "$WORK/base-slim.tar" "$BASE" >/dev/null
fi
# the runtime images' base (skipped when a real one is already in the store)
podman image exists "$DEBIAN_TAG" || podman tag "$BASE" "$DEBIAN_TAG"

# 2. stand-in for node:20.20.2-bookworm-slim (skipped when a real one is already in the store)
if ! podman image exists "$NODE_TAG"; then
  log "making a local stand-in for $NODE_TAG from the host's node $(node --version)"
  ctx="$WORK/nodebase"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$(readlink -f "$(command -v node)")" "$ctx/node"
  cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$ctx/npm"
  cp -a /usr/include/node "$ctx/include-node"
  cat > "$ctx/Dockerfile" <<DF
FROM $BASE
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY include-node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
CMD ["node"]
DF
  podman build --pull=never --network=none -q -t "$NODE_TAG" "$ctx" >/dev/null
fi

# 3. the project's images, from the committed tree (git archive HEAD) so that half-written files in the work tree do
#    not leak into them; CONTEXT=worktree builds the work tree as it is.
if [ "${CONTEXT:-head}" = worktree ]; then
  ctxdir="$ROOT"
else
  ctxdir="$WORK/context"
  rm -rf "$ctxdir"; mkdir -p "$ctxdir"
  git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$ctxdir"
  log "context: git archive of $(git -C "$ROOT" rev-parse --short HEAD)"
  # The committed tree (this script and the Dockerfile included) and the host's Node name what is built: when the
  # images of that stamp exist, built and smoke-tested (and saved for the node), there is nothing to do (`npm test`'s
  # pretest after CI's own image phase).
  stamp="$(git -C "$ROOT" rev-parse 'HEAD^{tree}') node-$(node --version) ${IMAGE_PREFIX}:${TAG} ${SAVE_DIR:-}"
fi
current() { # the images recorded for $stamp are still there (and saved, when SAVE_DIR is set)
  [ -n "${stamp:-}" ] && [ -f "$WORK/stamp" ] && [ "$(head -1 "$WORK/stamp")" = "$stamp" ] || return 1
  local program id
  for program in "${PROGRAMS[@]}"; do
    id=$(podman image inspect "$(image_of "$program")" --format '{{.Id}}' 2>/dev/null) || return 1
    grep -qx "$program $id" "$WORK/stamp" || return 1
    [ -z "${SAVE_DIR:-}" ] || [ "$(cat "$SAVE_DIR/$program.tar.id" 2>/dev/null)" = "$id" ] || return 1
  done
}
if current; then
  log "current: images of this tree were built, checked and saved before; nothing to do"
  exit 0
fi
rm -f "$WORK/stamp"
# Build-time only mounts (never in a layer): the host's CA bundle (this VM's egress proxy re-signs TLS) and the
# host's npm cache (saves downloading ~800 MB of packages again).
mounts=()
ca="${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$ca" ] && mounts+=(-v "$ca:/etc/ssl/build-ca.crt:ro")
[ -d "$HOME/.npm/_cacache" ] && mounts+=(-v "$HOME/.npm/_cacache:/root/.npm/_cacache")
# --network=host: the build's RUN steps reach the registries through the host's network; podman's default would
# create a CNI bridge (cni-podman0) on the host and leave it there.
# The build stage is tagged too: untagged, its layers (apt toolchain, npm ci) are dangling once the final images are
# made, the prune at the end removes them, and every build ran apt and npm ci again (≈ 2 min of a 2.5-min build).
# Each program's build then reuses that stage's layers (--layers) and adds only its prune and runtime layers.
build_tag="localhost/receipt-embeddings-build:cache"
: >"$WORK/build.log"
for target in build "${PROGRAMS[@]}"; do
  if [ "$target" = build ]; then tag=$build_tag; else tag=$(image_of "$target"); fi
  b0=$(date +%s)
  podman build --pull=never --network=host --layers "${mounts[@]}" --target "$target" -t "$tag" \
    -f "$ctxdir/Dockerfile" "$ctxdir" >>"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
  log "built $tag in $(( $(date +%s) - b0 )) s"
done

# 4. smoke test of each image: its program starts and prints its help, as the non-root user, read-only root, no
#    network; it carries none of the packages its program never loads; it fits its size budget.
run_in() { # IMAGE CMD...: runs CMD in IMAGE the way the pods do
  podman run --rm --network=none --read-only --tmpfs /tmp --cap-drop=ALL --security-opt=no-new-privileges "$@"
}
sizes=()
for program in "${PROGRAMS[@]}"; do
  image=$(image_of "$program")
  if out=$(run_in "$image" "$program" --help 2>&1); then
    log "ok: $image: embedctl $program --help ($(echo "$out" | head -1))"
  else
    echo "$out" | tail -20
    log "FAILED: $image: embedctl $program --help"
    exit 1
  fi
  user=$(run_in --entrypoint id "$image" -u)
  [ "$user" = 10001 ] || { log "$image runs as uid $user, expected 10001"; exit 1; }
  # shellcheck disable=SC2016
  present=$(run_in --entrypoint sh "$image" -c 'for p; do [ ! -e "node_modules/$p" ] || echo "$p"; done' sh \
    ${ABSENT[$program]})
  [ -z "$present" ] || { log "$image carries $present, which embedctl $program never loads"; exit 1; }
  mb=$(( $(podman image inspect "$image" --format '{{.Size}}') / 1000000 ))
  [ "$mb" -le "${MAX_MB[$program]}" ] || { log "$image is $mb MB, over its budget of ${MAX_MB[$program]} MB"; exit 1; }
  sizes+=("$program $mb MB")
done
log "images run as uid 10001; sizes: $(IFS=,; echo "${sizes[*]}" | sed 's/,/, /g')"

if [ -n "${SAVE:-}" ]; then
  images=(); for program in "${PROGRAMS[@]}"; do images+=("$(image_of "$program")"); done
  podman save -q --multi-image-archive -o "$SAVE" "${images[@]}"
  log "saved docker-archive $SAVE (${images[*]})"
fi

# 5. the real node's images (test/harness/node): the three and a pause image for pod sandboxes, as docker-archives
#    that keep their tags, for `ctr images import`.
save_once() { # IMAGE TAR: saves only when the tar is missing or holds another image id
  local id; id=$(podman image inspect "$1" --format '{{.Id}}')
  if [ -f "$2" ] && [ "$(cat "$2.id" 2>/dev/null)" = "$id" ]; then return; fi
  rm -f "$2" "$2.id"; podman save -q -o "$2" "$1"; echo "$id" > "$2.id"
  log "saved $1 to $2"
}
if [ -n "${SAVE_DIR:-}" ]; then
  mkdir -p "$SAVE_DIR" "$WORK/pause"
  # the one image of every program before docs/adr/0016
  rm -f "$SAVE_DIR/app.tar" "$SAVE_DIR/app.tar.id"
  printf 'FROM %s\nCMD ["sleep", "infinity"]\n' "$BASE" > "$WORK/pause/Dockerfile"
  podman build --pull=never --network=none -q -t localhost/pause:local "$WORK/pause" >/dev/null
  for program in "${PROGRAMS[@]}"; do save_once "$(image_of "$program")" "$SAVE_DIR/$program.tar"; done
  save_once localhost/pause:local "$SAVE_DIR/pause.tar"
fi
if [ -n "${stamp:-}" ]; then
  { echo "$stamp"; for program in "${PROGRAMS[@]}"; do
      echo "$program $(podman image inspect "$(image_of "$program")" --format '{{.Id}}')"; done; } > "$WORK/stamp"
fi
# drop the dangling images of earlier builds (layer cache stays); only housekeeping, so a failure is reported, not fatal
podman image prune -f >/dev/null || log "warning: podman image prune failed (the built images are fine)"
log "done in $(( $(date +%s) - t0 )) s"
