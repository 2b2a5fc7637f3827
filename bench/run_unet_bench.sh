#!/usr/bin/env bash
# On the GPU machine (see docs/gpu-build.md): builds unet_bench, makes the random full-size SDXL
# UNet once (in diffusers' layout, fp16, through bench/unet_diffusers.py so that both sides
# load the very same file), then runs diffusers' baseline and distri's variants in one go.
#   bash bench/run_unet_bench.sh OUT_DIR [HEIGHT WIDTH STEPS]
set -euo pipefail
out=${1:?OUT_DIR}; h=${2:-1024}; w=${3:-1024}; steps=${4:-50}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
[ -f build-gpu/build.ninja ] || cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build-gpu -j "$(nproc)" --target unet_bench distri | grep -E "error|FAILED" || true
# MODEL=DIR: an existing model folder with unet/diffusion_pytorch_model.fp16.safetensors (e.g.
# run_parallel_bench.sh's /tmp/sdxl-full) instead of making one here.
model=${MODEL:-/tmp/distri-bench-sdxl}
if [ ! -f $model/unet/diffusion_pytorch_model.fp16.safetensors ]; then
  ./build-gpu/actors/distri model init --arch sdxl --config-only $model
  python3 bench/unet_diffusers.py --model $model --make-random $model/unet/config.json --steps 2 --repeats 1 > /dev/null
fi
common=(--model $model --height "$h" --width "$w" --steps "$steps")
if [ -z "${SKIP_BASELINE:-}" ]; then
  python3 bench/unet_diffusers.py "${common[@]}" --repeats 2 2>/dev/null | tee -a "$out/bench.jsonl"
  python3 bench/unet_diffusers.py "${common[@]}" --repeats 2 --graph 2>/dev/null | tee -a "$out/bench.jsonl"
fi
IFS=';' read -ra variants <<< "${VARIANTS:---graph}"
for v in "${variants[@]}"; do
  # shellcheck disable=SC2086
  ./build-gpu/bench/unet_bench "${common[@]}" --repeats 2 $v | tee -a "$out/bench.jsonl"
done
if [ -n "${PROFILE:-}" ]; then
  ./build-gpu/bench/unet_bench --model $model --height "$h" --width "$w" --steps 5 --profile $PROFILE | tee "$out/profile.txt" | head -45
fi
