# bench/lib.sh — what the bench/ scripts share; sourced, not run. Bash only.
# shellcheck shell=bash disable=SC2034  # the variables it sets are the callers'
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_init NAME BUILD_DIR       temp dir ($WORK, $HOME_DIR = ALUMIA_HOME), binaries, exit trap
#   bench_pids VAR...               variables holding pids that the exit trap stops (in that order)
#   start_daemon LOG                the daemon on $HOME_DIR with ${DAEMON_ARGS[@]} and $DAEMON_ENV;
#                                   sets DAEMON_PID, DAEMON_URL, PUBLIC_URL (or ""), $WORK/auth.hdr
#   api METHOD PATH [JSON]          the control API with the daemon's key; body on stdout, dies on non-2xx
#   create_endpoint NAME JSON       POST /api/v1/webhook-endpoints; the answer in $WORK/ep.NAME.json
#   endpoint_id NAME, endpoint_secret_file NAME, endpoint_signature NAME BODY
#   push_body FILE [BYTES]          a GitHub push-shaped JSON body of exactly BYTES (1024)
#   start_bare NAME ARGS...         bench_bare_server ARGS; sets SINK_PID, SINK_PORT
#   wrk_signed LOG CONNS SECS SIG URL [ACKED]   wrk + ingest_signed.lua in the background (WRK_PID)
#   ingest_field LOG NAME           a field of the INGEST line wrk printed
#   queue_jobs ID SIG N URL_BASE    signed deliveries until N are acknowledged; prints the count
#   sink_count PORT, wait_sink PORT BASE N DEADLINE_S
#   rss_kib PID, hwm_kib PID, reset_hwm PID, rss_sampler_start PID FILE SECS, rss_sampler_stop
#   cpu_ticks PID, load_avg, fsync_probe CONNECTIONS
#
# Exit status convention of every script: 0 targets met, 1 a target missed, 2 could not run; on 2
# (or with KEEP=1) the temp dir with the logs is kept and named.

bench_init() {  # bench_init NAME BUILD_DIR
  BENCH_NAME=$1
  BUILD=${2:-build}
  BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  SCRIPT="$BENCH_DIR/ingest_signed.lua"
  DAEMON="$BUILD/bin/alumia-connectd"
  BARE="$BUILD/bench/bench_bare_server"
  LOAD="$BUILD/bench/bench_public_load"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-$BENCH_NAME.XXXXXX")
  HOME_DIR="$WORK/home"
  mkdir -m 700 "$HOME_DIR"
  BENCH_PID_VARS=()
  RSS_SAMPLER_PID=""
  DAEMON_PID=""
  [ "${DAEMON_ARGS+set}" = set ] || DAEMON_ARGS=(--listen 127.0.0.1:0 --keyring file)
  trap bench_cleanup EXIT
  trap 'exit 2' INT TERM
}

die() {
  echo "$BENCH_NAME: $*" >&2
  exit 2
}

need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 ||
      die "$tool is missing (Debian: apt-get install $tool; make deps installs it)"
  done
}
need_daemon() { [ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first: make build, or cmake --build $BUILD)"; }
need_bare() {
  [ -x "$BARE" ] || die "no bare server at $BARE (build the bench_bare_server target; ALUMIA_BUILD_BENCH=ON)"
}

bench_pids() { BENCH_PID_VARS+=("$@"); }

stop_pid() {  # stop_pid PID [SIGNAL]: signal one process we started, wait for it (30 s, then SIGKILL), reap it
  local pid=$1 sig=${2:-TERM}
  [ -n "$pid" ] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -s KILL "$pid" 2>/dev/null || true
  { wait "$pid" 2>/dev/null || true; } 2>/dev/null  # no "Killed" notice from bash for the SIGKILL
}

bench_cleanup() {
  local rc=$? var
  rss_sampler_stop
  for var in "${BENCH_PID_VARS[@]}" DAEMON_PID; do stop_pid "${!var:-}" TERM; done
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ge 2 ]; then
    echo "$BENCH_NAME: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

json_get() {  # json_get FILE PYTHON-EXPR-ON-d
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
now() { date +%s.%N; }
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }  # utime+stime, clock ticks

# --- the daemon ----------------------------------------------------------------------------------
start_daemon() {  # start_daemon LOG: waits (60 s at most) for its daemon.json
  rm -f "$HOME_DIR/daemon.json"
  # shellcheck disable=SC2086
  env ALUMIA_HOME="$HOME_DIR" ${DAEMON_ENV:-} "$DAEMON" "${DAEMON_ARGS[@]}" >"$1" 2>&1 &
  DAEMON_PID=$!
  disown "$DAEMON_PID"  # ingest.sh SIGKILLs it on purpose; no "Killed" job notice from bash
  for _ in $(seq 1 600); do
    if [ -s "$HOME_DIR/daemon.json" ]; then
      DAEMON_URL=$(json_get "$HOME_DIR/daemon.json" 'd["url"]')
      PUBLIC_URL=$(json_get "$HOME_DIR/daemon.json" 'd.get("publicUrl") or ""')
      printf 'Authorization: Bearer %s\n' "$(tr -d '\n' <"$HOME_DIR/key")" >"$WORK/auth.hdr"
      chmod 600 "$WORK/auth.hdr"
      return 0
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$1" >&2; die "the daemon exited during startup"; }
    sleep 0.1
  done
  die "the daemon did not write daemon.json within 60 s"
}

api() {  # api METHOD PATH [JSON]: the key goes in a header file, not argv
  local code
  code=$(curl -sS -o "$WORK/api.out" -w '%{http_code}' -X "$1" -H @"$WORK/auth.hdr" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$DAEMON_URL$2") || die "cannot reach $DAEMON_URL"
  case $code in
    2??) cat "$WORK/api.out" ;;
    *) cat "$WORK/api.out" >&2; die "$1 $2 answered HTTP $code" ;;
  esac
}

