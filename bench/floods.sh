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

BUILD=${1:-build}
DURATION=${DURATION:-8}
B_CONNECTIONS=${B_CONNECTIONS:-4}
A_CONNECTIONS=${A_CONNECTIONS:-4}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$HERE/ingest_signed.lua"
DAEMON="$BUILD/daemon/alumia-connectd"

die() { echo "floods: $*" >&2; exit 2; }
for tool in wrk curl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install $tool; make deps installs it)"
done
[ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first: make build, or cmake --build $BUILD)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-floods.XXXXXX")
HOME_DIR="$WORK/home"
mkdir -m 700 "$HOME_DIR"
DAEMON_PID=""
WRK_A=""
WRK_B=""

stop_pid() {  # stop_pid PID: stop one process we started and reap it
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -s TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -s KILL "$pid" 2>/dev/null || true
  { wait "$pid" 2>/dev/null || true; } 2>/dev/null
}
cleanup() {
  local rc=$?
  stop_pid "$WRK_A"
  stop_pid "$WRK_B"
  stop_pid "$DAEMON_PID"
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ge 2 ]; then echo "floods: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

ALUMIA_HOME="$HOME_DIR" "$DAEMON" --listen 127.0.0.1:0 --keyring file >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 600); do
  [ -s "$HOME_DIR/daemon.json" ] && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; die "the daemon exited during startup"; }
  sleep 0.1
done
[ -s "$HOME_DIR/daemon.json" ] || die "the daemon did not write daemon.json within 60 s"
URL=$(json_get "$HOME_DIR/daemon.json" 'd["url"]')
printf 'Authorization: Bearer %s\n' "$(tr -d '\n' <"$HOME_DIR/key")" >"$WORK/auth.hdr"
chmod 600 "$WORK/auth.hdr"

api() {  # api METHOD PATH [BODY] -> the answer's body on stdout
  curl -sS -H @"$WORK/auth.hdr" -H 'Content-Type: application/json' -X "$1" ${3:+--data "$3"} "$URL$2"
}
create() {  # create NAME BODY: the endpoint's JSON in $WORK/NAME.json
  api POST /api/v1/webhook-endpoints "$2" >"$WORK/$1.json"
  json_get "$WORK/$1.json" 'd["data"]["endpoint"]["id"]' >/dev/null || { cat "$WORK/$1.json" >&2; die "creating $1 failed"; }
}
create a '{"provider":"github","label":"flooded"}'
create b '{"provider":"github","label":"bystander","rateLimit":{"perSecond":1000000,"burst":1000000}}'
A_ID=$(json_get "$WORK/a.json" 'd["data"]["endpoint"]["id"]')
B_ID=$(json_get "$WORK/b.json" 'd["data"]["endpoint"]["id"]')

BODY="$WORK/body.json"
python3 -c 'import json,sys; d={"ref":"refs/heads/main","padding":""}; d["padding"]="x"*(1024-len(json.dumps(d,separators=(",",":")))); open(sys.argv[1],"w").write(json.dumps(d,separators=(",",":")))' "$BODY"
sign() {  # sign NAME -> sha256=HMAC of the body with the endpoint's secret
  BENCH_SECRET=$(json_get "$WORK/$1.json" 'd["data"]["secret"]') python3 -c '
import hashlib, hmac, os, sys
print("sha256=" + hmac.new(os.environ["BENCH_SECRET"].encode(), open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())' "$BODY"
}
SIG_A=$(sign a)
SIG_B=$(sign b)
SIG_BAD="sha256=$(printf '0%.0s' $(seq 1 64))"
target() { echo "$URL/api/v1/connectors/webhooks/github/$1"; }
transactions() { api GET /api/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["store"]["writeTransactions"])'; }

wrk_run() {  # wrk_run LOG CONNECTIONS SECONDS SIGNATURE URL (in the background; pid in $!)
  INGEST_BODY_FILE="$BODY" INGEST_SIGNATURE="$4" INGEST_PREFIX="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" \
    INGEST_LABEL="$(basename "$1" .log)" wrk -t1 -c"$2" -d"$3s" --timeout 10s --latency -s "$SCRIPT" "$5" >"$1" 2>&1 &
}
field() { grep '^INGEST ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

RESULTS="$WORK/results.txt"
: >"$RESULTS"
phase() {  # phase NAME [A_SIGNATURE [A_ID]]: B measured for DURATION s, A flooded meanwhile when a signature is given
  local name=$1 sig_a=${2:-} a_id=${3:-$A_ID} before after
  before=$(transactions)
  if [ -n "$sig_a" ]; then
    wrk_run "$WORK/$name-a.log" "$A_CONNECTIONS" $((DURATION + 2)) "$sig_a" "$(target "$a_id")"
    WRK_A=$!
    sleep 1  # the flood is under way before B is measured
  fi
  wrk_run "$WORK/$name-b.log" "$B_CONNECTIONS" "$DURATION" "$SIG_B" "$(target "$B_ID")"
  WRK_B=$!
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
wait $! || die "wrk failed (warm-up)"
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
