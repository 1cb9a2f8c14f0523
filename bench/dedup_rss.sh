#!/usr/bin/env bash
# bench/dedup_rss.sh BUILD_DIR — the daemon's memory over a long ingest of distinct deliveries.
#
# Every delivery leaves dedup keys behind (kept 8 days), so what the daemon holds in memory per
# stored key decides whether its RSS stays flat under a steady stream. This starts the daemon on a
# fresh store, prints its idle RSS, runs wrk with signed GitHub deliveries (a unique
# X-GitHub-Delivery each, bench/ingest_signed.lua) for DURATION seconds while sampling the daemon's
# RSS every SAMPLE seconds, and prints the samples with the number of stored deliveries. Then it
# stops the daemon, starts it again on the same store (the dedup index is rebuilt from every stored
# key) and prints its idle RSS once more, and sends a few of the first run's deliveries again: every
# one must be answered as a duplicate (dedup stays exact however many keys memory does not hold).
# See bench/README.md. Traffic goes only to 127.0.0.1.
#
# Knobs (environment): DURATION=150 (seconds of ingest) CONNECTIONS=8 THREADS=2 SAMPLE=10
#                      KEEP=1 (keep the temp dir with logs and the store)
#                      DAEMON_ENV="NAME=value ..." (extra environment for the daemon)
# Exit status: 0 ran and every repeat was a duplicate, 1 a repeat was stored again, 2 could not run.
set -euo pipefail

BUILD=${1:-build}
DURATION=${DURATION:-150}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
SAMPLE=${SAMPLE:-10}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$HERE/ingest_signed.lua"
DAEMON="$BUILD/daemon/alumia-connectd"

die() { echo "dedup_rss: $*" >&2; exit 2; }
for tool in wrk curl python3 sqlite3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install $tool; make deps installs it)"
done
[ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first: make build, or cmake --build $BUILD)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-bench.XXXXXX")
HOME_DIR="$WORK/home"
mkdir -m 700 "$HOME_DIR"
DAEMON_PID=""
WRK_PID=""

stop_pid() {  # stop_pid PID SIGNAL: signal one process we started and reap it
  local pid=$1 sig=${2:-TERM}
  [ -n "$pid" ] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -s KILL "$pid" 2>/dev/null || true
  { wait "$pid" 2>/dev/null || true; } 2>/dev/null
}
cleanup() {
  local rc=$?
  stop_pid "$WRK_PID" TERM
  stop_pid "$DAEMON_PID" TERM
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -eq 2 ]; then
    echo "dedup_rss: logs and store kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

