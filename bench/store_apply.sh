#!/usr/bin/env bash
# bench/store_apply.sh [BUILD_DIR] [N] — the SQLite writer's instructions per stored delivery.
#
# Why: the writer thread (GroupWriter) is about a third of the daemon's CPU per delivery at bench/public
# (c)@8, where CPU is the limit. Instruction counts are the same on a busy machine as on a quiet one, so
# a change to the writer is measured here, not by a throughput run.
#
# What runs: bench_store_apply N (20,000) under valgrind --tool=callgrind, collecting only inside
# GroupWriter::run_batch (each batch's BEGIN, operations, counters, COMMIT and the callbacks after it,
# on the writer thread; not its queue wait, not the checkpoint thread, not the intake log). Prints the
# collected instructions divided by N, the batches, and the functions that cost most (self, then
# inclusive). Knobs: KEEP=1 keeps the callgrind output, TOP=25 lines of each list.
# Exit status 0 measured, 2 could not run.
set -euo pipefail

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_HERE/lib.sh"
bench_init store_apply "${1:-build}"
N=${2:-20000}
TOP=${TOP:-25}
DRIVER="$BUILD/bench/bench_store_apply"
[ -x "$DRIVER" ] || die "no driver at $DRIVER (build the bench_store_apply target; ALUMIA_BUILD_BENCH=ON)"
need_tools valgrind callgrind_annotate

OUT="$WORK/callgrind.out"
TMPDIR="$WORK" valgrind --tool=callgrind --collect-atstart=no \
  --toggle-collect='alumia::sqlite::GroupWriter::run_batch(*' \
  --callgrind-out-file="$OUT" "$DRIVER" "$N" >"$WORK/driver.out" 2>"$WORK/valgrind.err" ||
  { cat "$WORK/driver.out" "$WORK/valgrind.err" >&2; die "the driver failed"; }
transactions=$(awk '/^transactions/ {print $2}' "$WORK/driver.out")
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$OUT")
[ -n "$total" ] || die "no totals in $OUT"
echo "store_apply: $N deliveries in $transactions write transactions"
awk -v t="$total" -v n="$N" 'BEGIN {printf "store_apply: writer %.0f instructions, %.0f per delivery\n", t, t / n}'
echo "--- self"
callgrind_annotate --inclusive=no "$OUT" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n "3,$((TOP + 2))p"
echo "--- inclusive"
callgrind_annotate --inclusive=yes "$OUT" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n "3,$((TOP + 2))p"
