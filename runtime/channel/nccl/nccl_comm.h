// NcclComm: the NCCL communicator of one channel and everything that touches it, shared by
// the channel and its operations (Handles may outlive the channel). Internal to nccl/.
//
// Locking: one mutex serializes every NCCL call and every enqueue on the communication
// stream (NCCL communicators are not thread-safe). The communicator is non-blocking: NCCL
// may finish an enqueue in the background (ncclInProgress), and nothing may be queued on the
// stream before it is done, so the issuing thread polls ncclCommGetAsyncError under the lock,
// bounded by op_timeout and ended at once by Fail (which raises a flag before taking the lock,
// so Abort from another thread never waits behind a stuck enqueue).
//
// Send/Recv are deferred: they are queued here and launched together in one NCCL group
// (ncclGroupStart/End) when the next collective is issued or any operation is waited on.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/channel/deadline.h"
#include "runtime/channel/handle.h"
#include "runtime/channel/nccl/nccl_util.h"
#include "runtime/channel/types.h"

namespace distri::channel::nccl {

class NcclOpState;

class NcclComm : public std::enable_shared_from_this<NcclComm> {
 public:
  // Creates the communication stream (non-blocking, highest priority) on `device` and the
  // non-blocking communicator (ncclCommInitRankConfig, blocking = 0), polling until it is
  // ready. DeadlineExceeded (and the half-made communicator aborted) when `deadline` passes.
  // zero_sm: the communicator's CTA policy is NCCL_CTA_POLICY_ZERO (ChannelOptions::nccl_zero_sm).
  static Result<std::shared_ptr<NcclComm>> Create(const ncclUniqueId& id, int rank, int world_size,
                                                  int device, std::chrono::milliseconds op_timeout,
                                                  Clock::time_point deadline, bool zero_sm = false);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int device() const { return device_; }
  EventPool& events() { return events_; }

  // OK, or the sticky failure.
  Status failure() const;

  // Enqueues NCCL work on `comm` / `stream` (the communicator and the communication stream):
  // returns what the NCCL call(s) returned.
  using Enqueue = std::function<ncclResult_t(ncclComm_t comm, cudaStream_t stream)>;

  // A collective: the communication stream waits for the work queued on `caller_stream`
  // before the call (an event), then `enqueue` runs, then a completion event is recorded.
  // Pending Sends/Recvs are launched first (issue order). With use_caller_stream false the
  // operation depends on nothing but the communication stream (Barrier).
  Handle Collective(std::string what, cudaStream_t caller_stream, bool use_caller_stream,
                    const Enqueue& enqueue);
  // A Send or Recv of count > 0 elements: orders itself after `caller_stream` now (an event)
  // and is queued until the next launch point (see the header comment).
  Handle PointToPoint(std::string what, bool is_send, int peer, void* data, size_t count,
                      DType dtype, cudaStream_t caller_stream);
  // A 1-element all-reduce on the communication stream.
  Handle Barrier(std::string what);
  // Launches the queued Sends/Recvs as one group. Errors also fail the queued operations.
  Status Flush();

  // Channel::AllocateCollectiveMemory: ncclMemAlloc + ncclCommWindowRegister (symmetric),
  // polled to completion within op_timeout. A null pointer when the communicator has no
  // symmetric-memory support. The deleter synchronizes the device, deregisters the window
  // (skipped once the communicator is gone: destroying or aborting it releases its windows)
  // and frees the memory.
  Result<std::shared_ptr<void>> AllocateWindow(size_t bytes);

  // Non-blocking check of ncclCommGetAsyncError (skipped when another thread holds the
  // lock: it polls the same error). An error fails the channel with Unavailable.
  void CheckAsyncError();

  // Records `status` as the sticky failure (the first one wins), fails every queued
  // operation with it, and aborts the communicator (ncclCommAbort) so that device work stuck
  // on a peer ends; then waits (at most 10 s) for the communication stream to drain.
  // `local`: the failure started on this rank, so the failure listener (the peer monitor) is
  // told. Thread-safe; returns at once when a failure is already recorded.
  void Fail(Status status, bool local);
  void SetFailureListener(std::function<void(const Status&)> listener);

  // Connects every pair for Send/Recv (NCCL connects peers lazily, which would make the first
  // Send/Recv of a pair block its issuing thread until the peer issues its side) and runs a
  // barrier, waiting until `deadline`.
  Status WarmUp(Clock::time_point deadline);

  // The channel's destruction: when nothing is pending and no failure happened, the
  // communicator is finalized and destroyed (ncclCommFinalize + ncclCommDestroy, bounded);
  // otherwise it is aborted. Either way the sticky failure becomes Aborted(reason) (for
  // Handles that outlive the channel). Returns true for the clean path.
  bool Shutdown(const std::string& reason);

 private:
  struct PendingP2p {
    std::shared_ptr<NcclOpState> state;
    bool is_send;
    int peer;
    void* data;
    size_t count;
    DType dtype;
    cudaEvent_t ready;
    cudaStream_t origin;  // the caller's stream when captured, else nullptr
  };

  NcclComm(int rank, int world_size, int device, std::chrono::milliseconds op_timeout);

  // First failure wins: false when one was recorded already.
  bool SetFailure(const Status& status);
  void FailLocked(const Status& status, bool local);
  void FailPendingLocked(const Status& status);
  void SettleInflightLocked(const Status& status);
  void AbortCommLocked();
  void DeregisterWindow(ncclWindow_t window);
  // Polls a non-blocking NCCL call's result until it is no longer ncclInProgress.
  Status AwaitLocked(ncclResult_t result, const std::string& call, Clock::time_point deadline);
  Status FlushLocked();
  // Checks for an Abort/failure and for an active capture on the communication stream that
  // an eager operation would be swallowed by. Sets *captured for `caller_stream`.
  Status PrepareLocked(cudaStream_t caller_stream, bool use_caller_stream, bool* captured);
  // Records a completion event on the communication stream and hands it to `state`.
  Status FinishLaunchLocked(const std::shared_ptr<NcclOpState>& state, cudaStream_t origin);

  const int rank_;
  const int world_size_;
  const int device_;
  // Bound on an enqueue; WarmUp widens it to the connect deadline while the ranks wire up (a
  // channel with a short op_timeout must still be able to connect).
  std::chrono::milliseconds op_timeout_;
  EventPool events_;

  mutable std::mutex mu_;               // NCCL calls, the stream, pending_
  ncclComm_t comm_ = nullptr;           // null once aborted or destroyed
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;             // world_size + 1 int32: barrier and warm-up
  std::vector<PendingP2p> pending_;
  bool pending_captured_ = false;
  // Launched operations not yet seen complete. A failure settles each of them before the
  // communicator is aborted (an abort makes broken kernels finish, which must not pass for
  // success): complete events give OK, the others the failure.
  std::vector<std::weak_ptr<NcclOpState>> inflight_;

  mutable std::mutex failure_mu_;
  Status failure_;
  std::atomic<bool> failing_{false};
  std::function<void(const Status&)> listener_;  // under failure_mu_
};

}  // namespace distri::channel::nccl
