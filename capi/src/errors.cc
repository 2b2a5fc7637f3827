#include "capi/src/errors.h"

namespace distri::capi {
namespace {
// One message per thread (errno-style); the pointer handed out by distri_last_error stays
// valid until this thread's next call, which is when it may be overwritten.
thread_local std::string t_last_error;
}  // namespace

distri_status_t SetLastError(const char* function, const Status& status) {
  if (status.ok()) {
    t_last_error.clear();
    return DISTRI_OK;
  }
  try {
    t_last_error = std::string(function) + ": " + status.message();
  } catch (...) {
    t_last_error.clear();  // out of memory while formatting: the code still says what failed
  }
  return static_cast<distri_status_t>(status.code());
}

const char* LastErrorMessage() { return t_last_error.c_str(); }

}  // namespace distri::capi
