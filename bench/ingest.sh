#!/usr/bin/env bash
# bench/ingest.sh BUILD_DIR — webhook ingest throughput of alumia-connectd against the HTTP ceiling.
#
# wrk posts signed GitHub-style 1 KiB deliveries (unique X-GitHub-Delivery each) over keep-alive
# connections, alternately to the daemon's receiver and to bench_bare_server (cpp-httplib answering
# 200 and nothing else), for several rounds. It prints each round's rate and p50/p99 latency, the
# median daemon/bare ratios, PASS/FAIL against the targets, and a durability check: the daemon is
# killed with SIGKILL, started again on the same store (it applies its intake log first) and stopped,
# and every eventId it answered 2xx for must be in the store, exactly once, with its job.
# See bench/README.md. Traffic goes only to 127.0.0.1.
#
# Knobs (environment): ROUNDS=5 DURATION=8 (seconds per run) CONNECTIONS=8 THREADS=2 WARMUP=2
#                      (seconds, per target, not counted) KEEP=1 (keep the temp dir with logs)
#                      RELAY=1 (the daemon relays every job to the bare server; default: no target)
#                      INGEST_EVENT=ping (GitHub event type sent; a ping is verified and answered but
#                      not stored: the request path without storage, for comparison; the durability
#                      check then fails by design)
#                      DURABLE=0 (skip the third target, the durable ceiling: bench_bare_server --durable,
#                      which appends each body to an intake log before its 200 and does nothing else)
# Exit status: 0 all targets met, 1 a target missed, 2 the benchmark could not run.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
TARGET_RATE_RATIO=0.70
TARGET_P99_RATIO=1.5

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_init ingest "${1:-build}"
need_tools wrk curl python3 sqlite3
need_daemon
need_bare
[ -f "$SCRIPT" ] || die "missing $SCRIPT"
BARE_PID=""
DURABLE_PID=""
WRK_PID=""
bench_pids WRK_PID BARE_PID DURABLE_PID

# --- the bare server --------------------------------------------------------------------------
start_bare bare
BARE_PID=$SINK_PID BARE_PORT=$SINK_PORT

# --- the durable ceiling: the same server, answering only after a durable append ----------------
TARGETS="daemon bare"
if [ "${DURABLE:-1}" = 1 ]; then
  mkdir -m 700 "$WORK/durable"
  start_bare durable --durable "$WORK/durable"
  DURABLE_PID=$SINK_PID DURABLE_PORT=$SINK_PORT
  TARGETS="daemon bare durable"
fi

# --- the daemon -------------------------------------------------------------------------------
# RELAY=1: the relay worker delivers jobs to the bare server while wrk runs (its POSTs then share
# the machine). Default: no relay target, so jobs stay queued, as with a consumer that is offline.
DAEMON_ARGS=(--listen 127.0.0.1:0 --keyring file)
[ "${RELAY:-0}" = 1 ] && DAEMON_ARGS+=(--relay-to "http://127.0.0.1:$BARE_PORT/relay")
start_daemon "$WORK/daemon.log"

# An endpoint with a daemon-generated secret, and the highest rate limit (the default, 1000/s, is far
# below what this benchmark sends).
create_endpoint bench '{"provider":"github","label":"bench","rateLimit":{"perSecond":1000000,"burst":1000000}}'
ENDPOINT_ID=$(endpoint_id bench)
DAEMON_TARGET="$DAEMON_URL/api/v1/connectors/webhooks/github/$ENDPOINT_ID"
BARE_TARGET="http://127.0.0.1:$BARE_PORT/api/v1/connectors/webhooks/github/$ENDPOINT_ID"
DURABLE_TARGET="http://127.0.0.1:${DURABLE_PORT:-0}/api/v1/connectors/webhooks/github/$ENDPOINT_ID"

# --- the body and its signature ---------------------------------------------------------------
# A push-shaped JSON body padded to exactly 1024 bytes. GitHub signs the body only; the unique
# delivery id travels in X-GitHub-Delivery, so one signature serves every request.
BODY="$WORK/body.json"
push_body "$BODY" 1024
SIGNATURE=$(endpoint_signature bench "$BODY")

# Sanity probe: a signed ping is verified but never stored, so it does not disturb the counts.
probe_status() {  # probe_status SIGNATURE -> HTTP status of a ping with that signature
  curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H 'X-GitHub-Event: ping' \
    -H "X-GitHub-Delivery: probe-$1" -H "X-Hub-Signature-256: $1" --data-binary @"$BODY" "$DAEMON_TARGET"
}
[ "$(probe_status "$SIGNATURE")" = 200 ] || die "the daemon refused a correctly signed ping (see $WORK/daemon.log)"
[ "$(probe_status "sha256=$(printf '0%.0s' $(seq 1 64))")" = 401 ] || die "the daemon accepted a wrong signature"

