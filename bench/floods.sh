#!/usr/bin/env bash
# bench/floods.sh BUILD_DIR — what a flood at one webhook endpoint costs another (issue 13 item 3).
#
# Endpoint B gets signed GitHub-style 1 KiB deliveries (wrk, keep-alive) and its accepted rate and
# latency are measured: alone, then while endpoint A is flooded from more connections with
#   valid      valid signatures, A at the default rate limit (1000/s, burst 2000): the excess gets 429
#   invalid    wrong signatures, A at the default limit: up to the limit 401 (verified), the rest 429
#   unlimited  valid signatures, A's limit raised to the maximum (1,000,000/s): what the limit saves B
#   floor      the same flood at a path whose id is not a UUID: answered 404 before any lookup, the
#              least a request costs this daemon (HTTP, routing, the envelope): the same-run ceiling of
#              what B can keep while any flood of that rate arrives
# B has the maximum limit, so that only the machine limits it. For each phase it prints B's rate,
# p50 and p99, A's answers (2xx and the rest: 429 or 401), and the store's write transactions during
# the phase (GET /status writeTransactions; B's own deliveries write too, in group commits, so compare
# a flood phase with "alone": A's refusals add none each). See bench/README.md.
#
# Knobs (environment): DURATION=8 (seconds per phase) B_CONNECTIONS=4 A_CONNECTIONS=4 KEEP=1
# (the defaults stay within cpp-httplib's 8 pool threads; with A_CONNECTIONS=32 B waits for a thread
# held by A's keep-alive connections, the listener problem of issue 13 item 1, not the limiter's)
# Exit status: 0 when B answered every request and its p99 during the valid and invalid floods is at
# most twice its p99 alone (or 25 ms, whichever is larger); 1 when not; 2 when it could not run.
set -euo pipefail

DURATION=${DURATION:-8}
B_CONNECTIONS=${B_CONNECTIONS:-4}
A_CONNECTIONS=${A_CONNECTIONS:-4}

# shellcheck source=bench/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
bench_init floods "${1:-build}"
need_tools wrk curl python3
need_daemon
WRK_A=""
WRK_B=""
bench_pids WRK_A WRK_B

start_daemon "$WORK/daemon.log"
URL=$DAEMON_URL
create_endpoint a '{"provider":"github","label":"flooded"}'
create_endpoint b '{"provider":"github","label":"bystander","rateLimit":{"perSecond":1000000,"burst":1000000}}'
A_ID=$(endpoint_id a)
B_ID=$(endpoint_id b)

BODY="$WORK/body.json"
push_body "$BODY" 1024
SIG_A=$(endpoint_signature a "$BODY")
SIG_B=$(endpoint_signature b "$BODY")
SIG_BAD="sha256=$(printf '0%.0s' $(seq 1 64))"
target() { echo "$URL/api/v1/connectors/webhooks/github/$1"; }
transactions() { api GET /api/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["store"]["writeTransactions"])'; }

wrk_run() { THREADS=1 wrk_signed "$@"; }  # wrk_run LOG CONNECTIONS SECONDS SIGNATURE URL (pid in WRK_PID)
field() { ingest_field "$@"; }

