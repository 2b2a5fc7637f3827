// Rendezvous: how the ranks of a gang find each other before their Channel exists (UCX worker
// addresses, an NCCL unique id, the in-process gang id of the local backend).
//
// The runtime's head implements this interface for gangs it schedules; TcpRendezvous
// (tcp_rendezvous.h) is the standalone one for tests and torchrun-style launching;
// MemoryRendezvous is the in-process one (threads of one process, and the fake in tests).
//
// A rendezvous is a write-once key-value store shared by the ranks. Keys are printable ASCII
// (0x21-0x7e), 1..kMaxRendezvousKeyBytes long; values are at most kMaxRendezvousValueBytes.
// Implementations are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace distri::channel {

inline constexpr size_t kMaxRendezvousKeyBytes = 512;
inline constexpr size_t kMaxRendezvousValueBytes = size_t{1} << 20;  // 1 MiB

class Rendezvous {
 public:
  virtual ~Rendezvous() = default;
  // Stores `value` under `key`. AlreadyExists when the key already has a value;
  // InvalidArgument for a bad key or an oversized value; Unavailable when the store is gone.
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  // Returns the value of `key`, waiting until some rank puts it. DeadlineExceeded when
  // `timeout` passes first (the message names the key).
  virtual Result<std::string> Get(std::string_view key, std::chrono::milliseconds timeout) = 0;
};

// Key and value checks every implementation applies (messages name the key).
Status CheckRendezvousKey(std::string_view key);
Status CheckRendezvousValue(std::string_view key, size_t value_bytes);

// All-gather of one blob per rank: rank r puts `blob` under "<prefix>/<r>" and gets the others.
// Returns world_size blobs, index = rank. The deadline covers all the Gets together.
Result<std::vector<std::string>> RendezvousAllGather(Rendezvous& rendezvous,
                                                     std::string_view prefix, int rank,
                                                     int world_size, std::string_view blob,
                                                     std::chrono::milliseconds timeout);

// In-process rendezvous: a map under a mutex. Share one between the threads of a gang.
class MemoryRendezvous : public Rendezvous {
 public:
  Status Put(std::string_view key, std::string_view value) override;
  Result<std::string> Get(std::string_view key, std::chrono::milliseconds timeout) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace distri::channel
