#!/usr/bin/env bash
# Loads the example fleet and catalog into a running fleetpland through the CLI:
#   pool "h100": 4 nodes x 8 H100-80GB (one NVLink domain of 8 each)
#   pool "a100": 6 nodes x 4 A100-40GB (NVLink domains of 4)
#   pool "l4":   4 nodes x 1 L4
#   models: Llama-3.1-8B/70B, Llama-3.3-70B FP8, Qwen2.5-7B/72B, Qwen2.5-7B W8A8, Mixtral-8x7B,
#           DeepSeek-V2-Lite, Gemma-3-4B (vision-language)
# Usage: deploy/examples/load.sh [HOST:PORT]   (FLEETPLAN_CLI overrides the CLI path)
# Re-running is safe: things that already exist are reported and skipped.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
server=${1:-127.0.0.1:50051}
cli=${FLEETPLAN_CLI:-$here/../../build/clients/fleetplan}
extra=()
[ -n "${FLEETPLAN_TOKEN_FILE:-}" ] && extra+=(--token-file="$FLEETPLAN_TOKEN_FILE")

run() {
  out=$("$cli" "$@" --server="$server" "${extra[@]}" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] && ! grep -q ALREADY_EXISTS <<<"$out"; then
    echo "$out" >&2
    exit $rc
  fi
  echo "$out" | head -n 1
}

# Memory as cudaMemGetInfo reports it (H100: measured; A100-40GB and L4 from PyTorch's printed totals).
run gpu-types add --name=H100-80GB --memory-bytes=85017493504 --bf16-tflops=989 --nvlink-generation=4 --cost-per-hour=2.5
run gpu-types add --name=A100-40GB --memory-gib=39.59 --bf16-tflops=312 --nvlink-generation=3 --cost-per-hour=1.2
run gpu-types add --name=L4 --memory-gib=22.03 --bf16-tflops=121 --cost-per-hour=0.7

# The nodes, all at once (an upsert: re-importing the same file changes nothing).
run nodes import "$here/fleet.yaml"

for f in "$here"/models/*.json; do
  run models import "$f" --name="$(basename "$f" .json)"
done
