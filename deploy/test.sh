#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test three ways; exits non-zero on any
# failure. This is what CI runs (.ci/run).
#   1. Debug (gcc, warnings as errors): every test, including a 60-second soak of a real server
#      and the web console in Debian's headless Chromium (FLEETPLAN_SKIP_BROWSER_TEST=1 skips it,
#      and says so).
#   2. ASan + UBSan (clang): every test again, and each libFuzzer target (tests/fuzz) for
#      FLEETPLAN_FUZZ_SECONDS on its checked-in corpus.
#   3. ThreadSanitizer (gcc): the tests labelled "tsan", of shared state TSan can see whole (store,
#      caches, registries, admission, metrics; tests/tsan.supp says why the gRPC layer is not).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(fleetplan_root)"
start=$(date +%s)
stage() { echo "== $* ($(( $(date +%s) - start )) s)"; }

fleetplan_install_packages deploy/packages-test.txt
fleetplan_install_browser_test
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

stage "Debug build (-Werror) in build-debug/"
cmake -S . -B build-debug -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLEETPLAN_WERROR=ON "${launcher[@]}"
cmake --build build-debug -j "$(fleetplan_jobs)"
stage "Tests (Debug)"
ctest --test-dir build-debug --output-on-failure -j "$(fleetplan_jobs)" --timeout 600

stage "ASan+UBSan build (clang, with the fuzz targets) in build-sanitize/"
cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLEETPLAN_WERROR=ON \
  -DCMAKE_CXX_COMPILER=clang++ -DFLEETPLAN_SANITIZE=ON -DFLEETPLAN_FUZZ=ON \
  -DFLEETPLAN_BUILD_BENCH=OFF "${launcher[@]}"
cmake --build build-sanitize -j "$(fleetplan_jobs)"
stage "Tests and short fuzz runs (ASan+UBSan)"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-sanitize --output-on-failure -j "$(fleetplan_jobs)" --timeout 900

stage "ThreadSanitizer build in build-tsan/"
tsan_targets=(shared_state_test storage_concurrency_test storage_stress storage_test postgres_test_server)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLEETPLAN_WERROR=ON \
  -DFLEETPLAN_TSAN=ON -DFLEETPLAN_BUILD_BENCH=OFF "${launcher[@]}"
cmake --build build-tsan -j "$(fleetplan_jobs)" --target "${tsan_targets[@]}"
stage "Tests (ThreadSanitizer)"
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp" \
  ctest --test-dir build-tsan --output-on-failure -j "$(fleetplan_jobs)" --timeout 900 -L tsan

stage "deploy/test.sh passed"
