"""Shared helpers for the parity reference scripts (tests/parity/ref_*.py).

Each script is run by ctest as `python3 ref_<area>.py OUT_DIR`. It builds a small random-weight
model with diffusers/transformers (CPU, fp32), saves it in diffusers' folder layout with
safetensors, runs the reference computation and saves inputs and outputs to
OUT_DIR/reference.safetensors for the C++ test to compare against. Nothing is downloaded.
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
torch.use_deterministic_algorithms(True)


def out_dir() -> str:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    return d


def seeded(seed: int) -> torch.Generator:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return g


def randomize_(module: torch.nn.Module, seed: int, scale: float = 0.2) -> None:
    """Overwrites every parameter with seeded random values.

    Freshly initialised diffusers models have zero-initialised output convolutions and unit
    norms, which would hide bugs; random values exercise every weight.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(".weight") and p.ndim == 1:  # norm scales: keep near 1
                p.copy_(1.0 + scale * torch.randn(p.shape, generator=g))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g))


def save_tensors(path: str, tensors: dict) -> None:
    save_file({k: v.detach().contiguous().to(torch.float32) if v.is_floating_point() else v.detach().contiguous()
               for k, v in tensors.items()}, path)
