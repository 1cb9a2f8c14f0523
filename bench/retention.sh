#!/usr/bin/env bash
# bench/retention.sh BUILD_DIR — the store's file under a steady webhook load, with and without retention.
#
# The load: wrk posting signed 1 KiB GitHub deliveries at a steady RATE (retention_paced.lua), relayed
# at once to bench_bare_server so that every job ends delivered. A load the relay keeps up with: unless
# RATE is given, a first daemon takes the unpaced load (ingest_signed.lua, CONNECTIONS connections) for
# CALIBRATE seconds, and RATE is LOAD_FRACTION of the jobs a second its relay delivered meanwhile (the
# relay's rate beside full-rate ingest on this machine, now: at a lower rate ingest leaves it more CPU).
# Both are printed. Then two daemons in turn, each under that load, in slices of SLICE seconds
# (SLICES x SLICE should be well over 3 x DAY_MS):
#   keep     events-retention-days 36500: nothing is ever removed (the store before issue 14)
#   sweep    a window of 1 day, a day lasting DAY_MS (test hook retention-day-ms): bodies go after
#            DAY_MS, rows after 3 x DAY_MS, the sweep running every second; the dedup keys go after
#            3 x DAY_MS too (test hook dedup-ttl-ms, 8 days in the product), so that the whole file,
#            dedup keys included, must stop growing within the run
# After each slice it prints the slice's ingest rate and p50/p99 latency (wrk), the size of store.db
# and of its WAL, the events stored and the jobs still waiting for the relay (backlog). The sweep case must stop growing, and its events stay below
# what three windows of the load hold (the delivered events: one with a job still to deliver is kept by
# rule; 1.5 x rate x 3 x DAY_MS, the rate of the slices that cover the
# last three windows: on a busy machine the rate of one slice differs from the next by a third); the
# p99 of each case (the median of its slices) says what the sweep costs ingest, on the same machine in
# the same run. From the daemon's log it prints the sweep's own capacity: events retired (bodies
# dropped plus rows deleted) per second of the sweep's time in the store, against the ingest rate.
# (PASS: the largest store.db, the whole file, in the last third of the sweep run is at most GROWTH
# times the largest in the middle third — the first third fills the three windows and the dedup keys'
# TTL; the file without the dedup set's pages is printed too, and the largest per third of both cases.)
# See bench/README.md. Traffic goes only to 127.0.0.1.
#
# Knobs (environment): SLICES=9 SLICE=10 (seconds) CONNECTIONS=8 THREADS=2 DAY_MS=3000 GROWTH=1.25
#                      RATE= (requests a second; empty: measured, as above) LOAD_FRACTION=0.7
#                      CALIBRATE=10 (seconds) KEEP=1 (keep the temp dir with logs)
# Exit status: 0 the file stopped growing, 1 it did not, 2 the benchmark could not run or the relay fell
# behind the load (more than a window of it waiting at the end: the file then grows by the queue, which
# no sweep may touch; the run is INVALID, lower LOAD_FRACTION or RATE).
set -euo pipefail

SLICES=${SLICES:-9}
SLICE=${SLICE:-10}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
DAY_MS=${DAY_MS:-3000}
GROWTH=${GROWTH:-1.25}
RATE=${RATE:-}
LOAD_FRACTION=${LOAD_FRACTION:-0.7}
CALIBRATE=${CALIBRATE:-10}

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_init retention "${1:-build}"
need_tools wrk curl python3 sqlite3
need_daemon
need_bare
[ -f "$SCRIPT" ] || die "missing $SCRIPT"
PACED="$BENCH_DIR/retention_paced.lua"
[ -f "$PACED" ] || die "missing $PACED"
FULL_RATE_SCRIPT=$SCRIPT
BARE_PID=""
WRK_PID=""
bench_pids WRK_PID BARE_PID

start_bare bare
BARE_PID=$SINK_PID BARE_PORT=$SINK_PORT
BODY="$WORK/body.json"
push_body "$BODY" 1024
RESULTS="$WORK/results.txt"
: >"$RESULTS"

