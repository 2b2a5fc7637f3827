// `distri`: the single-process command (generate, model init, bench grow here in later issues).
//
//   distri generate --model DIR --prompt TEXT [...] --out FILE.png
//                          renders one image in this process (one device)
//   distri model init --arch sdxl-tiny|sd15-tiny|sdxl|sd15 OUT_DIR
//                          writes a random-weight model folder in diffusers' layout
//   distri version         versions of distri and its libraries
//   distri info            devices this process can use
//   distri smoke [--device D] [--dtype T]
//                          runs a tiny conv + attention block and checks it against fp64 on CPU
#include <CLI/CLI.hpp>

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>

#include "actors/cli/progress_bar.h"
#include "actors/common/torch_util.h"
#include "actors/pipeline/model_init.h"
#include "actors/pipeline/model_presets.h"
#include "actors/pipeline/pipeline.h"
#include "runtime/common/png.h"
#include "runtime/common/device_info.h"
#include "runtime/common/logging.h"

namespace {

int RunSmoke(const std::string& device_text, const std::string& dtype_text) {
  auto device = distri::ParseDevice(device_text);
  if (!device.ok()) {
    std::cerr << "distri smoke: " << device.status().message() << "\n";
    return 2;
  }
  auto dtype = distri::ParseDtype(dtype_text);
  if (!dtype.ok()) {
    std::cerr << "distri smoke: " << dtype.status().message() << "\n";
    return 2;
  }
  at::manual_seed(0);
  // A 3x3 conv followed by scaled-dot-product self-attention over the pixels: the two ops the
  // UNet spends its time in.
  at::Tensor x = at::randn({2, 8, 16, 16}, at::kDouble);
  at::Tensor w = at::randn({8, 8, 3, 3}, at::kDouble) * 0.1;
  auto run = [&](const at::Tensor& xi, const at::Tensor& wi) {
    at::Tensor h = at::conv2d(xi, wi, {}, 1, 1);
    at::Tensor t = h.flatten(2).transpose(1, 2).unsqueeze(1);  // [B, 1, HW, C]
    return at::scaled_dot_product_attention(t, t, t);
  };
  at::Tensor ref = run(x, w);
  at::Tensor out = run(x.to(*device, *dtype), w.to(*device, *dtype)).to(at::kCPU, at::kDouble);
  double err = ((out - ref).norm() / ref.norm()).item<double>();
  double tol = *dtype == at::kFloat ? 1e-5 : 2e-2;
  std::printf("smoke: device=%s dtype=%s relative error vs fp64 CPU = %.3g (tolerance %.1g): %s\n",
              device->str().c_str(), distri::DtypeName(*dtype).c_str(), err, tol,
              err <= tol ? "OK" : "FAILED");
  return err <= tol ? 0 : 1;
}

struct GenerateArgs {
  std::string model, out = "out.png", device = "auto", dtype = "auto", variant;
  distri::pipeline::GenerateParams params;
  bool quiet = false;
};

int RunGenerate(GenerateArgs a) {
  if (a.model.empty()) {
    std::cerr << "distri generate: --model DIR is required (make a tiny one: distri model init --arch sdxl-tiny DIR)\n";
    return 2;
  }
  auto device = distri::ParseDevice(a.device);
  if (!device.ok()) {
    std::cerr << "distri generate: --device: " << device.status().message() << "\n";
    return 2;
  }
  // auto: fp16 on GPUs (the VAE decodes in fp32 where fp16 overflows), fp32 on CPUs.
  std::string dtype_name = a.dtype == "auto" ? (device->is_cuda() ? "fp16" : "fp32") : a.dtype;
  auto dtype = distri::ParseDtype(dtype_name);
  if (!dtype.ok()) {
    std::cerr << "distri generate: --dtype: " << dtype.status().message() << "\n";
    return 2;
  }
  distri::pipeline::LoadOptions lo;
  lo.device = *device;
  lo.dtype = *dtype;
  lo.variant = a.variant;
  auto pipe = distri::pipeline::Pipeline::Load(a.model, lo);
  if (!pipe.ok()) {
    std::cerr << "distri generate: " << pipe.status().ToString() << "\n";
    return 1;
  }
  distri::cli::ProgressBar bar("denoising");
  auto result = (*pipe)->Generate(a.params, [&](int i, int n) {
    if (!a.quiet) bar.Update(i, n);
    return true;
  });
  bar.Finish();
  if (!result.ok()) {
    std::cerr << "distri generate: " << result.status().ToString() << "\n";
    return 1;
  }
  const auto& p = a.params;
  auto png = distri::EncodePng(result->image, {{"prompt", p.prompt}, {"negative_prompt", p.negative_prompt},
                                               {"seed", std::to_string(p.seed)}, {"steps", std::to_string(p.steps)},
                                               {"guidance", std::to_string(p.guidance)}, {"sampler", p.sampler},
                                               {"model", a.model}, {"software", "distri " DISTRI_VERSION_STRING}});
  if (!png.ok()) {
    std::cerr << "distri generate: " << png.status().ToString() << "\n";
    return 1;
  }
  if (auto s = distri::WriteFile(a.out, *png); !s.ok()) {
    std::cerr << "distri generate: " << s.ToString() << "\n";
    return 1;
  }
  if (!a.quiet) {
    std::fprintf(stderr, "wrote %s (%dx%d): text %.2f s, denoise %.2f s, decode %.2f s\n", a.out.c_str(),
                 result->image.width, result->image.height, result->seconds_text, result->seconds_denoise,
                 result->seconds_decode);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  distri::SetLogRole("distri");
  CLI::App app{"distri: diffusion rendering on one or many GPUs"};
  app.require_subcommand(1);
  auto* version = app.add_subcommand("version", "Print versions");
  auto* info = app.add_subcommand("info", "Print the devices this process can use");
  auto* smoke = app.add_subcommand("smoke", "Run a tiny conv+attention check on a device");
  std::string device = "auto", dtype = "fp32";
  smoke->add_option("--device", device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  smoke->add_option("--dtype", dtype, "fp32, fp16 or bf16")->capture_default_str();

  GenerateArgs gen;
  auto* generate = app.add_subcommand("generate", "Render one image in this process");
  generate->add_option("--model", gen.model, "Model folder in diffusers' layout")->required();
  generate->add_option("--prompt,-p", gen.params.prompt, "Prompt");
  generate->add_option("--negative-prompt,-n", gen.params.negative_prompt, "Negative prompt");
  generate->add_option("--height,-H", gen.params.height, "Image height in pixels, a multiple of 8 (default: the model's)");
  generate->add_option("--width,-W", gen.params.width, "Image width in pixels, a multiple of 8 (default: the model's)");
  generate->add_option("--steps,-s", gen.params.steps, "Denoising steps")->capture_default_str();
  generate->add_option("--guidance,-g", gen.params.guidance, "Classifier-free guidance scale")->capture_default_str();
  generate->add_option("--seed", gen.params.seed, "Noise seed")->capture_default_str();
  generate->add_option("--sampler", gen.params.sampler, "default (the model's scheduler), ddim, euler, dpmpp_2m")
      ->capture_default_str();
  generate->add_option("--clip-skip", gen.params.clip_skip, "Skip the last N text encoder layers")->capture_default_str();
  generate->add_option("--dtype", gen.dtype, "auto, fp32, fp16 or bf16")->capture_default_str();
  generate->add_option("--device", gen.device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  generate->add_option("--variant", gen.variant, "Weight file variant to prefer, e.g. fp16");
  generate->add_option("--out,-o", gen.out, "Output PNG file")->capture_default_str();
  generate->add_flag("--quiet,-q", gen.quiet, "No progress bar");

  auto* model = app.add_subcommand("model", "Model folders");
  model->require_subcommand(1);
  auto* init = model->add_subcommand("init", "Write a random-weight model folder in diffusers' layout");
  distri::pipeline::ModelInitOptions init_opts;
  std::string init_dir, init_dtype = "fp32";
  init->add_option("--arch", init_opts.arch, "sdxl-tiny, sd15-tiny, sdxl or sd15")
      ->check(CLI::IsMember(distri::pipeline::PresetNames()))->capture_default_str();
  init->add_option("--seed", init_opts.seed, "Weight seed")->capture_default_str();
  init->add_option("--dtype", init_dtype, "Weight dtype in the files: fp32, fp16 or bf16")->capture_default_str();
  bool config_only = false;
  init->add_flag("--config-only", config_only, "Write only model_index.json and the config files");
  init->add_option("out_dir", init_dir, "Folder to write")->required();

  CLI11_PARSE(app, argc, argv);

  if (generate->parsed()) return RunGenerate(gen);
  if (init->parsed()) {
    auto dt = distri::ParseDtype(init_dtype);
    if (!dt.ok()) {
      std::cerr << "distri model init: --dtype: " << dt.status().message() << "\n";
      return 2;
    }
    init_opts.dtype = *dt;
    init_opts.fp16_variant_name = *dt == at::kHalf;
    distri::Status s = config_only ? distri::pipeline::WritePresetConfigs(init_opts.arch, init_dir)
                                   : distri::pipeline::InitRandomModel(init_dir, init_opts);
    if (!s.ok()) {
      std::cerr << "distri model init: " << s.ToString() << "\n";
      return 1;
    }
    std::printf("wrote a random-weight %s model to %s\n", init_opts.arch.c_str(), init_dir.c_str());
    return 0;
  }

  if (version->parsed()) {
    std::printf("distri %s\n%s\n", DISTRI_VERSION_STRING, distri::TorchInfo().c_str());
    return 0;
  }
  if (info->parsed()) {
    std::printf("%s\n%s\n", distri::TorchInfo().c_str(), distri::QueryDeviceInfo().ToString().c_str());
    return 0;
  }
  if (smoke->parsed()) return RunSmoke(device, dtype);
  return 0;
}
