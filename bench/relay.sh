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

JOBS=${JOBS:-32000}
SLOW_MS=${SLOW_MS:-200}

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_init relay "${1:-build}"
need_tools wrk curl python3 sqlite3
need_daemon
need_bare
FAST_PID="" SLOW_PID="" WRK_PID=""
bench_pids WRK_PID DAEMON_PID FAST_PID SLOW_PID  # the daemon before its sinks

start_bare fast --threads 64
# shellcheck disable=SC2034  # FAST_PID and SLOW_PID are stopped by the exit trap (bench_pids)
FAST_PID=$SINK_PID FAST_PORT=$SINK_PORT
start_bare slow --threads 64 --delay-ms "$SLOW_MS"
# shellcheck disable=SC2034
SLOW_PID=$SINK_PID SLOW_PORT=$SINK_PORT

# The daemon without a default relay target: jobs stay queued until an endpoint gets a relayTo.
start_daemon "$WORK/daemon.log"
URL=$DAEMON_URL
DB="$HOME_DIR/store.db"
[ -f "$DB" ] || DB=$(find "$HOME_DIR" -name 'store.db' | head -n1)
[ -f "$DB" ] || die "cannot find the daemon's store.db under $HOME_DIR"

BODY="$WORK/body.json"
python3 -c 'import json,sys; open(sys.argv[1],"w").write(json.dumps({"ref":"refs/heads/main","padding":"x"*900}))' "$BODY"

new_endpoint() {  # new_endpoint LABEL -> "ID SIGNATURE"
  create_endpoint "$1" "{\"provider\":\"github\",\"label\":\"$1\"}"
  echo "$(endpoint_id "$1") $(endpoint_signature "$1" "$BODY")"
}

count() {  # count ENDPOINT_ID STATE-LIST-SQL (read with the daemon stopped)
  sqlite3 -cmd '.timeout 5000' "$DB" "SELECT count(*) FROM webhook_jobs WHERE endpoint_id='$1' AND state IN ($2)"
}

echo "relay: load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. one fast target ------------------------------------------------------------------------
read -r F_ID F_SIG < <(new_endpoint fast)
F_N=$(queue_jobs "$F_ID" "$F_SIG" "$JOBS" "$URL")
BASE=$(sink_count "$FAST_PORT")
TICKS0=$(cpu_ticks "$DAEMON_PID")
api PATCH "/api/v1/webhook-endpoints/$F_ID" "{\"relayTo\":\"http://127.0.0.1:$FAST_PORT/sink\"}" >/dev/null
SECS=$(wait_sink "$FAST_PORT" "$BASE" "$F_N" 300)
[ "$SECS" = timeout ] && die "the backlog of $F_N jobs did not drain within 300 s"
TICKS1=$(cpu_ticks "$DAEMON_PID")
RATE1=$(python3 -c "print(round($F_N / $SECS))")
echo "relay: drain, one local sink: $F_N jobs in $SECS s = $RATE1 jobs/s"
# The daemon's CPU (all its threads: claims, deliveries, the store's writer) per job delivered: what the
# relay costs whatever the machine's load (the rate above moves with it).
echo "relay: drain, daemon CPU: $(python3 -c "print(f'{($TICKS1 - $TICKS0) / $(getconf CLK_TCK) * 1e6 / $F_N:.0f}')") us a job" \
  "($(python3 -c "print(f'{($TICKS1 - $TICKS0) / $(getconf CLK_TCK):.2f}')") s for $F_N jobs)"

# --- 2. a slow target beside a fast one --------------------------------------------------------
HALF=$((JOBS / 2))
read -r S_ID S_SIG < <(new_endpoint slow)
read -r G_ID G_SIG < <(new_endpoint fast2)
S_N=$(queue_jobs "$S_ID" "$S_SIG" "$HALF" "$URL")
G_N=$(queue_jobs "$G_ID" "$G_SIG" "$HALF" "$URL")
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
