#include "runtime/channel/nccl/nccl_comm.h"

#include <thread>

#include "runtime/channel/nccl/nccl_op.h"
#include "runtime/common/logging.h"

namespace distri::channel::nccl {
namespace {

// Spins briefly (enqueues and small collectives finish in microseconds), then sleeps.
void Backoff(int& round) {
  if (++round < 200) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

constexpr std::chrono::seconds kDrainBound{10};
constexpr std::chrono::seconds kFinalizeBound{5};

}  // namespace

NcclComm::NcclComm(int rank, int world_size, int device, std::chrono::milliseconds op_timeout)
    : rank_(rank), world_size_(world_size), device_(device), op_timeout_(op_timeout),
      events_(device) {}

Result<std::shared_ptr<NcclComm>> NcclComm::Create(const ncclUniqueId& id, int rank,
                                                   int world_size, int device,
                                                   std::chrono::milliseconds op_timeout,
                                                   Clock::time_point deadline, bool zero_sm) {
  DeviceScope scope(device);
  DISTRI_RETURN_IF_ERROR(scope.status());
  std::shared_ptr<NcclComm> c(new NcclComm(rank, world_size, device, op_timeout));
  int least = 0, greatest = 0;
  cudaError_t err = cudaDeviceGetStreamPriorityRange(&least, &greatest);
  if (err != cudaSuccess) return CudaError("cudaDeviceGetStreamPriorityRange", err);
  err = cudaStreamCreateWithPriority(&c->stream_, cudaStreamNonBlocking, greatest);
  if (err != cudaSuccess) return CudaError("cudaStreamCreateWithPriority", err);
  err = cudaMalloc(&c->scratch_, sizeof(int32_t) * static_cast<size_t>(world_size + 1));
  if (err != cudaSuccess) return CudaError("cudaMalloc (barrier scratch)", err);
  err = cudaMemset(c->scratch_, 0, sizeof(int32_t) * static_cast<size_t>(world_size + 1));
  if (err != cudaSuccess) return CudaError("cudaMemset (barrier scratch)", err);

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  if (zero_sm) config.CTAPolicy = NCCL_CTA_POLICY_ZERO;
  ncclResult_t r = ncclCommInitRankConfig(&c->comm_, world_size, id, rank, &config);
  int round = 0;
  while (r == ncclInProgress) {
    if (Clock::now() >= deadline) {
      ncclCommAbort(c->comm_);
      c->comm_ = nullptr;
      return Status::DeadlineExceeded(
          "nccl channel: the communicator of rank " + std::to_string(rank) + " of " +
          std::to_string(world_size) + " was not ready within connect_timeout (did every rank "
          "call MakeChannel with the nccl backend?)");
    }
    Backoff(round);
    if (ncclCommGetAsyncError(c->comm_, &r) != ncclSuccess) break;
  }
  if (r != ncclSuccess) {
    Status s = NcclError("ncclCommInitRankConfig", r, c->comm_);
    if (c->comm_ != nullptr) ncclCommAbort(c->comm_);
    c->comm_ = nullptr;
    return s;
  }
  return c;
}

NcclComm::~NcclComm() {
  DeviceScope scope(device_);
  if (comm_ != nullptr) ncclCommAbort(comm_);  // Shutdown not called (a failed MakeChannel)
  for (PendingP2p& p : pending_) events_.Release(p.ready);
  // No synchronization: a stream destroyed with work queued is released once it drains.
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  if (scratch_ != nullptr) cudaFree(scratch_);
}

Status NcclComm::failure() const {
  std::lock_guard<std::mutex> lock(failure_mu_);
  return failure_;
}

void NcclComm::SetFailureListener(std::function<void(const Status&)> listener) {
  std::lock_guard<std::mutex> lock(failure_mu_);
  listener_ = std::move(listener);
}

bool NcclComm::SetFailure(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(failure_mu_);
    if (!failure_.ok()) return false;
    failure_ = status;
  }
  failing_.store(true);
  return true;
}

void NcclComm::Fail(Status status, bool local) {
  if (!SetFailure(status)) return;
  // Tell the peers first: they stop waiting for this rank while it cleans up.
  std::function<void(const Status&)> listener;
  {
    std::lock_guard<std::mutex> lock(failure_mu_);
    listener = listener_;
  }
  if (local && listener) listener(status);
  std::lock_guard<std::mutex> lock(mu_);
  FailPendingLocked(status);
  SettleInflightLocked(status);
  AbortCommLocked();
}

void NcclComm::FailLocked(const Status& status, bool local) {
  if (SetFailure(status)) {
    std::function<void(const Status&)> listener;
    {
      std::lock_guard<std::mutex> lock(failure_mu_);
      listener = listener_;
    }
    if (local && listener) listener(status);
  }
  FailPendingLocked(failure());
  SettleInflightLocked(failure());
  AbortCommLocked();
}

void NcclComm::FailPendingLocked(const Status& status) {
  for (PendingP2p& p : pending_) {
    p.state->Complete(status);
    events_.Release(p.ready);
  }
  pending_.clear();
}

void NcclComm::SettleInflightLocked(const Status& status) {
  for (auto& weak : inflight_) {
    if (auto state = weak.lock()) state->Settle(status);
  }
  inflight_.clear();
}

void NcclComm::AbortCommLocked() {
  if (comm_ == nullptr) return;
  DeviceScope scope(device_);
  ncclCommAbort(comm_);
  comm_ = nullptr;
  // After the abort NCCL's kernels return; wait for them so that nothing touches the
  // callers' buffers once Abort returns (bounded: work that the caller's streams hold back
  // is not ours to wait for forever).
  if (IsCapturing(stream_).value_or(true)) return;
  const auto deadline = Clock::now() + kDrainBound;
  int round = 0;
  while (cudaStreamQuery(stream_) == cudaErrorNotReady) {
    if (Clock::now() >= deadline) {
      DISTRI_LOG(WARNING) << "nccl channel of rank " << rank_
                          << ": the communication stream did not drain within 10 s of the abort";
      return;
    }
    Backoff(round);
  }
}

Status NcclComm::AwaitLocked(ncclResult_t result, const std::string& call,
                             Clock::time_point deadline) {
  int round = 0;
  while (result == ncclInProgress) {
    if (failing_.load()) return failure();
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          call + ": NCCL did not finish enqueueing within op_timeout (" +
          std::to_string(op_timeout_.count()) + " ms); a peer may be missing");
    }
    Backoff(round);
    const ncclResult_t q = ncclCommGetAsyncError(comm_, &result);
    if (q != ncclSuccess) result = q;
  }
  if (result != ncclSuccess) return NcclError(call, result, comm_);
  return Status::Ok();
}

