// `distri launch`: a torchrun-like launcher for multi-process gangs without the actor runtime.
//
//   distri launch --nproc N [--master-addr 127.0.0.1] [--master-port P] -- COMMAND [ARGS...]
//
// Starts N copies of COMMAND on this machine with DISTRI_RANK=r, DISTRI_LOCAL_RANK=r,
// DISTRI_WORLD_SIZE=N, DISTRI_MASTER_ADDR, DISTRI_MASTER_PORT (a free port when P is 0) in
// their environment (runtime/channel/launch_env.h), e.g. `distri launch --nproc 4 -- distri
// generate --model M --device cuda ...`. Waits for all; when one fails, the others get SIGTERM
// (SIGKILL 10 s later) so that no rank waits forever for a dead peer. Exit status: 0 when all
// succeed, else the first failure's (128 + signal for a killed rank). For several machines,
// run the children yourself with the same variables (rank 0's address as MASTER_ADDR).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace distri::cli {

struct LaunchArgs {
  int nproc = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  std::vector<std::string> command;
};

void AddLaunchOptions(CLI::App& cmd, LaunchArgs& args);
int RunLaunch(const LaunchArgs& args);

}  // namespace distri::cli
