#include "runtime/common/env_var.h"

namespace distri {

bool ValidEnvName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<std::pair<std::string, std::string>> ParseEnvAssignment(std::string_view text, std::string_view what) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + ": expected NAME=VALUE, got '" + std::string(text) + "'");
  }
  std::string name(text.substr(0, eq)), value(text.substr(eq + 1));
  if (!ValidEnvName(name)) {
    return Status::InvalidArgument(std::string(what) + ": '" + name +
                                   "' is not an environment variable name (letters, digits and _, not starting "
                                   "with a digit)");
  }
  if (value.find('\0') != std::string::npos) {
    return Status::InvalidArgument(std::string(what) + ": the value of " + name + " contains a NUL byte");
  }
  return std::make_pair(std::move(name), std::move(value));
}

}  // namespace distri
