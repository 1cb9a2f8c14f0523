#!/usr/bin/env bash
# bench/idle_rss.sh BUILD_DIR — the daemon's resident memory when idle, and what it is made of.
#
# Starts alumia-connectd on a fresh, empty store (a temp ALUMIA_HOME, --keyring file as the tests
# do), waits for daemon.json, then polls until the process has used no CPU for IDLE seconds (5),
# and prints VmRSS, RssAnon, RssFile, RssShmem, the thread count, and the mappings with the most
# resident memory (summed per file, from /proc/PID/smaps; anonymous mappings as [anon], thread
# stacks included). Issue 13 item 5: idle RSS <= 12 MB. See bench/README.md ("idle_rss").
#
# Knobs (environment): IDLE=5 (seconds without CPU use that count as idle) TOP=25 (mappings listed)
#                      PUBLIC=1 (also open the public listener on 127.0.0.1:0)
#                      KEYRING=file (the --keyring backend) TARGET_KIB=12288
#                      DAEMON_ENV="NAME=value ..." (extra environment for the daemon) KEEP=1
# Exit status: 0 VmRSS <= TARGET_KIB, 1 above it, 2 could not run.
set -euo pipefail

BUILD=${1:-build}
IDLE=${IDLE:-5}
TOP=${TOP:-25}
KEYRING=${KEYRING:-file}
TARGET_KIB=${TARGET_KIB:-12288}
DAEMON="$BUILD/daemon/alumia-connectd"

die() { echo "idle_rss: $*" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || die "python3 is missing (Debian: apt-get install python3)"
[ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first: make build, or cmake --build $BUILD)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-idle-rss.XXXXXX")
HOME_DIR="$WORK/home"
mkdir -m 700 "$HOME_DIR"
DAEMON_PID=""
cleanup() {
  local rc=$?
  if [ -n "$DAEMON_PID" ]; then
    kill -s TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -s KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -eq 2 ]; then echo "idle_rss: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

ARGS=(--listen 127.0.0.1:0 --keyring "$KEYRING")
[ "${PUBLIC:-0}" = 1 ] && ARGS+=(--public-listen 127.0.0.1:0)
# shellcheck disable=SC2086
env ALUMIA_HOME="$HOME_DIR" ${DAEMON_ENV:-} "$DAEMON" "${ARGS[@]}" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 600); do
  [ -s "$HOME_DIR/daemon.json" ] && break
  kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; die "the daemon exited during startup"; }
  sleep 0.1
done
[ -s "$HOME_DIR/daemon.json" ] || die "the daemon did not write daemon.json within 60 s"

# Idle: no CPU tick for IDLE seconds in a row (60 s at most).
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
quiet=0 last=$(cpu_ticks "$DAEMON_PID")
for _ in $(seq 1 120); do
  sleep 0.5
  now=$(cpu_ticks "$DAEMON_PID")
  if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; fi
  last=$now
  [ $((quiet / 2)) -ge "$IDLE" ] && break
done
[ $((quiet / 2)) -ge "$IDLE" ] || echo "idle_rss: the daemon never stayed ${IDLE}s without CPU use; measuring anyway" >&2

echo "idle_rss: $("$DAEMON" --version), --keyring $KEYRING${PUBLIC:+, public listener}, empty store, idle ${IDLE}s"
echo "idle_rss: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
python3 - "$DAEMON_PID" "$TOP" "$TARGET_KIB" <<'PY'
import collections, os, re, sys
pid, top, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status'))
kib = lambda k: int(status[k].split()[0])
print(f"VmRSS     {kib('VmRSS'):6d} KiB  (target {target} KiB)")
for k in ('RssAnon', 'RssFile', 'RssShmem'):
    print(f"{k:9s} {kib(k):6d} KiB")
print(f"Threads   {int(status['Threads']):6d}")
rss, pss, dirty = collections.Counter(), collections.Counter(), collections.Counter()
head = re.compile(r'^[0-9a-f]+-[0-9a-f]+ ')
name = None
try:
    smaps = open(f'/proc/{pid}/smaps').readlines()
except PermissionError:  # the daemon is not dumpable: only root reads its smaps
    smaps = []
    print("\n(no per-mapping table: /proc/PID/smaps of the daemon is readable only by root)")
for line in smaps:
    if head.match(line):
        parts = line.split(None, 5)
        name = parts[5].strip() if len(parts) > 5 and parts[5].strip() else '[anon]'
        if name.startswith('[stack:'): name = '[stack]'
    elif line.startswith('Rss:'): rss[name] += int(line.split()[1])
    elif line.startswith('Pss:'): pss[name] += int(line.split()[1])
    elif line.startswith(('Private_Dirty:', 'Shared_Dirty:')): dirty[name] += int(line.split()[1])
if smaps: print(f"\n{'rss_kib':>8} {'pss_kib':>8} {'dirty':>6}  mapping (summed per file)")
for n, v in rss.most_common(top):
    if v: print(f"{v:8d} {pss[n]:8d} {dirty[n]:6d}  {os.path.basename(n) if n.startswith('/') else n}")
rest = sum(v for _, v in rss.most_common()[top:])
if rest: print(f"{rest:8d} {'':8} {'':6}  ({len(rss) - top} more mappings)")
print(f"RESULT {'PASS' if kib('VmRSS') <= target else 'FAIL'} idle VmRSS {kib('VmRSS')} KiB")
sys.exit(0 if kib('VmRSS') <= target else 1)
PY
