#!/usr/bin/env bash
# Installs what is missing, builds (Debug, warnings as errors) and runs every test; then builds
# and runs the tests again with AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero on any
# failure. This is what CI runs (.ci/run).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(fleetplan_root)"
start=$(date +%s)

fleetplan_install_packages deploy/packages-test.txt

echo "== Debug build (-Werror) in build-debug/"
cmake -S . -B build-debug -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLEETPLAN_WERROR=ON
cmake --build build-debug -j "$(fleetplan_jobs)"
echo "== Tests (Debug)"
ctest --test-dir build-debug --output-on-failure -j "$(fleetplan_jobs)" --timeout 600

echo "== ASan+UBSan build in build-asan/"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLEETPLAN_WERROR=ON \
  -DFLEETPLAN_SANITIZE=ON -DFLEETPLAN_BUILD_BENCH=OFF
cmake --build build-asan -j "$(fleetplan_jobs)"
echo "== Tests (ASan+UBSan)"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$(fleetplan_jobs)" --timeout 900

echo "== deploy/test.sh passed in $(( $(date +%s) - start )) s"
