// torchrun-style launching without the actor runtime: each process of a gang is started with
//
//   DISTRI_RANK=<r> DISTRI_WORLD_SIZE=<n> DISTRI_MASTER_ADDR=<host> DISTRI_MASTER_PORT=<port>
//
// and rank 0 serves a TcpRendezvous on DISTRI_MASTER_ADDR:DISTRI_MASTER_PORT (binding to that
// address, so it must be one of rank 0's own), which the other ranks connect to.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtime/channel/rendezvous.h"
#include "runtime/common/status.h"

namespace distri::channel {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  std::string master_addr;
  uint16_t master_port = 0;
};

// Reads the four variables through `getenv` (std::getenv when empty). Errors name the variable
// and the bad value: missing, not a decimal integer, rank outside [0, world_size), world_size
// outside [1, kMaxWorldSize], port outside [1, 65535].
Result<LaunchEnv> ReadLaunchEnv(const std::function<const char*(const char*)>& getenv = {});

// The rendezvous of `env` (MakeTcpRendezvous with its rank, address and port).
Result<std::unique_ptr<Rendezvous>> ConnectLaunchRendezvous(const LaunchEnv& env,
                                                            std::chrono::milliseconds timeout);

}  // namespace distri::channel
