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

DURATION=${DURATION:-150}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
SAMPLE=${SAMPLE:-10}

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_init dedup_rss "${1:-build}"
need_tools wrk curl python3 sqlite3
need_daemon
WRK_PID=""
bench_pids WRK_PID

settle_rss() {  # settle_rss PID: RSS once the daemon has been idle for a moment
  sleep 3
  rss_kib "$1"
}

start_daemon "$WORK/daemon.log"
# The highest rate limit: at the default (1000/s) most of wrk's requests would be answered 429, not stored.
create_endpoint bench '{"provider":"github","label":"bench","rateLimit":{"perSecond":1000000,"burst":1000000}}'
ENDPOINT_ID=$(endpoint_id bench)
BODY="$WORK/body.json"
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"{\"ref\":\"refs/heads/main\",\"padding\":\"" + b"x" * 990 + b"\"}")' "$BODY"
SIGNATURE=$(endpoint_signature bench "$BODY")
DB="$HOME_DIR/store.db"
stored() { sqlite3 -batch "file:$DB?mode=ro" 'SELECT COALESCE(SUM(keys),0) FROM webhook_dedup' 2>/dev/null || echo '?'; }

echo "dedup_rss: daemon $DAEMON_URL, wrk -t$THREADS -c$CONNECTIONS for ${DURATION}s, RSS every ${SAMPLE}s"
echo "dedup_rss: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "dedup_rss: idle RSS at start (endpoint created)  $(settle_rss "$DAEMON_PID") KiB"

CPU0=$(cpu_ticks "$DAEMON_PID")
wrk_signed "$WORK/wrk.log" "$CONNECTIONS" "$DURATION" "$SIGNATURE" "$DAEMON_URL/api/v1/connectors/webhooks/github/$ENDPOINT_ID"
START=$(date +%s)
printf '%8s %10s %12s\n' seconds rss_kib dedup_keys
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
echo "dedup_rss: idle RSS after a restart on $(stored) stored keys  $(settle_rss "$DAEMON_PID") KiB (peak $(hwm_kib "$DAEMON_PID") KiB)"

# Repeats of the oldest deliveries of the run (their keys are "github:<delivery id>", the events' own
# event_key; the dedup table packs its keys in blocks SQL cannot read): every one must be a duplicate,
# found through the table since no recent memory holds them.
mapfile -t FIRST < <(sqlite3 -batch "file:$DB?mode=ro" \
  "SELECT event_key FROM webhook_events WHERE endpoint_id='$ENDPOINT_ID' ORDER BY received_at LIMIT 20")
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
