// Reading the versioned params structs of distri.h: size/version checks, defaults for fields an
// older caller does not know, range and UTF-8 validation, conversion to the runtime's types.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>

#include "capi/include/distri/distri.h"
#include "capi/src/backend.h"
#include "runtime/common/status.h"
#include "runtime/wire/types.h"

namespace distri::capi {

// Byte size of version 1 of each struct: a caller's struct_size must be at least this.
// (Later versions append fields; callers built against v1 keep passing the v1 size.)
inline constexpr size_t kConnectParamsV1Size = sizeof(distri_connect_params_t);
inline constexpr size_t kLocalParamsV1Size = sizeof(distri_local_params_t);
// distri_job_params_t grew in version 2 (preview_every, guidance_rescale): version 1 ends where
// preview_every begins.
inline constexpr size_t kJobParamsV1Size = offsetof(distri_job_params_t, preview_every);
static_assert(kJobParamsV1Size == offsetof(distri_job_params_t, progress_user_data) + sizeof(void*),
              "version 1 of distri_job_params_t ended with progress_user_data");
inline constexpr size_t kClusterInfoV1Size = sizeof(distri_cluster_info_t);
inline constexpr size_t kJobStatusV1Size = sizeof(distri_job_status_t);
inline constexpr size_t kImageInfoV1Size = sizeof(distri_image_info_t);

// Checks `struct_size` of a caller's struct named `type` against [v1_size, sizeof(T)].
Status CheckStructSize(const char* type, uint32_t struct_size, size_t v1_size, size_t our_size);

// Copies an input struct: starts from `defaults` (our _init) and overlays the caller's first
// struct_size bytes, so fields unknown to an older caller keep their defaults.
template <typename T>
Status ReadInput(const char* type, const T* in, size_t v1_size, const T& defaults, T* out) {
  if (in == nullptr) return Status::InvalidArgument(std::string(type) + " pointer is NULL");
  DISTRI_RETURN_IF_ERROR(CheckStructSize(type, in->struct_size, v1_size, sizeof(T)));
  *out = defaults;
  std::memcpy(out, in, in->struct_size);
  return Status::Ok();
}

// Writes an output struct: checks the caller's struct_size, then copies only that many bytes
// of `value`, keeping the caller's struct_size/struct_version.
template <typename T>
Status CheckOutput(const char* type, const T* out, size_t v1_size) {
  if (out == nullptr) return Status::Ok();
  return CheckStructSize(type, out->struct_size, v1_size, sizeof(T));
}
template <typename T>
void WriteOutput(T* out, const T& value) {
  if (out == nullptr) return;
  uint32_t size = out->struct_size, version = out->struct_version;
  std::memcpy(out, &value, size);
  out->struct_size = size;
  out->struct_version = version;
}

// A C string argument: InvalidArgument when it is NULL (and !optional), longer than
// `max_bytes`, or not valid UTF-8. NULL with optional gives "".
Result<std::string> ReadString(const char* field, const char* s, size_t max_bytes, bool optional);
bool IsValidUtf8(const char* data, size_t size);

// distri_job_params_t -> the wire's JobSpec, every field checked (the message names it).
Result<wire::JobSpec> JobSpecFromParams(const distri_job_params_t* params);
Result<ConnectConfig> ConnectConfigFromParams(const distri_connect_params_t* params);
Result<LocalConfig> LocalConfigFromParams(const distri_local_params_t* params);

}  // namespace distri::capi
