#!/bin/sh
# Installs the OAuth test peer's dependencies (OAUTH.md §4.2) with `npm ci`, only when node_modules is
# missing or older than package-lock.json. Quiet when there is nothing to do. Usable from any directory.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
exec "$dir/../../../scripts/npm-ci.sh" "$dir" oauth-peer
