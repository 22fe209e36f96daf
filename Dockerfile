# The server image: Node 24, production dependencies only (Node strips the
# TypeScript types at load time). The web app is built in its own stage from
# the sources (type check + Vite), never copied from a local web/dist, which on
# a fresh clone holds only a .gitkeep (.dockerignore leaves it out anyway).

# --- build stage: the web app (needs the dev dependencies: TypeScript, Vite) ---
FROM node:24-bookworm-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts ./scripts
COPY tsconfig.json ./
COPY web ./web
COPY client ./client
COPY gen ./gen
RUN npm run build:web

# --- runtime ---
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY gen ./gen
COPY migrations ./migrations
COPY --from=web /app/web/dist ./web/dist
USER node
EXPOSE 8080 9090
CMD ["node", "src/main.ts"]
