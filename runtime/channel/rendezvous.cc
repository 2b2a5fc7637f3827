#include "runtime/channel/rendezvous.h"

#include <algorithm>
#include <cstdio>

#include "runtime/channel/deadline.h"

namespace distri::channel {

Status CheckRendezvousKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("rendezvous key is empty");
  if (key.size() > kMaxRendezvousKeyBytes) {
    return Status::InvalidArgument("rendezvous key of " + std::to_string(key.size()) +
                                   " bytes is longer than the limit of " +
                                   std::to_string(kMaxRendezvousKeyBytes));
  }
  for (size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x21 || c > 0x7e) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", c);
      return Status::InvalidArgument(std::string("rendezvous key has the byte ") + hex +
                                     " at offset " + std::to_string(i) +
                                     " (keys are printable ASCII without spaces)");
    }
  }
  return Status::Ok();
}

Status CheckRendezvousValue(std::string_view key, size_t value_bytes) {
  if (value_bytes > kMaxRendezvousValueBytes) {
    return Status::InvalidArgument("rendezvous value for '" + std::string(key) + "' has " +
                                   std::to_string(value_bytes) + " bytes, more than the limit of " +
                                   std::to_string(kMaxRendezvousValueBytes));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> RendezvousAllGather(Rendezvous& rendezvous,
                                                     std::string_view prefix, int rank,
                                                     int world_size, std::string_view blob,
                                                     std::chrono::milliseconds timeout) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return Status::InvalidArgument("rendezvous all-gather: rank " + std::to_string(rank) +
                                   " is outside world_size " + std::to_string(world_size));
  }
  auto key_of = [&](int r) { return std::string(prefix) + "/" + std::to_string(r); };
  DISTRI_RETURN_IF_ERROR(rendezvous.Put(key_of(rank), blob));
  const auto deadline = DeadlineAfter(timeout);
  std::vector<std::string> blobs(static_cast<size_t>(world_size));
  blobs[static_cast<size_t>(rank)] = std::string(blob);
  for (int r = 0; r < world_size; ++r) {
    if (r == rank) continue;
    auto value = rendezvous.Get(key_of(r), TimeLeft(deadline));
    if (!value.ok()) {
      return value.status().WithContext("rendezvous all-gather: waiting for rank " +
                                        std::to_string(r) + " of " + std::to_string(world_size));
    }
    blobs[static_cast<size_t>(r)] = std::move(value).value();
  }
  return blobs;
}

Status MemoryRendezvous::Put(std::string_view key, std::string_view value) {
  DISTRI_RETURN_IF_ERROR(CheckRendezvousKey(key));
  DISTRI_RETURN_IF_ERROR(CheckRendezvousValue(key, value.size()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (values_.find(key) != values_.end()) {
      return Status::AlreadyExists("rendezvous key '" + std::string(key) + "' already has a value");
    }
    values_.emplace(std::string(key), std::string(value));
  }
  cv_.notify_all();
  return Status::Ok();
}

Result<std::string> MemoryRendezvous::Get(std::string_view key, std::chrono::milliseconds timeout) {
  DISTRI_RETURN_IF_ERROR(CheckRendezvousKey(key));
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = DeadlineAfter(timeout);
  while (true) {
    auto it = values_.find(key);
    if (it != values_.end()) return it->second;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      it = values_.find(key);
      if (it != values_.end()) return it->second;
      return Status::DeadlineExceeded("rendezvous key '" + std::string(key) +
                                      "' was not put within " + std::to_string(timeout.count()) +
                                      " ms");
    }
  }
}

}  // namespace distri::channel
