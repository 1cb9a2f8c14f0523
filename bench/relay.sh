#!/usr/bin/env bash
# bench/relay.sh BUILD_DIR — how fast the relay worker drains a backlog, and whether a slow target holds
# the others. See bench/README.md ("relay"). Traffic goes only to 127.0.0.1.
#
# 1. drain: JOBS signed GitHub deliveries are queued on an endpoint with no relay target (wrk, as in
#    bench/ingest.sh); then the endpoint's relayTo is pointed at bench_bare_server (a local sink that
#    answers 200) and the time until every job has succeeded gives the drain rate.
# 2. slow + fast: two endpoints, each with JOBS/2 queued jobs. One is pointed at a sink that sleeps
#    SLOW_MS per POST, then the other at the fast sink; the fast one's drain rate is printed beside
#    its rate from 1 (it should hold), and how many of the slow one's jobs succeeded meanwhile.
#
# Knobs (environment): JOBS=32000 SLOW_MS=200 KEEP=1 (keep the temp dir with logs)
#                      DAEMON_ENV="NAME=VALUE ..." (extra environment for the daemon, e.g.
#                      ALUMIA_RELAY_TARGET_CONCURRENCY=4)
# Prints figures; the exit status is 0 when it ran (there is no target to meet), 2 when it could not.
set -euo pipefail

BUILD=${1:-build}
JOBS=${JOBS:-32000}
SLOW_MS=${SLOW_MS:-200}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$HERE/ingest_signed.lua"
DAEMON="$BUILD/daemon/alumia-connectd"
BARE="$BUILD/bench/bench_bare_server"

die() { echo "relay: $*" >&2; exit 2; }
for tool in wrk curl python3 sqlite3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install $tool; make deps installs it)"
done
[ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first)"
[ -x "$BARE" ] || die "no bare server at $BARE (build the bench_bare_server target; ALUMIA_BUILD_BENCH=ON)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-relay-bench.XXXXXX")
HOME_DIR="$WORK/home"
mkdir -m 700 "$HOME_DIR"
DAEMON_PID="" FAST_PID="" SLOW_PID="" WRK_PID=""

stop_pid() {  # stop_pid PID: stop one process we started and reap it
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -s TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -s KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_pid "$WRK_PID"
  stop_pid "$DAEMON_PID"
  stop_pid "$FAST_PID"
  stop_pid "$SLOW_PID"
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -eq 2 ]; then echo "relay: logs and store kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
now() { date +%s.%N; }

start_sink() {  # start_sink NAME ARGS... -> sets SINK_PID and SINK_PORT
  "$BARE" "${@:2}" >"$WORK/$1.port" 2>"$WORK/$1.log" &
  SINK_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/$1.port" ] && break; sleep 0.1; done
  SINK_PORT=$(head -n1 "$WORK/$1.port")
  [ -n "$SINK_PORT" ] || die "bench_bare_server ($1) did not print its port"
}
start_sink fast --threads 64
FAST_PID=$SINK_PID FAST_PORT=$SINK_PORT
start_sink slow --threads 64 --delay-ms "$SLOW_MS"
SLOW_PID=$SINK_PID SLOW_PORT=$SINK_PORT

# The daemon without a default relay target: jobs stay queued until an endpoint gets a relayTo.
# shellcheck disable=SC2086
env ALUMIA_HOME="$HOME_DIR" ${DAEMON_ENV:-} "$DAEMON" --listen 127.0.0.1:0 --keyring file >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 600); do
  [ -s "$HOME_DIR/daemon.json" ] && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; die "the daemon exited during startup"; }
  sleep 0.1
done
[ -s "$HOME_DIR/daemon.json" ] || die "the daemon did not write daemon.json within 60 s"
URL=$(json_get "$HOME_DIR/daemon.json" 'd["url"]')
DB="$HOME_DIR/store.db"
[ -f "$DB" ] || DB=$(find "$HOME_DIR" -name 'store.db' | head -n1)
[ -f "$DB" ] || die "cannot find the daemon's store.db under $HOME_DIR"
printf 'Authorization: Bearer %s\n' "$(tr -d '\n' <"$HOME_DIR/key")" >"$WORK/auth.hdr"
chmod 600 "$WORK/auth.hdr"

api() {  # api METHOD PATH [JSON] -> body on stdout; fails on a non-2xx
  local code
  code=$(curl -sS -o "$WORK/api.out" -w '%{http_code}' -X "$1" -H @"$WORK/auth.hdr" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$URL$2") || die "cannot reach $URL"
  case $code in 2??) cat "$WORK/api.out" ;; *) cat "$WORK/api.out" >&2; die "$1 $2 answered HTTP $code" ;; esac
}

BODY="$WORK/body.json"
python3 -c 'import json,sys; open(sys.argv[1],"w").write(json.dumps({"ref":"refs/heads/main","padding":"x"*900}))' "$BODY"

