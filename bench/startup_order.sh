#!/usr/bin/env bash
# bench/startup_order.sh [BUILD_DIR] — regenerates daemon/startup.order: the daemon's functions that run
# from its start to idle, which the daemon's link (daemon/CMakeLists.txt, lld --symbol-ordering-file)
# places side by side at the start of its text.
#
# Why: the kernel maps a file page together with the 64 KiB around it when it is in the page cache
# (fault-around), so the daemon's resident text is ~64 KiB for every 64 KiB window that start-up
# touches once. Spread over the binary, ~1.1 MB of executed pages made ~2.5 MB resident; side by side
# they make ~1.2 MB (bench/README.md, "idle_rss"; docs/ARCHITECTURE.md, "Memory at idle").
#
# What runs: the built daemon under valgrind --tool=callgrind (--dump-instr=yes) on a fresh store, with
# both listeners, as bench/public starts it: an endpoint created, a signed ping and a wrongly signed one
# on the public listener, GET /api/v1/status; then IDLE seconds (3) of nothing, and callgrind dumps what
# ran so far (callgrind_control -d; the shutdown is not included). Each executed address of the
# daemon's own binary is mapped to its function symbol (nm); the mangled names, sorted, go to
# daemon/startup.order (or OUT=FILE).
#
# A stale list costs only memory, never correctness: a name no longer in the binary is skipped, a new
# start-up function is placed in the default order. bench/idle_rss.sh prints how much of the list the
# binary still holds; rerun this when that falls, or after a large change of the start-up path.
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
exec valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$WORK/callgrind.out" "$REAL_DAEMON" "\$@"
EOF
chmod +x "$WORK/callgrind-daemon"
DAEMON="$WORK/callgrind-daemon"
DAEMON_ARGS=(--listen 127.0.0.1:0 --public-listen 127.0.0.1:0 --keyring file)
start_daemon "$WORK/daemon.log"

create_endpoint main '{"provider":"github","label":"startup-order"}'
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
api GET /api/v1/status >/dev/null
sleep "${IDLE:-3}"
callgrind_control -d "$DAEMON_PID" >"$WORK/dump.log" 2>&1 || { cat "$WORK/dump.log" >&2; die "callgrind_control -d failed"; }
DUMP=""
for _ in $(seq 1 300); do
  DUMP=$(find "$WORK" -maxdepth 1 -name 'callgrind.out.*' | head -1)
  [ -n "$DUMP" ] && [ -s "$DUMP" ] && break
  sleep 0.1
done
[ -n "$DUMP" ] || die "callgrind wrote no dump"

python3 - "$DUMP" "$REAL_DAEMON" "$OUT" <<'PY'
import bisect, os, re, subprocess, sys
dump, binary, out = sys.argv[1:4]
syms = []  # (start, size, mangled name) of the binary's functions
for line in subprocess.run(['nm', '-S', '--defined-only', binary], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in 'tTwWi':
        syms.append((int(f[0], 16), int(f[1], 16), f[3]))
syms.sort()
starts = [s[0] for s in syms]
objects, current, last, call_line = {}, None, 0, False
names, executed = set(), 0
own = os.path.realpath(binary)
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
    if i >= 0 and last < syms[i][0] + max(syms[i][1], 1) and syms[i][2] not in names:
        names.add(syms[i][2])
        executed += syms[i][1]
with open(out, 'w') as f:
    f.write(''.join(n + '\n' for n in sorted(names)))
print(f"startup_order: {len(names)} functions ({executed} bytes of the binary's text) written to {out}")
PY
