#!/bin/sh
# scripts/npm-ci.sh DIR NAME [ENV=VALUE...] — `npm ci` in DIR (a test tool with a committed
# package-lock.json), only when node_modules is missing or older than package-lock.json or package.json.
# Quiet when there is nothing to do. NAME prefixes its messages; ENV=VALUE pairs go to npm's environment.
set -eu
dir=$1
name=$2
shift 2
cd "$dir"
stamp=node_modules/.package-lock.json  # npm writes it on every install
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "$name: npm not found; install Node.js to run the $name tests" >&2
  exit 1
fi
echo "$name: npm ci in $dir" >&2
env "$@" npm ci --no-audit --no-fund >&2
touch "$stamp"
