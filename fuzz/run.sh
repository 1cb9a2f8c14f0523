#!/usr/bin/env bash
# Runs each fuzz target (fuzz/CMakeLists.txt) for FUZZ_SECONDS (default 10) and prints, per target, the
# executions, the corpus it grew to and its findings. `make fuzz` builds them first; by hand:
#   fuzz/run.sh [BUILD_DIR]            every target (BUILD_DIR: build-fuzz)
#   FUZZ_TARGETS="fuzz_form fuzz_base_url" FUZZ_SECONDS=300 fuzz/run.sh
# Each target starts from its committed seeds (fuzz/corpus/<target>/, read only) and the working corpus
# it grew in earlier runs (BUILD_DIR/corpus/<target>/, where new inputs go). A finding is kept as
# BUILD_DIR/artifacts/<target>/crash-*, leak-*, timeout-* or oom-*; reproduce it with
#   BUILD_DIR/fuzz/<target> BUILD_DIR/artifacts/<target>/crash-…
# Exit status 1 when any target found something. FUZZ_JOBS (default 1) runs that many targets at once.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${FUZZ_SECONDS:-10}
jobs=${FUZZ_JOBS:-1}
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for dir in fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

run_one() {
  local t=$1 bin="$build/fuzz/$1"
  [ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz builds it)" >&2; return 2; }
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t" "$build/logs"
  # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb: so is 2 GiB.
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -use_value_profile=1 \
    -artifact_prefix="$build/artifacts/$t/" "$build/corpus/$t" "fuzz/corpus/$t" >"$build/logs/$t.log" 2>&1 || true
}

export -f run_one
export build seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}

status=0
printf '%-24s %12s %8s %10s  %s\n' target executions corpus exec/s findings
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$build/corpus/$t" -type f | wc -l)
  findings=$(find "$build/artifacts/$t" -type f | wc -l)
  note=""
  if [ "$findings" -gt 0 ]; then
    status=1
    note=" ($(ls "$build/artifacts/$t" | tr '\n' ' ')see $log)"
  elif [ -z "$execs" ]; then
    status=1
    note=" (no final stats: see $log)"
  fi
  printf '%-24s %12s %8s %10s  %s%s\n' "$t" "${execs:-?}" "$corpus" "${rate:-?}" "$findings" "$note"
done
exit $status