json_get() {  # json_get FILE PYTHON-EXPR-ON-d
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

start_daemon() {  # start_daemon LOG
  rm -f "$HOME_DIR/daemon.json"
  # shellcheck disable=SC2086
  env ALUMIA_HOME="$HOME_DIR" ${DAEMON_ENV:-} "$DAEMON" --listen 127.0.0.1:0 --keyring file >"$1" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 600); do
    [ -s "$HOME_DIR/daemon.json" ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$1" >&2; die "the daemon exited during startup"; }
    sleep 0.1
  done
  die "the daemon did not write daemon.json within 60 s"
}
settle_rss() {  # settle_rss PID: RSS once the daemon has been idle for a moment
  sleep 3
  rss_kib "$1"
}

start_daemon "$WORK/daemon.log"
DAEMON_URL=$(json_get "$HOME_DIR/daemon.json" 'd["url"]')
KEY=$(tr -d '\n' <"$HOME_DIR/key")
printf 'Authorization: Bearer %s\n' "$KEY" >"$WORK/auth.hdr"
chmod 600 "$WORK/auth.hdr"
curl -sS -o "$WORK/endpoint.json" -w '%{http_code}' -H @"$WORK/auth.hdr" -H 'Content-Type: application/json' \
  --data '{"provider":"github","label":"bench"}' "$DAEMON_URL/api/v1/webhook-endpoints" >"$WORK/endpoint.status" ||
  die "cannot reach $DAEMON_URL"
case $(cat "$WORK/endpoint.status") in 200 | 201) ;; *) cat "$WORK/endpoint.json" >&2; die "creating the endpoint failed" ;; esac
ENDPOINT_ID=$(json_get "$WORK/endpoint.json" 'd["data"]["endpoint"]["id"]')
SECRET=$(json_get "$WORK/endpoint.json" 'd["data"]["secret"]')
BODY="$WORK/body.json"
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"{\"ref\":\"refs/heads/main\",\"padding\":\"" + b"x" * 990 + b"\"}")' "$BODY"
SIGNATURE=$(BENCH_SECRET="$SECRET" python3 -c '
import hashlib, hmac, os, sys
print("sha256=" + hmac.new(os.environ["BENCH_SECRET"].encode(), open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())
' "$BODY")
unset SECRET
DB="$HOME_DIR/store.db"
stored() { sqlite3 -batch "file:$DB?mode=ro" 'SELECT count(*) FROM webhook_dedup' 2>/dev/null || echo '?'; }

echo "dedup_rss: daemon $DAEMON_URL, wrk -t$THREADS -c$CONNECTIONS for ${DURATION}s, RSS every ${SAMPLE}s"
echo "dedup_rss: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "dedup_rss: idle RSS at start (endpoint created)  $(settle_rss "$DAEMON_PID") KiB"

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
CPU0=$(cpu_ticks "$DAEMON_PID")
PREFIX=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
INGEST_BODY_FILE="$BODY" INGEST_SIGNATURE="$SIGNATURE" INGEST_PREFIX="$PREFIX" INGEST_LABEL=long \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -s "$SCRIPT" \
  "$DAEMON_URL/api/v1/connectors/webhooks/github/$ENDPOINT_ID" >"$WORK/wrk.log" 2>&1 &
WRK_PID=$!
START=$(date +%s)
printf '%8s %10s %12s\n' seconds rss_kib dedup_rows
while kill -0 "$WRK_PID" 2>/dev/null; do
  sleep "$SAMPLE"
  kill -0 "$WRK_PID" 2>/dev/null || break
  printf '%8d %10d %12s\n' $(($(date +%s) - START)) "$(rss_kib "$DAEMON_PID")" "$(stored)"
done
wait "$WRK_PID" || { WRK_PID=""; cat "$WORK/wrk.log" >&2; die "wrk failed"; }
WRK_PID=""
LINE=$(grep '^INGEST ' "$WORK/wrk.log") || die "no result line from wrk"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $LINE"; }
CPU_US=$(( ($(cpu_ticks "$DAEMON_PID") - CPU0) * 1000000 / $(getconf CLK_TCK) / ($(field requests) + 1) ))
echo "dedup_rss: load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"
echo "dedup_rss: rate $(field rps) req/s, $(field ok2xx) answered 2xx, non-2xx $(field non2xx), p50 $(($(field p50_us) / 1000)).$(($(field p50_us) % 1000 / 10)) ms, p99 $(($(field p99_us) / 1000)).$(($(field p99_us) % 1000 / 10)) ms, daemon CPU ${CPU_US} us/request"
echo "dedup_rss: after the run: RSS $(settle_rss "$DAEMON_PID") KiB (peak $(hwm_kib "$DAEMON_PID") KiB), dedup rows $(stored)"

# Restart on the full store: every stored key is read back into the dedup index.
stop_pid "$DAEMON_PID" TERM
DAEMON_PID=""
start_daemon "$WORK/daemon.restart.log"
DAEMON_URL=$(json_get "$HOME_DIR/daemon.json" 'd["url"]')
echo "dedup_rss: idle RSS after a restart on $(stored) stored keys  $(settle_rss "$DAEMON_PID") KiB (peak $(hwm_kib "$DAEMON_PID") KiB)"

# Repeats of the oldest deliveries of the run (stored keys are "github:<delivery id>"): every one
# must be a duplicate, found through the table since no recent memory holds them.
mapfile -t FIRST < <(sqlite3 -batch "file:$DB?mode=ro" \
  "SELECT event_key FROM webhook_dedup WHERE endpoint_id='$ENDPOINT_ID' ORDER BY received_at LIMIT 20")
DUPS=0
for k in "${FIRST[@]}"; do
  out=$(curl -sS -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: ${k#github:}" \
    -H "X-Hub-Signature-256: $SIGNATURE" --data-binary @"$BODY" \
    "$DAEMON_URL/api/v1/connectors/webhooks/github/$ENDPOINT_ID")
  grep -q '"duplicate":true' <<<"$out" && DUPS=$((DUPS + 1))
done
echo "dedup_rss: repeats of the ${#FIRST[@]} oldest deliveries answered as duplicates: $DUPS"
echo "dedup_rss: RSS after the repeats $(rss_kib "$DAEMON_PID") KiB"
[ "$DUPS" = "${#FIRST[@]}" ] && [ "$DUPS" -gt 0 ]
