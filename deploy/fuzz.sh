#!/usr/bin/env bash
# Long fuzzing runs: builds the libFuzzer targets (clang, ASan + UBSan, optimized) in build-fuzz-opt/
# and runs each for SECONDS (default 600), two at a time, on its checked-in corpus plus what earlier
# runs found (build-fuzz-opt/corpus/<target>). Prints each target's executions and fails on the
# first crash, leaving the reproducer (crash-*) in build-fuzz-opt/. CI runs the short version
# through ctest (deploy/test.sh); this is for the long runs the hardening issue asks for.
#
#   ./deploy/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(fleetplan_root)"
seconds=${1:-600}
shift || true
fleetplan_install_packages deploy/packages-test.txt
cmake -S . -B build-fuzz-opt -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLEETPLAN_WERROR=ON \
  -DCMAKE_CXX_COMPILER=clang++ -DFLEETPLAN_SANITIZE=ON -DFLEETPLAN_FUZZ=ON \
  -DFLEETPLAN_BUILD_TESTS=ON -DFLEETPLAN_BUILD_BENCH=OFF
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config_parser_fuzz vllm_command_fuzz deployments_fuzz service_fuzz inventory_fuzz dcgm_fuzz vllm_log_fuzz gguf_fuzz)
cmake --build build-fuzz-opt -j "$(fleetplan_jobs)" --target "${targets[@]}"
seeds() {
  case "$1" in
    config_parser_fuzz) echo tests/data/calibration/models deploy/examples/models ;;
    vllm_log_fuzz) echo tests/data/vllm_logs ;;
    *) echo "tests/fuzz/corpus/${1%_fuzz}" ;;
  esac
}
run() {
  local t=$1 dir=build-fuzz-opt/corpus/$1
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  (cd build-fuzz-opt && ASAN_OPTIONS=detect_leaks=1 ./tests/fuzz/"$t" -max_total_time="$seconds" \
     -timeout=20 -rss_limit_mb=3072 -print_final_stats=1 "corpus/$t" $(for s in $(seeds "$t"); do echo "../$s"; done) \
     > "$t.log" 2>&1) || { echo "$t: FAILED (see build-fuzz-opt/$t.log)"; return 1; }
  echo "$t: $(grep -h 'stat::number_of_executed_units' build-fuzz-opt/"$t".log | awk '{print $2}') executions, 0 crashes"
}
status=0
pids=()
for t in "${targets[@]}"; do
  run "$t" & pids+=($!)
  if [ ${#pids[@]} -ge "$(fleetplan_jobs)" ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
