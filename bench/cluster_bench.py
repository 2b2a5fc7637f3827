#!/usr/bin/env python3
"""Turns the raw outputs of bench/run_cluster_bench.sh into JSON lines and the summary table.

    cluster_bench.py standalone JSONL SIZE GPUS GENERATE_STDOUT
        `distri generate --json` lines (one per repeat) -> one "standalone" line
    cluster_bench.py cluster JSONL SIZE GPUS RUNS_FILE
        RUNS_FILE: one "<process wall ms> <distri-cluster submit --json line>" per submit -> "cluster"
    cluster_bench.py throughput-cluster JSONL SIZE JOBS GPUS WALL_S MANIFEST
        a `distri-cluster batch` run (JOBS at once) -> "throughput" (way "cluster")
    cluster_bench.py throughput-baseline JSONL SIZE JOBS LAUNCH_WALL_S GENERATE_STDOUT...
        N concurrent `distri generate --gpus 1 --repeat K+1 --json` -> "throughput" (way "baseline")
    cluster_bench.py summary JSONL
        the table: size, GPUs, standalone and cluster warm latency, overhead, throughput

The first render of each (size, gang) pair captures CUDA graphs (standalone: repeat 0; cluster:
the first submit); it is reported as first_s and left out of the warm numbers.
Standard library only (the GPU machine has no network).
"""
import json
import os
import statistics
import sys


def append(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))


def json_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def mean(xs):
    return round(statistics.fmean(xs), 4) if xs else None


def standalone(jsonl, size, gpus, stdout):
    runs = json_lines(stdout)
    rec = {"kind": "standalone", "size": int(size), "gpus": int(gpus), "renders": len(runs)}
    if not runs:
        rec["error"] = "no --json output (see the .log next to " + stdout + ")"
    else:
        warm = runs[1:]
        # A cluster job encodes its PNG on rank 0 inside the measured run; distri generate
        # encodes once after the repeats and reports that time (png_s) with every repeat:
        # count it in each render so both sides do the same work.
        def total(r):
            return r["total_s"] + r.get("png_s", 0.0)
        rec.update({
            "load_s": round(runs[0]["load_s"], 3),
            "first_s": round(total(runs[0]), 4),
            "warm_s": [round(total(r), 4) for r in warm],
            "warm_mean_s": mean([total(r) for r in warm]),
            "warm_min_s": round(min(total(r) for r in warm), 4) if warm else None,
            "png_s": round(runs[0].get("png_s", 0.0), 4),
            "warm_text_s": mean([r["text_s"] for r in warm]),
            "warm_denoise_s": mean([r["denoise_s"] for r in warm]),
            "warm_decode_s": mean([r["decode_s"] for r in warm]),
        })
    append(jsonl, rec)


def cluster(jsonl, size, gpus, runs_file):
    runs = []
    with open(runs_file) as f:
        for line in f:
            wall, _, js = line.strip().partition(" ")
            try:
                r = json.loads(js)
            except json.JSONDecodeError:
                r = {"state": "ERROR", "error": "no --json line"}
            r["wall_ms"] = float(wall)
            runs.append(r)
    ok = [r for r in runs if r.get("state") == "SUCCEEDED"]
    rec = {"kind": "cluster", "size": int(size), "gpus": int(gpus), "submits": len(runs), "failed": len(runs) - len(ok)}
    if runs and runs[0] in ok:
        rec["first_s"] = round(runs[0]["client_ms"] / 1000, 4)
    warm = [r for r in runs[1:] if r in ok]
    if warm:
        rec.update({
            "gang_sizes": sorted({r["gang_size"] for r in ok}),
            "attempts": [r["attempt"] for r in ok],
            "warm_client_s": [round(r["client_ms"] / 1000, 4) for r in warm],
            "warm_mean_s": mean([r["client_ms"] / 1000 for r in warm]),
            "warm_min_s": round(min(r["client_ms"] for r in warm) / 1000, 4),
            "warm_process_wall_s": mean([r["wall_ms"] / 1000 for r in warm]),
            "warm_head_run_s": mean([r["run_ms"] / 1000 for r in warm]),
            "warm_head_total_s": mean([r["total_ms"] / 1000 for r in warm]),
            "warm_queued_ms": mean([r["queued_ms"] for r in warm]),
            # rank 0's own report (denoising loop; VAE decode + PNG), to split the overhead
            "warm_actor_denoise_s": mean([r.get("denoise_ms", 0) / 1000 for r in warm]),
            "warm_actor_decode_s": mean([r.get("decode_ms", 0) / 1000 for r in warm]),
        })
    # Same job, same seed: the PNG should equal the standalone run's (checked on CPU; fp16 gangs
    # on GPUs may differ in the last bits).
    alone_png = os.path.join(os.path.dirname(runs_file), f"standalone-{size}-{gpus}.png")
    if ok and os.path.exists(alone_png) and os.path.exists(ok[-1]["out"]):
        with open(alone_png, "rb") as a, open(ok[-1]["out"], "rb") as c:
            rec["same_png_as_standalone"] = a.read() == c.read()
    errors = [r.get("error") for r in runs if r not in ok]
    if errors:
        rec["errors"] = errors[:3]
    append(jsonl, rec)


