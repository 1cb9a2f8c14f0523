#!/usr/bin/env bash
# bench/startup_order.sh [BUILD_DIR] — regenerates daemon/startup.order: the daemon's functions that run
# from its start to idle, in two groups, which the daemon's link (daemon/CMakeLists.txt, lld
# --symbol-ordering-file) places side by side at the start of its text:
#   1. the functions that ran once the daemon was serving (requests, idle work), then
#   2. between the markers alumia_start_only_text_begin and alumia_start_only_text_end, the ones that ran
#      only while it started (settings, migrations, catalog, key unwrapping, ...), whose pages the daemon
#      gives back once started (daemon/start_only_text.hpp).
#
# Why: the kernel maps a file page together with the 64 KiB around it when it is in the page cache
# (fault-around), so the daemon's resident text is ~64 KiB for every 64 KiB window that start-up
# touches once. Spread over the binary, ~1.1 MB of executed pages made ~2.5 MB resident; side by side
# they make ~1.2 MB (bench/README.md, "idle_rss"; docs/ARCHITECTURE.md, "Memory at idle"), and the
# start-only group is not resident at idle at all.
#
# What runs: the built daemon under valgrind --tool=callgrind (--dump-instr=yes) on a fresh store, with
# both listeners, as bench/public starts it, its periodic work every 500 ms. Callgrind dumps what ran
# when the daemon enters release_start_only_text() (--dump-before: the whole start), then: an endpoint
# created, a signed ping and a wrongly signed one on the public listener, the endpoint, the lists of
# endpoints, events and jobs and the status read on the control listener, IDLE seconds (3) of nothing, and a second dump (what ran since the first; the shutdown is not included). Each executed address of the daemon's own binary is mapped to its function
# symbol (nm); a function in the second dump is a serving one, one only in the first is start-only. The
# mangled names, sorted in each group, go to daemon/startup.order (or OUT=FILE).
#
# A stale list costs only memory, never correctness: a name no longer in the binary is skipped, a new
# function is placed in the default order, and a start-only function that runs later is read back from
# the page cache. bench/idle_rss.sh prints how much of the list the binary still holds; rerun this when
# that falls, or after a large change of the start-up path.
# Knobs: IDLE=3, OUT=daemon/startup.order, KEEP=1. Exit status 0 written, 2 could not run.
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_HERE/lib.sh"
bench_init startup_order "${1:-build}"
need_daemon
need_tools valgrind callgrind_control nm python3 curl
OUT=${OUT:-$BENCH_HERE/../daemon/startup.order}
REAL_DAEMON=$(cd "$(dirname "$DAEMON")" && pwd)/$(basename "$DAEMON")

# The daemon under callgrind; exec keeps the pid, so the exit trap stops valgrind with it.
cat >"$WORK/callgrind-daemon" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$WORK/callgrind.out" \
  --dump-before='alumia::daemon::release_start_only_text*' "$REAL_DAEMON" "\$@"
EOF
chmod +x "$WORK/callgrind-daemon"
DAEMON="$WORK/callgrind-daemon"
DAEMON_ARGS=(--listen 127.0.0.1:0 --public-listen 127.0.0.1:0 --keyring file)
# The periodic work (the OAuth refresh worker, the retention sweep) runs every 500 ms rather than every
# minute, so that it runs in the serving part of the profile.
DAEMON_ENV="${DAEMON_ENV:-} ALUMIA_REFRESH_INTERVAL_MS=500 ALUMIA_RETENTION_SWEEP_INTERVAL_MS=500"
start_daemon "$WORK/daemon.log"
# wait_dump N: callgrind's Nth dump (file callgrind.out.N) of what ran since the one before.
wait_dump() {
  for _ in $(seq 1 300); do
    [ -s "$WORK/callgrind.out.$1" ] && return 0
    sleep 0.1
  done
  die "callgrind wrote no dump $1"
}
# The first is written as the daemon enters release_start_only_text(): the whole start.
wait_dump 1

