// This rank's channels of a gang (docs/runtime-design.md, "Gangs and rendezvous" and "Kept
// gangs"): the whole-gang channel plus the per-CFG-group channels, made over the head's TCP
// rendezvous and kept by the actor host across the tasks of the same gang.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/channel/channel.h"
#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/task_messages.h"
#include "runtime/worker/task_executor.h"

namespace distri::worker {

struct GangChannelOptions {
  std::chrono::milliseconds connect_timeout{60'000};  // rendezvous + all ranks connected
  std::chrono::milliseconds op_timeout{600'000};      // each synchronous channel operation
  std::string ucx_transports;                         // ChannelOptions::ucx_transports
};

// Splits "tcp://host:port" (IPv6 hosts in brackets: "tcp://[::1]:7071"). Errors name the text.
Status ParseTcpAddress(const std::string& address, std::string* host, uint16_t* port);

// The rendezvous key prefix of a gang: "gang/<gang id hex>" (a new gang id per new gang).
std::string GangRendezvousPrefix(const wire::AssignTask& task);
// The prefix of CFG group `group`'s channel: "gang/<gang id hex>/group<group>".
std::string GroupRendezvousPrefix(const GangId& gang, int group);

class AbortableRendezvous;

// The channels of one rank of one gang. Connect makes the gang channel; Group channels are
// made on first use over the same rendezvous, whose client the set keeps (the head's
// rendezvous server lives as long as the head). Thread-safety: gang()/Group() from the task
// thread; Abort/aborted/status from any thread.
class GangChannelSet : public GangChannels {
 public:
  // Connects to the head's TCP rendezvous named by task.rendezvous and makes the channel of
  // task.channel_backend for task.rank of task.gang.size() (>= 2) ranks, waiting for every
  // rank (bounded by connect_timeout).
  // Errors: InvalidArgument (a gang of one, the rendezvous address or the backend name),
  // Unimplemented (backend not compiled in), DeadlineExceeded / Unavailable (a rank or the
  // rendezvous did not answer).
  static Result<std::unique_ptr<GangChannelSet>> Connect(const wire::AssignTask& task,
                                                        const GangChannelOptions& options);
  ~GangChannelSet() override;

  channel::Channel* gang() override { return gang_.get(); }
  Result<channel::Channel*> Group(int group, int rank, int size) override;

  // Aborts the gang channel and every group channel, also one being made now (its rendezvous
  // wait ends) or later (Group returns Aborted). Idempotent; the first reason is kept.
  void Abort(std::string_view reason);
  bool aborted() const;
  // OK, or the first failure among its channels (aborted, or broken: a peer died).
  Status status() const;

  const GangId& gang_id() const { return gang_id_; }
  uint32_t rank() const { return rank_; }
  int world_size() const { return world_; }
  const std::string& backend() const { return backend_; }
  // Group channels made so far (tests, logs).
  int group_channels() const;

 private:
  struct GroupChannel {
    int rank = 0, size = 0;
    std::unique_ptr<channel::Channel> channel;
  };
  GangChannelSet(const wire::AssignTask& task, GangChannelOptions options);

  const GangId gang_id_;
  const uint32_t rank_;
  const int world_;
  const std::string backend_;
  const std::string where_;  // "gang 1a2b3c4d rank 0/4 (ucx via tcp://...)" for errors
  const GangChannelOptions options_;
  std::unique_ptr<AbortableRendezvous> rendezvous_;
  std::unique_ptr<channel::Channel> gang_;
  mutable std::mutex mu_;
  std::optional<std::string> abort_reason_;  // mu_
  std::map<int, GroupChannel> groups_;       // mu_ (the map; channels are used unlocked)
};

}  // namespace distri::worker
