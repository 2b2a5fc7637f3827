#!/usr/bin/env bash
# On the GPU machine (docs/gpu-build.md; `source .device/gpu-env.sh` first): patch parallelism
# on 1/2/4 GPUs, distri against distrifuser, same model folder, same run.
#   bash bench/run_parallel_bench.sh OUT_DIR STAGE...
# Stages, run in the order given:
#   build          configure build-gpu and build distri, parallel_bench, the NCCL channel tests and
#                  the runtime's binaries (distri-head/-node/-worker/-cluster: run_cluster_bench.sh)
#   nccl-test      the NCCL channel tests (ctest -L gpu|multigpu -R Nccl)
#   gpu-tests      fused_ops_gpu_test, unet_gpu_test, displaced_runner_gpu_test (2 and 4 GPUs;
#                  its peer-exchange cases apart) and the NCCL collective-memory case; prints a
#                  summary line per binary (logs in OUT_DIR)
#   convs:S1,S2    conv_strip_bench at these sizes on one GPU: a rank's 3x3 strip convolutions
#                  (halo rows, padding variants, cuDNN benchmark mode) against a quarter of one GPU's
#   model          the full-size random SDXL model in /tmp/sdxl-full (fp16, diffusers' layout)
#   smoke          tiny model: `distri generate --gpus N` (full_sync, and corrected_async_gn) and
#                  `distri launch --nproc N -- distri generate` (one process a GPU, NCCL) against
#                  1 GPU, N = each count of GPUS above 1
#   ours:S1,S2     parallel_bench at these sizes on 1,2,4 GPUs (GPUS overrides), with --exact
#   theirs:S1,S2   distrifuser (torchrun) at these sizes on the same GPU counts
#   ab:FLAG:S1,S2  parallel_bench on 4 GPUs (GPUS overrides) at these sizes, without and with
#                  FLAG (an option, e.g. --kv-in-place, or an environment variable NAME=VALUE,
#                  e.g. NCCL_CTA_POLICY=1), alternating, AB_ROUNDS (2) rounds: one machine
# Results: OUT_DIR/parallel.jsonl (JSON lines) and OUT_DIR/*.log.
set -uo pipefail
out=${1:?OUT_DIR}; shift
mkdir -p "$out"
gpus=${GPUS:-1,2,4}
model=/tmp/sdxl-full
steps=${STEPS:-50}
for stage in "$@"; do
  echo "=== $stage ($(date -u +%H:%M:%S))"
  case "$stage" in
    build)
      [ -f build-gpu/build.ninja ] || cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDISTRI_BUILD_CAPI=OFF > "$out/cmake.log" 2>&1
      cmake --build build-gpu -j "$(nproc)" --target distri parallel_bench channel_nccl_test channel_nccl_multigpu_test \
        distri-head distri-node distri-worker distri-cluster unet_bench fused_ops_gpu_test unet_gpu_test \
        displaced_runner_gpu_test conv_strip_bench \
        > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
      ;;
    nccl-test)
      ctest --test-dir build-gpu -L "gpu|multigpu" -R Nccl --output-on-failure --timeout 300 > "$out/nccl-test.log" 2>&1
      tail -15 "$out/nccl-test.log"
      ;;
    gpu-tests)
      # gtest BINARY LOG_NAME TIMEOUT [FILTER]: one test binary, a summary line.
      gtest() {
        local filter=()
        [ -n "${4:-}" ] && filter=("--gtest_filter=$4")
        timeout "$3" ./build-gpu/tests/"$1" "${filter[@]}" > "$out/$2.log" 2>&1
        echo "$2: rc=$? $(grep -E '^\[  (PASSED|FAILED)  \]' "$out/$2.log" | tr '\n' ' ')"
        grep -E "^\[  FAILED  \]" "$out/$2.log" | head -20
      }
      gtest fused_ops_gpu_test fused_ops_gpu_test 300
      gtest unet_gpu_test unet_gpu_test 300  # the one-GPU UNet and VAE (every dtype and layout) vs the CPU
      gtest displaced_runner_gpu_test displaced_runner_gpu_test 300 '-*PeerExchange*'
      # The experimental peer exchange apart, under a short timeout: a mistake in its protocol
      # would leave GPU streams waiting on a flag for ever.
      CUDA_MODULE_LOADING=EAGER gtest displaced_runner_gpu_test peer_exchange_gpu_test 120 '*PeerExchange*'
      timeout 300 ./build-gpu/tests/channel_nccl_multigpu_test --gtest_filter='*CollectiveMemory*' \
        > "$out/collective-memory.log" 2>&1
      echo "channel collective memory: rc=$? $(grep -cE 'in a symmetric window' "$out/collective-memory.log") windows"
      ;;
    ab:*)
      spec=${stage#ab:}; flag=${spec%%:*}; sizes=${spec#*:}
      for round in $(seq 1 "${AB_ROUNDS:-2}"); do
        for f in "" "$flag"; do
          # FLAG is a parallel_bench option, or NAME=VALUE: an environment variable (NCCL_...).
          envs=(); args=()
          if [[ "$f" =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs=("$f"); elif [ -n "$f" ]; then args=("$f"); fi
          timeout ${OURS_TIMEOUT:-580} env "${envs[@]}" ./build-gpu/bench/parallel_bench --model $model \
            --gpus "${GPUS:-4}" --sizes "$sizes" --steps "$steps" --repeats ${REPEATS:-2} "${args[@]}" ${OURS_ARGS:-} \
            2>&1 | grep -E "^[0-9]+ +[0-9]+ |failed|^strip conv" \
            | sed "s/^/[${f:-default}] /" | tee -a "$out/ab.log"
        done
      done
      ;;
    convs:*)
      ./build-gpu/bench/conv_strip_bench --sizes "${stage#convs:}" 2>&1 | tee "$out/convs.log"
      ;;
    model)
      [ -f $model/unet/config.json ] || ./build-gpu/actors/distri model init --arch sdxl --dtype fp16 $model
      ;;
    smoke)
      tiny=/tmp/sdxl-tiny
      [ -d $tiny ] || ./build-gpu/actors/distri model init --arch sdxl-tiny $tiny > /dev/null
      job=(--model $tiny -p "a cat" -H 256 -W 256 -s 6 --seed 3 --device cuda --dtype fp32 -q)
      ./build-gpu/actors/distri generate "${job[@]}" -o /tmp/one.png --save-latents /tmp/one.f32
      for n in ${gpus//,/ }; do
        [ "$n" = 1 ] && continue
        ./build-gpu/actors/distri generate "${job[@]}" --gpus $n --sync-mode full_sync -o /tmp/g$n.png --save-latents /tmp/g$n.f32
        ./build-gpu/actors/distri generate "${job[@]}" --gpus $n -o /tmp/a$n.png --save-latents /tmp/a$n.f32
        # One process per GPU (the path of several machines, and of issue 7's 8 GPUs when
        # launched per rank): NCCL between processes, rank r on cuda:r.
        rm -f /tmp/p$n.f32
        timeout 300 ./build-gpu/actors/distri launch --nproc $n -- ./build-gpu/actors/distri generate "${job[@]}" \
          --backend nccl --sync-mode full_sync -o /tmp/p$n.png --save-latents /tmp/p$n.f32 \
          || echo "smoke: distri launch --nproc $n failed"
        python3 - "$n" <<'PY'
import os, sys, numpy as np
n = sys.argv[1]
one = np.fromfile("/tmp/one.f32", dtype=np.float32)
names = {"g": "full_sync", "a": "corrected_async_gn", "p": "full_sync, one process a GPU (distri launch)"}
for kind, name in names.items():
    if not os.path.exists(f"/tmp/{kind}{n}.f32"):
        print(f"smoke: {n} GPUs {name}: no latents")
        continue
    x = np.fromfile(f"/tmp/{kind}{n}.f32", dtype=np.float32)
    print(f"smoke: {n} GPUs {name} fp32 latent rel err vs 1 GPU: {np.linalg.norm(x - one) / np.linalg.norm(one):.3g}")
PY
      done
      ;;
    ours:*)
      sizes=${stage#ours:}
      exact=(); [ "${EXACT:-1}" = 1 ] && exact=(--exact)
      timeout ${OURS_TIMEOUT:-580} ./build-gpu/bench/parallel_bench --model $model --gpus "$gpus" --sizes "$sizes" \
        --steps "$steps" --repeats ${REPEATS:-3} "${exact[@]}" ${OURS_ARGS:-} --out "$out/parallel.jsonl" 2>&1 \
        | grep -v "^I " | tee -a "$out/ours.log"
      ;;
    theirs:*)
      sizes=${stage#ours:}; sizes=${sizes#theirs:}
      if [ ! -d /tmp/site24 ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site24 .whl24/*.whl
      fi
      IFS=',' read -ra ns <<< "$gpus"; IFS=',' read -ra ss <<< "$sizes"
      for s in "${ss[@]}"; do
        for n in "${ns[@]}"; do
          PYTHONPATH=/tmp/site24 timeout ${THEIRS_TIMEOUT:-300} torchrun --nproc_per_node "$n" --master_port $((29500 + n)) \
            bench/distrifuser_bench.py --model $model --size "$s" --steps "$steps" --repeats ${REPEATS:-3} \
            > "$out/theirs-$s-$n.log" 2>&1
          grep '^{' "$out/theirs-$s-$n.log" | tee -a "$out/parallel.jsonl" || tail -5 "$out/theirs-$s-$n.log"
        done
      done
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
