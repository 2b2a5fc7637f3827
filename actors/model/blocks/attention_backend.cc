#include "actors/model/blocks/attention_backend.h"

#include <ATen/SDPBackend.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

namespace distri::model {

namespace {
// The attention backends distri can call directly, per kind of attention.
enum class SdpaKind { kDefault, kFlash, kCudnn, kEfficient };

bool ParseSdpaKind(const std::string& name, SdpaKind* kind) {
  if (name == "default") {
    *kind = SdpaKind::kDefault;
  } else if (name == "flash") {
    *kind = SdpaKind::kFlash;
  } else if (name == "cudnn") {
    *kind = SdpaKind::kCudnn;
  } else if (name == "efficient") {
    *kind = SdpaKind::kEfficient;
  } else {
    return false;
  }
  return true;
}

// "NAME" (both kinds) or "SELF,CROSS".
bool ParseSdpaPreference(const std::string& text, SdpaKind* self, SdpaKind* cross) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos) {
    if (!ParseSdpaKind(text, self)) return false;
    *cross = *self;
    return true;
  }
  return ParseSdpaKind(text.substr(0, comma), self) && ParseSdpaKind(text.substr(comma + 1), cross);
}

struct SdpaPreference {
  SdpaPreference() {
    const char* e = std::getenv("DISTRI_SDPA_BACKEND");
    if (e != nullptr && *e != '\0') {
      SdpaKind s, c;
      TORCH_CHECK(ParseSdpaPreference(e, &s, &c), "DISTRI_SDPA_BACKEND=", e,
                  ": unknown attention backend (default, flash, cudnn or efficient; or SELF,CROSS)");
      self.store(s);
      cross.store(c);
      name = e;
    }
  }
  std::atomic<SdpaKind> self{SdpaKind::kDefault}, cross{SdpaKind::kDefault};
  std::mutex mutex;  // guards name
  std::string name = "default";
};

SdpaPreference& Sdpa() {
  static SdpaPreference p;
  return p;
}

// Whether the fused backends can take these inputs directly (what their kernels need; anything
// else goes through LibTorch's dispatcher).
bool DirectSdpaEligible(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  auto ok = [&](const at::Tensor& t) {
    return t.is_cuda() && t.dim() == 4 && t.scalar_type() == q.scalar_type() && t.device() == q.device() &&
           t.stride(-1) == 1 && t.size(0) == q.size(0) && t.size(1) == q.size(1) && t.size(3) == q.size(3) &&
           !t.requires_grad();
  };
  const int64_t d = q.size(-1);
  return (q.scalar_type() == at::kHalf || q.scalar_type() == at::kBFloat16) && ok(q) && ok(k) && ok(v) &&
         k.size(2) == v.size(2) && k.size(2) > 0 && q.size(2) > 0 && d % 8 == 0 && d <= 128;
}
}  // namespace

at::Tensor ScaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool cross) {
  const SdpaKind kind = (cross ? Sdpa().cross : Sdpa().self).load(std::memory_order_relaxed);
  if (kind != SdpaKind::kDefault && DirectSdpaEligible(q, k, v)) {
    switch (kind) {
      case SdpaKind::kFlash:
        return std::get<0>(at::_scaled_dot_product_flash_attention(q, k, v));
      case SdpaKind::kCudnn:
        return std::get<0>(at::_scaled_dot_product_cudnn_attention(q, k, v, std::nullopt, /*compute_log_sumexp=*/false));
      case SdpaKind::kEfficient:
        return std::get<0>(at::_scaled_dot_product_efficient_attention(q, k, v, std::nullopt,
                                                                       /*compute_log_sumexp=*/false));
      case SdpaKind::kDefault:
        break;
    }
  }
  return at::scaled_dot_product_attention(q, k, v);
}

std::string SdpaBackend() {
  SdpaPreference& p = Sdpa();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.name;
}

bool SetSdpaBackend(const std::string& name) {
  SdpaKind self, cross;
  if (!ParseSdpaPreference(name, &self, &cross)) return false;
  SdpaPreference& p = Sdpa();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.self.store(self);
  p.cross.store(cross);
  p.name = name;
  return true;
}

std::string SdpaChoice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool cross) {
  const SdpaKind kind = (cross ? Sdpa().cross : Sdpa().self).load(std::memory_order_relaxed);
  if (kind != SdpaKind::kDefault && DirectSdpaEligible(q, k, v)) {
    return kind == SdpaKind::kFlash ? "flash_attention"
           : kind == SdpaKind::kCudnn ? "cudnn_attention" : "efficient_attention";
  }
  switch (static_cast<at::SDPBackend>(at::_fused_sdp_choice(q, k, v))) {
    case at::SDPBackend::math: return "math";
    case at::SDPBackend::flash_attention: return "flash_attention";
    case at::SDPBackend::efficient_attention: return "efficient_attention";
    case at::SDPBackend::cudnn_attention: return "cudnn_attention";
    case at::SDPBackend::overrideable: return "overrideable";
    default: return "none";
  }
}

}  // namespace distri::model