create_endpoint() {  # create_endpoint NAME JSON
  api POST /api/v1/webhook-endpoints "$2" >"$WORK/ep.$1.json"
  chmod 600 "$WORK/ep.$1.json"  # it holds the secret
}
endpoint_id() { json_get "$WORK/ep.$1.json" 'd["data"]["endpoint"]["id"]'; }
endpoint_secret_file() {  # endpoint_secret_file NAME: a 0600 file with the endpoint's secret; prints its path
  (umask 077 && json_get "$WORK/ep.$1.json" 'd["data"]["secret"]' >"$WORK/secret.$1")
  echo "$WORK/secret.$1"
}
endpoint_signature() {  # endpoint_signature NAME BODY_FILE: GitHub's sha256=HMAC of the body
  BENCH_SECRET=$(json_get "$WORK/ep.$1.json" 'd["data"]["secret"]') python3 -c '
import hashlib, hmac, os, sys
print("sha256=" + hmac.new(os.environ["BENCH_SECRET"].encode(), open(sys.argv[1], "rb").read(), hashlib.sha256).hexdigest())
' "$2"
}

push_body() {  # push_body FILE [BYTES]: a push-shaped JSON body padded to exactly BYTES (1024)
  python3 - "$1" "${2:-1024}" <<'EOF'
import json, sys
d = {"ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
     "after": "76ae82c7b1a177c8d03f9e96e0adf2466113728f", "created": False, "deleted": False, "forced": False,
     "repository": {"id": 1296269, "name": "alumia-bench", "full_name": "alumia/alumia-bench", "private": True,
                    "owner": {"login": "alumia", "id": 1}, "default_branch": "main"},
     "pusher": {"name": "octocat", "email": "octocat@example.com"},
     "sender": {"login": "octocat", "id": 583231, "type": "User"},
     "head_commit": {"id": "76ae82c7b1a177c8d03f9e96e0adf2466113728f", "message": "bench: ingest",
                     "timestamp": "2026-01-01T00:00:00Z", "author": {"name": "Octo Cat", "email": "octocat@example.com"},
                     "added": [], "removed": [], "modified": ["README.md"]},
     "padding": ""}
want = int(sys.argv[2])
base = len(json.dumps(d, separators=(",", ":")).encode())
d["padding"] = "x" * max(want - base, 0)
raw = json.dumps(d, separators=(",", ":")).encode()
assert len(raw) == want or want < base, len(raw)
open(sys.argv[1], "wb").write(raw)
EOF
}

# --- bench_bare_server: the HTTP ceiling, the durable ceiling, relay sinks -------------------------
start_bare() {  # start_bare NAME ARGS...: sets SINK_PID and SINK_PORT
  "$BARE" "${@:2}" >"$WORK/$1.port" 2>"$WORK/$1.log" &
  SINK_PID=$!
  for _ in $(seq 1 100); do [ -s "$WORK/$1.port" ] && break; sleep 0.1; done
  SINK_PORT=$(head -n1 "$WORK/$1.port")
  [ -n "$SINK_PORT" ] || { cat "$WORK/$1.log" >&2; die "bench_bare_server ($1) did not print its port"; }
}
sink_count() { curl -sS "http://127.0.0.1:$1/count"; }  # POSTs a bench_bare_server has received

