// Handle: the caller's side of one asynchronous channel operation.
// OpState: the backend's side (backends subclass it when completion involves a device).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/common/status.h"

namespace distri::channel {

// Shared state of one operation. Created by a backend, completed exactly once by the backend
// (Complete: first call wins), observed through Handles. Thread-safe.
class OpState {
 public:
  // `what` names the operation in error messages: "all_gather #3 (f32 x 1024) on rank 1".
  explicit OpState(std::string what) : what_(std::move(what)) {}
  virtual ~OpState() = default;
  OpState(const OpState&) = delete;
  OpState& operator=(const OpState&) = delete;

  // Records the result and wakes waiters. Later calls are ignored.
  void Complete(Status status);
  bool done() const;
  // Non-blocking progress hook, called by Handle::Done() before done(). Backends whose
  // operations complete on a device without a progress thread (NCCL: a CUDA event) check
  // for completion here. Default: nothing.
  virtual void Progress() {}
  const std::string& what() const { return what_; }

  // Blocks until completed or `timeout` passes (DeadlineExceeded naming the operation; the
  // operation stays pending). On success the results are visible to the host and to every
  // stream: backends with device-side completion override this to also wait for the device
  // work (calling WaitHost first).
  virtual Status Wait(std::chrono::milliseconds timeout);
  // Makes later work on the CUDA stream `stream` (a cudaStream_t) wait for this operation.
  // Default (host backends): waits on the host, which orders the stream trivially.
  virtual Status StreamWait(void* stream);

 protected:
  Status WaitHost(std::chrono::milliseconds timeout);

 private:
  const std::string what_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Status status_;
};

// Handle to an operation started by an `...Async` method of Channel. Cheap to copy (all copies
// refer to the same operation). Thread-safe: any thread may Wait on any copy.
//
// Buffer lifetime: the buffers passed to the operation must stay valid until the operation has
// completed (Wait returned anything but DeadlineExceeded, or Done() is true), or until
// Channel::Abort has returned. Destroying every Handle does not cancel the operation.
class Handle {
 public:
  static constexpr std::chrono::milliseconds kForever = std::chrono::milliseconds::max();

  // An empty handle: Wait/StreamWait return FailedPrecondition.
  Handle() = default;
  explicit Handle(std::shared_ptr<OpState> state) : state_(std::move(state)) {}
  // A handle that is already complete with `status` (used for errors found at issue time).
  static Handle Completed(Status status, std::string what);

  bool valid() const { return state_ != nullptr; }
  // Non-blocking: true once the operation has completed (successfully or not).
  bool Done() const;
  // Waits for completion (for CUDA buffers: until the results are in device memory, visible
  // to the host and every stream). Returns the operation's status: OK; InvalidArgument for bad buffers
  // or mismatched peers; Aborted after Channel::Abort (message carries the reason);
  // Unavailable when a peer failed; DeadlineExceeded when `timeout` passed first, in which case
  // the operation is still pending and Wait may be called again.
  Status Wait(std::chrono::milliseconds timeout = kForever);
  // GPU ordering: work enqueued on `stream` (a cudaStream_t, nullptr = the legacy default
  // stream) after this call runs after the operation. Backends that complete on the host
  // (local, UCX) wait on the host here; NCCL-like backends insert an event dependency and
  // return at once. Returns the operation's error if it failed.
  Status StreamWait(void* stream);

  const std::string& what() const;

 private:
  std::shared_ptr<OpState> state_;
};

}  // namespace distri::channel
