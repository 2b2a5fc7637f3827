// UcxEngine: one UCX context + worker + endpoints to every rank, driven by one progress thread.
// Internal to the UCX backend.
//
// Threading: the worker is created in UCS_THREAD_MODE_SINGLE and, once Connect has started the
// progress thread, touched only by that thread. Other threads hand it work through Submit
// (operations) and Abort; the thread sleeps in poll(2) on the worker's event fd and an eventfd
// of ours when idle, so idle ranks cost no CPU.
//
// Failure: the first failure (Abort, a peer's broken connection) is sticky. It cancels every
// posted receive, force-closes every endpoint (completing posted sends with an error) and fails
// every operation, pending or future, with that status.
#pragma once

#include <ucp/api/ucp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "runtime/channel/deadline.h"
#include "runtime/common/status.h"

namespace distri::channel::ucx {

class UcxEngine;

// UCX tag layout (64 bits): class:2 | source rank:12 | payload:50.
//   point to point: payload = user tag (32 bits)
//   collective:     payload = sequence number (32 bits) << 18 | phase (18 bits)
// Receives match the whole tag, so the source rank is part of every match.
uint64_t P2pTag(int source, uint32_t tag);
uint64_t CollectiveTag(int source, uint64_t seq, uint32_t phase);

// One operation: a state machine over rounds of UCX requests, run on the progress thread.
class UcxOp {
 public:
  explicit UcxOp(std::string what) : what_(std::move(what)) {}
  virtual ~UcxOp() = default;
  const std::string& what() const { return what_; }

  // Posts the next round of requests (or does local work). Returns false when there is no
  // further round: the operation is then complete. Called first when the operation starts,
  // then each time every request of the previous round has completed successfully.
  virtual bool Step(UcxEngine& engine) = 0;

  // Called once with the final status, on the progress thread (or in Submit when the engine
  // has failed). Must be cheap and must not call back into the engine.
  std::function<void(Status)> on_done;

 private:
  friend class UcxEngine;
  const std::string what_;
  int outstanding_ = 0;
  Status error_;
};

class UcxEngine {
 public:
  // transports: UCX_TLS syntax, empty for UCX's own configuration.
  static Result<std::unique_ptr<UcxEngine>> Create(int rank, int world_size,
                                                   const std::string& transports);
  ~UcxEngine();
  UcxEngine(const UcxEngine&) = delete;
  UcxEngine& operator=(const UcxEngine&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const std::string& worker_address() const { return address_; }

  // Creates an endpoint to every rank (addresses[r] = rank r's worker address) and starts the
  // progress thread.
  Status Connect(const std::vector<std::string>& addresses);

  // Thread-safe. Starts `op` on the progress thread. If `ready` is set, the operation starts
  // only once ready() returns true (polled by the progress thread; used to wait for a device
  // to host copy).
  void Submit(std::unique_ptr<UcxOp> op, std::function<bool()> ready = {});
  // Thread-safe. Fails everything with `status` (sticky) and returns once no request of this
  // rank is in flight any more (bounded: at most `quiesce_timeout`).
  void Abort(Status status, std::chrono::milliseconds quiesce_timeout = std::chrono::seconds(10));
  // Thread-safe. OK or the sticky failure.
  Status failure() const;

  // Progress thread only (from UcxOp::Step). Errors while posting are recorded on the op.
  void PostSend(UcxOp& op, int peer, uint64_t tag, const void* data, size_t bytes);
  void PostRecv(UcxOp& op, int peer, uint64_t tag, void* data, size_t bytes);

 private:
  struct Request;  // one posted UCX request
  struct EpContext {
    UcxEngine* engine;
    int peer;
  };
  struct Pending {
    std::unique_ptr<UcxOp> op;
    std::function<bool()> ready;
  };

  UcxEngine(int rank, int world_size);
  static void OnSendDone(void* request, ucs_status_t status, void* user_data);
  static void OnRecvDone(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                         void* user_data);
  static void OnEndpointError(void* arg, ucp_ep_h ep, ucs_status_t status);

  void Run();
  void Wake();
  void Start(std::unique_ptr<UcxOp> op);
  void Advance(UcxOp* op);
  void Finish(UcxOp* op, Status status);
  void ProcessCompletions();
  void SetFailure(Status status);  // records; teardown happens in the loop
  void Teardown();                 // cancels and force-closes (progress thread)
  void CloseEndpoints(bool force, Clock::time_point deadline);

  const int rank_;
  const int world_size_;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int worker_efd_ = -1;
  int wake_fd_ = -1;
  std::string address_;
  std::vector<ucp_ep_h> eps_;
  std::vector<std::unique_ptr<EpContext>> ep_contexts_;

  // Progress thread state. UCX callbacks only queue into completed_; the loop processes it
  // outside ucp_worker_progress, so requests are freed and new ones posted from one place.
  std::unordered_set<Request*> requests_;
  std::vector<Request*> completed_;
  std::vector<UcxOp*> to_advance_;
  std::unordered_set<UcxOp*> ops_;
  std::vector<Pending> gated_;  // waiting for ready()
  bool torn_down_ = false;

  // Shared with other threads.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> submitted_;
  Status failure_;
  bool teardown_pending_ = false;
  bool quiescent_ = false;  // failed, and nothing of ours is in flight any more
  bool stop_ = false;
  std::thread thread_;
};

// "UCX error from rank 2: Connection reset by remote peer"
std::string UcsError(ucs_status_t status);

}  // namespace distri::channel::ucx
