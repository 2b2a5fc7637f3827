// JobQueue: PENDING jobs waiting for a gang. Higher priority first; FIFO (acceptance order)
// within a priority. A job re-queued after a failure keeps its acceptance order, so it goes
// back ahead of the jobs accepted after it. Not thread-safe (the head's server thread).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "runtime/common/ids.h"

namespace distri::head {

class JobQueue {
 public:
  // Adds a job; false (and no change) when it is already queued.
  bool Push(const JobId& id, int32_t priority, int64_t sequence);
  // Removes a job (cancellation, or placed on a gang); false when it was not queued.
  bool Remove(const JobId& id);
  bool Contains(const JobId& id) const { return index_.count(id) != 0; }
  // Jobs ahead of `id` (0 = next), or nullopt when it is not queued.
  std::optional<uint32_t> Position(const JobId& id) const;
  // Every queued job, first to run first.
  std::vector<JobId> InOrder() const;
  size_t size() const { return index_.size(); }
  bool empty() const { return index_.empty(); }

 private:
  struct Key {
    int64_t neg_priority;  // ascending order = descending priority
    int64_t sequence;
    JobId id;
    auto operator<=>(const Key&) const = default;
  };
  std::set<Key> order_;
  std::unordered_map<JobId, Key> index_;
};

}  // namespace distri::head
