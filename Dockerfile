# One image for every role; the command picks the role (compose.yaml):
#   docker build -t danmaku .
#   docker run -p 8080:8080 -e DANMAKU_JWT_SECRET=... -e REDIS_URL=... -e MYSQL_URL=... danmaku standalone
# Roles run compiled JavaScript (node --enable-source-maps apps/<role>/dist/main.js, scripts/role.sh)
# on Node 24, the major scripts/lib/node.sh installs for development and tests
# (packages/role/test/build-layout.test.ts keeps the two equal).

# ---- build: every dependency, `npm run build` (tsc -b, then the pages' and the SDK's bundles)
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.build.json tsconfig.workspace.json ./
COPY apps apps
COPY packages packages
COPY scripts scripts
RUN bash scripts/ensure-deps.sh
RUN npm run build

# ---- runtime files: production dependencies of the roles only (no TypeScript, tsx or esbuild),
# each workspace's package.json and dist/, and the files the pages read at run time. The test kit
# goes first: npm installs every workspace's dependencies, and its are the tests' (esbuild, ...).
FROM build AS runtime-files
RUN rm -rf node_modules apps/*/node_modules packages/*/node_modules packages/testkit \
 && npm ci --omit=dev --no-audit --no-fund \
 && mkdir -p /out \
 && for dir in apps/* packages/*; do \
      [ -d "$dir/dist" ] || continue; \
      mkdir -p "/out/$dir"; \
      cp "$dir/package.json" "/out/$dir/"; \
      cp -a "$dir/dist" "/out/$dir/dist"; \
      [ -d "$dir/node_modules" ] && cp -a "$dir/node_modules" "/out/$dir/node_modules"; \
      true; \
    done \
 && cp -a packages/pages/public packages/pages/bodies /out/packages/pages/ \
 && cp -a package.json node_modules /out/ \
 && mkdir -p /out/scripts && cp scripts/role.sh /out/scripts/

# ---- runtime
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0
COPY --from=runtime-files /out ./

USER node
EXPOSE 8080 8090 8091 9101 9102 9103
ENTRYPOINT ["sh", "scripts/role.sh"]
CMD ["standalone"]
