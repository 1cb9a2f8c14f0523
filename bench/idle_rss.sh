#!/usr/bin/env bash
# bench/idle_rss.sh BUILD_DIR — the daemon's resident memory when idle, and what it is made of.
#
# Starts alumia-connectd on a fresh, empty store (a temp ALUMIA_HOME, --keyring file as the tests
# do), waits for daemon.json, then polls until the process has used no CPU for IDLE seconds (5),
# and prints VmRSS, RssAnon, RssFile, RssShmem, the thread count, and the mappings with the most
# resident memory (summed per file, from /proc/PID/smaps; anonymous mappings as [anon], thread
# stacks included). Issue 13 item 5: idle RSS <= 12 MB. See bench/README.md ("idle_rss").
#
# Then the floor, in the same run: bench/idle_floor.cpp compiled here (c++) and linked against exactly
# the shared libraries the daemon names (readelf: its DT_NEEDED; ldd checks that both load the same objects), a main() that only initialises
# OpenSSL and SQLite and sleeps; its VmRSS/RssAnon/RssFile/Pss/USS beside the daemon's, and the
# difference: what the daemon adds over the libraries it must link. Pss and USS (Private_Clean +
# Private_Dirty) come from /proc/PID/smaps_rollup; Pss shares each page among the processes mapping it,
# so it falls when other processes on the machine use the same libraries. FLOOR=0 skips it.
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
DAEMON="$BUILD/bin/alumia-connectd"

