#!/usr/bin/env bash
# Installs what is missing, builds fleetplan (Release, build/), and runs fleetpland in the
# foreground on 127.0.0.1:50051 with the SQLite database ./fleetplan.db, Prometheus metrics on
# 127.0.0.1:9464 and the web console (and the HTTP/JSON API) on http://127.0.0.1:8080/. Stop it
# with Ctrl-C.
#
# Environment overrides: FLEETPLAN_LISTEN, FLEETPLAN_DB, FLEETPLAN_METRICS_LISTEN,
# FLEETPLAN_HTTP_LISTEN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(fleetplan_root)"

listen=${FLEETPLAN_LISTEN:-127.0.0.1:50051}
db=${FLEETPLAN_DB:-./fleetplan.db}
metrics=${FLEETPLAN_METRICS_LISTEN:-127.0.0.1:9464}
http=${FLEETPLAN_HTTP_LISTEN:-127.0.0.1:8080}

fleetplan_install_packages

echo "== Release build in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLEETPLAN_BUILD_TESTS=OFF \
  -DFLEETPLAN_BUILD_BENCH=OFF
cmake --build build -j "$(fleetplan_jobs)" --target fleetpland fleetplan

echo "== Starting fleetpland (gRPC $listen, metrics http://$metrics/metrics, database $db)"
./build/server/fleetpland --listen="$listen" --db="$db" --metrics_listen="$metrics" --http_listen="$http" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' INT TERM
if ./build/clients/fleetplan health --server="$listen" --wait --timeout=20; then
  ./build/clients/fleetplan version --server="$listen"
  echo
  echo "== Loading the example fleet and catalog (deploy/examples/)"
  FLEETPLAN_CLI=./build/clients/fleetplan ./deploy/examples/load.sh "$listen"
  echo
  echo "== Fleet headroom by pool"
  ./build/clients/fleetplan headroom --server="$listen" --by=pool
  echo
  echo "== Llama-3.1-70B on the H100 pool at tp=4 (estimate through the server)"
  ./build/clients/fleetplan estimate --server="$listen" --catalog-model=llama-3.1-70b-instruct \
    --gpu=H100-80GB --tp=4 --max-model-len=32768 --gpu-memory-utilization=0.9 || true
  echo
  echo "== A sample plan for deploy/examples/deployments.json (nothing is committed)"
  ./build/clients/fleetplan plan --server="$listen" --deployment=deploy/examples/deployments.json || true
  echo
  echo "fleetpland is serving on $listen (metrics: http://$metrics/metrics)."
  echo "Web console: http://$http/   (HTTP/JSON API: http://$http/api/v1/<Service>/<Method>)"
  echo "Try:"
  echo "  ./build/clients/fleetplan nodes list --server=$listen"
  echo "  ./build/clients/fleetplan models list --server=$listen"
  echo "  ./build/clients/fleetplan headroom --server=$listen --by=gpu-type --watch"
  echo "  ./build/clients/fleetplan plan --server=$listen --deployment=deploy/examples/deployments.json --commit"
  echo "Stop it with Ctrl-C (or: kill -TERM $server)."
else
  echo "fleetpland did not become healthy" >&2
  kill -TERM $server 2>/dev/null || true
fi
wait $server
