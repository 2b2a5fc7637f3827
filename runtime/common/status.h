// Status and Result<T>: the one error type of distri (like Ray's Status / absl::StatusOr).
//
// Every fallible function returns Status or Result<T>. Messages say what was expected and what
// was found, and name the file / key / tensor involved. DISTRI_CHECK is only for broken
// internal invariants (it aborts); bad input from users or the network is always a Status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace distri {

// Values are stable: the C ABI maps them one to one (capi/include/distri/distri.h).
enum class StatusCode : int32_t {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kIoError = 4,
  kParseError = 5,
  kUnavailable = 6,
  kCancelled = 7,
  kDeadlineExceeded = 8,
  kInternal = 9,
  kUnimplemented = 10,
  kOutOfMemory = 11,
  kAborted = 12,
  kPermissionDenied = 13,
  kFailedPrecondition = 14,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status ParseError(std::string m) { return {StatusCode::kParseError, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
  static Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: height must be a multiple of 8, got 1001"
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

  bool operator==(const Status& o) const { return code_ == o.code_ && message_ == o.message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                 // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {           // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result constructed from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

namespace internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const std::string& msg);
inline const Status& ToStatus(const Status& s) { return s; }
template <typename T>
const Status& ToStatus(const Result<T>& r) { return r.status(); }
}  // namespace internal

}  // namespace distri

#define DISTRI_CONCAT_INNER_(a, b) a##b
#define DISTRI_CONCAT_(a, b) DISTRI_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` (Status or Result) is not OK.
#define DISTRI_RETURN_IF_ERROR(expr)                                      \
  do {                                                                    \
    const auto& _distri_s = (expr);                                       \
    if (!_distri_s.ok()) return ::distri::internal::ToStatus(_distri_s);  \
  } while (0)

// DISTRI_ASSIGN_OR_RETURN(auto x, Foo()); declares x from a Result or returns its Status.
#define DISTRI_ASSIGN_OR_RETURN(lhs, expr) \
  DISTRI_ASSIGN_OR_RETURN_IMPL_(DISTRI_CONCAT_(_distri_r_, __LINE__), lhs, expr)
#define DISTRI_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// For broken invariants only (programming errors); aborts with file:line and the message.
#define DISTRI_CHECK(cond, msg)                                               \
  do {                                                                        \
    if (!(cond)) ::distri::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)
