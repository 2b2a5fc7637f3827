"""Whole-pipeline parity reference: tiny random SD 1.5-style and SDXL-style pipelines.

For each case, diffusers' StableDiffusionPipeline / StableDiffusionXLPipeline (CPU, fp32) runs
prompt -> embeddings -> guided denoising -> final latent -> VAE decode; the C++ test
(tests/actors/pipeline/pipeline_parity_test.cc) loads the same saved folders and must produce
the same final latent (relative error <= 1e-4) and the same 8-bit image (up to rounding).

Writes OUT_DIR/<family>/ (the model, diffusers' save_pretrained layout), OUT_DIR/cases.json and
OUT_DIR/reference.safetensors (latent_<i> [N, 4, h, w], image_<i> [N, H, W, 3] for the case's
num_images N, default 1).
"""
import json
import os

from parity_common import out_dir, randomize_, save_tensors

import torch  # noqa: E402
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,  # noqa: E402
                       StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel)
from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,  # noqa: E402
                          CLIPTokenizer)

from ref_clip import train_vocab, write_tokenizers  # noqa: E402

SCHED = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
             steps_offset=1, timestep_spacing="leading")
DDIM = dict(SCHED, clip_sample=False, set_alpha_to_one=False)


def vae():
    return AutoencoderKL(block_out_channels=[32, 32, 64, 64], down_block_types=["DownEncoderBlock2D"] * 4,
                         up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4, layers_per_block=1,
                         norm_num_groups=8, sample_size=64)


def text_encoder(vocab_size, cls, act, seed):
    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                         num_hidden_layers=3, max_position_embeddings=77, hidden_act=act, projection_dim=32,
                         bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1)
    m = cls(cfg)
    randomize_(m, seed, scale=0.1)
    return m


def make_sd15(path, tok_dir, vocab_size):
    unet = UNet2DConditionModel(block_out_channels=[32, 64], layers_per_block=1, norm_num_groups=8,
                                down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                                up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                                cross_attention_dim=32, attention_head_dim=4, sample_size=8)
    randomize_(unet, 11, scale=0.1)
    v = vae()
    randomize_(v, 12, scale=0.1)
    pipe = StableDiffusionPipeline(vae=v, text_encoder=text_encoder(vocab_size, CLIPTextModel, "quick_gelu", 13),
                                   tokenizer=CLIPTokenizer.from_pretrained(os.path.join(tok_dir, "tokenizer")),
                                   unet=unet, scheduler=DDIMScheduler(**DDIM), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path)
    return pipe


def make_sdxl(path, tok_dir, vocab_size):
    unet = UNet2DConditionModel(block_out_channels=[32, 64], layers_per_block=1, norm_num_groups=8,
                                down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                                up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], cross_attention_dim=64,
                                attention_head_dim=[2, 4], transformer_layers_per_block=[1, 2],
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8,
                                sample_size=8)
    randomize_(unet, 21, scale=0.1)
    v = vae()
    v.register_to_config(scaling_factor=0.13025, force_upcast=True)
    randomize_(v, 22, scale=0.1)
    pipe = StableDiffusionXLPipeline(
        vae=v, text_encoder=text_encoder(vocab_size, CLIPTextModel, "quick_gelu", 23),
        text_encoder_2=text_encoder(vocab_size, CLIPTextModelWithProjection, "gelu", 24),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(tok_dir, "tokenizer")),
        tokenizer_2=CLIPTokenizer.from_pretrained(os.path.join(tok_dir, "tokenizer_2")),
        unet=unet, scheduler=EulerDiscreteScheduler(**SCHED, interpolation_type="linear"),
        force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(path)
    return pipe


SAMPLERS = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler, "dpmpp_2m": DPMSolverMultistepScheduler}

CASES = [
    dict(family="sd15", prompt="a photo of a cat, high detail", negative_prompt="blurry", height=64, width=96,
         steps=4, guidance=5.0, seed=42, sampler="default"),
    dict(family="sd15", prompt="Mountains at dawn!", negative_prompt="", height=64, width=64,
         steps=3, guidance=1.0, seed=7, sampler="dpmpp_2m"),
    dict(family="sdxl", prompt="an astronaut riding a horse", negative_prompt="", height=64, width=64,
         steps=4, guidance=6.0, seed=1234, sampler="default"),
    dict(family="sdxl", prompt="a red cube on a table", negative_prompt="low quality", height=96, width=64,
         steps=3, guidance=4.0, seed=5, sampler="ddim"),
    # num_images_per_prompt: one noise draw for the batch, CFG halves [uncond x N, cond x N]
    dict(family="sd15", prompt="two birds", negative_prompt="blurry", height=64, width=64,
         steps=3, guidance=5.0, seed=3, sampler="default", num_images=2),
    dict(family="sdxl", prompt="a lighthouse at night", negative_prompt="", height=64, width=64,
         steps=3, guidance=5.0, seed=9, sampler="euler", num_images=3),
    # guidance_rescale (rescale_noise_cfg)
    dict(family="sd15", prompt="a bright beach", negative_prompt="", height=64, width=64,
         steps=4, guidance=9.0, seed=21, sampler="ddim", guidance_rescale=0.7),
    dict(family="sdxl", prompt="a bright beach", negative_prompt="dark", height=64, width=64,
         steps=3, guidance=7.0, seed=22, sampler="default", guidance_rescale=0.5, num_images=2),
]


def main():
    out = out_dir()
    vocab, merges = train_vocab()
    tok_dir = os.path.join(out, "tokenizers")
    write_tokenizers(tok_dir, vocab, merges)
    pipes = {"sd15": make_sd15(os.path.join(out, "sd15"), tok_dir, len(vocab)),
             "sdxl": make_sdxl(os.path.join(out, "sdxl"), tok_dir, len(vocab))}
    ref = {}
    for i, c in enumerate(CASES):
        pipe = pipes[c["family"]]
        if c["sampler"] != "default":
            pipe.scheduler = SAMPLERS[c["sampler"]].from_config(pipe.scheduler.config)
        elif c["family"] == "sdxl":
            pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        else:
            pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        kwargs = dict(prompt=c["prompt"], negative_prompt=c["negative_prompt"] or None, height=c["height"],
                      width=c["width"], num_inference_steps=c["steps"], guidance_scale=c["guidance"],
                      num_images_per_prompt=c.get("num_images", 1), guidance_rescale=c.get("guidance_rescale", 0.0),
                      generator=torch.Generator().manual_seed(c["seed"]))
        with torch.no_grad():
            latents = pipe(**kwargs, output_type="latent").images
            image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
            image = ((image / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)  # [N, H, W, 3]
        ref[f"latent_{i}"] = latents
        ref[f"image_{i}"] = image.contiguous()
    save_tensors(os.path.join(out, "reference.safetensors"), ref)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=2)


if __name__ == "__main__":
    main()