# --- the runs ---------------------------------------------------------------------------------
RESULTS="$WORK/results.txt"
: >"$RESULTS"
: >"$WORK/all.txt"
ACKED="$WORK/acked.txt"
: >"$ACKED"

run_wrk() {  # run_wrk LABEL TARGET SECONDS COUNTED(0|1) -> appends the INGEST line to $RESULTS if counted
  local label=$1 target=$2 secs=$3 counted=$4 url log acked=""
  case $target in
    daemon) url=$DAEMON_TARGET acked=$ACKED ;;
    bare) url=$BARE_TARGET ;;
    durable) url=$DURABLE_TARGET ;;
  esac
  log="$WORK/wrk.$label.$target.log"
  wrk_signed "$log" "$CONNECTIONS" "$secs" "$SIGNATURE" "$url" "$acked"
  wait "$WRK_PID" || { WRK_PID=""; cat "$log" >&2; die "wrk failed against the $target"; }
  WRK_PID=""
  grep -q '^INGEST ' "$log" || { cat "$log" >&2; die "no result line from wrk ($log)"; }
  echo "$(grep '^INGEST ' "$log") round=$label target=$target" >>"$WORK/all.txt"
  if [ "$counted" = 1 ]; then
    echo "$(grep '^INGEST ' "$log") round=$label target=$target" >>"$RESULTS"
  fi
}

field() {  # field LINE NAME
  sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"
}

echo "ingest: daemon $DAEMON_URL (endpoint $ENDPOINT_ID), bare server 127.0.0.1:$BARE_PORT"
echo "ingest: relay target: $([ "${RELAY:-0}" = 1 ] && echo "the bare server (RELAY=1)" || echo "none, jobs stay queued (RELAY=1 relays to the bare server)")"
echo "ingest: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds alternating the targets ($TARGETS), 1024-byte signed bodies"
echo "ingest: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
fsync_probe "$CONNECTIONS"
if [ "$WARMUP" -gt 0 ]; then
  for t in $TARGETS; do run_wrk warmup "$t" "$WARMUP" 0; done
fi
printf '%-6s %-7s %10s %10s %10s %10s %9s %s\n' round target req/s p50_ms p99_ms max_ms non2xx errors
for r in $(seq 1 "$ROUNDS"); do
  # Alternate the order of the targets so slow drift in the machine's load cancels out.
  if [ $((r % 2)) -eq 1 ]; then order=$TARGETS; else order=$(tr ' ' '\n' <<<"$TARGETS" | tac | tr '\n' ' '); fi
  for t in $order; do
    run_wrk "$r" "$t" "$DURATION" 1
    line=$(grep " round=$r target=$t\$" "$RESULTS")
    errs=$(( $(field "$line" err_connect) + $(field "$line" err_read) + $(field "$line" err_write) + $(field "$line" err_timeout) ))
    awk -v r="$r" -v t="$t" -v rps="$(field "$line" rps)" -v p50="$(field "$line" p50_us)" \
      -v p99="$(field "$line" p99_us)" -v mx="$(field "$line" max_us)" -v bad="$(field "$line" non2xx)" -v e="$errs" \
      'BEGIN { printf "%-6s %-7s %10.0f %10.2f %10.2f %10.2f %9d %d\n", r, t, rps, p50/1000, p99/1000, mx/1000, bad, e }'
  done
done
echo "ingest: load average $(cut -d' ' -f1-3 /proc/loadavg) after the rounds"

# --- durability: crash the daemon, then look at the store -------------------------------------
# SIGKILL, not SIGTERM: nothing may depend on a shutdown flush. Every eventId answered 2xx must be
# in webhook_events exactly once with its job. Deliveries sent but unanswered when a wrk run ended
# may or may not be stored; they are reported, not failed (GitHub would count them as failed).
BARE_CPU=$(cpu_ticks "$BARE_PID")
DAEMON_CPU=$(cpu_ticks "$DAEMON_PID")
DURABLE_CPU=0
if [ -n "$DURABLE_PID" ]; then
  DURABLE_CPU=$(cpu_ticks "$DURABLE_PID")
  stop_pid "$DURABLE_PID" TERM
  DURABLE_PID=""
