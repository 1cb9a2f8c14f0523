#!/bin/sh
# Installs the browser tests' driver, playwright-core (tests/browser/README.md), with `npm ci`, only when
# node_modules is missing or older than package-lock.json. No browser is downloaded: the tests drive
# Debian's /usr/bin/chromium (scripts/install-deps.sh). Quiet when there is nothing to do.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
exec "$dir/../../scripts/npm-ci.sh" "$dir" browser-tests PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