die() { echo "idle_rss: $*" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || die "python3 is missing (Debian: apt-get install python3)"
[ -x "$DAEMON" ] || die "no daemon at $DAEMON (build first: make build, or cmake --build $BUILD)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumia-idle-rss.XXXXXX")
HOME_DIR="$WORK/home"
mkdir -m 700 "$HOME_DIR"
DAEMON_PID=""
FLOOR_PID=""
cleanup() {
  local rc=$?
  if [ -n "$FLOOR_PID" ]; then kill -s TERM "$FLOOR_PID" 2>/dev/null || true; wait "$FLOOR_PID" 2>/dev/null || true; fi
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

# The floor: the daemon's DT_NEEDED libraries, no daemon.
if [ "${FLOOR:-1}" = 1 ]; then
  command -v readelf >/dev/null 2>&1 || die "readelf is missing (Debian: apt-get install binutils), or FLOOR=0"
  NEEDED=$(readelf -d "$DAEMON" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  LIBS=()
  for lib in $NEEDED; do LIBS+=("-l:$lib"); done
  "${CXX:-c++}" -std=c++17 -O2 -o "$WORK/bench_idle_floor" "$(dirname "${BASH_SOURCE[0]}")/idle_floor.cpp" \
    -Wl,--no-as-needed "${LIBS[@]}" 2>"$WORK/floor-build.log" || { cat "$WORK/floor-build.log" >&2; die "cannot build the floor"; }
  # The same shared objects loaded (ldd: transitively; the C++ driver also names libm, which libstdc++ loads anyway).
  loaded() { ldd "$1" | awk '/=>/ { print $1 }' | sort; }
  [ "$(loaded "$WORK/bench_idle_floor")" = "$(loaded "$DAEMON")" ] ||
    die "the floor does not load exactly the daemon's libraries: $(diff <(loaded "$DAEMON") <(loaded "$WORK/bench_idle_floor") | tr '\n' ' ')"
  "$WORK/bench_idle_floor" >"$WORK/floor.out" 2>&1 &
  FLOOR_PID=$!
  for _ in $(seq 1 100); do grep -q ready "$WORK/floor.out" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$WORK/floor.out" || { cat "$WORK/floor.out" >&2; die "the floor did not start"; }
  sleep 1
fi

echo "idle_rss: $("$DAEMON" --version), --keyring $KEYRING${PUBLIC:+, public listener}, empty store, idle ${IDLE}s"
echo "idle_rss: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
# How much of daemon/startup.order (bench/startup_order.sh) the binary still holds: the start-up code the
# link places side by side. A low share means the list is stale: regenerate it.
ORDER="$(dirname "${BASH_SOURCE[0]}")/../daemon/startup.order"
if [ -f "$ORDER" ] && command -v nm >/dev/null 2>&1; then
  echo "idle_rss: startup order: $(nm --defined-only "$DAEMON" 2>/dev/null | awk 'NR == FNR { have[$3] = 1; next } $1 in have' - "$ORDER" | wc -l) of $(wc -l <"$ORDER") names of daemon/startup.order are in the binary"
fi
python3 - "$DAEMON_PID" "$TOP" "$TARGET_KIB" "$FLOOR_PID" <<'PY'
import collections, os, re, sys
pid, top, target, floor = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status'))
kib = lambda k: int(status[k].split()[0])
print(f"VmRSS     {kib('VmRSS'):6d} KiB  (target {target} KiB)")
for k in ('RssAnon', 'RssFile', 'RssShmem'):
    print(f"{k:9s} {kib(k):6d} KiB")
print(f"Threads   {int(status['Threads']):6d}")
head = re.compile(r'^[0-9a-f]+-[0-9a-f]+ ')

def mappings(p):  # Rss, Pss and dirty KiB summed per file ([anon], [heap], [stack]: thread stacks too)
    rss, pss, dirty = collections.Counter(), collections.Counter(), collections.Counter()
    name = None
    try:
        smaps = open(f'/proc/{p}/smaps').readlines()
    except PermissionError:  # the daemon is not dumpable: only root reads its smaps
        return None
    for line in smaps:
        if head.match(line):
            parts = line.split(None, 5)
            name = parts[5].strip() if len(parts) > 5 and parts[5].strip() else '[anon]'
            if name.startswith('[stack:'): name = '[stack]'
            if name.endswith('/bench_idle_floor'): name = 'alumia-connectd'  # the floor's own binary, row for row
        elif line.startswith('Rss:'): rss[name] += int(line.split()[1])
        elif line.startswith('Pss:'): pss[name] += int(line.split()[1])
        elif line.startswith(('Private_Dirty:', 'Shared_Dirty:')): dirty[name] += int(line.split()[1])
    return rss, pss, dirty

base = lambda n: os.path.basename(n) if n.startswith('/') else n
got = mappings(pid)
if got is None:
    got = (collections.Counter(),) * 3
    print("\n(no per-mapping table: /proc/PID/smaps of the daemon is readable only by root)")
rss, pss, dirty = got
frss = collections.Counter({base(n): v for n, v in mappings(floor)[0].items()}) if floor else None
if rss:
    print(f"\n{'rss_kib':>8} {'pss_kib':>8} {'dirty':>6} " + (f"{'floor':>6} " if floor else '') +
          " mapping (summed per file)" + ("; floor: the library floor's rss_kib (its binary on the daemon's row)" if floor else ''))
for n, v in rss.most_common(top):
    if v: print(f"{v:8d} {pss[n]:8d} {dirty[n]:6d} " + (f"{frss[base(n)]:6d} " if floor else '') + f" {base(n)}")
rest = sum(v for _, v in rss.most_common()[top:])
if rest: print(f"{rest:8d} {'':8} {'':6}  ({len(rss) - top} more mappings)")

def figures(p):
    st = dict(l.split(':', 1) for l in open(f'/proc/{p}/status'))
    f = {k: int(st[k].split()[0]) for k in ('VmRSS', 'RssAnon', 'RssFile')}
    try:
        roll = dict(l.split(':', 1) for l in open(f'/proc/{p}/smaps_rollup').readlines()[1:])
        r = {k: int(v.split()[0]) for k, v in roll.items()}
        f.update(Pss=r['Pss'], Pss_Anon=r.get('Pss_Anon', 0), Pss_File=r.get('Pss_File', 0),
                 USS=r['Private_Clean'] + r['Private_Dirty'])
    except (PermissionError, FileNotFoundError):
        pass
    return f

cols = ('VmRSS', 'RssAnon', 'RssFile', 'Pss', 'Pss_Anon', 'Pss_File', 'USS')
d = figures(pid)
print("\nKiB                " + " ".join(f"{c:>8}" for c in cols) + "   (USS: Private_Clean + Private_Dirty)")
show = lambda label, f: print(f"{label:18s} " + " ".join(f"{f[c]:8d}" if c in f else f"{'-':>8}" for c in cols))
show("daemon", d)
if floor:
    fl = figures(floor)
    show("library floor", fl)
    show("daemon - floor", {c: d[c] - fl[c] for c in cols if c in d and c in fl})
    print(f"FLOOR VmRSS {fl['VmRSS']} KiB: the daemon's shared libraries alone (OpenSSL and SQLite initialised);"
          f" the daemon adds {d['VmRSS'] - fl['VmRSS']} KiB of RSS over them")
print(f"RESULT {'PASS' if kib('VmRSS') <= target else 'FAIL'} idle VmRSS {kib('VmRSS')} KiB")
sys.exit(0 if kib('VmRSS') <= target else 1)
PY
