#!/usr/bin/env bash
# The actor runtime on the GPU machine (docs/gpu-build.md; `source .device/gpu-env.sh` first):
# standalone `distri generate` against the same job through `distri-cluster` (head, node agent,
# one actor per GPU), latency and throughput, same model folder, same run.
#   bash bench/run_cluster_bench.sh OUT_DIR STAGE...
# Stages, run in the order given:
#   build                  build-gpu: distri + the runtime binaries (run_parallel_bench.sh's build)
#   model                  the full-size random SDXL model in /tmp/sdxl-full (run_parallel_bench.sh's)
#   standalone:S1,S2:N1,N2 `distri generate --gpus N --repeat REPEATS+1 --json` per size and count
#   cluster:S1,S2:N1,N2    the cluster up (if not yet), then REPEATS+1 sequential `distri-cluster
#                          submit --gpus N --json` per size and count (N = 0: the head's auto)
#   throughput:S:JOBS      JOBS jobs at once through `distri-cluster batch` (--gpus 1, then auto),
#                          after a warm-up batch of one job per actor; then the cluster goes down
#                          and the baseline runs: one `distri generate --gpus 1 --repeat K+1` per
#                          GPU (CUDA_VISIBLE_DEVICES=i), all at once, K = JOBS / GPUs
#   down                   bring the cluster down now (it also goes down on exit, always)
#   summary                print the table of OUT_DIR/cluster.jsonl (also printed on exit)
# The first render of each size and gang captures CUDA graphs: reported apart (first_s).
# Standalone runs and the throughput baseline bring the cluster down first (no GPU sharing).
# Env: STEPS (50), REPEATS (3 warm renders), BUDGET_S (530: every command is cut to the time
# left, leaving room for `down` under the device's 600 s a command), BUILD_DIR, MODEL, PROMPT,
# LOG_LEVEL, KEEP_PNGS (1; 0 deletes the images on exit: 2048 px noise PNGs are ~12 MB each),
# PACK (0; 1 packs OUT_DIR into OUT_DIR.tgz on exit: the device tool returns at most 8 files),
# SUBMIT_TIMEOUT (per submit; default by size).
# DEVICE=cpu runs the same on CPU actors for testing: build/ (BUILD_DIR), the sdxl-tiny model in
# /tmp/sdxl-tiny, CPU_ACTORS (2) actors standing for GPUs, `--device cpu --ranks N` for the
# standalone runs, one OpenMP thread per process; e.g.
#   DEVICE=cpu STEPS=4 REPEATS=2 bash bench/run_cluster_bench.sh /tmp/cb build model \
#     standalone:64:1,2 cluster:64:1,2 throughput:64:4
# Results: OUT_DIR/cluster.jsonl (JSON lines; kinds standalone_run, standalone, cluster,
# throughput, cluster_up) and OUT_DIR/*.log / *.out; bench/cluster_bench.py summarises.
set -uo pipefail
out=${1:?OUT_DIR}; shift
mkdir -p "$out" && out=$(cd "$out" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
device=${DEVICE:-cuda}
steps=${STEPS:-50}
repeats=${REPEATS:-3}
budget=${BUDGET_S:-530}
prompt=${PROMPT:-"a lighthouse on a cliff at dawn, oil painting"}
if [ "$device" = cpu ]; then
  build=${BUILD_DIR:-build}; model=${MODEL:-/tmp/sdxl-tiny}; nslots=${CPU_ACTORS:-2}
  export OMP_NUM_THREADS=1  # actors and baseline processes alike: one core each
else
  build=${BUILD_DIR:-build-gpu}; model=${MODEL:-/tmp/sdxl-full}
  nslots=$(nvidia-smi -L 2>/dev/null | wc -l)
fi
build=$(cd "$build" 2>/dev/null && pwd || echo "$root/$build")
distri=$build/actors/distri
cl=$build/bin/distri-cluster
jsonl=$out/cluster.jsonl
report="python3 $root/bench/cluster_bench.py"
t0=$(date +%s)

# bounded CAP CMD...: runs CMD with a timeout of CAP seconds or the budget left, if less.
bounded() {
  local cap=$1; shift
  local left=$((budget - ($(date +%s) - t0)))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 5 ]; then
    echo "out of the ${budget} s budget: skipped ${*:0:3}..." >&2
    return 124
  fi
  timeout -k 10 "$cap" "$@"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# --- the cluster --------------------------------------------------------------------------
cfg=$out/cluster.yaml
state=$out/cluster-state
cluster_is_up=0
write_config() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  {
    echo "# written by bench/run_cluster_bench.sh (like configs/4gpu.yaml / local-cpu.yaml)"
    echo "cluster_name: bench"
    echo "model: $model"
    echo "state_dir: $state"
    echo "bin_dir: $build/bin"
    echo "log_level: ${LOG_LEVEL:-info}"
    echo "head:"
    echo "  host: 127.0.0.1"
    echo "  port: $port"
    echo "  metrics_port: -1"
    echo "nodes:"
    echo "  - name: local"
    echo "    host: localhost"
    if [ "$device" = cpu ]; then
      echo "    gpus: none"
      echo "    cpu_actors: $nslots"
    else
      echo "    gpus: all"
    fi
  } > "$cfg"
}
# Processes of this cluster still running (every one has the state folder on its command line).
leftovers() {
  local p c
  for p in /proc/[0-9]*; do
    c=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
    [[ $c == *"$state/"* ]] && [ "${p#/proc/}" != $$ ] && echo "${p#/proc/}"
  done
}
cluster_down() {
  [ -f "$state/cluster.state" ] || { cluster_is_up=0; return 0; }
  echo "--- distri-cluster down"
  timeout -k 5 30 "$cl" down "$cfg" >> "$out/cluster-updown.log" 2>&1 || echo "distri-cluster down failed (rc $?)"
  local left
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    left=$(leftovers)
    [ -z "$left" ] && break
    sleep 1
  done
  if [ -n "$left" ]; then
    echo "left behind after down, killing: $left"
    # shellcheck disable=SC2086  # one pid a word
    kill -9 $left 2>/dev/null
  fi
  cluster_is_up=0
}
cluster_up() {
  [ "$cluster_is_up" = 1 ] && return 0
  [ -x "$cl" ] || { echo "no $cl (run the build stage)"; return 1; }
  cluster_down
  write_config
  local start; start=$(now_ms)
  bounded 60 "$cl" up "$cfg" >> "$out/cluster-updown.log" 2>&1 || { echo "distri-cluster up failed:"; tail -5 "$out/cluster-updown.log"; cluster_down; return 1; }
  cluster_is_up=1
  local ready=0 st
  local deadline=$(( $(date +%s) + ${READY_TIMEOUT:-240} ))
  while [ "$(date +%s)" -lt "$deadline" ] && [ $((budget - ($(date +%s) - t0))) -ge 5 ]; do
    st=$(bounded 15 "$cl" status -c "$cfg" 2>&1)
    ready=$(grep -c " idle \| busy " <<< "$st")
    [ "$ready" -ge "$nslots" ] && break
    sleep 1
  done
  echo "$st" > "$out/cluster-status.txt"
  local ready_s; ready_s=$(python3 -c "print(round(($(now_ms) - $start) / 1000, 2))")
  echo "{\"kind\": \"cluster_up\", \"actors\": $ready, \"expected\": $nslots, \"ready_s\": $ready_s}" | tee -a "$jsonl"
  if [ "$ready" -lt "$nslots" ]; then
    echo "only $ready of $nslots actors ready after ${READY_TIMEOUT:-240} s; logs:"
    tail -n 20 "$state/logs/head.log" "$state/logs/node-local.log" 2>/dev/null
    cluster_down
    return 1
  fi
}
on_exit() {
  trap - EXIT INT TERM
  cluster_down
  [ "${KEEP_PNGS:-1}" = 1 ] || find "$out" -name '*.png' -delete
  $report summary "$jsonl"
  # The device tool returns at most 8 files from $OUT: PACK=1 packs everything (results, the
  # script's logs and the cluster's own head/node/actor logs) into OUT_DIR.tgz beside OUT_DIR.
  if [ "${PACK:-0}" = 1 ]; then
    tar czf "${out%/}.tgz" --exclude='*.png' --exclude='head.db*' --exclude='keys' -C "$(dirname "$out")" "$(basename "$out")" 2>/dev/null \
      && echo "packed $(du -h "${out%/}.tgz" | cut -f1) into ${out%/}.tgz"
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- stages -------------------------------------------------------------------------------
gen_device_args() {  # gen_device_args N: how `distri generate` gets N GPUs (or N CPU ranks)
  if [ "$device" = cpu ]; then echo "--device cpu --ranks $1"; else echo "--gpus $1"; fi
}
for stage in "$@"; do
  echo "=== $stage ($(date -u +%H:%M:%S), $(( $(date +%s) - t0 )) s of ${budget} s)"
  if [ $((budget - ($(date +%s) - t0))) -lt 5 ] && [ "$stage" != summary ] && [ "$stage" != down ]; then
    echo "out of the ${budget} s budget: skipped"
    continue
  fi
  case "$stage" in
    build)
      if [ "$device" = cpu ]; then
        DISTRI_BUILD_DIR=$build DISTRI_JOBS=${DISTRI_JOBS:-2} scripts/build distri distri-head distri-node \
          distri-worker distri-cluster > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
      else
        bash bench/run_parallel_bench.sh "$out" build || exit 1
      fi
      ;;
    model)
      if [ "$device" = cpu ]; then
        [ -f "$model/unet/config.json" ] || "$distri" model init --arch sdxl-tiny "$model" > /dev/null || exit 1
      else
        bash bench/run_parallel_bench.sh "$out" model || exit 1
      fi
      ;;
    standalone:*)
      cluster_down
      IFS=: read -r _ sizes counts <<< "$stage"
      IFS=, read -ra ss <<< "$sizes"; IFS=, read -ra ns <<< "$counts"
      for s in "${ss[@]}"; do
        for n in "${ns[@]}"; do
          [ "$n" -le "$nslots" ] || { echo "skip $s px on $n: only $nslots"; continue; }
          f=$out/standalone-$s-$n
          # shellcheck disable=SC2046
          bounded "${STANDALONE_TIMEOUT:-300}" "$distri" generate --model "$model" -p "$prompt" -H "$s" -W "$s" \
            -s "$steps" --seed 1 $(gen_device_args "$n") --repeat $((repeats + 1)) --json -q -o "$f.png" \
            > "$f.out" 2> "$f.log" || { echo "distri generate $s px on $n failed (rc $?):"; tail -5 "$f.log"; }
          sed 's/^{/{"kind": "standalone_run", "size": '"$s"', "gpus": '"$n"', /' "$f.out" | grep '^{' >> "$jsonl"
          $report standalone "$jsonl" "$s" "$n" "$f.out"
        done
      done
      ;;
    cluster:*)
      cluster_up || continue
      IFS=: read -r _ sizes counts <<< "$stage"
      IFS=, read -ra ss <<< "$sizes"; IFS=, read -ra ns <<< "$counts"
      for s in "${ss[@]}"; do
        for n in "${ns[@]}"; do
          [ "$n" -le "$nslots" ] || { echo "skip $s px on $n: only $nslots actors"; continue; }
          f=$out/cluster-$s-$n
          : > "$f.runs"
          # One hung job must not eat the whole budget: 60 s a submit up to 1024 px, 120 s up to
          # 2048 px, 300 s above (SUBMIT_TIMEOUT overrides).
          sub_to=${SUBMIT_TIMEOUT:-$(( s <= 1024 ? 60 : (s <= 2048 ? 120 : 300) ))}
          for i in $(seq 0 "$repeats"); do
            start=$(now_ms)
            line=$(bounded "$sub_to" "$cl" submit -c "$cfg" -p "$prompt" -H "$s" -W "$s" -s "$steps" \
              --seed 1 --gpus "$n" --timeout "$sub_to" -q --json -o "$f-$i.png" 2>> "$f.log" | grep '^{')
            rc=$?
            wall=$(( $(now_ms) - start ))
            if [ -z "$line" ]; then
              echo "submit $s px --gpus $n failed (rc $rc):"; tail -3 "$f.log"
              { echo "--- cluster status and logs after the failed submit"; timeout 15 "$cl" status -c "$cfg"
                timeout 15 "$cl" logs "$cfg" -n 60; } >> "$f.log" 2>&1
              line="{\"state\": \"ERROR\", \"error\": \"distri-cluster submit rc $rc, no --json line\"}"
            fi
            echo "$wall $line" >> "$f.runs"
            [[ $line == *SUCCEEDED* ]] || break
          done
          $report cluster "$jsonl" "$s" "$n" "$f.runs"
        done
      done
      ;;
    throughput:*)
      IFS=: read -r _ s jobs <<< "$stage"
      if cluster_up; then
        # Warm-up: one job per actor, so that every actor has its model hot and graphs captured.
        seq "$nslots" | sed "s/.*/$prompt/" > "$out/tp-warmup.txt"
        bounded "${BATCH_TIMEOUT:-300}" "$cl" batch -c "$cfg" --prompts "$out/tp-warmup.txt" --out-dir "$out/tp-warmup" \
          -H "$s" -W "$s" -s "$steps" --seed 100 --gpus 1 --timeout "${BATCH_TIMEOUT:-300}" > "$out/tp-warmup.log" 2>&1 \
          || { echo "warm-up batch failed:"; tail -3 "$out/tp-warmup.log"; }
        seq "$jobs" | sed "s/.*/$prompt/" > "$out/tp-prompts.txt"
        for g in ${TP_GPUS:-1 0}; do
          d=$out/tp-$s-$jobs-gpus$g
          rm -rf "$d"
          start=$(now_ms)
          bounded "${BATCH_TIMEOUT:-300}" "$cl" batch -c "$cfg" --prompts "$out/tp-prompts.txt" --out-dir "$d" \
            -H "$s" -W "$s" -s "$steps" --seed 1 --gpus "$g" --timeout "${BATCH_TIMEOUT:-300}" > "$d.log" 2>&1 \
            || { echo "batch --gpus $g failed:"; tail -3 "$d.log"; }
          wall=$(python3 -c "print(($(now_ms) - $start) / 1000)")
          $report throughput-cluster "$jsonl" "$s" "$jobs" "$g" "$wall" "$d/manifest.jsonl"
        done
      fi
      cluster_down
      k=$(( (jobs + nslots - 1) / nslots ))
      pids=(); files=()
      start=$(now_ms)
      for i in $(seq 0 $((nslots - 1))); do
        f=$out/tp-baseline-$s-$i
        files+=("$f.out")
        # shellcheck disable=SC2046
        bounded "${BATCH_TIMEOUT:-300}" env CUDA_VISIBLE_DEVICES="$i" "$distri" generate --model "$model" -p "$prompt" \
          -H "$s" -W "$s" -s "$steps" --seed $((1 + i)) $(gen_device_args 1) --repeat $((k + 1)) --json -q \
          -o "$f.png" > "$f.out" 2> "$f.log" &
        pids+=($!)
      done
      for p in "${pids[@]}"; do wait "$p" || echo "baseline process $p failed (rc $?)"; done
      wall=$(python3 -c "print(($(now_ms) - $start) / 1000)")
      $report throughput-baseline "$jsonl" "$s" "$jobs" "$wall" "${files[@]}"
      ;;
    down) cluster_down ;;
    summary) $report summary "$jsonl" ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
