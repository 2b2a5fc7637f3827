// LocalGang: the shared state of an in-process gang (one LocalChannel per rank, usually one
// thread per rank). Internal to the local backend.
//
// There is no progress thread: the rank that completes a match does the copies. For a
// collective that is the last rank to issue it (it reads every rank's send buffer and writes
// every rank's recv buffer); for point to point the later of Send and Recv. Copies run outside
// the gang's lock; Abort and Leave wait for running copies, so that after they return nothing
// touches a rank's buffers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/channel/handle.h"
#include "runtime/channel/types.h"

namespace distri::channel::local {

enum class CollKind { kAllGather, kAllGatherV, kAllReduce, kBarrier };
const char* CollKindName(CollKind kind);

// One rank's part of a collective.
struct Contribution {
  CollKind kind = CollKind::kBarrier;
  ConstBuffer send;
  Buffer recv;
  std::vector<size_t> counts;  // kAllGatherV only
  std::shared_ptr<OpState> op;
};

class LocalGang {
 public:
  explicit LocalGang(int world_size);
  int world_size() const { return world_size_; }

  // Membership (used when ranks join through a rendezvous).
  Status Join(int rank, int world_size);
  // Waits until every rank has joined; on timeout the gang is failed for every member.
  Status WaitAllJoined(std::chrono::milliseconds timeout);

  // Collectives are matched by `seq`, the per-rank issue counter.
  void PostCollective(int rank, uint64_t seq, Contribution part);
  void PostSend(int src, int dst, uint32_t tag, ConstBuffer data, std::shared_ptr<OpState> op);
  void PostRecv(int dst, int src, uint32_t tag, Buffer data, std::shared_ptr<OpState> op);

  // Fails every pending and future operation of every rank with Aborted.
  void Abort(int rank, std::string_view reason);
  // `rank` destroys its channel: its own pending operations abort the gang; otherwise later
  // operations that need `rank` fail with Unavailable.
  void Leave(int rank);
  Status status() const;

 private:
  struct Slot {
    std::vector<Contribution> parts;
    int arrived = 0;
    Status error;  // set when the ranks disagree; later arrivals fail with it
  };
  struct PendingSend {
    ConstBuffer data;
    std::shared_ptr<OpState> op;
  };
  struct PendingRecv {
    Buffer data;
    std::shared_ptr<OpState> op;
  };
  struct P2pQueue {
    std::deque<PendingSend> sends;
    std::deque<PendingRecv> recvs;
  };
  using P2pKey = std::tuple<int, int, uint32_t>;  // src, dst, tag

  // All with mu_ held.
  void FailAllLocked(const Status& status);
  void WaitIdleLocked(std::unique_lock<std::mutex>& lock);
  bool HasPendingLocked(int rank) const;
  Status CheckMatchLocked(uint64_t seq, const Slot& slot, int rank) const;
  void Match(std::unique_lock<std::mutex>& lock, int src, int dst, uint32_t tag, PendingSend send,
             PendingRecv recv);

  void Execute(std::vector<Contribution>& parts);

  const int world_size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // joins and the end of copies
  Status failure_;
  std::vector<bool> joined_;
  std::vector<bool> closed_;
  int busy_ = 0;  // copies running outside mu_
  std::map<uint64_t, Slot> slots_;
  std::map<P2pKey, P2pQueue> p2p_;
};

}  // namespace distri::channel::local
