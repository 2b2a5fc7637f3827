#include "runtime/head/job_queue.h"

#include <iterator>

namespace distri::head {

bool JobQueue::Push(const JobId& id, int32_t priority, int64_t sequence) {
  if (index_.count(id) != 0) return false;
  const Key key{-static_cast<int64_t>(priority), sequence, id};
  order_.insert(key);
  index_.emplace(id, key);
  return true;
}

bool JobQueue::Remove(const JobId& id) {
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  order_.erase(it->second);
  index_.erase(it);
  return true;
}

std::optional<uint32_t> JobQueue::Position(const JobId& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  // Linear in the queue length: queues are short (thousands at most) and this serves GetJob.
  return static_cast<uint32_t>(std::distance(order_.begin(), order_.find(it->second)));
}

std::vector<JobId> JobQueue::InOrder() const {
  std::vector<JobId> out;
  out.reserve(order_.size());
  for (const Key& k : order_) out.push_back(k.id);
  return out;
}

}  // namespace distri::head
