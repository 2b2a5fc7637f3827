#include "runtime/channel/local/local_gang.h"

#include <cstring>

#include "runtime/channel/deadline.h"
#include "runtime/channel/reduce.h"

namespace distri::channel::local {
namespace {

std::string Describe(const Contribution& c) {
  std::string out = CollKindName(c.kind);
  if (c.kind == CollKind::kBarrier) return out;
  out.append("(").append(DTypeName(c.send.dtype)).append(" x ").append(std::to_string(c.send.count));
  if (c.kind == CollKind::kAllGatherV) {
    out.append(", counts [");
    for (size_t i = 0; i < c.counts.size(); ++i) {
      if (i > 0) out.append(",");
      out.append(std::to_string(c.counts[i]));
    }
    out.append("]");
  }
  out.append(")");
  return out;
}

bool SameShape(const Contribution& a, const Contribution& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == CollKind::kBarrier) return true;
  if (a.send.dtype != b.send.dtype) return false;
  if (a.kind == CollKind::kAllGatherV) return a.counts == b.counts;
  return a.send.count == b.send.count;
}

}  // namespace

const char* CollKindName(CollKind kind) {
  switch (kind) {
    case CollKind::kAllGather: return "all_gather";
    case CollKind::kAllGatherV: return "all_gather_v";
    case CollKind::kAllReduce: return "all_reduce";
    case CollKind::kBarrier: return "barrier";
  }
  return "?";
}

LocalGang::LocalGang(int world_size)
    : world_size_(world_size),
      joined_(static_cast<size_t>(world_size), false),
      closed_(static_cast<size_t>(world_size), false) {}

Status LocalGang::Join(int rank, int world_size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (world_size != world_size_) {
    return Status::InvalidArgument("local channel: rank " + std::to_string(rank) +
                                   " has world_size " + std::to_string(world_size) +
                                   " but the gang was created with " + std::to_string(world_size_));
  }
  if (rank < 0 || rank >= world_size_) {
    return Status::InvalidArgument("local channel: rank " + std::to_string(rank) +
                                   " is outside world_size " + std::to_string(world_size_));
  }
  if (joined_[static_cast<size_t>(rank)]) {
    return Status::AlreadyExists("local channel: rank " + std::to_string(rank) +
                                 " joined the gang twice");
  }
  if (!failure_.ok()) return failure_;
  joined_[static_cast<size_t>(rank)] = true;
  cv_.notify_all();
  return Status::Ok();
}

Status LocalGang::WaitAllJoined(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto all = [&] {
    for (bool j : joined_) {
      if (!j) return false;
    }
    return true;
  };
  if (cv_.wait_until(lock, DeadlineAfter(timeout), [&] { return all() || !failure_.ok(); })) {
    return failure_;
  }
  std::string missing;
  for (size_t r = 0; r < joined_.size(); ++r) {
    if (!joined_[r]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
  }
  Status s = Status::DeadlineExceeded("local channel: ranks " + missing + " of " +
                                      std::to_string(world_size_) + " did not join within " +
                                      std::to_string(timeout.count()) + " ms");
  FailAllLocked(s);
  return s;
}

Status LocalGang::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

Status LocalGang::CheckMatchLocked(uint64_t seq, const Slot& slot, int rank) const {
  const Contribution& mine = slot.parts[static_cast<size_t>(rank)];
  for (size_t r = 0; r < slot.parts.size(); ++r) {
    const Contribution& other = slot.parts[r];
    if (!other.op || static_cast<int>(r) == rank) continue;
    if (!SameShape(other, mine)) {
      return Status::InvalidArgument(
          "collective #" + std::to_string(seq) + " does not match across ranks: rank " +
          std::to_string(r) + " issued " + Describe(other) + ", rank " + std::to_string(rank) +
          " issued " + Describe(mine) + " (every rank must issue the same collectives in the "
          "same order)");
    }
    break;  // the earlier arrivals already agree with each other
  }
  return Status::Ok();
}

void LocalGang::PostCollective(int rank, uint64_t seq, Contribution part) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!failure_.ok()) return part.op->Complete(failure_);
  for (int r = 0; r < world_size_; ++r) {
    if (closed_[static_cast<size_t>(r)]) {
      return part.op->Complete(Status::Unavailable("local channel: rank " + std::to_string(r) +
                                                   " has closed its channel; " + part.op->what() +
                                                   " cannot complete"));
    }
  }
  Slot& slot = slots_[seq];
  if (slot.parts.empty()) slot.parts.resize(static_cast<size_t>(world_size_));
  slot.parts[static_cast<size_t>(rank)] = std::move(part);
  ++slot.arrived;
  if (slot.error.ok()) slot.error = CheckMatchLocked(seq, slot, rank);
  if (!slot.error.ok()) {
    for (Contribution& c : slot.parts) {
      if (c.op) c.op->Complete(slot.error);
    }
    if (slot.arrived == world_size_) slots_.erase(seq);
    return;
  }
  if (slot.arrived < world_size_) return;
  std::vector<Contribution> parts = std::move(slot.parts);
  slots_.erase(seq);
  ++busy_;
  lock.unlock();
  Execute(parts);
  for (Contribution& c : parts) c.op->Complete(Status::Ok());
  lock.lock();
  --busy_;
  cv_.notify_all();
}

