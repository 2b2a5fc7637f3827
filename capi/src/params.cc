#include "capi/src/params.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "capi/src/errors.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/limits.h"

namespace distri::capi {
namespace {

constexpr int kMaxCpuActors = 64;
constexpr size_t kMaxPathBytes = 4096;

std::string Field(const char* type, const char* field) { return std::string(type) + "." + field; }

}  // namespace

Status CheckStructSize(const char* type, uint32_t struct_size, size_t v1_size, size_t our_size) {
  if (struct_size == 0) {
    return Status::InvalidArgument(std::string(type) + ".struct_size is 0: call the struct's _init() function first");
  }
  if (struct_size < v1_size) {
    return Status::InvalidArgument(std::string(type) + ".struct_size is " + std::to_string(struct_size) +
                                   ", smaller than the first version of the struct (" +
                                   std::to_string(v1_size) + " bytes): not initialised with _init()?");
  }
  if (struct_size > our_size) {
    return Status::InvalidArgument(std::string(type) + ".struct_size is " + std::to_string(struct_size) +
                                   ", larger than this library's " + std::to_string(our_size) +
                                   " bytes: the program was built against a newer distri.h than "
                                   "libdistri " + std::string(distri_version()));
  }
  return Status::Ok();
}

bool IsValidUtf8(const char* data, size_t size) {
  const auto* s = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < size) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= size) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += n + 1;
  }
  return true;
}

Result<std::string> ReadString(const char* field, const char* s, size_t max_bytes, bool optional) {
  if (s == nullptr) {
    if (optional) return std::string();
    return Status::InvalidArgument(std::string(field) + ": required, got NULL");
  }
  // strnlen: never reads more than max_bytes + 1 bytes, whatever the caller passed.
  size_t n = strnlen(s, max_bytes + 1);
  if (n > max_bytes) {
    return Status::InvalidArgument(std::string(field) + ": longer than the limit of " + std::to_string(max_bytes) +
                                   " bytes");
  }
  if (!IsValidUtf8(s, n)) return Status::InvalidArgument(std::string(field) + ": not valid UTF-8");
  return std::string(s, n);
}

Result<wire::JobSpec> JobSpecFromParams(const distri_job_params_t* in) {
  static const char* kType = "distri_job_params_t";
  distri_job_params_t defaults, p;
  distri_job_params_init(&defaults);
  DISTRI_RETURN_IF_ERROR(ReadInput(kType, in, kJobParamsV1Size, defaults, &p));

  wire::JobSpec spec;
  DISTRI_ASSIGN_OR_RETURN(spec.prompt, ReadString(Field(kType, "prompt").c_str(), p.prompt, wire::kMaxPromptBytes, false));
  DISTRI_ASSIGN_OR_RETURN(spec.negative_prompt, ReadString(Field(kType, "negative_prompt").c_str(), p.negative_prompt,
                                                           wire::kMaxPromptBytes, true));
  auto check_range = [&](const char* field, uint64_t v, uint64_t lo, uint64_t hi) -> Status {
    if (v < lo || v > hi) {
      return Status::InvalidArgument(Field(kType, field) + ": must be " + std::to_string(lo) + ".." +
                                     std::to_string(hi) + ", got " + std::to_string(v));
    }
    return Status::Ok();
  };
  DISTRI_RETURN_IF_ERROR(check_range("width", p.width, 1, wire::kMaxImageSide));
  DISTRI_RETURN_IF_ERROR(check_range("height", p.height, 1, wire::kMaxImageSide));
  DISTRI_RETURN_IF_ERROR(check_range("steps", p.steps, 1, wire::kMaxSteps));
  DISTRI_RETURN_IF_ERROR(check_range("gpus", p.gpus, 0, wire::kMaxGangSize));
  DISTRI_RETURN_IF_ERROR(check_range("preview_every", p.preview_every, 0, wire::kMaxSteps));
  if (!std::isfinite(p.guidance) || p.guidance < 0) {
    return Status::InvalidArgument(Field(kType, "guidance") + ": must be a finite number >= 0, got " +
                                   std::to_string(p.guidance));
  }
  if (!std::isfinite(p.guidance_rescale) || p.guidance_rescale < 0 || p.guidance_rescale > 1) {
    return Status::InvalidArgument(Field(kType, "guidance_rescale") + ": must be a finite number in [0, 1], got " +
                                   std::to_string(p.guidance_rescale));
  }
  if (p.output_format != DISTRI_OUTPUT_PNG && p.output_format != DISTRI_OUTPUT_RGB8) {
    return Status::InvalidArgument(Field(kType, "output_format") + ": must be DISTRI_OUTPUT_PNG (0) or "
                                   "DISTRI_OUTPUT_RGB8 (1), got " + std::to_string(p.output_format));
  }
  DISTRI_ASSIGN_OR_RETURN(spec.sampler, ReadString(Field(kType, "sampler").c_str(), p.sampler, wire::kMaxNameBytes - 1, true));
  if (spec.sampler.empty()) spec.sampler = "default";
  DISTRI_ASSIGN_OR_RETURN(spec.model, ReadString(Field(kType, "model").c_str(), p.model, wire::kMaxNameBytes - 1, true));
  spec.width = p.width;
  spec.height = p.height;
  spec.steps = p.steps;
  spec.guidance = p.guidance;
  spec.guidance_rescale = p.guidance_rescale;
  if (!p.random_seed) spec.seed = p.seed;
  spec.gpus = p.gpus;
  spec.priority = p.priority;
  spec.preview_every = p.preview_every;
  spec.output_format = static_cast<wire::OutputFormat>(p.output_format);
  return spec;
}