fi
TICK=$(getconf CLK_TCK)
stop_pid "$BARE_PID" TERM
BARE_PID=""
stop_pid "$DAEMON_PID" KILL
DAEMON_PID=""
# Start it again on the same store, as after a crash: it first stores what its intake log holds
# (acknowledged deliveries not yet applied to the tables), then writes daemon.json; stop it cleanly.
start_daemon "$WORK/daemon.restart.log"
stop_pid "$DAEMON_PID" TERM
DAEMON_PID=""
DB="$HOME_DIR/store.db"
sort -u "$ACKED" >"$WORK/acked.sorted"
ACKED_LINES=$(wc -l <"$ACKED")
ACKED_UNIQUE=$(wc -l <"$WORK/acked.sorted")
sqlite3 -batch "$DB" >"$WORK/durability.txt" <<EOF
CREATE TEMP TABLE acked(id TEXT PRIMARY KEY);
.mode csv
.import $WORK/acked.sorted acked
.mode list
.separator ' '
SELECT 'stored', count(*) FROM webhook_events WHERE endpoint_id='$ENDPOINT_ID';
SELECT 'stored_keys', count(DISTINCT event_key) FROM webhook_events WHERE endpoint_id='$ENDPOINT_ID';
SELECT 'missing', count(*) FROM acked WHERE id NOT IN (SELECT id FROM webhook_events);
SELECT 'without_job', count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM webhook_jobs j WHERE j.event_id=a.id);
SELECT 'jobs', count(*) FROM webhook_jobs WHERE endpoint_id='$ENDPOINT_ID';
SELECT 'dedup', COALESCE(SUM(keys),0) FROM webhook_dedup WHERE endpoint_id='$ENDPOINT_ID';
SELECT 'unacked_stored', count(*) FROM webhook_events WHERE endpoint_id='$ENDPOINT_ID' AND id NOT IN (SELECT id FROM acked);
SELECT 'job_states', group_concat(state || '=' || n, ' ') FROM (SELECT state, count(*) AS n FROM webhook_jobs
  WHERE endpoint_id='$ENDPOINT_ID' GROUP BY state ORDER BY state);
EOF
dur() { sed -n "s/^$1 //p" "$WORK/durability.txt"; }
# With RELAY=1 this shows how far the relay kept up (succeeded vs still queued when the daemon was killed).
echo "ingest: jobs by state when the daemon was killed: $(dur job_states)"

# --- summary ----------------------------------------------------------------------------------
python3 - "$RESULTS" "$TARGET_RATE_RATIO" "$TARGET_P99_RATIO" "$ACKED_LINES" "$ACKED_UNIQUE" \
  "$(dur stored)" "$(dur stored_keys)" "$(dur missing)" "$(dur without_job)" "$(dur jobs)" "$(dur dedup)" \
  "$(dur unacked_stored)" "$ROUNDS" "$CONNECTIONS" "$WORK/all.txt" "$DAEMON_CPU" "$BARE_CPU" "$TICK" "$DURABLE_CPU" <<'EOF'
import statistics, sys
(path, rate_target, p99_target, acked_lines, acked_unique, stored, stored_keys, missing, without_job, jobs,
 dedup, unacked_stored, rounds, conns, all_path, daemon_cpu, bare_cpu, tick, durable_cpu) = sys.argv[1:]
rate_target, p99_target = float(rate_target), float(p99_target)
acked_lines, acked_unique, stored, stored_keys, missing, without_job, jobs, dedup, unacked_stored, rounds, conns = map(
    int, (acked_lines, acked_unique, stored, stored_keys, missing, without_job, jobs, dedup, unacked_stored, rounds, conns))
runs = {}
for line in open(path):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    runs[(f["round"], f["target"])] = f
rs = sorted({r for r, _ in runs}, key=int)
def col(t, k): return [float(runs[(r, t)][k]) for r in rs]
d_rps, b_rps = col("daemon", "rps"), col("bare", "rps")
d_p50, b_p50 = col("daemon", "p50_us"), col("bare", "p50_us")
d_p99, b_p99 = col("daemon", "p99_us"), col("bare", "p99_us")
rate_ratios = [d / b for d, b in zip(d_rps, b_rps)]
p99_ratios = [d / b for d, b in zip(d_p99, b_p99)]
med = statistics.median
ms = lambda us: us / 1000.0
d_bad = sum(int(runs[(r, "daemon")][k]) for r in rs for k in ("non2xx", "err_connect", "err_read", "err_write", "err_timeout"))
d_dups = sum(int(runs[(r, "daemon")]["duplicates"]) for r in rs)
print()
print("summary (median over %d rounds; ratios are per round, daemon/bare of the same round, then the median)" % len(rs))
print("  rate   daemon %9.0f req/s   bare %9.0f req/s   per round: %s" % (
    med(d_rps), med(b_rps), " ".join("%.2f" % x for x in rate_ratios)))