void LocalGang::Execute(std::vector<Contribution>& parts) {
  const CollKind kind = parts[0].kind;
  if (kind == CollKind::kBarrier) return;
  const size_t es = DTypeSize(parts[0].send.dtype);
  if (kind == CollKind::kAllReduce) {
    std::vector<const void*> in;
    std::vector<void*> out;
    for (const Contribution& c : parts) {
      in.push_back(c.send.data);
      out.push_back(c.recv.data);
    }
    ReduceSum(parts[0].send.dtype, in, out, parts[0].send.count);
    return;
  }
  // all_gather(_v): rank r's contribution lands at the same offset in every recv buffer.
  size_t offset = 0;
  for (const Contribution& src : parts) {
    const size_t bytes = src.send.count * es;
    for (const Contribution& dst : parts) {
      char* to = static_cast<char*>(dst.recv.data) + offset;
      if (bytes > 0 && to != src.send.data) std::memcpy(to, src.send.data, bytes);
    }
    offset += bytes;
  }
}

void LocalGang::PostSend(int src, int dst, uint32_t tag, ConstBuffer data,
                         std::shared_ptr<OpState> op) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!failure_.ok()) return op->Complete(failure_);
  if (closed_[static_cast<size_t>(dst)]) {
    return op->Complete(Status::Unavailable("local channel: rank " + std::to_string(dst) +
                                            " has closed its channel; " + op->what() +
                                            " cannot complete"));
  }
  const P2pKey key{src, dst, tag};
  P2pQueue& q = p2p_[key];
  if (q.recvs.empty()) {
    q.sends.push_back({data, std::move(op)});
    return;
  }
  PendingRecv recv = std::move(q.recvs.front());
  q.recvs.pop_front();
  if (q.sends.empty() && q.recvs.empty()) p2p_.erase(key);
  Match(lock, src, dst, tag, {data, std::move(op)}, std::move(recv));
}

void LocalGang::PostRecv(int dst, int src, uint32_t tag, Buffer data, std::shared_ptr<OpState> op) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!failure_.ok()) return op->Complete(failure_);
  if (closed_[static_cast<size_t>(src)]) {
    return op->Complete(Status::Unavailable("local channel: rank " + std::to_string(src) +
                                            " has closed its channel; " + op->what() +
                                            " cannot complete"));
  }
  const P2pKey key{src, dst, tag};
  P2pQueue& q = p2p_[key];
  if (q.sends.empty()) {
    q.recvs.push_back({data, std::move(op)});
    return;
  }
  PendingSend send = std::move(q.sends.front());
  q.sends.pop_front();
  if (q.sends.empty() && q.recvs.empty()) p2p_.erase(key);
  Match(lock, src, dst, tag, std::move(send), {data, std::move(op)});
}

