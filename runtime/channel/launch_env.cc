#include "runtime/channel/launch_env.h"

#include <charconv>
#include <cstdlib>

#include "runtime/channel/channel.h"
#include "runtime/channel/tcp_rendezvous.h"

namespace distri::channel {
namespace {

Result<long long> ReadInt(const std::function<const char*(const char*)>& getenv, const char* name,
                          long long lo, long long hi) {
  const char* value = getenv(name);
  if (value == nullptr || *value == '\0') {
    return Status::InvalidArgument(std::string(name) + " is not set");
  }
  const std::string_view text(value);
  long long out = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(std::string(name) + "='" + std::string(text.substr(0, 64)) +
                                   "' is not a decimal integer");
  }
  if (out < lo || out > hi) {
    return Status::InvalidArgument(std::string(name) + "=" + std::to_string(out) +
                                   " is outside [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "]");
  }
  return out;
}

}  // namespace

Result<LaunchEnv> ReadLaunchEnv(const std::function<const char*(const char*)>& getenv_fn) {
  const std::function<const char*(const char*)> getenv =
      getenv_fn ? getenv_fn : [](const char* n) -> const char* { return std::getenv(n); };
  LaunchEnv env;
  DISTRI_ASSIGN_OR_RETURN(const long long world, ReadInt(getenv, "DISTRI_WORLD_SIZE", 1, kMaxWorldSize));
  DISTRI_ASSIGN_OR_RETURN(const long long rank, ReadInt(getenv, "DISTRI_RANK", 0, kMaxWorldSize));
  if (rank >= world) {
    return Status::InvalidArgument("DISTRI_RANK=" + std::to_string(rank) +
                                   " must be less than DISTRI_WORLD_SIZE=" + std::to_string(world));
  }
  const char* addr = getenv("DISTRI_MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    return Status::InvalidArgument("DISTRI_MASTER_ADDR is not set");
  }
  env.master_addr = addr;
  if (env.master_addr.size() > 255) {
    return Status::InvalidArgument("DISTRI_MASTER_ADDR is longer than 255 characters");
  }
  DISTRI_ASSIGN_OR_RETURN(const long long port, ReadInt(getenv, "DISTRI_MASTER_PORT", 1, 65535));
  env.rank = static_cast<int>(rank);
  env.world_size = static_cast<int>(world);
  env.master_port = static_cast<uint16_t>(port);
  return env;
}

Result<std::unique_ptr<Rendezvous>> ConnectLaunchRendezvous(const LaunchEnv& env,
                                                            std::chrono::milliseconds timeout) {
  return MakeTcpRendezvous(env.rank, env.master_addr, env.master_port, timeout);
}

}  // namespace distri::channel