Result<ConnectConfig> ConnectConfigFromParams(const distri_connect_params_t* in) {
  static const char* kType = "distri_connect_params_t";
  distri_connect_params_t defaults, p;
  distri_connect_params_init(&defaults);
  DISTRI_RETURN_IF_ERROR(ReadInput(kType, in, kConnectParamsV1Size, defaults, &p));

  ConnectConfig c;
  DISTRI_ASSIGN_OR_RETURN(c.address, ReadString(Field(kType, "address").c_str(), p.address, 1024, false));
  if (p.request_timeout_ms <= 0) {
    return Status::InvalidArgument(Field(kType, "request_timeout_ms") + ": must be > 0, got " +
                                   std::to_string(p.request_timeout_ms));
  }
  c.request_timeout_ms = p.request_timeout_ms;
  if (c.address == "fake://") return c;
  if (c.address.rfind("tcp://", 0) != 0 && c.address.rfind("ipc://", 0) != 0) {
    return Status::InvalidArgument(Field(kType, "address") + ": expected \"tcp://host:port\" (or \"fake://\"), got \"" +
                                   c.address + "\"");
  }
  DISTRI_ASSIGN_OR_RETURN(c.key_dir, ReadString(Field(kType, "key_dir").c_str(), p.key_dir, kMaxPathBytes, true));
  DISTRI_ASSIGN_OR_RETURN(c.server_public_key, ReadString(Field(kType, "server_public_key").c_str(), p.server_public_key, 64, true));
  DISTRI_ASSIGN_OR_RETURN(c.client_public_key, ReadString(Field(kType, "client_public_key").c_str(), p.client_public_key, 64, true));
  DISTRI_ASSIGN_OR_RETURN(c.client_secret_key, ReadString(Field(kType, "client_secret_key").c_str(), p.client_secret_key, 64, true));
  if (c.client_public_key.empty() != c.client_secret_key.empty()) {
    return Status::InvalidArgument(std::string(kType) + ": client_public_key and client_secret_key go together (set both or neither)");
  }
  struct { const char* field; const std::string& key; } keys[] = {
      {"server_public_key", c.server_public_key},
      {"client_public_key", c.client_public_key},
      {"client_secret_key", c.client_secret_key}};
  for (const auto& k : keys) {
    if (k.key.empty()) {
      if (!c.key_dir.empty()) continue;  // read from key_dir by the client
      return Status::InvalidArgument(Field(kType, k.field) + ": required (set it, or key_dir with head.pub and client.key)");
    }
    DISTRI_RETURN_IF_ERROR(wire::ValidateZ85Key(k.key, Field(kType, k.field)));
  }
  return c;
}

