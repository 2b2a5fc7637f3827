// `distri`: the single-process command (generate, model init, bench grow here in later issues).
//
//   distri version         versions of distri and its libraries
//   distri info            devices this process can use
//   distri smoke [--device D] [--dtype T]
//                          runs a tiny conv + attention block and checks it against fp64 on CPU
#include <CLI/CLI.hpp>

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>

#include "actors/common/torch_util.h"
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
  CLI11_PARSE(app, argc, argv);

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
