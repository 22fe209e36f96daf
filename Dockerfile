# The server image: Node 24, production dependencies only, no build step
# (Node strips the TypeScript types at load time).
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY gen ./gen
COPY migrations ./migrations
COPY web/dist ./web/dist
USER node
EXPOSE 8080 9090
CMD ["node", "src/main.ts"]
