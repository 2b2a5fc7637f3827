#!/usr/bin/env bash
# On the GPU machine (after `source .device/gpu-env.sh` and run_parallel_bench.sh's build and
# model stages): where the time of a patch-parallel SDXL job goes.
#   bash bench/profile_parallel.sh OUT_DIR STAGE...
# Stages:
#   rankload:S      one GPU rendering the per-rank workloads of S px alone (no channel):
#                   batch 2 SxS (1 GPU job), batch 1 SxS (2-GPU CFG split), batch 1 S/2 x S
#                   (4-GPU strip, without the stale K/V of the other strip)
#   modes:S         parallel_bench on 4 GPUs at S px for each sync mode / warm-up count
# (The GPU machine has no Nsight Systems; ncu is there but too slow for a whole job.)
set -uo pipefail
out=${1:?OUT_DIR}; shift
mkdir -p "$out"
model=/tmp/sdxl-full
distri=./build-gpu/actors/distri
steps=${STEPS:-50}
job() { echo "$distri generate --model $model --variant fp16 -p cat -s $steps --seed 1 $*"; }
for stage in "$@"; do
  echo "=== $stage ($(date -u +%H:%M:%S))"
  case "$stage" in
    rankload:*)
      s=${stage#rankload:}
      for shape in "-H $s -W $s --guidance 5" "-H $s -W $s --guidance 1" "-H $((s / 2)) -W $s --guidance 1"; do
        echo "--- $shape"
        $(job $shape --repeat 3 -o /tmp/rl.png) 2>&1 | grep -E "denoise|peak"
      done
      ;;
    modes:*)
      s=${stage#modes:}
      for m in "--sync-mode corrected_async_gn" "--sync-mode no_sync" "--sync-mode stale_gn" "--warmup-steps 1"; do
        echo "--- $m"
        timeout 200 ./build-gpu/bench/parallel_bench --model $model --gpus 4 --sizes "$s" --steps $steps --repeats 2 \
          $m --out "$out/modes.jsonl" 2>&1 | grep -v "^I " | tail -3
      done
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
