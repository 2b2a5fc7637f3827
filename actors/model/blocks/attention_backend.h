// Which fused attention kernel runs the UNet's attention on GPUs (the text encoders' causal
// attention always goes through LibTorch's dispatcher).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace distri::model {

// softmax(q k^T / sqrt(d)) v, q [B, h, Nq, d], k/v [B, h, Nk, d] (strided views are fine),
// `cross`: a cross-attention (keys from the text). By default this is
// at::scaled_dot_product_attention, whose dispatcher picks the backend (LibTorch 2.11 puts
// cuDNN's fused attention first on H100/H200). A preference calls one backend's kernel directly
// for CUDA fp16/bf16 inputs with head dim <= 128 (a multiple of 8): "flash", "cudnn",
// "efficient", or "SELF,CROSS" for self- and cross-attention separately (e.g. "cudnn,flash");
// other inputs (CPU, fp32) always go through the dispatcher. Per call, no global state: threads
// driving several GPUs see the same choice. Set by DISTRI_SDPA_BACKEND (read once; an unknown
// name makes Pipeline::Load, or else the first attention, fail naming it), SetSdpaBackend or
// `distri generate --attention`; docs/perf/unet-sdxl-1024.md has the measurements.
at::Tensor ScaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     bool cross = false);
std::string SdpaBackend();
// Returns false (and changes nothing) for a name it does not know.
bool SetSdpaBackend(const std::string& name);
// The backend these inputs run on under the current preference ("flash_attention",
// "cudnn_attention", ...: the dispatcher's pick where no preference applies), for benchmarks.
std::string SdpaChoice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool cross = false);

}  // namespace distri::model