print("  p50    daemon %9.2f ms      bare %9.2f ms" % (ms(med(d_p50)), ms(med(b_p50))))
print("  p99    daemon %9.2f ms      bare %9.2f ms      per round: %s" % (
    ms(med(d_p99)), ms(med(b_p99)), " ".join("%.2f" % x for x in p99_ratios)))
# CPU per request (whole process lifetime over every request it served, warm-up included): less
# sensitive to a busy machine than rates and latencies, which include waiting for a CPU.
served = {"daemon": 0, "bare": 0, "durable": 0}
for line in open(all_path):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    served[f["target"]] += int(f["requests"])
cpu_us = {t: (float(c) / float(tick) * 1e6 / served[t] if served[t] else 0.0)
          for t, c in (("daemon", daemon_cpu), ("bare", bare_cpu), ("durable", durable_cpu))}
print("  cpu    daemon %9.0f us/req     bare %9.0f us/req     (%.1fx; user+system time over %d and %d requests)" % (
    cpu_us["daemon"], cpu_us["bare"], cpu_us["daemon"] / cpu_us["bare"] if cpu_us["bare"] else 0.0,
    served["daemon"], served["bare"]))
if any(t == "durable" for _, t in runs):
    # Information, not a target: the same bare server answering only after a durable append (the
    # daemon's intake log, nothing else). durable/bare is the most any durable-before-2xx service
    # keeps of the HTTP ceiling on this machine; daemon/durable is what verification, dedup and
    # the store cost on top of that.
    u_rps, u_p99 = col("durable", "rps"), col("durable", "p99_us")
    print("  durable ceiling (bench_bare_server --durable: append to an intake log, then 200; information)")
    print("         durable %8.0f req/s   p50 %.2f ms   p99 %.2f ms   cpu %.0f us/req" % (
        med(u_rps), ms(med(col("durable", "p50_us"))), ms(med(u_p99)), cpu_us["durable"]))
    print("         durable/bare rate %.2f, p99 %.2f    daemon/durable rate %.2f, p99 %.2f   (medians of per-round ratios)" % (
        med([u / b for u, b in zip(u_rps, b_rps)]), med([u / b for u, b in zip(u_p99, b_p99)]),
        med([d / u for d, u in zip(d_rps, u_rps)]), med([d / u for d, u in zip(d_p99, u_p99)])))
ok_rate = med(rate_ratios) >= rate_target
ok_p99 = med(p99_ratios) <= p99_target
print("  rate ratio  %.2f (target >= %.2f)  %s" % (med(rate_ratios), rate_target, "PASS" if ok_rate else "FAIL"))
print("  p99 ratio   %.2f (target <= %.2f)  %s" % (med(p99_ratios), p99_target, "PASS" if ok_p99 else "FAIL"))
print()
print("durability (daemon killed with SIGKILL, restarted to apply its intake log, then the store read; counts include the warm-up)")
print("  2xx answers with an eventId     %d (unique %d; duplicates answered %d; daemon non-2xx/socket errors %d)" % (
    acked_lines, acked_unique, d_dups, d_bad))
print("  events stored for the endpoint  %d (distinct delivery keys %d, dedup rows %d, jobs %d)" % (
    stored, stored_keys, dedup, jobs))
print("  acknowledged but not stored     %d" % missing)
print("  acknowledged without a job      %d" % without_job)
print("  stored but never acknowledged   %d (in flight when a wrk run stopped; at most %d)" % (
    unacked_stored, conns * (rounds + 1)))
ok_dur = (missing == 0 and without_job == 0 and acked_lines == acked_unique and stored == stored_keys
          and stored == acked_unique + unacked_stored and dedup == stored and jobs == stored
          and unacked_stored <= conns * (rounds + 1) and acked_unique > 0)
print("  every 2xx durable, each delivery stored once: %s" % ("PASS" if ok_dur else "FAIL"))
if d_bad:
    print("  note: the daemon answered %d requests with non-2xx or socket errors (see the wrk logs)" % d_bad)
print()
print("RESULT %s" % ("PASS" if ok_rate and ok_p99 and ok_dur else "FAIL"))
sys.exit(0 if ok_rate and ok_p99 and ok_dur else 1)
EOF
