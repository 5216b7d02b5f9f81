# One image for every role; the command picks the role (compose.yaml):
#   docker build -t danmaku .
#   docker run -p 8080:8080 -e DANMAKU_JWT_SECRET=... -e REDIS_URL=... -e MYSQL_URL=... danmaku standalone
# Roles run TypeScript through tsx, as in development: there is no separate build step to drift.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0

COPY package.json package-lock.json tsconfig.json ./
COPY apps apps
COPY packages packages
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY scripts/role.sh scripts/role.sh

USER node
EXPOSE 8080 8090 8091 9101 9102 9103
ENTRYPOINT ["sh", "scripts/role.sh"]
CMD ["standalone"]
