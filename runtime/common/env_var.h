// Environment variable assignments handed to child processes (actors, remote nodes).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "runtime/common/status.h"

namespace distri {

// A portable variable name: letters, digits and '_', not starting with a digit.
bool ValidEnvName(std::string_view name);

// "NAME=VALUE" (the first '=' separates; VALUE may be empty or hold more '='s) into its parts;
// InvalidArgument naming `what` (a flag, a config key) for a bad name or a NUL in the value.
Result<std::pair<std::string, std::string>> ParseEnvAssignment(std::string_view text, std::string_view what);

}  // namespace distri
