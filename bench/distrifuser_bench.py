#!/usr/bin/env python3
"""Baseline for bench/parallel_bench: MIT Han Lab's distrifuser (the DistriFusion reference, PyPI
`distrifuser`, built for diffusers==0.24.0) on the same model folder, same settings: SDXL
architecture, fp16, DDIM, 50 steps, CFG 5, latent output, its CUDA graphs, patch parallelism with
corrected_async_gn and 4 warm-up steps. Imports distrifuser as a library; nothing is copied.

  torchrun --nproc_per_node N bench/distrifuser_bench.py --model DIR --size 1024 [--steps 50]

Latency = one pipeline call with output_type="latent" (text encoding + denoising), the median of
--repeats timed calls after one warm-up call, as distrifuser's own scripts measure it. Rank 0
prints one JSON line. diffusers 0.24 predates today's huggingface_hub: the missing names it
imports (cached_download, HfFolder, ...) are shimmed here at run time.
"""
import argparse
import glob
import json
import sys
import os
import statistics
import time

import torch


def shim_huggingface_hub():
    import os as _os

    import huggingface_hub
    import huggingface_hub.constants as constants
    import huggingface_hub.utils as hub_utils

    if not hasattr(constants, "hf_cache_home"):
        constants.hf_cache_home = _os.path.dirname(constants.HF_HUB_CACHE) if hasattr(constants, "HF_HUB_CACHE") \
            else _os.path.expanduser("~/.cache/huggingface")
    if not hasattr(constants, "HUGGINGFACE_HUB_CACHE"):
        constants.HUGGINGFACE_HUB_CACHE = constants.HF_HUB_CACHE
    for name in ("EntryNotFoundError", "RepositoryNotFoundError", "RevisionNotFoundError"):
        if not hasattr(hub_utils, name):
            setattr(hub_utils, name, getattr(huggingface_hub.errors, name))
    if not hasattr(hub_utils, "is_jinja_available"):
        hub_utils.is_jinja_available = lambda: False
    # transformers 5 dropped the Flax names diffusers 0.24 imports.
    import transformers.utils as tf_utils

    for name, value in (("FLAX_WEIGHTS_NAME", "flax_model.msgpack"), ("TF2_WEIGHTS_NAME", "tf_model.h5"),
                        ("TF_WEIGHTS_NAME", "model.ckpt")):
        if not hasattr(tf_utils, name):
            setattr(tf_utils, name, value)

    if not hasattr(huggingface_hub, "cached_download"):
        huggingface_hub.cached_download = huggingface_hub.hf_hub_download
    if not hasattr(huggingface_hub, "HfFolder"):
        class HfFolder:
            @staticmethod
            def get_token():
                return None

            @staticmethod
            def save_token(token):
                pass

        huggingface_hub.HfFolder = HfFolder
    if not hasattr(huggingface_hub, "model_info"):
        huggingface_hub.model_info = lambda *a, **k: None


def link_fp16_variant(model):
    """diffusers 0.24's UNet loading in distrifuser passes no variant: expose *.fp16.* files
    under the plain names too (symlinks in the model folder)."""
    for path in glob.glob(os.path.join(model, "*", "*.fp16.*")):
        plain = path.replace(".fp16.", ".")
        if not os.path.exists(plain):
            os.symlink(os.path.basename(path), plain)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", default="corrected_async_gn")
    ap.add_argument("--parallelism", default="patch")
    ap.add_argument("--no-cuda-graph", action="store_true")
    args = ap.parse_args()
    shim_huggingface_hub()
    if int(os.environ.get("RANK", "0")) == 0:
        link_fp16_variant(args.model)
    from diffusers import DDIMScheduler
    from distrifuser.pipelines import DistriSDXLPipeline
    from distrifuser.utils import DistriConfig

    config = DistriConfig(height=args.size, width=args.size, warmup_steps=4, mode=args.mode,
                          use_cuda_graph=not args.no_cuda_graph, parallelism=args.parallelism)
    torch.distributed.barrier()  # rank 0 made the links
    pipe = DistriSDXLPipeline.from_pretrained(distri_config=config, pretrained_model_name_or_path=args.model,
                                              torch_dtype=torch.float16, use_safetensors=True)
    pipe.pipeline.scheduler = DDIMScheduler.from_config(pipe.pipeline.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt="a photo of an astronaut riding a horse on the moon", num_inference_steps=args.steps,
              guidance_scale=5.0, output_type="latent", generator=torch.Generator(device="cpu").manual_seed(1234))
    pipe(**kw)  # warm-up
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        pipe(**kw)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.tensor([torch.cuda.max_memory_allocated() / 2**30], device="cuda")
    torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    if config.rank == 0:
        print(json.dumps({"impl": "distrifuser", "size": args.size, "gpus": config.world_size, "mode": args.mode,
                          "parallelism": args.parallelism, "latency_s": round(statistics.median(times), 4),
                          "peak_gib": round(peak.item(), 2), "runs": [round(t, 4) for t in times],
                          "device": torch.cuda.get_device_name()}), flush=True)
    # distrifuser's processes did not exit after destroy_process_group at 2048 px on 2 GPUs
    # (2026-11-27: hung until torchrun's timeout, which cost the 4-GPU run): leave at once
    # once every rank is done.
    torch.distributed.barrier()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
