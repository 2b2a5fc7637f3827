// `distri`: the command without the actor runtime.
//
//   distri generate --model DIR --prompt TEXT [...] --out FILE.png [--gpus N]
//                          renders one image in this process, on one device or N GPUs
//                          (actors/cli/generate_command.h)
//   distri launch --nproc N -- COMMAND ...
//                          torchrun-like multi-process launch (actors/cli/launch_command.h)
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

#include "actors/cli/generate_command.h"
#include "actors/cli/launch_command.h"
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

  distri::cli::GenerateArgs gen;
  auto* generate = app.add_subcommand("generate", "Render one image on one device or a gang of ranks");
  distri::cli::AddGenerateOptions(*generate, gen);
  distri::cli::LaunchArgs launch;
  auto* launch_cmd = app.add_subcommand("launch", "Start N ranks of a command (torchrun-like), e.g. -- distri generate ...");
  distri::cli::AddLaunchOptions(*launch_cmd, launch);

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

  if (generate->parsed()) return distri::cli::RunGenerate(gen);
  if (launch_cmd->parsed()) return distri::cli::RunLaunch(launch);
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
