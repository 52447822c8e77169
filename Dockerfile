# syntax=docker/dockerfile:1
# One image for both roles: `node --import tsx api/main.ts` or `... worker/main.ts`.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY scripts ./scripts
RUN npx tsc --noEmit -p tsconfig.json || (echo "typecheck failed" && exit 1)

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/shared ./shared
COPY --from=build /app/api ./api
COPY --from=build /app/worker ./worker
COPY --from=build /app/scripts ./scripts
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 8080
CMD ["node", "--import", "tsx", "api/main.ts"]
