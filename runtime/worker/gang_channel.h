// Builds this rank's channel for a task (docs/runtime-design.md, "Gangs and rendezvous").
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/channel/channel.h"
#include "runtime/common/status.h"
#include "runtime/wire/task_messages.h"

namespace distri::worker {

struct GangChannelOptions {
  std::chrono::milliseconds connect_timeout{60'000};  // rendezvous + all ranks connected
  std::chrono::milliseconds op_timeout{600'000};      // each synchronous channel operation
  std::string ucx_transports;                         // ChannelOptions::ucx_transports
};

// Splits "tcp://host:port" (IPv6 hosts in brackets: "tcp://[::1]:7071"). Errors name the text.
Status ParseTcpAddress(const std::string& address, std::string* host, uint16_t* port);

// The rendezvous key prefix of a gang: "gang/<gang id hex>" (fresh per attempt).
std::string GangRendezvousPrefix(const wire::AssignTask& task);

// A gang of one: null (no channel). Otherwise connects to the head's TCP rendezvous named by
// task.rendezvous and makes the channel of task.channel_backend for task.rank of
// task.gang.size() ranks, waiting for every rank (bounded by connect_timeout).
// Errors: InvalidArgument (rendezvous address or backend name), Unimplemented (backend not
// compiled in), DeadlineExceeded / Unavailable (a rank or the rendezvous did not answer).
Result<std::unique_ptr<channel::Channel>> MakeGangChannel(const wire::AssignTask& task,
                                                          const GangChannelOptions& options);

}  // namespace distri::worker
