#!/usr/bin/env python3
"""Baseline for bench/unet_bench: diffusers' UNet2DConditionModel on the same weights.

  python3 bench/unet_diffusers.py --model DIR [--make-random CONFIG_JSON] --height 1024 --width 1024
      --steps 50 --dtype fp16 [--graph]

--make-random writes DIR/unet (random weights, diffusers layout, fp16 variant) from a
config.json first, so that distri's bench loads the very same weights. Timing: the whole
`steps`-step loop of UNet forwards at batch 2 (classifier-free guidance), CUDA-synchronised,
median of --repeats runs after a warm-up. --graph captures the loop body as a CUDA graph
and replays it (what distrifuser does). Prints one JSON line.
"""
import argparse
import json
import os
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--make-random")
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--graph", action="store_true")
    args = ap.parse_args()
    from diffusers import UNet2DConditionModel

    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    unet_dir = os.path.join(args.model, "unet")
    if args.make_random:
        with open(args.make_random) as f:
            cfg = json.load(f)
        torch.manual_seed(0)
        with torch.device("cuda"):
            unet = UNet2DConditionModel.from_config(cfg)
        unet = unet.to(dtype)
        unet.save_pretrained(unet_dir, variant="fp16" if dtype == torch.float16 else "bf16")
        del unet
    unet = UNet2DConditionModel.from_pretrained(unet_dir, variant="fp16" if dtype == torch.float16 else "bf16",
                                                torch_dtype=dtype).to("cuda").eval()
    cfg = unet.config
    b, h, w = 2, args.height // 8, args.width // 8
    g = torch.Generator(device="cuda").manual_seed(0)
    sample = torch.randn(b, cfg.in_channels, h, w, device="cuda", dtype=dtype, generator=g)
    ehs = torch.randn(b, 77, cfg.cross_attention_dim, device="cuda", dtype=dtype, generator=g)
    added = None
    if cfg.addition_embed_type == "text_time":
        text_dim = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        added = {"text_embeds": torch.randn(b, text_dim, device="cuda", dtype=dtype, generator=g),
                 "time_ids": torch.tensor([[args.height, args.width, 0, 0, args.height, args.width]] * b,
                                          device="cuda", dtype=dtype)}
    t = torch.tensor(999.0, device="cuda")

    def step():
        return unet(sample, t, encoder_hidden_states=ehs, added_cond_kwargs=added, return_dict=False)[0]

    with torch.inference_mode():
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        run = step
        if args.graph:
            graph = torch.cuda.CUDAGraph()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                step()
            torch.cuda.current_stream().wait_stream(s)
            with torch.cuda.graph(graph):
                step()
            run = graph.replay
        times = []
        for _ in range(args.repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"impl": "diffusers" + ("+graph" if args.graph else ""), "height": args.height,
                      "width": args.width, "steps": args.steps, "dtype": args.dtype,
                      "loop_s": round(med, 4), "per_forward_ms": round(1000 * med / args.steps, 2),
                      "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                      "device": torch.cuda.get_device_name()}))


if __name__ == "__main__":
    main()
