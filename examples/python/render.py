#!/usr/bin/env python3
"""Render one image through distri's Python bindings.

    render.py --model /models/sdxl --out lighthouse.png "a lighthouse at dawn"
"""
import sys

import distri
from _args import job_params, open_client, parse


def main():
    args = parse("Render one image with distri.", "--out", "render.png")
    try:
        with open_client(args) as client:
            image = client.generate(
                args.prompts[0],
                progress=lambda step, total: print("\rstep %d/%d" % (step, total), end="", file=sys.stderr),
                **job_params(args, args.seed))
    except distri.DistriError as e:
        print("\nerror: %s: %s" % (e.status, e), file=sys.stderr)
        return 1
    image.save(args.out)
    print("\nwrote %s (%dx%d, seed %d, %.0f ms on %d actor(s))"
          % (args.out, image.width, image.height, image.seed, image.total_ms, image.gang_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
