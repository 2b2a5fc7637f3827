// Versions, status names, errors, logging, buffers and the handle tables.
#include <string>

#include "capi/include/distri/distri.h"
#include "capi/src/errors.h"
#include "capi/src/handles.h"
#include "runtime/common/logging.h"

#define DISTRI_STR_(x) #x
#define DISTRI_STR(x) DISTRI_STR_(x)

namespace distri::capi {

// Leaked on purpose: handles may be destroyed from atexit handlers or other static
// destructors, after function-local statics would have been torn down.
HandleTable<distri_client>& Clients() {
  static auto* t = new HandleTable<distri_client>();
  return *t;
}
HandleTable<distri_job>& Jobs() {
  static auto* t = new HandleTable<distri_job>();
  return *t;
}
HandleTable<distri_buffer>& Buffers() {
  static auto* t = new HandleTable<distri_buffer>();
  return *t;
}

namespace {
template <typename T>
Status CheckLive(HandleTable<T>& table, const T* p, const char* arg, const char* kind) {
  if (p == nullptr) return Status::InvalidArgument(std::string(arg) + " is NULL");
  if (!table.Contains(p)) {
    return Status::InvalidArgument(std::string(arg) + " is not a live " + kind + " (already destroyed?)");
  }
  return Status::Ok();
}
}  // namespace

Status CheckHandle(const distri_client* p, const char* arg) { return CheckLive(Clients(), p, arg, "distri_client_t"); }
Status CheckHandle(const distri_job* p, const char* arg) { return CheckLive(Jobs(), p, arg, "distri_job_t"); }
Status CheckHandle(const distri_buffer* p, const char* arg) { return CheckLive(Buffers(), p, arg, "distri_buffer_t"); }

distri_buffer_t* NewBuffer(std::string bytes) {
  auto* b = new distri_buffer{std::move(bytes)};
  Buffers().Add(b);
  return b;
}

void ClientState::Close() {
  std::unique_ptr<Backend> backend;
  {
    std::lock_guard<std::mutex> lock(mu_);
    backend = std::move(backend_);
  }
  backend.reset();  // outside the lock: stopping an embedded cluster takes a while
}

}  // namespace distri::capi

using distri::capi::Buffers;

extern "C" {

const char* distri_version(void) {
  return DISTRI_STR(DISTRI_VERSION_MAJOR) "." DISTRI_STR(DISTRI_VERSION_MINOR) "." DISTRI_STR(DISTRI_VERSION_PATCH);
}
uint32_t distri_version_number(void) { return DISTRI_VERSION_NUMBER; }
uint32_t distri_abi_version(void) { return DISTRI_ABI_VERSION; }

const char* distri_status_name(distri_status_t status) {
  switch (status) {
    case DISTRI_OK: return "OK";
    case DISTRI_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case DISTRI_ERR_NOT_FOUND: return "NOT_FOUND";
    case DISTRI_ERR_ALREADY_EXISTS: return "ALREADY_EXISTS";
    case DISTRI_ERR_IO: return "IO";
    case DISTRI_ERR_PARSE: return "PARSE";
    case DISTRI_ERR_UNAVAILABLE: return "UNAVAILABLE";
    case DISTRI_ERR_CANCELLED: return "CANCELLED";
    case DISTRI_ERR_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case DISTRI_ERR_INTERNAL: return "INTERNAL";
    case DISTRI_ERR_UNIMPLEMENTED: return "UNIMPLEMENTED";
    case DISTRI_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case DISTRI_ERR_ABORTED: return "ABORTED";
    case DISTRI_ERR_PERMISSION_DENIED: return "PERMISSION_DENIED";
    case DISTRI_ERR_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    default: return "UNKNOWN";
  }
}

const char* distri_last_error(void) { return distri::capi::LastErrorMessage(); }

const char* distri_job_state_name(int32_t state) {
  switch (state) {
    case DISTRI_JOB_PENDING: return "PENDING";
    case DISTRI_JOB_SCHEDULED: return "SCHEDULED";
    case DISTRI_JOB_RUNNING: return "RUNNING";
    case DISTRI_JOB_SUCCEEDED: return "SUCCEEDED";
    case DISTRI_JOB_FAILED: return "FAILED";
    case DISTRI_JOB_CANCELLED: return "CANCELLED";
    default: return "UNKNOWN";
  }
}

distri_status_t distri_log_set_level(int32_t level) {
  return distri::capi::Guard("distri_log_set_level", [&]() -> distri::Status {
    if (level < DISTRI_LOG_DEBUG || level > DISTRI_LOG_OFF) {
      return distri::Status::InvalidArgument("level: must be DISTRI_LOG_DEBUG (0) .. DISTRI_LOG_OFF (4), got " +
                                             std::to_string(level));
    }
    distri::SetLogLevel(static_cast<distri::LogLevel>(level));
    static const char* kNames[] = {"debug", "info", "warning", "error", "off"};
    // Worker processes read it from the environment.
    setenv("DISTRI_LOG_LEVEL", kNames[level], 1);
    return distri::Status::Ok();
  });
}

const uint8_t* distri_buffer_data(const distri_buffer_t* buffer) {
  if (buffer == nullptr || !Buffers().Contains(buffer)) return nullptr;
  return reinterpret_cast<const uint8_t*>(buffer->bytes.data());
}

size_t distri_buffer_size(const distri_buffer_t* buffer) {
  if (buffer == nullptr || !Buffers().Contains(buffer)) return 0;
  return buffer->bytes.size();
}

void distri_buffer_destroy(distri_buffer_t* buffer) {
  if (buffer == nullptr) return;
  if (Buffers().Remove(buffer)) delete buffer;
}

}  // extern "C"