def throughput_cluster(jsonl, size, jobs, gpus, wall_s, manifest):
    try:
        done = [r for r in json_lines(manifest) if r.get("state") == "SUCCEEDED"]
    except FileNotFoundError:
        done = []
    wall = float(wall_s)
    rec = {"kind": "throughput", "way": "cluster", "size": int(size), "jobs": int(jobs), "gpus": int(gpus),
           "images": len(done), "wall_s": round(wall, 3),
           "images_per_s": round(len(done) / wall, 4) if wall > 0 else None,
           "note": "actors warm (model loaded, a warm-up batch ran); wall = the batch command"}
    if len(done) < int(jobs):
        rec["error"] = f"{len(done)} of {jobs} jobs succeeded (see {os.path.dirname(manifest)}.log)"
    append(jsonl, rec)


def throughput_baseline(jsonl, size, jobs, launch_wall_s, files):
    procs = [json_lines(f) for f in files]
    rec = {"kind": "throughput", "way": "baseline", "size": int(size), "jobs": int(jobs), "processes": len(files),
           "launch_wall_s": round(float(launch_wall_s), 3)}
    if not procs or any(len(p) < 2 for p in procs):
        rec["error"] = "a process gave fewer than 2 renders: " + ", ".join(str(len(p)) for p in procs)
    else:
        # Warm window: from the first warm render's start (any process) to the last render's end;
        # repeat 0 of each process (graph capture) and the model load stay outside it.
        start = min(p[1]["start_unix"] for p in procs)
        end = max(p[-1]["end_unix"] for p in procs)
        warm_images = sum(len(p) - 1 for p in procs)
        all_images = sum(len(p) for p in procs)
        rec.update({
            "warm_images": warm_images, "warm_wall_s": round(end - start, 3),
            "images_per_s": round(warm_images / (end - start), 4),
            "with_load_images_per_s": round(all_images / float(launch_wall_s), 4),
            "load_s": [round(p[0]["load_s"], 2) for p in procs],
            "note": "images_per_s: warm renders only, model load and repeat 0 excluded; with_load: every render "
                    "/ process launch to exit",
        })
    append(jsonl, rec)


def fmt(x, spec="{:.3f}"):
    return "-" if x is None else spec.format(x)


def summary(jsonl):
    try:
        recs = json_lines(jsonl)
    except FileNotFoundError:
        recs = []
    alone = {(r["size"], r["gpus"]): r for r in recs if r["kind"] == "standalone"}
    clus = {(r["size"], r["gpus"]): r for r in recs if r["kind"] == "cluster"}
    print("\n== latency (warm mean seconds; first render = graph capture, separate) ==")
    print(f"{'size':>5} {'GPUs':>5} {'standalone':>11} {'(first)':>8} {'cluster':>9} {'(first)':>8} "
          f"{'head run':>9} {'gang':>6} {'overhead':>9} {'same PNG':>9}")
    for key in sorted(set(alone) | set(clus)):
        a, c = alone.get(key, {}), clus.get(key, {})
        sa, sc = a.get("warm_mean_s"), c.get("warm_mean_s")
        over = f"{100 * (sc / sa - 1):+.1f}%" if sa and sc else "-"
        gang = ",".join(str(g) for g in c.get("gang_sizes", [])) or "-"
        gpus = "auto" if key[1] == 0 else str(key[1])
        print(f"{key[0]:>5} {gpus:>5} {fmt(sa):>11} {fmt(a.get('first_s')):>8} {fmt(sc):>9} "
              f"{fmt(c.get('first_s')):>8} {fmt(c.get('warm_head_run_s')):>9} {gang:>6} {over:>9} "
              f"{str(c.get('same_png_as_standalone', '-')).lower():>9}")
    tps = [r for r in recs if r["kind"] == "throughput"]
    if tps:
        print("\n== throughput (images/s) ==")
        for r in tps:
            if r["way"] == "cluster":
                gpus = "auto" if r["gpus"] == 0 else str(r["gpus"])
                print(f"  {r['size']} px, {r['jobs']} jobs, cluster --gpus {gpus}: {fmt(r['images_per_s'])} "
                      f"({r['images']} images in {r['wall_s']} s, warm actors)")
            else:
                print(f"  {r['size']} px, {r['jobs']} jobs, baseline {r['processes']} x `distri generate --gpus 1`: "
                      f"{fmt(r.get('images_per_s'))} warm ({r.get('warm_images', '-')} images in "
                      f"{r.get('warm_wall_s', '-')} s), {fmt(r.get('with_load_images_per_s'))} with model load")
    bad = [r for r in recs if r.get("error") or r.get("failed")]
    for r in bad:
        print(f"  problem: {json.dumps(r)[:300]}")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "standalone":
        standalone(*args)
    elif cmd == "cluster":
        cluster(*args)
    elif cmd == "throughput-cluster":
        throughput_cluster(*args)
    elif cmd == "throughput-baseline":
        throughput_baseline(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "summary":
        summary(*args)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
