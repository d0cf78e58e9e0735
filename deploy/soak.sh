#!/usr/bin/env bash
# A soak of a real fleetpland: builds it and the soak client (Release, in build-soak/), then runs
# tests/soak/soak_main.cc's mixed load for SECONDS (default 600) from CLIENTS loopback clients,
# sampling the server's RSS, open fds and threads every 2 s. Fails when RSS grows faster than
# MAX_RSS_SLOPE MiB/min after the first third, fds or threads grow by more than 16, any request
# fails in a way its operation does not allow, or the server does not stop cleanly. The report
# (samples, per-operation latency first and last tenth) is written to build-soak/soak.json.
# CI runs the 60-second version through ctest (deploy/test.sh).
#
#   ./deploy/soak.sh [SECONDS] [CLIENTS]      MAX_RSS_SLOPE=2 ./deploy/soak.sh 600
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(fleetplan_root)"
seconds=${1:-600}
clients=${2:-4}
fleetplan_install_packages deploy/packages-test.txt
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-soak -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLEETPLAN_WERROR=ON \
  -DFLEETPLAN_BUILD_BENCH=OFF "${launcher[@]}"
cmake --build build-soak -j "$(fleetplan_jobs)" --target fleetpland fleetplan_soak
./build-soak/tests/fleetplan_soak --fleetpland=build-soak/server/fleetpland --seconds="$seconds" \
  --clients="$clients" --max_rss_slope_mib_per_min="${MAX_RSS_SLOPE:-2}" \
  --report=build-soak/soak.json