echo "retention: $SLICES slices of ${SLICE}s per case, wrk -t$THREADS -c$CONNECTIONS, 1024-byte signed bodies relayed to 127.0.0.1:$BARE_PORT"
echo "retention: sweep case: bodies go after ${DAY_MS} ms, rows and dedup keys after $((3 * DAY_MS)) ms, a sweep every second"
echo "retention: load average $(load_avg) on $(nproc) CPUs"

start_case() {  # start_case NAME RETENTION_DAYS DEDUP_TTL_MS: a fresh daemon and endpoint; sets TARGET, SIG
  local name=$1 days=$2 ttl=$3
  rm -rf "$HOME_DIR"
  mkdir -m 700 "$HOME_DIR"
  DAEMON_ARGS=(--listen 127.0.0.1:0 --keyring file --relay-to "http://127.0.0.1:$BARE_PORT/relay")
  DAEMON_ENV="ALUMIA_EVENTS_RETENTION_DAYS=$days ALUMIA_RETENTION_DAY_MS=$DAY_MS ALUMIA_RETENTION_SWEEP_INTERVAL_MS=1000"
  DAEMON_ENV+=" ALUMIA_DEDUP_TTL_MS=$ttl"
  start_daemon "$WORK/daemon.$name.log"
  create_endpoint "$name" '{"provider":"github","label":"retention","rateLimit":{"perSecond":1000000,"burst":1000000}}'
  TARGET="$DAEMON_URL/api/v1/connectors/webhooks/github/$(endpoint_id "$name")"
  SIG=$(endpoint_signature "$name" "$BODY")
}

# The steady load: LOAD_FRACTION of what the relay delivers beside unpaced ingest, on this machine now.
if [ -z "$RATE" ]; then
  start_case calibrate 36500 691200000
  log="$WORK/wrk.calibrate.log"
  base=$(sink_count "$BARE_PORT")
  t0=$(now)
  wrk_signed "$log" "$CONNECTIONS" "$CALIBRATE" "$SIG" "$TARGET"
  wait "$WRK_PID" || { WRK_PID=""; cat "$log" >&2; die "wrk failed"; }
  WRK_PID=""
  relayed=$(($(sink_count "$BARE_PORT") - base))
  t1=$(now)
  grep -q '^INGEST ' "$log" || { cat "$log" >&2; die "no result line from wrk ($log)"; }
  full=$(ingest_field "$log" rps)
  RATE=$(python3 -c "print(max(1, round($LOAD_FRACTION * $relayed / ($t1 - $t0))))")
  echo "retention: calibration (${CALIBRATE} s unpaced, wrk -c$CONNECTIONS): ingest $(printf '%.0f' "$full") req/s," \
    "the relay delivered $(python3 -c "print(round($relayed / ($t1 - $t0)))") jobs/s beside it;" \
    "steady load = $LOAD_FRACTION x that = $RATE req/s"
  stop_pid "$DAEMON_PID" TERM
  DAEMON_PID=""
else
  echo "retention: steady load $RATE req/s (RATE given)"
fi
SCRIPT=$PACED
export INGEST_LUA=$FULL_RATE_SCRIPT INGEST_RATE=$RATE INGEST_THREADS=$THREADS