Status NcclComm::PrepareLocked(cudaStream_t caller_stream, bool use_caller_stream,
                               bool* captured) {
  if (Status f = failure(); !f.ok()) return f;
  if (comm_ == nullptr) return Status::Aborted("nccl channel: the communicator is gone");
  *captured = false;
  if (use_caller_stream) {
    DISTRI_ASSIGN_OR_RETURN(*captured, IsCapturing(caller_stream));
  }
  if (!*captured) {
    DISTRI_ASSIGN_OR_RETURN(const bool comm_captured, IsCapturing(stream_));
    if (comm_captured) {
      return Status::FailedPrecondition(
          "a CUDA graph capture that includes this channel's stream is in progress: issue the "
          "channel's operations on a capturing stream until the capture ends");
    }
  }
  return Status::Ok();
}

Status NcclComm::FinishLaunchLocked(const std::shared_ptr<NcclOpState>& state,
                                    cudaStream_t origin) {
  DISTRI_ASSIGN_OR_RETURN(cudaEvent_t done, events_.Acquire());
  const cudaError_t err = cudaEventRecordWithFlags(done, stream_, cudaEventRecordDefault);
  if (err != cudaSuccess) {
    events_.Release(done);
    return CudaError("cudaEventRecordWithFlags (completion)", err);
  }
  state->SetLaunched(done, origin);
  if (origin == nullptr) {
    if (inflight_.size() >= 64) {
      std::erase_if(inflight_, [](const std::weak_ptr<NcclOpState>& w) {
        auto s = w.lock();
        return s == nullptr || s->done();
      });
    }
    inflight_.push_back(state);
  }
  return Status::Ok();
}

