# syntax=docker/dockerfile:1
# One image per program, each with only the files and npm packages that program loads (docs/adr/0016):
#   --target controller   embedctl controller (it hosts the stream processor)
#   --target worker       embedctl worker (the controller starts it as Jobs)
#   --target compactor    embedctl compactor
# Every image: entrypoint `node build/cli/main.js`, the program's name as the first argument (the manifests pass it),
# numeric non-root user 10001, root-owned read-only app files (the pods run with a read-only root filesystem).
# tools/image/build.sh builds all three with podman.
#
# Bases, pinned by tag. Pin them by digest too when you build with registry access:
#   docker buildx imagetools inspect node:20.20.2-bookworm-slim   → ARG NODE_IMAGE=node:20.20.2-bookworm-slim@sha256:…
# (the build machine used for this repo reaches no image registry, so no digest could be looked up here;
#  tools/image/build.sh builds with locally made stand-ins tagged with the same names).
# The build stage uses the official Node image; the runtime images are Debian slim plus the `node` binary of that same
# image (no npm, no headers: ~70 MB less per image), the same Debian release the Node image is built on.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
# Toolchain for native modules without usable prebuilt binaries (better-sqlite3 falls back to node-gyp).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp: use the headers shipped with the image instead of downloading them from nodejs.org.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
# Build hosts behind a TLS-intercepting proxy can bind-mount their CA bundle at /etc/ssl/build-ca.crt for this
# step only (tools/image/build.sh does, with `podman build -v`); it is never part of an image layer.
# No install script runs but better-sqlite3's, compiled here from the source the lockfile's hash covers (its
# prebuild-install would fetch a binary no hash covers); Node 20's npm 10 ignores package.json "allowScripts".
RUN if [ -s /etc/ssl/build-ca.crt ]; then export NODE_EXTRA_CA_CERTS=/etc/ssl/build-ca.crt; fi \
 && npm ci --ignore-scripts \
 && npm_config_build_from_source=true npm rebuild better-sqlite3
# Sources (the context is filtered by .dockerignore).
COPY . .
RUN npm run build

# ---------------------------------------------------------------------------------------------------- per program
# tools/image/program-files.ts walks the program's import graph (dependency-cruiser, a dev dependency, so before the
# prune): it deletes the build files the program does not load and narrows package.json "dependencies" to the
# packages it imports; `npm prune --omit=dev` then removes every other package with the lockfile's own resolution.
FROM build AS controller-files
RUN node build/tools/image/program-files.js controller --prune && npm prune --omit=dev --ignore-scripts --offline
FROM build AS worker-files
RUN node build/tools/image/program-files.js worker --prune && npm prune --omit=dev --ignore-scripts --offline
FROM build AS compactor-files
RUN node build/tools/image/program-files.js compactor --prune && npm prune --omit=dev --ignore-scripts --offline

# ---------------------------------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOME=/tmp
# A fixed numeric user so that Kubernetes `runAsNonRoot` can verify it (charts run as 10001:10001 too).
RUN groupadd --system --gid 10001 embedctl \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin embedctl
# The official image's binary (glibc and libstdc++ of the same Debian release).
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
USER 10001:10001
EXPOSE 9090
ENTRYPOINT ["node", "build/cli/main.js"]

FROM runtime AS controller
COPY --from=controller-files --chown=root:root /app/package.json ./package.json
COPY --from=controller-files --chown=root:root /app/node_modules ./node_modules
COPY --from=controller-files --chown=root:root /app/build ./build
CMD ["controller", "--help"]

FROM runtime AS worker
COPY --from=worker-files --chown=root:root /app/package.json ./package.json
COPY --from=worker-files --chown=root:root /app/node_modules ./node_modules
COPY --from=worker-files --chown=root:root /app/build ./build
CMD ["worker", "--help"]

FROM runtime AS compactor
COPY --from=compactor-files --chown=root:root /app/package.json ./package.json
COPY --from=compactor-files --chown=root:root /app/node_modules ./node_modules
COPY --from=compactor-files --chown=root:root /app/build ./build
CMD ["compactor", "--help"]