Result<LocalConfig> LocalConfigFromParams(const distri_local_params_t* in) {
  static const char* kType = "distri_local_params_t";
  distri_local_params_t defaults, p;
  distri_local_params_init(&defaults);
  DISTRI_RETURN_IF_ERROR(ReadInput(kType, in, kLocalParamsV1Size, defaults, &p));

  LocalConfig c;
  DISTRI_ASSIGN_OR_RETURN(c.model_path, ReadString(Field(kType, "model_path").c_str(), p.model_path, kMaxPathBytes, false));
  if (c.model_path.empty()) return Status::InvalidArgument(Field(kType, "model_path") + ": required, got \"\"");
  DISTRI_ASSIGN_OR_RETURN(c.dtype, ReadString(Field(kType, "dtype").c_str(), p.dtype, 16, true));
  if (c.dtype.empty()) c.dtype = "auto";
  if (c.dtype != "auto" && c.dtype != "fp32" && c.dtype != "fp16" && c.dtype != "bf16") {
    return Status::InvalidArgument(Field(kType, "dtype") + ": expected auto, fp32, fp16 or bf16, got \"" + c.dtype + "\"");
  }
  DISTRI_ASSIGN_OR_RETURN(c.worker_path, ReadString(Field(kType, "worker_path").c_str(), p.worker_path, kMaxPathBytes, true));
  DISTRI_ASSIGN_OR_RETURN(c.work_dir, ReadString(Field(kType, "work_dir").c_str(), p.work_dir, kMaxPathBytes, true));
  if (p.gpus < -1 || p.gpus > static_cast<int32_t>(wire::kMaxGpusPerNode)) {
    return Status::InvalidArgument(Field(kType, "gpus") + ": must be -1 (all) or 0.." +
                                   std::to_string(wire::kMaxGpusPerNode) + ", got " + std::to_string(p.gpus));
  }
  if (p.cpu_actors < -1 || p.cpu_actors > kMaxCpuActors) {
    return Status::InvalidArgument(Field(kType, "cpu_actors") + ": must be -1 (auto) or 0.." +
                                   std::to_string(kMaxCpuActors) + ", got " + std::to_string(p.cpu_actors));
  }
  if (p.gpus == 0 && p.cpu_actors == 0) {
    return Status::InvalidArgument(std::string(kType) + ": gpus = 0 and cpu_actors = 0 leave no actor to render");
  }
  if (p.startup_timeout_ms < -1 || p.startup_timeout_ms == 0) {
    return Status::InvalidArgument(Field(kType, "startup_timeout_ms") + ": must be > 0 or -1 (forever), got " +
                                   std::to_string(p.startup_timeout_ms));
  }
  if (p.request_timeout_ms <= 0) {
    return Status::InvalidArgument(Field(kType, "request_timeout_ms") + ": must be > 0, got " +
                                   std::to_string(p.request_timeout_ms));
  }
  c.gpus = p.gpus;
  c.cpu_actors = p.cpu_actors;
  c.startup_timeout_ms = p.startup_timeout_ms;
  c.request_timeout_ms = p.request_timeout_ms;
  return c;
}

}  // namespace distri::capi

extern "C" {

void distri_connect_params_init(distri_connect_params_t* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->struct_version = DISTRI_CONNECT_PARAMS_VERSION;
  p->request_timeout_ms = 30000;
}

void distri_local_params_init(distri_local_params_t* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->struct_version = DISTRI_LOCAL_PARAMS_VERSION;
  p->gpus = -1;
  p->cpu_actors = -1;
  p->startup_timeout_ms = 300000;
  p->request_timeout_ms = 30000;
}

void distri_job_params_init(distri_job_params_t* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->struct_version = DISTRI_JOB_PARAMS_VERSION;
  p->width = 1024;
  p->height = 1024;
  p->steps = 30;
  p->guidance = 5.0;
  p->output_format = DISTRI_OUTPUT_PNG;
}

void distri_cluster_info_init(distri_cluster_info_t* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->struct_version = DISTRI_CLUSTER_INFO_VERSION;
}

void distri_job_status_init(distri_job_status_t* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->struct_version = DISTRI_JOB_STATUS_VERSION;
  p->error = "";
}

void distri_image_info_init(distri_image_info_t* p) {
  if (p == nullptr) return;
  std::memset(p, 0, sizeof(*p));
  p->struct_size = sizeof(*p);
  p->struct_version = DISTRI_IMAGE_INFO_VERSION;
}

distri_status_t distri_job_params_validate(const distri_job_params_t* params) {
  return distri::capi::Guard("distri_job_params_validate",
                             [&] { return distri::capi::JobSpecFromParams(params).status(); });
}

}  // extern "C"