Handle NcclComm::Collective(std::string what, cudaStream_t caller_stream,
                            bool use_caller_stream, const Enqueue& enqueue) {
  auto state = std::make_shared<NcclOpState>(what, shared_from_this());
  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  if (!scope.status().ok()) return Handle::Completed(scope.status().WithContext(what), what);
  bool captured = false;
  if (Status s = PrepareLocked(caller_stream, use_caller_stream, &captured); !s.ok()) {
    return Handle::Completed(s.WithContext(what), what);
  }
  // From here on, a failure leaves this rank out of step with its peers (NCCL matches
  // collectives by issue order): it fails the channel.
  auto fail = [&](const Status& s) {
    FailLocked(s.WithContext(what), /*local=*/true);
    return Handle::Completed(failure(), what);
  };
  if (Status s = FlushLocked(); !s.ok()) return fail(s);
  if (use_caller_stream) {
    auto ready = events_.Acquire();
    if (!ready.ok()) return fail(ready.status());
    cudaError_t err = cudaEventRecordWithFlags(*ready, caller_stream, cudaEventRecordDefault);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(stream_, *ready, 0);
    events_.Release(*ready);
    if (err != cudaSuccess) return fail(CudaError("ordering after the caller's stream", err));
  }
  const ncclResult_t r = enqueue(comm_, stream_);
  if (Status s = AwaitLocked(r, what, DeadlineAfter(op_timeout_)); !s.ok()) {
    if (s.code() == StatusCode::kDeadlineExceeded) {
      FailLocked(Status::Aborted(s.message() + "; the channel was aborted"), /*local=*/true);
      return Handle::Completed(
          Status::DeadlineExceeded(s.message() + "; the channel was aborted"), what);
    }
    return fail(s);
  }
  if (Status s = FinishLaunchLocked(state, captured ? caller_stream : nullptr); !s.ok()) {
    return fail(s);
  }
  return Handle(state);
}

Handle NcclComm::Barrier(std::string what) {
  void* buf = scratch_;
  return Collective(std::move(what), nullptr, /*use_caller_stream=*/false,
                    [buf](ncclComm_t comm, cudaStream_t stream) {
                      return ncclAllReduce(buf, buf, 1, ncclInt32, ncclSum, comm, stream);
                    });
}

Handle NcclComm::PointToPoint(std::string what, bool is_send, int peer, void* data,
                              size_t count, DType dtype, cudaStream_t caller_stream) {
  auto state = std::make_shared<NcclOpState>(what, shared_from_this());
  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  if (!scope.status().ok()) return Handle::Completed(scope.status().WithContext(what), what);
  bool captured = false;
  if (Status s = PrepareLocked(caller_stream, /*use_caller_stream=*/true, &captured); !s.ok()) {
    return Handle::Completed(s.WithContext(what), what);
  }
  auto fail = [&](const Status& s) {
    FailLocked(s.WithContext(what), /*local=*/true);
    return Handle::Completed(failure(), what);
  };
  // One group is either captured or not.
  if (!pending_.empty() && pending_captured_ != captured) {
    if (Status s = FlushLocked(); !s.ok()) return fail(s);
  }
  auto ready = events_.Acquire();
  if (!ready.ok()) return fail(ready.status());
  const cudaError_t err = cudaEventRecordWithFlags(*ready, caller_stream, cudaEventRecordDefault);
  if (err != cudaSuccess) {
    events_.Release(*ready);
    return fail(CudaError("cudaEventRecordWithFlags (caller's stream)", err));
  }
  pending_.push_back(PendingP2p{state, is_send, peer, data, count, dtype, *ready,
                                captured ? caller_stream : nullptr});
  pending_captured_ = captured;
  return Handle(state);
}

Status NcclComm::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.empty()) return Status::Ok();
  if (Status f = failure(); !f.ok()) {
    FailPendingLocked(f);
    return f;
  }
  DeviceScope scope(device_);
  DISTRI_RETURN_IF_ERROR(scope.status());
  Status s = FlushLocked();
  if (!s.ok()) FailLocked(s, /*local=*/true);
  return s;
}