void LocalGang::Match(std::unique_lock<std::mutex>& lock, int src, int dst, uint32_t tag,
                      PendingSend send, PendingRecv recv) {
  if (send.data.dtype != recv.data.dtype || send.data.count != recv.data.count) {
    const Status s = Status::InvalidArgument(
        "recv on rank " + std::to_string(dst) + " from rank " + std::to_string(src) + " tag " +
        std::to_string(tag) + ": expected " + std::to_string(recv.data.count) + " x " +
        DTypeName(recv.data.dtype) + ", the matching send has " + std::to_string(send.data.count) +
        " x " + DTypeName(send.data.dtype));
    send.op->Complete(s);
    recv.op->Complete(s);
    return;
  }
  ++busy_;
  lock.unlock();
  const size_t bytes = send.data.bytes();
  if (bytes > 0 && send.data.data != recv.data.data) {
    std::memcpy(recv.data.data, send.data.data, bytes);
  }
  send.op->Complete(Status::Ok());
  recv.op->Complete(Status::Ok());
  lock.lock();
  --busy_;
  cv_.notify_all();
}

void LocalGang::FailAllLocked(const Status& status) {
  if (failure_.ok()) failure_ = status;
  for (auto& [seq, slot] : slots_) {
    for (Contribution& c : slot.parts) {
      if (c.op) c.op->Complete(failure_);
    }
  }
  slots_.clear();
  for (auto& [key, q] : p2p_) {
    for (PendingSend& s : q.sends) s.op->Complete(failure_);
    for (PendingRecv& r : q.recvs) r.op->Complete(failure_);
  }
  p2p_.clear();
  cv_.notify_all();
}

void LocalGang::WaitIdleLocked(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return busy_ == 0; });
}

void LocalGang::Abort(int rank, std::string_view reason) {
  std::unique_lock<std::mutex> lock(mu_);
  FailAllLocked(Status::Aborted("channel aborted by rank " + std::to_string(rank) + ": " +
                                std::string(reason)));
  WaitIdleLocked(lock);
}

bool LocalGang::HasPendingLocked(int rank) const {
  for (const auto& [seq, slot] : slots_) {
    if (slot.error.ok() && slot.parts[static_cast<size_t>(rank)].op) return true;
  }
  for (const auto& [key, q] : p2p_) {
    const auto& [src, dst, tag] = key;
    if ((src == rank && !q.sends.empty()) || (dst == rank && !q.recvs.empty())) return true;
  }
  return false;
}

void LocalGang::Leave(int rank) {
  std::unique_lock<std::mutex> lock(mu_);
  if (HasPendingLocked(rank)) {
    FailAllLocked(Status::Aborted("channel aborted by rank " + std::to_string(rank) +
                                  ": its channel was destroyed with operations pending"));
  }
  closed_[static_cast<size_t>(rank)] = true;
  // Collectives already waiting can never complete now; neither can p2p with `rank`.
  const Status gone = Status::Unavailable("local channel: rank " + std::to_string(rank) +
                                          " has closed its channel");
  for (auto& [seq, slot] : slots_) {
    for (Contribution& c : slot.parts) {
      if (c.op) c.op->Complete(gone);
    }
  }
  slots_.clear();
  for (auto it = p2p_.begin(); it != p2p_.end();) {
    const auto& [src, dst, tag] = it->first;
    if (src == rank || dst == rank) {
      for (PendingSend& s : it->second.sends) s.op->Complete(gone);
      for (PendingRecv& r : it->second.recvs) r.op->Complete(gone);
      it = p2p_.erase(it);
    } else {
      ++it;
    }
  }
  WaitIdleLocked(lock);
}

}  // namespace distri::channel::local