# One process polling one kept-alive connection every 20 ms: the drain it times shares the machine's
# CPUs, and the loop of curl, date and python3 per poll it replaces took a third of a CPU from it.
wait_sink() {  # wait_sink PORT BASE N DEADLINE_S: until the sink has BASE+N POSTs; prints seconds or "timeout"
  python3 - "$@" "$EPOCHREALTIME" <<'EOF'  # the clock starts here, before python3 does
import http.client, sys, time
port, want, deadline = int(sys.argv[1]), int(sys.argv[2]) + int(sys.argv[3]), float(sys.argv[4])
t0 = float(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
while True:
    conn.request("GET", "/count")
    if int(conn.getresponse().read()) >= want:
        print(f"{time.time() - t0:.2f}")
        break
    if time.time() - t0 >= deadline:
        print("timeout")
        break
    time.sleep(0.02)
EOF
}

# --- wrk with signed deliveries (bench/ingest_signed.lua) -----------------------------------------
wrk_signed() {  # wrk_signed LOG CONNECTIONS SECONDS SIGNATURE URL [ACKED_FILE]: in the background, pid in WRK_PID
  INGEST_BODY_FILE="$BODY" INGEST_SIGNATURE="$4" INGEST_PREFIX="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" \
    INGEST_ACKED="${6:-}" INGEST_LABEL="$(basename "$1" .log)" \
    wrk -t"${THREADS:-2}" -c"$2" -d"$3s" --timeout 10s --latency -s "$SCRIPT" "$5" >"$1" 2>&1 &
  WRK_PID=$!
}
ingest_field() { grep '^INGEST ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

queue_jobs() {  # queue_jobs ENDPOINT_ID SIGNATURE N URL_BASE: signed deliveries until N were acknowledged
  local id=$1 sig=$2 n=$3 acked="$WORK/acked.$1"
  : >"$acked"
  for _ in $(seq 1 60); do
    [ "$(wc -l <"$acked")" -ge "$n" ] && { wc -l <"$acked"; return 0; }
    THREADS=2 wrk_signed "$WORK/queue.log" 8 2 "$sig" "$4/api/v1/connectors/webhooks/github/$id" "$acked"
    wait "$WRK_PID" || { cat "$WORK/queue.log" >&2; die "wrk failed"; }
    WRK_PID=""
  done
  die "could not queue $n jobs on $id"
}

# --- memory --------------------------------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# Resets VmHWM to the current RSS (Linux >= 4.0; needs the right to write /proc/PID/clear_refs, which
# the owner of the process has), so that VmHWM afterwards is the peak of what follows.
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null; }
rss_sampler_start() {  # rss_sampler_start PID FILE SECONDS: "<seconds since start> <VmRSS KiB>" lines
  local pid=$1 file=$2 every=$3
  (
    t0=$(now)
    while kill -0 "$pid" 2>/dev/null; do
      awk -v t="$(now)" -v t0="$t0" -v r="$(rss_kib "$pid")" 'BEGIN { printf "%.1f %d\n", t - t0, r }' >>"$file"
      sleep "$every"
    done
  ) &
  RSS_SAMPLER_PID=$!
}
rss_sampler_stop() {
  [ -n "${RSS_SAMPLER_PID:-}" ] || return 0
  kill "$RSS_SAMPLER_PID" 2>/dev/null || true
  { wait "$RSS_SAMPLER_PID" 2>/dev/null || true; } 2>/dev/null
  RSS_SAMPLER_PID=""
}

# --- the disk ------------------------------------------------------------------------------------
# The floor under durable ingest: every 2xx waits for a durable write (the intake log's), so with C
# connections the daemon cannot answer more than C / (fdatasync latency) requests a second, however
# cheap the rest is. Measured on the store's own file system, now.
fsync_probe() {  # fsync_probe CONNECTIONS
  python3 - "$WORK" "$1" "$BENCH_NAME" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
lat = []
for i in range(100):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    t = time.perf_counter(); os.fdatasync(fd); lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(path)
lat.sort()
med = lat[len(lat) // 2]
c = int(sys.argv[2])
print("%s: fdatasync of 4 KiB here: median %.2f ms, p90 %.2f ms -> at most %.0f durable commits/s;"
      " with %d connections and one commit per round trip the daemon can answer at most ~%.0f req/s"
      " (the disk's bound alone; the durable target measures HTTP plus the write)"
      % (sys.argv[3], med * 1000, lat[len(lat) * 9 // 10] * 1000, 1 / med, c, c / med))
EOF
}
