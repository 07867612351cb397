# syntax=docker/dockerfile:1
#
# Pictor as a container image: a build stage compiles TypeScript and the native better-sqlite3 addon,
# the runtime stage holds only production node_modules, dist/ and bin/, and runs as the unprivileged
# `node` user. Embedded mode keeps everything in the /data volume; for the scale-out layout set
# PICTOR_DATABASE_URL and PICTOR_STORAGE_URL (see compose.yaml).
#
#   docker build -t pictor .
#   docker run -p 8080:8080 -v pictor-data:/data pictor
#
# The CLI is the entrypoint, so other commands run the same way: `docker run --rm -v pictor-data:/data
# pictor account list` (stop the server first for `migrate-storage`, which reads its data dir).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 downloads a prebuilt addon when one matches; otherwise node-gyp compiles it with these.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# The lockfile alone decides this layer, so a source change does not reinstall. Install scripts are
# skipped because the package's own `prepare` (npm run build) would run before the sources are here;
# the one dependency that needs its script (better-sqlite3's native addon) is built right after.
# sharp needs none: its libvips binaries come as platform packages.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web dashboard is bundled into dist/dashboard-ui by the same build.
COPY dashboard ./dashboard
COPY scripts/build-dashboard.mjs ./scripts/
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE} AS runtime
# HOST: reachable from outside the container. PICTOR_PUBLIC_URL: the base of the URLs Pictor puts in its
# answers (variants, direct-upload URLs); set it to the address clients use. MALLOC_ARENA_MAX=2 is what
# `npm start` sets: glibc's per-thread arenas fragment badly under libvips' parallel decodes.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    PICTOR_DATA_DIR=/data \
    PICTOR_PUBLIC_URL=http://localhost:8080 \
    MALLOC_ARENA_MAX=2
WORKDIR /app
# Owned by root and read-only to the server: only /data is writable by it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080
# SIGTERM: stop accepting, finish requests in progress for up to PICTOR_SHUTDOWN_TIMEOUT (25 s), close
# the stores, exit 0. `docker stop` sends SIGKILL after 10 s unless given more: use `docker stop -t 35`
# or `stop_grace_period` in compose (or lower PICTOR_SHUTDOWN_TIMEOUT).
STOPSIGNAL SIGTERM
# The slim image has no curl: Node's fetch asks GET /health on the port the server listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# `npm start` without npm: Node is PID 1 and receives SIGTERM itself (npm would be one more process
# between the signal and the server). ENTRYPOINT + CMD = `node bin/pictor.js serve`.
ENTRYPOINT ["node", "bin/pictor.js"]
CMD ["serve"]