new_endpoint() {  # new_endpoint LABEL -> "ID SIGNATURE"
  api POST /api/v1/webhook-endpoints "{\"provider\":\"github\",\"label\":\"$1\"}" >"$WORK/ep.$1.json"
  local id sig
  id=$(json_get "$WORK/ep.$1.json" 'd["data"]["endpoint"]["id"]')
  sig=$(BENCH_SECRET=$(json_get "$WORK/ep.$1.json" 'd["data"]["secret"]') python3 -c '
import hashlib, hmac, os, sys
print("sha256=" + hmac.new(os.environ["BENCH_SECRET"].encode(), open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())
' "$BODY")
  echo "$id $sig"
}

count() {  # count ENDPOINT_ID STATE-LIST-SQL (read with the daemon stopped)
  sqlite3 -cmd '.timeout 5000' "$DB" "SELECT count(*) FROM webhook_jobs WHERE endpoint_id='$1' AND state IN ($2)"
}
sink_count() { curl -sS "http://127.0.0.1:$1/count"; }  # POSTs a sink has received

queue_jobs() {  # queue_jobs ENDPOINT_ID SIGNATURE N: signed deliveries until N were acknowledged -> count
  local id=$1 sig=$2 n=$3 acked="$WORK/acked.$1"
  : >"$acked"
  for _ in $(seq 1 60); do
    [ "$(wc -l <"$acked")" -ge "$n" ] && { wc -l <"$acked"; return 0; }
    INGEST_BODY_FILE="$BODY" INGEST_SIGNATURE="$sig" INGEST_PREFIX="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" \
      INGEST_ACKED="$acked" wrk -t2 -c8 -d2s --timeout 10s -s "$SCRIPT" "$URL/api/v1/connectors/webhooks/github/$id" \
      >"$WORK/wrk.log" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { cat "$WORK/wrk.log" >&2; die "wrk failed"; }
    WRK_PID=""
  done
  die "could not queue $n jobs on $id"
}

wait_sink() {  # wait_sink PORT BASE N DEADLINE_S: until the sink has BASE+N POSTs; prints seconds or "timeout"
  local t0
  t0=$(now)
  while [ "$(sink_count "$1")" -lt $(($2 + $3)) ]; do
    python3 -c "import sys; sys.exit(0 if $(now) - $t0 < $4 else 1)" || { echo timeout; return 0; }
    sleep 0.05
  done
  python3 -c "print(f'{$(now) - $t0:.2f}')"
}

echo "relay: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. one fast target ------------------------------------------------------------------------
read -r F_ID F_SIG < <(new_endpoint fast)
F_N=$(queue_jobs "$F_ID" "$F_SIG" "$JOBS")
BASE=$(sink_count "$FAST_PORT")
api PATCH "/api/v1/webhook-endpoints/$F_ID" "{\"relayTo\":\"http://127.0.0.1:$FAST_PORT/sink\"}" >/dev/null
SECS=$(wait_sink "$FAST_PORT" "$BASE" "$F_N" 300)
[ "$SECS" = timeout ] && die "the backlog of $F_N jobs did not drain within 300 s"
RATE1=$(python3 -c "print(round($F_N / $SECS))")
echo "relay: drain, one local sink: $F_N jobs in $SECS s = $RATE1 jobs/s"

# --- 2. a slow target beside a fast one --------------------------------------------------------
HALF=$((JOBS / 2))
read -r S_ID S_SIG < <(new_endpoint slow)
read -r G_ID G_SIG < <(new_endpoint fast2)
S_N=$(queue_jobs "$S_ID" "$S_SIG" "$HALF")
G_N=$(queue_jobs "$G_ID" "$G_SIG" "$HALF")
# The slow target's jobs are older and it gets its target first, so it is claimed first.
BASE=$(sink_count "$FAST_PORT")
SLOW_BASE=$(sink_count "$SLOW_PORT")
api PATCH "/api/v1/webhook-endpoints/$S_ID" "{\"relayTo\":\"http://127.0.0.1:$SLOW_PORT/sink\"}" >/dev/null
api PATCH "/api/v1/webhook-endpoints/$G_ID" "{\"relayTo\":\"http://127.0.0.1:$FAST_PORT/sink2\"}" >/dev/null
SECS=$(wait_sink "$FAST_PORT" "$BASE" "$G_N" "${SLOW_DEADLINE:-120}")
if [ "$SECS" = timeout ]; then
  echo "relay: slow + fast: the fast target got $(($(sink_count "$FAST_PORT") - BASE)) of $G_N jobs in ${SLOW_DEADLINE:-120} s (held by the slow one)"
  RATE2=0
else
  RATE2=$(python3 -c "print(round($G_N / $SECS))")
  echo "relay: slow + fast: fast target $G_N jobs in $SECS s = $RATE2 jobs/s"
fi
echo "relay: slow + fast: the slow target (${SLOW_MS} ms per POST) got $(($(sink_count "$SLOW_PORT") - SLOW_BASE)) of $S_N jobs meanwhile"
echo "relay: fast target's rate beside a slow one / alone: $(python3 -c "print(f'{$RATE2 / $RATE1:.2f}')")"
echo "relay: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the store, read with the daemon stopped -----------------------------------------------------
stop_pid "$DAEMON_PID"
DAEMON_PID=""
echo "relay: store: fast $(count "$F_ID" "'succeeded'")/$F_N succeeded; fast2 $(count "$G_ID" "'succeeded'")/$G_N succeeded;" \
  "slow $(count "$S_ID" "'succeeded'") succeeded, $(count "$S_ID" "'queued','failed','running'") still to go"