run_case() {  # run_case NAME RETENTION_DAYS DEDUP_TTL_MS
  local name=$1 i log db
  start_case "$name" "$2" "$3"
  local target=$TARGET sig=$SIG
  db="$HOME_DIR/store.db"
  printf '%-6s %5s %9s %8s %8s %12s %10s %9s %9s\n' case t_s req/s p50_ms p99_ms store.db wal events backlog
  for i in $(seq 1 "$SLICES"); do
    log="$WORK/wrk.$name.$i.log"
    wrk_signed "$log" "$CONNECTIONS" "$SLICE" "$sig" "$target"
    wait "$WRK_PID" || { WRK_PID=""; cat "$log" >&2; die "wrk failed"; }
    WRK_PID=""
    grep -q '^INGEST ' "$log" || { cat "$log" >&2; die "no result line from wrk ($log)"; }
    local size wal events backlog dedup
    size=$(stat -c %s "$db")
    wal=$(stat -c %s "$db-wal" 2>/dev/null || echo 0)
    events=$(sqlite3 -readonly "$db" 'SELECT count(*) FROM webhook_events' 2>/dev/null || echo -1)
    backlog=$(sqlite3 -readonly "$db" "SELECT count(*) FROM webhook_jobs WHERE state IN ('queued','running','failed')" \
      2>/dev/null || echo -1)
    dedup=$(sqlite3 -readonly "$db" \
      "SELECT COALESCE(SUM(pgsize),0) FROM dbstat WHERE name='webhook_dedup' OR name='webhook_dedup_runs'" \
      2>/dev/null || echo 0)
    echo "$name $((i * SLICE)) $(ingest_field "$log" rps) $(ingest_field "$log" p50_us) $(ingest_field "$log" p99_us) $size $wal $events $backlog $dedup" >>"$RESULTS"
    awk -v c="$name" -v t="$((i * SLICE))" -v rps="$(ingest_field "$log" rps)" -v p50="$(ingest_field "$log" p50_us)" \
      -v p99="$(ingest_field "$log" p99_us)" -v s="$size" -v w="$wal" -v e="$events" -v b="$backlog" \
      'BEGIN { printf "%-6s %5d %9.0f %8.2f %8.2f %12d %10d %9d %9d\n", c, t, rps, p50/1000, p99/1000, s, w, e, b }'
  done
  echo "retention: $name: $(grep -c 'retention: ' "$WORK/daemon.$name.log" || true) sweeps that removed something (daemon log)"
  # "retention: B event bodies dropped, R events and J jobs deleted (...), V bytes given back; M ms in the store, ..."
  # "...; K dedup keys pruned in P ms"
  sed -n 's/.*retention: \([0-9]*\) event bodies dropped, \([0-9]*\) events and .* \([0-9]*\) ms in the store.*; \([0-9]*\) dedup keys pruned in \([0-9]*\) ms.*/SWEPT \1 \2 \3 \4 \5/p' \
    "$WORK/daemon.$name.log" | sed "s/^/$name /" >>"$RESULTS"
  stop_pid "$DAEMON_PID" TERM
  DAEMON_PID=""
}

run_case keep 36500 691200000
echo "retention: load average $(load_avg)"
run_case sweep 1 $((3 * DAY_MS))
echo "retention: load average $(load_avg) after the runs"

python3 - "$RESULTS" "$GROWTH" "$DAY_MS" "$RATE" <<'EOF'
import statistics, sys
path, growth, day_ms, paced = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rows = {}
swept = {}  # case -> [(bodies, rows, ms)] per sweep, from the daemon's log
for line in open(path):
    f = line.split()
    if f[1] == "SWEPT":
        swept.setdefault(f[0], []).append((int(f[2]), int(f[3]), int(f[4]), int(f[5]), int(f[6])))
        continue
    c, t, rps, p50, p99, size, wal, events, backlog, dedup = f
    # events: those the sweep may retire (an event with a job still to deliver is kept whatever its age);
    # [8]: the file without the dedup set's pages (its keys stay 8 days whatever the window)
    rows.setdefault(c, []).append((int(t), float(rps), float(p50), float(p99), int(size), int(wal),
                                   int(events) - int(backlog), int(backlog), int(size) - int(dedup)))
med = statistics.median
print()
for c in ("keep", "sweep"):
    r = rows[c]
    print("  %-5s rate %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms (medians of slices)  store.db %6.1f MB at the end, %d events delivered, %d waiting" % (
        c, med(x[1] for x in r), med(x[2] for x in r) / 1000, med(x[3] for x in r) / 1000, r[-1][4] / 1e6, r[-1][6],
        r[-1][7]))
r = rows["sweep"]
third = len(r) // 3  # the first third fills three windows (and the dedup keys' TTL); then the file must stop growing
def largest(case, col):  # the largest value of a column in each third of a case's slices
    x = rows[case]
    t = len(x) // 3
    return [max(y[col] for y in x[a:b]) for a, b in ((0, t), (t, 2 * t), (2 * t, len(x)))]
