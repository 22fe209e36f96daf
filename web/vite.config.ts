// Builds web/ into web/dist, which the server serves at / (src/server/static.ts).
// `npm run build:web`; `npx vite web` for a dev server that proxies RPCs to :8080.

import { defineConfig, type Plugin } from "vite";

// web/dist/.gitkeep is tracked (the Dockerfile copies web/dist even when unbuilt):
// emptying the folder before a build must not delete it.
const keepGitkeep: Plugin = {
  name: "keep-gitkeep",
  generateBundle() {
    this.emitFile({ type: "asset", fileName: ".gitkeep", source: "" });
  },
};

const api = process.env.CHAT_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: import.meta.dirname,
  plugins: [keepGitkeep],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    // One small app: no need for the modulepreload polyfill's inline script (the CSP allows none).
    modulePreload: { polyfill: false },
  },
  server: {
    // RPC paths look like /chat.v1.MessageService/SendMessage.
    proxy: { "^/(chat|grpc)\\.": { target: api, changeOrigin: true } },
    fs: { allow: [".."] },
  },
});
