#!/usr/bin/env bash
# Spike 13 runs: every scenario against each server, one after the other, same machine, same run.
#   bench/spike13/run.sh [OUT] [SERVERS...]    (default OUT=/tmp/spike13, servers: ev mhd httplib)
# SERVER may carry extra options after a colon, e.g. "mhd:--io-threads 2".
# ROUNDS (default 1) repeats the whole set. Builds nothing: run `make -C bench/spike13 OUT=...` first.
set -u
OUT=${1:-/tmp/spike13}
shift || true
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(ev mhd httplib)
ROUNDS=${ROUNDS:-1}
A_CLIENTS=${A_CLIENTS:-2000}   # scale knobs, for a smoke test of the script itself
B_ATTACK=${B_ATTACK:-1000}
B_DUR=${B_DUR:-12}
C_DUR=${C_DUR:-8}
SKIP_WRK=${SKIP_WRK:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
RES="$OUT/results-$(date -u +%H%M%S)"
mkdir -p "$RES"
ulimit -n 20000
PORT=${PORT:-21000}  # a fresh pair per server and round (cpp-httplib binds without SO_REUSEADDR)
SUMMARY="$RES/summary.txt"

cat >"$RES/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/json"
EOF

log() { echo "$*" | tee -a "$SUMMARY"; }
cpu() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }  # utime+stime ticks
rss() { awk '/^VmRSS|^VmHWM/ { printf "%s%s ", $1, $2 }' "/proc/$1/status"; }

python3 - "$RES" <<'EOF' | tee -a "$SUMMARY"
import os, sys, time
p = os.path.join(sys.argv[1], "fsync-probe"); fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600); lat = []
for i in range(100):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096); t = time.perf_counter(); os.fdatasync(fd); lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(p); lat.sort()
print("fdatasync 4 KiB: median %.3f ms p90 %.3f ms" % (lat[50] * 1e3, lat[90] * 1e3))
EOF
log "load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"

wrk_line() {  # wrk_line LOG -> "rps p50 p99 max non2xx errors"
  python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups(); return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1)); p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
mx = ms(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", t).group(1))
non = re.search(r"Non-2xx or 3xx responses: (\d+)", t); non = int(non.group(1)) if non else 0
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
e = "connect %s read %s write %s timeout %s" % err.groups() if err else "none"
print("rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=[%s]" % (rps, p50, p99, mx, non, e))
EOF
}

for round in $(seq 1 "$ROUNDS"); do
  for spec in "${SERVERS[@]}"; do
    name=${spec%%:*}
    extra=""
    [ "$spec" != "$name" ] && extra=${spec#*:}
    tag="$name${extra:+ $extra}"
    PORT=$((PORT + 2))
    PUB=$PORT
    CTL=$((PORT + 1))
    dir="$RES/data-$name-$round-$RANDOM"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    "$OUT/${name}_server" --public-port $PUB --control-port $CTL --durable "$dir" $extra >"$RES/$name.$round.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$CTL/status" && break; sleep 0.1; done
    log ""
    log "=== round $round: $tag (pid $pid) idle $(rss $pid)"
    "$OUT/load" pool --port $PUB --clients $A_CLIENTS --addrs 10 --requests 3 --hold-ms 2000 --timeout-ms 10000 >"$RES/a.$name.$round.txt"
    log "(a) $(grep RESULT "$RES/a.$name.$round.txt" | cut -d' ' -f2-) | $(rss $pid)"
    sleep 6  # let held connections close
    "$OUT/load" mixed --port $PUB --control-port $CTL --deliver 32 --trickle 0 --idle 0 --duration-s 8 >"$RES/b0.$name.$round.txt"
    log "(b) no attack: $(grep RESULT "$RES/b0.$name.$round.txt" | cut -d' ' -f2-)"
    "$OUT/load" mixed --port $PUB --control-port $CTL --deliver 32 --trickle $B_ATTACK --idle $B_ATTACK --warm-s 3 --duration-s $B_DUR \
      >"$RES/b1.$name.$round.txt"
    log "(b) attack:    $(grep RESULT "$RES/b1.$name.$round.txt" | cut -d' ' -f2-) | $(rss $pid)"
    sleep 6
    for c in 8 256; do
      [ "$SKIP_WRK" = 1 ] && break
      wrk -t2 -c$c -d2s -s "$RES/post.lua" "http://127.0.0.1:$PUB/hook" >/dev/null 2>&1
      t0=$(cpu $pid)
      wrk -t2 -c$c -d${C_DUR}s --timeout 10s --latency -s "$RES/post.lua" "http://127.0.0.1:$PUB/hook" >"$RES/c$c.$name.$round.txt" 2>&1
      t1=$(cpu $pid)
      n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$RES/c$c.$name.$round.txt")
      log "(c) wrk -c$c durable: $(wrk_line "$RES/c$c.$name.$round.txt") server_cpu_us_per_req=$(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / (n > 0 ? n : 1) ))"
    done
    log "    after the runs: $(rss $pid) $(curl -s "http://127.0.0.1:$CTL/stats")"
    kill "$pid"
    wait "$pid" 2>/dev/null
    rm -rf "$dir"
    sleep 2
  done
done
log "load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S)"
echo "results in $RES"
