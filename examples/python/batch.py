#!/usr/bin/env python3
"""Render several prompts at once: one batch submit, then each job's progress and result,
written as OUT_DIR/NNN.png plus OUT_DIR/manifest.jsonl.

    batch.py --model /models/sdxl --out-dir renders "a cat" "a dog" "a lighthouse"
"""
import json
import os
import sys

import distri
from _args import job_params, open_client, parse


def main():
    args = parse("Render several images with distri.", "--out-dir", "batch-out")
    os.makedirs(args.out, exist_ok=True)
    failures = 0
    with open_client(args) as client:
        jobs = client.submit_batch([dict(prompt=p, **job_params(args, args.seed + i))
                                    for i, p in enumerate(args.prompts)])
        with open(os.path.join(args.out, "manifest.jsonl"), "w") as manifest:
            for i, (prompt, job) in enumerate(zip(args.prompts, jobs)):
                with job:
                    try:
                        job.wait(progress=lambda s, t: print("\rjob %d: step %d/%d" % (i, s, t),
                                                             end="", file=sys.stderr))
                        image = job.result()
                    except distri.DistriError as e:
                        print("\njob %d (%s): %s" % (i, job.id, e), file=sys.stderr)
                        failures += 1
                        continue
                    name = "%03d.png" % i
                    image.save(os.path.join(args.out, name))
                    manifest.write(json.dumps({"file": name, "job_id": job.id, "seed": image.seed,
                                               "prompt": prompt}) + "\n")
                    print("\nwrote", os.path.join(args.out, name))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