Status NcclComm::FlushLocked() {
  if (pending_.empty()) return Status::Ok();
  std::vector<PendingP2p> group;
  group.swap(pending_);
  auto give_back = [&] {
    for (PendingP2p& p : group) events_.Release(p.ready);
  };
  auto fail_group = [&](const Status& s) {
    for (PendingP2p& p : group) p.state->Complete(s);
    give_back();
    return s;
  };
  if (Status f = failure(); !f.ok()) return fail_group(f);
  for (PendingP2p& p : group) {
    const cudaError_t err = cudaStreamWaitEvent(stream_, p.ready, 0);
    if (err != cudaSuccess) return fail_group(CudaError("cudaStreamWaitEvent (caller's stream)", err));
  }
  give_back();
  for (PendingP2p& p : group) p.ready = nullptr;
  ncclResult_t r = ncclGroupStart();
  for (const PendingP2p& p : group) {
    if (r != ncclSuccess && r != ncclInProgress) break;
    r = p.is_send ? ncclSend(p.data, p.count, NcclDType(p.dtype), p.peer, comm_, stream_)
                  : ncclRecv(p.data, p.count, NcclDType(p.dtype), p.peer, comm_, stream_);
  }
  const ncclResult_t end = ncclGroupEnd();
  if (r == ncclSuccess || r == ncclInProgress) r = end;
  const std::string call = "send/recv group of " + std::to_string(group.size()) +
                           " (first: " + group.front().state->what() + ")";
  if (Status s = AwaitLocked(r, call, DeadlineAfter(op_timeout_)); !s.ok()) return fail_group(s);
  for (PendingP2p& p : group) {
    if (Status s = FinishLaunchLocked(p.state, p.origin); !s.ok()) return fail_group(s);
  }
  return Status::Ok();
}

void NcclComm::CheckAsyncError() {
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || comm_ == nullptr) return;
  ncclResult_t r = ncclSuccess;
  if (ncclCommGetAsyncError(comm_, &r) != ncclSuccess) return;
  if (r == ncclSuccess || r == ncclInProgress) return;
  FailLocked(NcclError("asynchronous error on rank " + std::to_string(rank_), r, comm_),
             /*local=*/true);
}

Status NcclComm::WarmUp(Clock::time_point deadline) {
  const std::chrono::milliseconds op_timeout = op_timeout_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    op_timeout_ = std::max(op_timeout, std::chrono::duration_cast<std::chrono::milliseconds>(TimeLeft(deadline)));
  }
  struct Restore {
    NcclComm* c;
    std::chrono::milliseconds t;
    ~Restore() {
      std::lock_guard<std::mutex> lock(c->mu_);
      c->op_timeout_ = t;
    }
  } restore{this, op_timeout};
  std::vector<Handle> handles;
  auto* slots = static_cast<int32_t*>(scratch_);
  for (int peer = 0; peer < world_size_; ++peer) {
    if (peer == rank_) continue;
    handles.push_back(PointToPoint("wire-up send to rank " + std::to_string(peer), true, peer,
                                   slots, 1, DType::kI32, stream_));
    handles.push_back(PointToPoint("wire-up recv from rank " + std::to_string(peer), false, peer,
                                   slots + 1 + peer, 1, DType::kI32, stream_));
  }
  handles.push_back(Barrier("wire-up barrier on rank " + std::to_string(rank_)));
  for (Handle& h : handles) DISTRI_RETURN_IF_ERROR(h.Wait(TimeLeft(deadline)));
  return Status::Ok();
}

