#!/bin/sh
# Installs the OAuth test peer's dependencies (OAUTH.md §4.2) with `npm ci`, only when node_modules is
# missing or older than package-lock.json. Quiet when there is nothing to do. Usable from any directory.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
cd "$dir"
stamp=node_modules/.package-lock.json  # npm writes it on every install
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "oauth-peer: npm not found; install Node.js to run the oauth-peer tests" >&2
  exit 1
fi
echo "oauth-peer: npm ci in $dir" >&2
npm ci --no-audit --no-fund >&2
touch "$stamp"
