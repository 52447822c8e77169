# One image for both roles, plain JavaScript built by `npm run build`:
#   node --enable-source-maps dist/api/main.js      (default)
#   node --enable-source-maps dist/worker/main.js
#   node --enable-source-maps dist/scripts/bulk.js  (the bulk CLI)
#   node --enable-source-maps dist/scripts/rekey.js (re-seal keys after a master key rotation)
#
# The build stage only transpiles (esbuild, `npm run build`); type checking is CI's job (`npm run typecheck`
# over the whole tree, tests and tools included, which this image does not contain). The runtime image has
# production dependencies only, runs as `node`, and test/production-install.test.ts runs the same install.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY gateway ./gateway
COPY scripts ./scripts
COPY bench/bare-hono.ts ./bench/bare-hono.ts
RUN node scripts/build.mjs

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# --omit=optional too: what is optional here is typescript (an optional peer of valibot, under @bull-board/api: 23 MB)
# and msgpackr's native extension, which BullMQ does not gain from (docs/testing.md, "A quiet install").
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 8080
CMD ["node", "--enable-source-maps", "dist/api/main.js"]