create_endpoint main '{"provider":"github","label":"startup-order","rateLimit":{"perSecond":1000,"burst":1000}}'
EP=$(endpoint_id main)
BODY="$WORK/body.json"
push_body "$BODY" 1024
post() {  # post SIGNATURE: the HTTP status of a GitHub ping on the public listener
  curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H 'X-GitHub-Event: ping' \
    -H "X-GitHub-Delivery: order-$RANDOM" -H "X-Hub-Signature-256: $1" --data-binary @"$BODY" \
    "$PUBLIC_URL/api/v1/connectors/webhooks/github/$EP"
}
[ "$(post "$(endpoint_signature main "$BODY")")" = 200 ] || die "the signed ping was not accepted"
[ "$(post "sha256=$(printf '0%.0s' $(seq 1 64))")" = 401 ] || die "the wrongly signed ping was not refused"
# The admin reads a serving daemon answers first: the endpoint and its counts, the lists, the status.
for path in "/api/v1/webhook-endpoints/$EP" /api/v1/webhook-endpoints /api/v1/connector-events /api/v1/jobs \
  /api/v1/status; do
  api GET "$path" >/dev/null
done
sleep "${IDLE:-3}"
callgrind_control -d "$DAEMON_PID" >"$WORK/dump.log" 2>&1 || { cat "$WORK/dump.log" >&2; die "callgrind_control -d failed"; }
wait_dump 2

python3 - "$WORK/callgrind.out.1" "$WORK/callgrind.out.2" "$REAL_DAEMON" "$OUT" <<'PY'
import bisect, os, re, subprocess, sys
start_dump, serving_dump, binary, out = sys.argv[1:5]
syms = []  # (start, size, mangled name) of the binary's functions
for line in subprocess.run(['nm', '-S', '--defined-only', binary], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in 'tTwWi':
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]
own = os.path.realpath(binary)
size = {s[2]: s[1] for s in syms}

def executed(dump):  # the names of the binary's functions that ran in a dump
    objects, current, last, call_line = {}, None, 0, False
    names = set()
    for line in open(dump):
        m = re.match(r'(c?ob)=\((\d+)\)\s*(.*)', line.strip())
        if m:  # ob=(N) name defines a compressed object name; only ob= switches the current one
            if m.group(3): objects[m.group(2)] = os.path.realpath(m.group(3)) if m.group(3).startswith('/') else m.group(3)
            if m.group(1) == 'ob': current = objects.get(m.group(2))
            continue
        if line.startswith('calls='):
            call_line = True  # the next cost line is the call's inclusive cost, at the call instruction
            continue
        if not line or line[0] not in '0123456789+-*':
            continue
        tok = line.split()[0]
        if tok.startswith('0x'): last = int(tok, 16)
        elif tok[0] in '+-': last += int(tok, 0)
        elif tok != '*': continue
        if call_line:
            call_line = False
            continue
        if current != own:
            continue
        i = bisect.bisect_right(starts, last) - 1
        if i >= 0 and last < syms[i][0] + max(syms[i][1], 1):
            names.add(syms[i][2])
    return names

markers = {'alumia_start_only_text_begin', 'alumia_start_only_text_end'}
serving = executed(serving_dump) - markers
start_only = executed(start_dump) - serving - markers
with open(out, 'w') as f:
    f.write(''.join(n + '\n' for n in sorted(serving)))
    f.write('alumia_start_only_text_begin\n')
    f.write(''.join(n + '\n' for n in sorted(start_only)))
    f.write('alumia_start_only_text_end\n')
kib = lambda names: sum(size[n] for n in names) // 1024
print(f"startup_order: {len(serving)} serving functions ({kib(serving)} KiB of text), then {len(start_only)} "
      f"start-only ones ({kib(start_only)} KiB), written to {out}")
PY
