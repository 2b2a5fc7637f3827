// Error plumbing of the C ABI: every entry point runs its body inside Guard(), which turns a
// Status, a C++ exception or a std::bad_alloc into a distri_status_t plus the calling
// thread's message (distri_last_error). Nothing thrown ever crosses the boundary (ONNX
// Runtime's rule).
#pragma once

#include <exception>
#include <new>
#include <string>
#include <utility>

#include "capi/include/distri/distri.h"
#include "runtime/common/status.h"

namespace distri::capi {

// Records `status` as this thread's last error (prefixed with the function name) and
// returns its code; an OK status clears the message and returns DISTRI_OK.
distri_status_t SetLastError(const char* function, const Status& status);
// The thread's current message (never null).
const char* LastErrorMessage();

// Runs `body` (returning Status) and converts its outcome. Never throws.
template <typename Body>
distri_status_t Guard(const char* function, Body&& body) noexcept {
  try {
    return SetLastError(function, body());
  } catch (const std::bad_alloc&) {
    return SetLastError(function, Status::OutOfMemory("out of memory"));
  } catch (const std::exception& e) {
    return SetLastError(function, Status::Internal(std::string("unexpected exception: ") + e.what()));
  } catch (...) {
    return SetLastError(function, Status::Internal("unexpected non-standard exception"));
  }
}

// For entry points without a status result (getters, destroy): runs `body`, and on any
// exception records it as the last error and returns `fallback`.
template <typename T, typename Body>
T GuardValue(const char* function, T fallback, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    SetLastError(function, Status::OutOfMemory("out of memory"));
  } catch (const std::exception& e) {
    SetLastError(function, Status::Internal(std::string("unexpected exception: ") + e.what()));
  } catch (...) {
    SetLastError(function, Status::Internal("unexpected non-standard exception"));
  }
  return fallback;
}

}  // namespace distri::capi
