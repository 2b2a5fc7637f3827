// Standalone TCP rendezvous (like torch's TCPStore): rank 0 serves a write-once key-value store
// on host:port, every rank (rank 0 too) is a client. For tests and for launching gangs without
// the actor runtime (launch_env.h reads DISTRI_MASTER_ADDR / DISTRI_MASTER_PORT).
//
// Security: the server trusts nobody. Frames are length-checked before allocation (keys <= 512
// bytes, values <= 1 MiB, the whole store <= max_store_bytes), a malformed frame gets an error
// response and its connection is closed, a connection that stalls mid-frame is dropped, and the
// number of connections is bounded. There is no authentication: bind to an address only the
// gang can reach (the default 127.0.0.1 for single-machine runs).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel/rendezvous.h"
#include "runtime/channel/socket_util.h"

namespace distri::channel {

struct TcpRendezvousServerOptions {
  size_t max_connections = 1024;
  size_t max_store_bytes = size_t{64} << 20;
  // A connection that has sent part of a frame and then nothing for this long is dropped.
  std::chrono::milliseconds frame_timeout{10'000};
  // GETs wait at most this long on the server, whatever the client asked.
  std::chrono::milliseconds max_get_timeout{600'000};
};

class TcpRendezvousServer {
 public:
  // Binds and listens on host:port (port 0: a free port, see port()). Serving starts with
  // Start(); between the two, connections queue in the backlog (so a test can fork clients).
  static Result<std::unique_ptr<TcpRendezvousServer>> Listen(
      const std::string& host, uint16_t port, TcpRendezvousServerOptions options = {});
  ~TcpRendezvousServer();  // stops serving and closes every connection

  uint16_t port() const { return port_; }
  const std::string& host() const { return host_; }
  // The listening socket (e.g. for a forked child to close its copy).
  int listen_fd() const { return listen_fd_.get(); }
  // Starts the serving thread. Idempotent.
  Status Start();

  // Drops every key that starts with `prefix` (e.g. "gang/<id>/" once the head released that
  // gang), freeing its bytes of max_store_bytes; GETs already parked on such a key keep
  // waiting for a new PUT. Thread-safe; takes effect at the serving thread's next turn.
  void ErasePrefix(std::string prefix);

  // Counters for tests and logs.
  uint64_t erased_keys() const { return erased_keys_.load(); }
  uint64_t malformed_frames() const { return malformed_frames_.load(); }
  uint64_t dropped_connections() const { return dropped_connections_.load(); }

 private:
  TcpRendezvousServer(std::string host, uint16_t port, Fd listen_fd, Fd wake_read, Fd wake_write,
                      TcpRendezvousServerOptions options);
  void Serve();

  const std::string host_;
  const uint16_t port_;
  Fd listen_fd_;
  Fd wake_read_, wake_write_;
  const TcpRendezvousServerOptions options_;
  std::mutex start_mu_;
  std::thread thread_;
  std::mutex erase_mu_;
  std::vector<std::string> erase_pending_;  // erase_mu_
  std::atomic<uint64_t> erased_keys_{0};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> malformed_frames_{0};
  std::atomic<uint64_t> dropped_connections_{0};
};

// A client of a TcpRendezvousServer. Thread-safe (one request at a time on its connection).
// A broken connection is re-opened on the next call.
class TcpRendezvousClient : public Rendezvous {
 public:
  // Connects, retrying until `timeout` (rank 0 may not be listening yet).
  static Result<std::unique_ptr<TcpRendezvousClient>> Connect(const std::string& host,
                                                              uint16_t port,
                                                              std::chrono::milliseconds timeout);
  Status Put(std::string_view key, std::string_view value) override;
  Result<std::string> Get(std::string_view key, std::chrono::milliseconds timeout) override;

  // Bound on sending a request and on the server's reply beyond the GET's own timeout.
  void set_io_timeout(std::chrono::milliseconds t) { io_timeout_ = t; }

 private:
  TcpRendezvousClient(std::string host, uint16_t port, Fd fd);
  // Sends one request and reads its response; returns the OK payload or the server's error.
  Result<std::string> Call(uint8_t op, std::string_view key, std::string_view value,
                           Clock::time_point deadline);

  const std::string host_;
  const uint16_t port_;
  std::mutex mu_;
  Fd fd_;
  std::chrono::milliseconds io_timeout_{30'000};
};

// Rank 0 listens on host:port and serves; every rank, rank 0 included, connects to host:port.
// The returned Rendezvous owns the server on rank 0, so rank 0 must keep it until every rank
// is done with the rendezvous (MakeChannel ends with a barrier, which guarantees it).
Result<std::unique_ptr<Rendezvous>> MakeTcpRendezvous(int rank, const std::string& host,
                                                      uint16_t port,
                                                      std::chrono::milliseconds connect_timeout);

}  // namespace distri::channel
