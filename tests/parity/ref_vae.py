"""Parity reference for distri's AutoencoderKL (tests/actors/vae/vae_parity_test.cc).

Usage: python3 ref_vae.py OUT_DIR

Builds tiny random-weight diffusers AutoencoderKLs (3 levels, so a x4 latent factor):
  vae_tiny     mid-block attention, quant convs, SD-like config
  vae_noattn   mid_block_add_attention false, no quant/post-quant conv, shift_factor set
saves each as OUT_DIR/<name>/vae and records, per model:
  encode: images -> latent_dist.mean (and logvar), for a square and an odd-sized image
  decode: latents -> images, for a square and an odd-sized latent
Tensors go to OUT_DIR/reference.safetensors as "<name>.<what>".
"""
import os

import parity_common as pc
import torch
from diffusers import AutoencoderKL

CONFIGS = {
    "vae_tiny": dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=0.13025,
        force_upcast=True,
    ),
    "vae_noattn": dict(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        mid_block_add_attention=False,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
        force_upcast=False,
    ),
}

# (case, batch, image height, image width) for encode; latents are the image size / factor.
ENCODE_CASES = [("square", 2, 32, 32), ("odd", 1, 20, 28)]
DECODE_CASES = [("square", 2, 8, 8), ("odd", 1, 5, 7)]


def main() -> None:
    out = pc.out_dir()
    tensors = {}
    for index, (name, config) in enumerate(CONFIGS.items()):
        model = AutoencoderKL(**config).eval()
        pc.randomize_(model, seed=200 + index)
        model.save_pretrained(os.path.join(out, name, "vae"), safe_serialization=True)
        g = pc.seeded(2000 + index)
        for case, batch, height, width in ENCODE_CASES:
            images = torch.rand(batch, 3, height, width, generator=g) * 2 - 1
            with torch.no_grad():
                dist = model.encode(images).latent_dist
            tensors[f"{name}.encode.{case}.images"] = images
            tensors[f"{name}.encode.{case}.mean"] = dist.mean
            tensors[f"{name}.encode.{case}.logvar"] = dist.logvar
        for case, batch, height, width in DECODE_CASES:
            latents = torch.randn(batch, config["latent_channels"], height, width, generator=g)
            with torch.no_grad():
                images = model.decode(latents).sample
            tensors[f"{name}.decode.{case}.latents"] = latents
            tensors[f"{name}.decode.{case}.images"] = images
    pc.save_tensors(os.path.join(out, "reference.safetensors"), tensors)


if __name__ == "__main__":
    main()