Result<std::shared_ptr<void>> NcclComm::AllocateWindow(size_t bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  if (Status f = failure(); !f.ok()) return f;
  if (comm_ == nullptr) return Status::Aborted("nccl channel: the communicator is gone");
  const std::string what = "collective memory of " + std::to_string(bytes) + " bytes on rank " +
                           std::to_string(rank_);
  void* ptr = nullptr;
  if (const ncclResult_t r = ncclMemAlloc(&ptr, bytes); r != ncclSuccess) {
    if (r == ncclSystemError || r == ncclUnhandledCudaError) {
      return Status::OutOfMemory("ncclMemAlloc: " + what + " (" + ncclGetErrorString(r) + ")");
    }
    return NcclError("ncclMemAlloc", r, comm_).WithContext(what);
  }
  ncclWindow_t window = nullptr;
  auto fall_back = [&](const std::string& why) -> Result<std::shared_ptr<void>> {
    ncclMemFree(ptr);
    DISTRI_LOG(INFO) << "nccl channel of rank " << rank_ << ": no symmetric memory (" << why
                     << "); collective memory falls back to ordinary allocations";
    return std::shared_ptr<void>();
  };
  const ncclResult_t call = ncclCommWindowRegister(comm_, ptr, bytes, &window, NCCL_WIN_COLL_SYMMETRIC);
  if (call != ncclSuccess && call != ncclInProgress) {
    // Refused at once (e.g. no symmetric-memory support: no NVLink between all ranks,
    // NCCL_WIN_ENABLE=0): nothing was queued. The caller uses ordinary memory, unless NCCL
    // left the communicator unusable, which fails the channel now rather than at the next
    // collective.
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess || state != ncclSuccess) {
      const Status s = NcclError("ncclCommWindowRegister", call, comm_).WithContext(what);
      FailLocked(s, /*local=*/true);
      ncclMemFree(ptr);
      return s;
    }
    return fall_back(ncclGetErrorString(call));
  }
  // On a non-blocking communicator the registration may go on after the call returns
  // ncclSuccess (the window stays null until then): poll the communicator's state either way.
  const Status registered =
      AwaitLocked(ncclInProgress, "ncclCommWindowRegister (" + what + ")", Clock::now() + op_timeout_);
  if (!registered.ok()) {
    // NCCL may still be registering (reading `ptr`, writing `window`): abort the communicator
    // before the memory and this frame go away. The channel is unusable either way.
    FailLocked(registered, /*local=*/true);
    ncclMemFree(ptr);
    return failure();
  }
  if (window == nullptr) return fall_back("no window");
  std::weak_ptr<NcclComm> weak = weak_from_this();
  const int device = device_;
  return std::shared_ptr<void>(ptr, [weak, window, device](void* p) {
    DeviceScope scope(device);
    // Kernels and copies of any stream may still read or write it (the compute stream's
    // graphs, the communication stream's all-gathers). A gang that failed was aborted first
    // (the runner aborts its channels on any error), so nothing waits on a peer here.
    cudaDeviceSynchronize();
    if (auto c = weak.lock()) c->DeregisterWindow(window);
    ncclMemFree(p);
  });
}

void NcclComm::DeregisterWindow(ncclWindow_t window) {
  std::unique_lock<std::mutex> lock(mu_);
  if (comm_ == nullptr || !failure().ok()) return;  // destroyed or aborted: windows went with it
  const ncclResult_t call = ncclCommWindowDeregister(comm_, window);
  const Status s = AwaitLocked(call == ncclSuccess ? ncclInProgress : call, "ncclCommWindowDeregister",
                               Clock::now() + op_timeout_);
  if (!s.ok()) DISTRI_LOG(WARNING) << "nccl channel of rank " << rank_ << ": " << s.message();
}

bool NcclComm::Shutdown(const std::string& reason) {
  const Status aborted = Status::Aborted(reason);
  std::unique_lock<std::mutex> lock(mu_);
  DeviceScope scope(device_);
  const bool idle = failure().ok() && pending_.empty() && comm_ != nullptr &&
                    !IsCapturing(stream_).value_or(true) && cudaStreamQuery(stream_) == cudaSuccess;
  if (!idle) {
    FailLocked(aborted, /*local=*/true);
    return false;
  }
  SetFailure(aborted);
  ncclResult_t r = ncclCommFinalize(comm_);
  const auto deadline = Clock::now() + kFinalizeBound;
  int round = 0;
  while (r == ncclInProgress && Clock::now() < deadline) {
    Backoff(round);
    if (ncclCommGetAsyncError(comm_, &r) != ncclSuccess) break;
  }
  if (r != ncclSuccess) {
    AbortCommLocked();
    return false;
  }
  ncclCommDestroy(comm_);
  comm_ = nullptr;
  return true;
}

}  // namespace distri::channel::nccl