RESULTS="$WORK/results.txt"
: >"$RESULTS"
phase() {  # phase NAME [A_SIGNATURE [A_ID]]: B measured for DURATION s, A flooded meanwhile when a signature is given
  local name=$1 sig_a=${2:-} a_id=${3:-$A_ID} before after
  before=$(transactions)
  if [ -n "$sig_a" ]; then
    wrk_run "$WORK/$name-a.log" "$A_CONNECTIONS" $((DURATION + 2)) "$sig_a" "$(target "$a_id")"
    WRK_A=$WRK_PID
    sleep 1  # the flood is under way before B is measured
  fi
  wrk_run "$WORK/$name-b.log" "$B_CONNECTIONS" "$DURATION" "$SIG_B" "$(target "$B_ID")"
  WRK_B=$WRK_PID
  wait "$WRK_B" || die "wrk failed against B ($WORK/$name-b.log)"
  WRK_B=""
  if [ -n "$sig_a" ]; then
    wait "$WRK_A" || die "wrk failed against A ($WORK/$name-a.log)"
    WRK_A=""
  fi
  after=$(transactions)
  local a_ok=- a_other=- a_rps=-
  if [ -n "$sig_a" ]; then
    a_ok=$(field "$WORK/$name-a.log" ok2xx)
    a_other=$(field "$WORK/$name-a.log" non2xx)
    a_rps=$(field "$WORK/$name-a.log" rps)
  fi
  echo "$name $(field "$WORK/$name-b.log" rps) $(field "$WORK/$name-b.log" p50_us) $(field "$WORK/$name-b.log" p99_us) $(field "$WORK/$name-b.log" non2xx) $a_rps $a_ok $a_other $((after - before))" >>"$RESULTS"
}

echo "floods: B over $B_CONNECTIONS connections for ${DURATION}s per phase; A flooded over $A_CONNECTIONS; 1024-byte signed bodies"
echo "floods: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
wrk_run "$WORK/warmup.log" "$B_CONNECTIONS" 2 "$SIG_B" "$(target "$B_ID")"
wait "$WRK_PID" || die "wrk failed (warm-up)"
phase alone
phase valid "$SIG_A"
phase invalid "$SIG_BAD"
api PATCH "/api/v1/webhook-endpoints/$A_ID" '{"rateLimit":{"perSecond":1000000,"burst":1000000}}' >/dev/null
phase unlimited "$SIG_A"
phase floor "$SIG_A" not-an-endpoint
phase alone-again
api GET "/api/v1/webhook-endpoints/$A_ID" >"$WORK/a-after.json"

python3 - "$RESULTS" "$WORK/a-after.json" "$DURATION" <<'EOF'
import json, sys
rows = [l.split() for l in open(sys.argv[1])]
duration = float(sys.argv[3])
print("%-12s %10s %9s %9s %7s | %10s %9s %9s | %6s" % ("phase", "B req/s", "B p50 ms", "B p99 ms", "B err",
                                                      "A req/s", "A 2xx", "A other", "writes"))
base = {}
for name, rps, p50, p99, berr, arps, aok, aother, tx in rows:
    base[name] = float(rps)
    print("%-12s %10.0f %9.2f %9.2f %7s | %10s %9s %9s | %6s" % (name, float(rps), float(p50) / 1000, float(p99) / 1000,
                                                                  berr, arps if arps == "-" else "%.0f" % float(arps),
                                                                  aok, aother, tx))
alone = max(base["alone"], base["alone-again"])
ok = all(r[4] == "0" for r in rows)
arps = {r[0]: float(r[5]) for r in rows if r[5] != "-"}
# What B loses per flood request, against the floor flood's.
def lost(name):
    return (alone - base[name]) / max(arps[name], 1.0)
for name in ("valid", "invalid", "unlimited", "floor"):
    print("B keeps %.2f of its rate alone while A is flooded (%s, %.0f req/s at A); B's loss per A request %.1fx the floor's" % (
        base[name] / alone, name, arps[name], lost(name) / max(lost("floor"), 1e-9)))
p99 = {r[0]: float(r[3]) / 1000 for r in rows}
limit = max(2 * max(p99["alone"], p99["alone-again"]), 25.0)
for name in ("valid", "invalid"):
    print("B p99 during the %s flood %.2f ms (target <= %.2f ms)" % (name, p99[name], limit))
    if p99[name] > limit:
        ok = False
counts = json.load(open(sys.argv[2]))["data"]["counts"]
print("A's counts: received %d, rateLimited %d, verificationFailures %d" % (
    counts["received"], counts["rateLimited"], counts["verificationFailures"]))
print("RESULT " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
