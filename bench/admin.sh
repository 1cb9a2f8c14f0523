#!/usr/bin/env bash
# bench/admin.sh BUILD_DIR — the admin summary (SPEC §9) on a large store: the daemon's start time, and
# the latency of GET /api/v1/admin/connector-events and of an event page, against issue 14's targets.
# See bench/README.md ("admin"). Traffic goes only to 127.0.0.1.
#
# 1. A fresh daemon makes ENDPOINTS GitHub endpoints through the API (real rows, sealed secrets), and
#    stops.
# 2. bench/admin_fill.py writes EVENTS events, each with its job and dedup key, straight into that
#    store.db in one transaction through the store's own schema (its indexes and migration 6's
#    triggers included): received over the last 7 days (inside the dedup window, so the daemon's start
#    reads every key), jobs mostly succeeded, some failed, dead and queued.
# 3. The daemon starts on it: the time until it answers /healthz; then ROUNDS calls of each view,
#    p50 and p99 (keep-alive HTTP, timed in the client).
#
# Knobs (environment): EVENTS=1000000 ENDPOINTS=4 ROUNDS=50 KEEP=1 (keep the temp dir)
# Exit status: 0 every target met, 1 one missed, 2 could not run.
set -euo pipefail

BUILD=${1:-build}
EVENTS=${EVENTS:-1000000}
ENDPOINTS=${ENDPOINTS:-4}
ROUNDS=${ROUNDS:-50}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DAEMON="$BUILD/bin/alumia-connectd"

die() { echo "admin: $*" >&2; exit 2; }
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install $tool; make deps installs it)"
done
[ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-admin-bench.XXXXXX")
HOME_DIR="$WORK/home"
mkdir -m 700 "$HOME_DIR"
DAEMON_PID=""

stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -s TERM "$DAEMON_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  kill -s KILL "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
}
cleanup() {
  local rc=$?
  stop_daemon
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -eq 2 ]; then echo "admin: logs and store kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

start_daemon() {  # start_daemon LOG -> DAEMON_PID, URL, START_S (seconds until /healthz answered)
  rm -f "$HOME_DIR/daemon.json"
  local t0
  t0=$(date +%s.%N)
  env ALUMIA_HOME="$HOME_DIR" "$DAEMON" --listen 127.0.0.1:0 --keyring file >"$WORK/$1" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 3000); do
    if [ -s "$HOME_DIR/daemon.json" ]; then
      # sed, not python: the poll itself must not take the time it measures
      URL=$(sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' "$HOME_DIR/daemon.json" | head -n1)
      [ -n "$URL" ] && curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/$1" >&2; die "the daemon exited during startup"; }
    sleep 0.01
  done
  curl -fsS -o /dev/null "$URL/healthz" || die "the daemon did not answer /healthz within 30 s"
  START_S=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.3f}')")
}

start_daemon daemon.first.log
KEY=$(tr -d '\n' <"$HOME_DIR/key")
for i in $(seq 1 "$ENDPOINTS"); do
  curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    --data "{\"provider\":\"github\",\"label\":\"bench $i\"}" "$URL/api/v1/webhook-endpoints" ||
    die "cannot create endpoint $i"
done
stop_daemon
DB=$(find "$HOME_DIR" -name store.db | head -n1)
[ -f "$DB" ] || die "cannot find the daemon's store.db under $HOME_DIR"

echo "admin: filling $DB with $EVENTS events (one transaction, the store's schema) ..."
FILL_T0=$(date +%s.%N)
python3 "$HERE/admin_fill.py" "$DB" "$EVENTS" || die "admin_fill.py failed"
echo "admin: filled in $(python3 -c "print(f'{$(date +%s.%N) - $FILL_T0:.1f}')") s; store.db $(du -h "$DB" | cut -f1)"

# The page cache holds the store now, as on a machine that runs the daemon: the start is measured warm.
start_daemon daemon.log
echo "admin: daemon started in ${START_S} s (until /healthz answered)"

python3 "$HERE/admin_latency.py" "$URL" "$KEY" "$ROUNDS" "$START_S"
