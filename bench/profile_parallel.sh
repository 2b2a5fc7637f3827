#!/usr/bin/env bash
# On the GPU machine (after `source .device/gpu-env.sh` and run_parallel_bench.sh's build and
# model stages): where the time of a patch-parallel SDXL job goes.
#   bash bench/profile_parallel.sh OUT_DIR STAGE...
# Stages:
#   rankload:S      one GPU rendering the per-rank workloads of S px alone (no channel):
#                   batch 2 SxS (1 GPU job), batch 1 SxS (2-GPU CFG split), batch 1 S/2 x S
#                   (4-GPU strip, without the stale K/V of the other strip)
#   modes:S         parallel_bench on 4 GPUs at S px for each sync mode / warm-up count
#   nsys:S:N        Nsight Systems kernel summary of `distri generate --gpus N` at S px
#                   (CUDA graphs traced per node), when nsys exists on the machine
set -uo pipefail
out=${1:?OUT_DIR}; shift
mkdir -p "$out"
model=/tmp/sdxl-full
distri=./build-gpu/actors/distri
steps=${STEPS:-50}
job() { echo "$distri generate --model $model -p cat -s $steps --seed 1 $*"; }
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
    nsys:*)
      rest=${stage#nsys:}; s=${rest%%:*}; n=${rest#*:}
      nsys=$(command -v nsys || ls /opt/nvidia/nsight-systems/*/bin/nsys /usr/local/cuda*/bin/nsys 2>/dev/null | head -1)
      if [ -z "$nsys" ]; then echo "no nsys on this machine"; ls /usr/local/cuda/bin | tr '\n' ' '; continue; fi
      rep="$out/prof-$s-$n"
      timeout 240 "$nsys" profile -o "$rep" --force-overwrite true --trace=cuda --cuda-graph-trace=node \
        $(job -H $s -W $s --guidance 5 --gpus $n --repeat 2 -o /tmp/prof.png) > "$out/nsys-$s-$n.log" 2>&1
      tail -3 "$out/nsys-$s-$n.log"
      "$nsys" stats --report cuda_gpu_kern_sum --format csv --output "$rep" "$rep.nsys-rep" > /dev/null 2>&1
      f=$(ls "$rep"*kern_sum*.csv 2>/dev/null | head -1)
      [ -n "$f" ] && head -45 "$f" | cut -c1-220
      rm -f "$rep.sqlite" "$rep.nsys-rep"
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
