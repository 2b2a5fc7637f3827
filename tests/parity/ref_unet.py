"""Parity reference for distri's UNet2DConditionModel (tests/actors/unet/unet_parity_test.cc).

Usage: python3 ref_unet.py OUT_DIR

Builds three tiny random-weight diffusers UNet2DConditionModels that exercise the options of
the real checkpoints:
  sd15_tiny  conv proj_in/proj_out, attention_head_dim as one int, 3 levels
  sd2_tiny   use_linear_projection, upcast_attention, per-block attention_head_dim list
  sdxl_tiny  addition_embed_type text_time, transformer_layers_per_block [1, 2]
Each is saved as OUT_DIR/<name>/unet (config.json + diffusion_pytorch_model.safetensors) and
run on two seeded cases: a square latent (batch 2, timestep per sample) and an odd non-square
latent (batch 1, scalar timestep) whose size is not a multiple of the down-sampling factor.
Inputs and outputs go to OUT_DIR/reference.safetensors as "<name>.<case>.<tensor>".
"""
import os

import parity_common as pc
import torch
from diffusers import UNet2DConditionModel

CONFIGS = {
    "sd15_tiny": dict(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=2,
        cross_attention_dim=32,
        attention_head_dim=4,  # = 4 heads (diffusers' naming quirk)
        norm_num_groups=8,
        freq_shift=1,
        flip_sin_to_cos=True,
    ),
    "sd2_tiny": dict(
        sample_size=16,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=48,
        attention_head_dim=[2, 4],
        use_linear_projection=True,
        upcast_attention=True,
        norm_num_groups=8,
    ),
    "sdxl_tiny": dict(
        sample_size=16,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        transformer_layers_per_block=[1, 2],
        cross_attention_dim=40,
        attention_head_dim=[2, 4],
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=16 + 6 * 8,  # text_embeds 16 + 6 time ids x 8
        norm_num_groups=8,
    ),
}
TEXT_EMBEDS_DIM = 16  # sdxl_tiny
TOKENS = 7

# (case, batch, height, width, scalar timestep)
CASES = [("square", 2, 16, 16, False), ("odd", 1, 13, 22, True)]


def main() -> None:
    out = pc.out_dir()
    tensors = {}
    for index, (name, config) in enumerate(CONFIGS.items()):
        model = UNet2DConditionModel(**config).eval()
        pc.randomize_(model, seed=100 + index)
        model.save_pretrained(os.path.join(out, name, "unet"), safe_serialization=True)
        for case_index, (case, batch, height, width, scalar_t) in enumerate(CASES):
            g = pc.seeded(1000 + 10 * index + case_index)
            sample = torch.randn(batch, model.config.in_channels, height, width, generator=g)
            timestep = torch.tensor([17.0]) if scalar_t else torch.tensor([999.0, 421.0])[:batch]
            states = torch.randn(batch, TOKENS, config["cross_attention_dim"], generator=g)
            kwargs = {}
            prefix = f"{name}.{case}."
            if config.get("addition_embed_type") == "text_time":
                text_embeds = torch.randn(batch, TEXT_EMBEDS_DIM, generator=g)
                time_ids = torch.tensor([[height * 8, width * 8, 0, 0, height * 8, width * 8]] * batch, dtype=torch.float32)
                kwargs["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
                tensors[prefix + "text_embeds"] = text_embeds
                tensors[prefix + "time_ids"] = time_ids
            with torch.no_grad():
                # The scalar case passes a Python number, as pipelines often do.
                t_arg = float(timestep[0]) if scalar_t else timestep
                result = model(sample, t_arg, encoder_hidden_states=states, **kwargs).sample
            tensors[prefix + "sample"] = sample
            tensors[prefix + "timestep"] = timestep
            tensors[prefix + "encoder_hidden_states"] = states
            tensors[prefix + "out"] = result
    pc.save_tensors(os.path.join(out, "reference.safetensors"), tensors)


if __name__ == "__main__":
    main()
