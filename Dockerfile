# syntax=docker/dockerfile:1
# One image for every program: `embedctl controller | worker | compactor` (entrypoint node build/cli/main.js).
#
# Base: the official Node 20 image, pinned by tag. Pin it by digest too when you build with registry access:
#   docker buildx imagetools inspect node:20.20.2-bookworm-slim   → ARG NODE_IMAGE=node:20.20.2-bookworm-slim@sha256:…
# (the build machine used for this repo reaches no image registry, so no digest could be looked up here;
#  tools/image/build.sh builds with a locally made stand-in tagged with the same name).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

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
RUN npm run build \
 && npm prune --omit=dev

# ---------------------------------------------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOME=/tmp \
    npm_config_cache=/tmp/.npm
# A fixed numeric user so that Kubernetes `runAsNonRoot` can verify it (charts run as 10001:10001 too).
RUN groupadd --system --gid 10001 embedctl \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin embedctl
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
# Production dependencies only (`npm prune --omit=dev` in the build stage == `npm ci --omit=dev`, without
# running install scripts a second time). chromadb's native bindings alone are ~420 MB.
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/build ./build
USER 10001:10001
EXPOSE 9090
ENTRYPOINT ["node", "build/cli/main.js"]
CMD ["--help"]
