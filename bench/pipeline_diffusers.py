#!/usr/bin/env python3
"""Baseline for `distri generate`: diffusers' StableDiffusionXLPipeline (or SD) on the same model
folder, fp16 on CUDA, timing text encoding + denoising + VAE decode of one image.

  python3 bench/pipeline_diffusers.py --model DIR --height 1024 --width 1024 --steps 50 --sampler ddim
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--sampler", default="ddim", choices=["ddim", "euler"])
    ap.add_argument("--variant", default="fp16")
    args = ap.parse_args()
    from diffusers import DDIMScheduler, DiffusionPipeline, EulerDiscreteScheduler

    pipe = DiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float16, variant=args.variant).to("cuda")
    cls = DDIMScheduler if args.sampler == "ddim" else EulerDiscreteScheduler
    pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt="a lighthouse at dawn", height=args.height, width=args.width, num_inference_steps=args.steps,
              guidance_scale=5.0, generator=torch.Generator().manual_seed(0))
    pipe(**kw)  # warm-up (cuDNN/cuBLAS autotuning, allocator)
    times = []
    for _ in range(2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pipe(**kw)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"impl": "diffusers pipeline", "steps": args.steps, "sampler": args.sampler,
                      "height": args.height, "width": args.width, "total_s": round(min(times), 3),
                      "device": torch.cuda.get_device_name()}))


if __name__ == "__main__":
    main()
