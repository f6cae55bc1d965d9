# syntax=docker/dockerfile:1
# The one tsmesh image: `tsmesh control`, `tsmesh ca`, `tsmesh injector`, and the sidecar
# (`tsmesh proxy`) and init container (`tsmesh iptables`) the injector adds to pods.
# Build from the repository root:  docker build -t ghcr.io/tsmesh/tsmesh:0.1.0 .

# ---- build: every workspace's dependencies, then the product build of the CLI and what it uses
# (tsconfig.build.json: no tests, no test fakes)
FROM node:24-slim AS build
WORKDIR /src
# Manifests first, so that the dependency layer is reused while only sources change (--parents
# keeps each workspace's manifest in its directory; Dockerfile syntax 1.20 or later).
COPY --parents package.json package-lock.json .npmrc common/package.json proxy/package.json ca/package.json control/package.json injector/package.json cli/package.json tests/package.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY common/ common/
COPY proxy/ proxy/
COPY ca/ ca/
COPY control/ control/
COPY injector/ injector/
COPY cli/ cli/
RUN npx tsc -b cli/tsconfig.build.json

# ---- runtime: production dependencies and the compiled output only
FROM node:24-slim
# iptables and iproute2 for the init container (`tsmesh iptables` runs iptables-restore,
# ip6tables-restore and ip). Debian's iptables uses the nf_tables backend by default.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 tsmesh \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tsmesh \
 && groupadd --system --gid 1337 tsmesh-proxy \
 && useradd --system --uid 1337 --gid 1337 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tsmesh-proxy
# The injected init container and sidecar run the command `tsmesh` (injector/README.md): put one on the PATH.
RUN printf '#!/bin/sh\nexec node /app/cli/dist/main.js "$@"\n' > /usr/local/bin/tsmesh \
 && chmod 0755 /usr/local/bin/tsmesh
ENV NODE_ENV=production
WORKDIR /app
# The same manifests as the build stage. The tests workspace is in the lock file; its manifest keeps
# `npm ci` in step with it (its devDependencies are omitted, its dependencies are the CLI's own).
COPY --parents package.json package-lock.json .npmrc common/package.json proxy/package.json ca/package.json control/package.json injector/package.json cli/package.json tests/package.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/common/dist common/dist
COPY --from=build /src/proxy/dist proxy/dist
COPY --from=build /src/ca/dist ca/dist
COPY --from=build /src/control/dist control/dist
COPY --from=build /src/injector/dist injector/dist
COPY --from=build /src/cli/dist cli/dist
# The control plane, CA and injector run as 65532; the injected sidecar as 1337 and the init
# container as root, both set by the injector's securityContext.
USER 65532:65532
ENTRYPOINT ["node", "/app/cli/dist/main.js"]