for c in ("keep", "sweep"):
    whole, bare = largest(c, 4), largest(c, 8)
    print("  %-5s largest store.db per third: %s MB (without the dedup set: %s MB)" % (
        c, " / ".join("%.1f" % (v / 1e6) for v in whole), " / ".join("%.1f" % (v / 1e6) for v in bare)))
at_half_file, later_file = largest("sweep", 4)[1:]
at_half, later = largest("sweep", 8)[1:]
half = 2 * third
rate = med(x[1] for x in r)
slice_s = r[0][0]
cover = max(1, -(-3 * day_ms // (1000 * slice_s)))  # slices that cover three windows
def bound_at(i):  # 1.5 x what three windows hold at the rate of the slices up to slice i
    recent = r[max(0, i + 1 - cover):i + 1]
    return 1.5 * sum(x[1] for x in recent) / len(recent) * 3 * day_ms / 1000
ok_size = later_file <= growth * at_half_file
worst = max(range(half, len(r)), key=lambda i: r[i][6] / bound_at(i))
bound = bound_at(worst)
ok_events = all(r[i][6] <= bound_at(i) for i in range(half, len(r)))
keep_p99, sweep_p99 = med(x[3] for x in rows["keep"]), med(x[3] for x in r)
print("  steady load: %.0f req/s asked; slices ran at %.0f (keep) and %.0f (sweep) req/s (medians)" % (
    paced, med(x[1] for x in rows["keep"]), rate))
print("  sweep: largest store.db, the whole file with the dedup keys, %.1f MB in the middle third, %.1f MB in the"
      " last (x%.2f, at most x%.2f)  %s" % (at_half_file / 1e6, later_file / 1e6,
                                          later_file / at_half_file if at_half_file else 0, growth,
                                          "PASS" if ok_size else "FAIL"))
print("  sweep: without the dedup set %.1f MB in the middle third, %.1f MB in the last (x%.2f; information)" % (
    at_half / 1e6, later / 1e6, later / at_half if at_half else 0))
backlog = max(x[7] for x in r[half:])
relay_behind = backlog > rate * day_ms / 1000  # more than a window of the load waits for the relay
print("  sweep: jobs waiting for the relay in the last third: at most %d (%s)" % (
    backlog, "the relay fell behind the load: those events are kept by rule and the file grows by them"
    if relay_behind else "the relay kept up"))
print("  sweep: delivered events stored in the last third at most %.2f of 1.5 x three windows of the load (%d at %d s, bound %.0f)  %s" % (
    r[worst][6] / bound, r[worst][6], r[worst][0], bound, "PASS" if ok_events else "FAIL"))
s = swept.get("sweep", [])
if s and sum(x[2] for x in s) > 0:
    gone = sum(x[0] + x[1] for x in s)
    busy = sum(x[2] for x in s) / 1000
    print("  sweep: %d sweeps retired %d events (bodies + rows) in %.1f s in the store: %.0f a second of its time,"
          " %.1fx the %.0f a second the load needs (bodies and rows of each delivery)" % (
              len(s), gone, busy, gone / busy, gone / busy / (2 * rate), 2 * rate))
if s:
    print("  sweep: %d dedup keys pruned in %.1f s (the delete and the dedup filter's rebuild)" % (
        sum(x[3] for x in s), sum(x[4] for x in s) / 1000))
print("  ingest p99 with the sweep / without: %.2f (information; same run, same machine)" % (
    sweep_p99 / keep_p99 if keep_p99 else 0))
print()
if relay_behind:
    # Not the sweep's to meet: a faster load than the relay drains on this machine.
    print("RESULT INVALID (the relay did not keep up; lower LOAD_FRACTION or RATE, or run on a quieter machine)%s" % (
        "" if ok_events else "; delivered events over the bound: FAIL"))
    sys.exit(1 if not ok_events else 2)
ok = ok_size and ok_events
print("RESULT %s" % ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
