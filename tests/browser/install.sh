#!/bin/sh
# Installs the browser tests' driver, playwright-core (tests/browser/README.md), with `npm ci`, only when
# node_modules is missing or older than package-lock.json. No browser is downloaded: the tests drive
# Debian's /usr/bin/chromium (scripts/install-deps.sh). Quiet when there is nothing to do.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
cd "$dir"
stamp=node_modules/.package-lock.json  # npm writes it on every install
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "browser-tests: npm not found; install Node.js to run the browser tests" >&2
  exit 1
fi
echo "browser-tests: npm ci in $dir" >&2
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2
touch "$stamp"
