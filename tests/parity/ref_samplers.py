"""Reference trajectories of diffusers' DDIM, Euler and DPM-Solver++(2M) schedulers.

Usage: python3 ref_samplers.py OUT_DIR

Writes, for the C++ parity test (tests/actors/samplers/sampler_parity_test.cc):
  OUT_DIR/configs/<config>/scheduler_config.json   one per scheduler configuration
  OUT_DIR/reference.safetensors                    tensors named below
  OUT_DIR/reference.json                           the index

A trajectory starts from seeded noise * init_noise_sigma; at step i the fake model output is
  model_output = 0.1 * scale_model_input(x, t) + fixed * (1 / (1 + 0.1 * i))
(the C++ test computes the same), then x = step(model_output, t, x). Tensors:
  noise, fixed                 [2, 4, 8, 8] float32
  <case>/timesteps             scheduler.timesteps (int64, or float32 for Euler)
  <case>/traj                  [steps + 1, 2, 4, 8, 8]: x before the first step and after each
  <config>/<sampler>/sweep     scheduler.timesteps for every count in the sweep, concatenated
"""
import json
import os

import numpy as np
import torch

from parity_common import out_dir, save_tensors, seeded

from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

SAMPLERS = {
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "dpmpp_2m": DPMSolverMultistepScheduler,
}
STEPS = [1, 7, 20, 50]
SWEEP = list(range(1, 101)) + [127, 200, 250, 333, 499, 500, 501, 999, 1000]
SHAPE = (2, 4, 8, 8)

SD = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
      "num_train_timesteps": 1000, "steps_offset": 1, "set_alpha_to_one": False,
      "clip_sample": False, "trained_betas": None}


def configs():
    """name -> dict written as scheduler_config.json (None: written by save_config below)."""
    c = {}
    # SD 1.5 ships a PNDM file without timestep_spacing: each sampler takes its own default.
    c["sd15"] = {"_class_name": "PNDMScheduler", **SD, "skip_prk_steps": True}
    # SDXL ships an Euler file with leading spacing.
    c["sdxl"] = {"_class_name": "EulerDiscreteScheduler", **SD, "interpolation_type": "linear",
                 "prediction_type": "epsilon", "sample_max_value": 1.0, "skip_prk_steps": True,
                 "timestep_spacing": "leading", "use_karras_sigmas": False}
    c["sdxl_karras"] = {**c["sdxl"], "use_karras_sigmas": True}
    c["sd2v_trailing"] = {"_class_name": "DDIMScheduler", **SD, "prediction_type": "v_prediction",
                          "timestep_spacing": "trailing"}
    c["sd2v_linspace"] = {"_class_name": "DDIMScheduler", **SD, "prediction_type": "v_prediction",
                          "timestep_spacing": "linspace", "lambda_min_clipped": -5.1}
    # Every class default (linear betas; DDIM clips x0 to [-1, 1] and sets alpha to one).
    c["defaults"] = {"_class_name": "DDIMScheduler"}
    c["zero_snr"] = {"_class_name": "DDIMScheduler", "beta_schedule": "squaredcos_cap_v2",
                     "rescale_betas_zero_snr": True, "prediction_type": "v_prediction",
                     "timestep_spacing": "trailing", "lambda_min_clipped": -5.1}
    betas = (np.linspace(1e-4, 0.02, 1000) ** 1.1).tolist()
    c["trained"] = {"_class_name": "DDIMScheduler", "trained_betas": betas, "timestep_spacing": "trailing",
                    "clip_sample": True, "clip_sample_range": 2.5}
    c["dpm_saved"] = None
    return c


def write_configs(root):
    out = {}
    for name, cfg in configs().items():
        d = os.path.join(root, "configs", name)
        os.makedirs(d, exist_ok=True)
        if cfg is None:
            # A file as diffusers itself saves it (with `"lambda_min_clipped": -Infinity`).
            s = DPMSolverMultistepScheduler(**{k: v for k, v in SD.items() if k not in ("set_alpha_to_one", "clip_sample")},
                                            prediction_type="sample", timestep_spacing="leading",
                                            final_sigmas_type="sigma_min")
            s.save_config(d)
            with open(os.path.join(d, "scheduler_config.json")) as f:
                text = f.read()
            assert "-Infinity" in text
            cfg = json.loads(text)
        else:
            with open(os.path.join(d, "scheduler_config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
        out[name] = cfg
    return out


def make(sampler, cfg):
    s = SAMPLERS[sampler].from_config(cfg)
    if sampler == "dpmpp_2m":
        assert s.config.algorithm_type == "dpmsolver++" and s.config.solver_order == 2
        assert s.config.solver_type == "midpoint"
    return s


def trajectory(s, steps, noise, fixed):
    s.set_timesteps(steps)
    timesteps = s.timesteps.clone()
    x = noise * s.init_noise_sigma
    traj = [x]
    for i, t in enumerate(timesteps):
        inp = s.scale_model_input(x, t)
        m = 0.1 * inp + fixed * (1.0 / (1.0 + 0.1 * i))
        x = s.step(m, t, x).prev_sample
        traj.append(x)
    return timesteps, float(s.init_noise_sigma), torch.stack(traj)


def main():
    root = out_dir()
    cfgs = write_configs(root)
    noise = torch.randn(SHAPE, generator=seeded(1234))
    fixed = torch.randn(SHAPE, generator=seeded(99))
    tensors = {"noise": noise, "fixed": fixed}
    index = {"cases": [], "sweeps": [], "shape": list(SHAPE)}
    for cname, cfg in cfgs.items():
        for sampler in SAMPLERS:
            for steps in STEPS:
                case = f"{cname}/{sampler}/{steps}"
                ts, sigma0, traj = trajectory(make(sampler, cfg), steps, noise, fixed)
                assert torch.isfinite(traj).all(), case
                tensors[case + "/timesteps"] = ts
                tensors[case + "/traj"] = traj
                index["cases"].append(case)
                index[case] = {"config": cname, "sampler": sampler, "steps": steps,
                               "init_noise_sigma": sigma0, "timesteps_dtype": str(ts.dtype)}
            # Timesteps only, for many step counts. C++ DDIM rejects the counts where diffusers
            # would fail (a timestep reaching num_train_timesteps: leading + steps_offset) or
            # silently read alphas_cumprod[-1] (trailing gives a timestep -1 for e.g. n = 61).
            key = f"{cname}/{sampler}/sweep"
            done, rejected, parts = [], [], []
            s = make(sampler, cfg)
            for steps in SWEEP:
                s.set_timesteps(steps)
                if sampler == "ddim" and (int(s.timesteps.max()) >= s.config.num_train_timesteps
                                          or int(s.timesteps.min()) < 0):
                    rejected.append(steps)
                    continue
                done.append(steps)
                parts.append(s.timesteps.clone())
            tensors[key] = torch.cat(parts)
            index["sweeps"].append(key)
            index[key] = {"config": cname, "sampler": sampler, "steps": done, "rejected": rejected}
    save_tensors(os.path.join(root, "reference.safetensors"), tensors)
    with open(os.path.join(root, "reference.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"ref_samplers: {len(index['cases'])} trajectories, {len(index['sweeps'])} sweeps -> {root}")


if __name__ == "__main__":
    main()
