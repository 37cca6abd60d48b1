# Pingboard runs its TypeScript directly on Node 24 (type stripping): the
# image needs production dependencies and the sources, no build output.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The runtime comes from the image; the pinned `node` dev dependency is not needed here.
# No scripts: the only one, the embedded database's template, needs the sources (below).
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM node:24-slim
# NODE_COMPILE_CACHE: see src/main.ts; written at the first start of a container. GLIBC_TUNABLES: see src/main.ts.
ENV NODE_ENV=production PINGBOARD_HOST=0.0.0.0 PINGBOARD_PORT=8080 PINGBOARD_DATA_DIR=/data \
    NODE_COMPILE_CACHE=/tmp/node-compile-cache \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=262144:glibc.malloc.arena_max=2
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
# The embedded database every new data directory is copied from (src/db/create-pglite.ts), as
# `npm install` makes it: made here, once, rather than by the first start of each container; from its
# two files alone, so a change elsewhere in src does not make it again. Without the compile cache:
# written here by root, its directory would refuse the `node` user's at run time.
COPY src/errors.ts ./src/
COPY src/db/create-pglite.ts ./src/db/
RUN env -u NODE_COMPILE_CACHE node --liftoff-only src/db/create-pglite.ts --template
COPY src ./src
COPY migrations ./migrations
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# The V8 flags of `npm start` (see src/main.ts): a small young generation, and
# an old generation that grows 30 % past the live heap instead of V8's up to
# 4x, which a burst of syncs turned into 100 MB of resident garbage.
# The image is the `pingboard` command, `serve` by default, so any other command
# runs as `docker compose run --rm pingboard import FILE`.
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=30", "--liftoff-only", "src/main.ts"]
CMD ["serve"]
