// Channel: the data plane between the ranks of one gang (docs/ARCHITECTURE.md, runtime/channel).
//
// A gang has `world_size` ranks, 0 .. world_size-1, each holding one Channel. Backends live in
// sibling folders and are created with MakeChannel (factory.h):
//   local/  ranks are threads of one process; host buffers (the reference for tests)
//   ucx/    host buffers over UCX (TCP, RDMA); CUDA buffers staged through pinned memory
//   nccl/   CUDA buffers of one GPU per rank over NCCL, stream-ordered, CUDA-graph capturable;
//           weaker matching: Send/Recv match by issue order (no tags, no size check) and sums
//           are in NCCL's order (nccl/nccl_channel.h)
// Every backend passes the same conformance suite (tests/runtime/channel; the NCCL backend
// through device-buffer mirrors, with the differences above declared as its Traits).
//
// Operations
//   AllGather   every rank contributes `send` (same count on every rank); `recv` holds
//               world_size * count elements, rank r's contribution at offset r * count.
//   AllGatherV  like AllGather with per-rank counts (uneven strips): counts[r] elements from
//               rank r at offset counts[0] + ... + counts[r-1]; counts[rank()] == send.count.
//   AllReduce   element-wise sum over ranks. All ranks receive bit-identical results: the sum
//               is taken in rank order; f16/bf16 are accumulated in f32 and rounded once;
//               integers wrap around (two's complement) on overflow.
//   Send/Recv   point to point. A Recv matches the Sends of `peer` with the same `tag`, in the
//               order they were issued. Sizes must agree (else InvalidArgument on the receiver).
//               A Send may not complete before its Recv is posted: never rely on buffering.
//               peer == rank() is allowed (issue the Send and Recv asynchronously).
//   Barrier     completes on a rank once every rank has entered it.
// In place: AllReduce may have send.data == recv.data; AllGather(V) may have `send` equal to
// this rank's slot of `recv`. Any other overlap of send and recv is an error.
//
// Ordering: collectives (AllGather, AllGatherV, AllReduce, Barrier) are matched across ranks by
// the order in which each rank issues them, so every rank must issue the same collectives with
// the same dtype and counts in the same order. The channel serializes concurrent calls, but
// calls racing from several threads have no defined order: issue collectives from one thread.
// Any number of operations may be in flight at once; they may complete in any order.
//
// Threading and ownership: every method is thread-safe. The channel never owns user buffers;
// see Handle (handle.h) for how long they must stay valid. A Channel may be destroyed while
// operations are pending: they complete with Aborted first.
//
// Errors (distri::Status): InvalidArgument (bad buffers, counts, peer: checked before anything
// is sent, and for sizes a peer sent); Aborted (after Abort; sticky); Unavailable (a peer or the
// transport failed; sticky: the gang is broken and must be rebuilt); DeadlineExceeded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "runtime/channel/handle.h"
#include "runtime/channel/types.h"
#include "runtime/common/status.h"

namespace distri::channel {

// Gangs are small (patches of one image); tags and sequence numbers of the wire formats of
// some backends have room for this many ranks.
inline constexpr int kMaxWorldSize = 4096;

struct ChannelOptions {
  // Prefix of the rendezvous keys of this gang. Rendezvous keys are write-once, so every gang
  // (and every re-creation of a gang) that shares one Rendezvous needs its own prefix.
  std::string rendezvous_prefix = "distri/channel";
  // Bound on the rendezvous and the connection of all ranks in MakeChannel.
  std::chrono::milliseconds connect_timeout{60'000};
  // Bound on each synchronous operation. When it passes, the channel is aborted (the pending
  // operation still references the caller's buffers, so it cannot be left running) and the
  // call returns DeadlineExceeded.
  std::chrono::milliseconds op_timeout{600'000};
  // UCX only: the transports to use (UCX_TLS syntax, e.g. "tcp,self"). Empty: UCX's own
  // configuration (the UCX_TLS environment variable, else all transports).
  std::string ucx_transports;
  // NCCL only: the communicator's CTA policy is NCCL_CTA_POLICY_ZERO, so that all-gathers into
  // collective memory (AllocateCollectiveMemory) run on the copy engines and leave every SM to
  // compute; other operations keep their kernels. NCCL_CTA_POLICY in the environment overrides it.
  bool nccl_zero_sm = false;
  // NCCL only: the address of this rank's failure monitor, a TCP side channel to every peer
  // that carries Abort and notices dead processes (NCCL cannot: see nccl/nccl_channel.h). It
  // must be reachable from the other ranks. Empty: this host's name (gethostname).
  std::string nccl_monitor_host;
};

class Channel {
 public:
  virtual ~Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // "local", "ucx", "nccl".
  virtual std::string_view backend() const = 0;
  // Whether buffers on `device` are accepted (others give InvalidArgument).
  virtual bool SupportsDevice(Device device) const = 0;
  // OK, or the sticky failure (Aborted, Unavailable) that every new operation will return.
  virtual Status status() const = 0;

  // Asynchronous operations. Arguments are checked first (an invalid call returns a completed
  // Handle with InvalidArgument and sends nothing). `stream` (a cudaStream_t) matters only for
  // CUDA buffers: the operation reads `send` after the work queued on `stream` before the call;
  // use Handle::StreamWait to order later work after it. nullptr = the legacy default stream.
  Handle AllGatherAsync(ConstBuffer send, Buffer recv, void* stream = nullptr);
  Handle AllGatherVAsync(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                         void* stream = nullptr);
  Handle AllReduceAsync(ConstBuffer send, Buffer recv, ReduceOp op = ReduceOp::kSum,
                        void* stream = nullptr);
  Handle SendAsync(ConstBuffer data, int peer, uint32_t tag, void* stream = nullptr);
  Handle RecvAsync(Buffer data, int peer, uint32_t tag, void* stream = nullptr);
  Handle BarrierAsync();

  // Synchronous forms: the Async call followed by Wait(op_timeout). On timeout the channel is
  // aborted and DeadlineExceeded is returned. CUDA buffers: the result is ready for the host
  // and for every stream when the call returns.
  Status AllGather(ConstBuffer send, Buffer recv, void* stream = nullptr);
  Status AllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                    void* stream = nullptr);
  Status AllReduce(ConstBuffer send, Buffer recv, ReduceOp op = ReduceOp::kSum,
                   void* stream = nullptr);
  Status Send(ConstBuffer data, int peer, uint32_t tag, void* stream = nullptr);
  Status Recv(Buffer data, int peer, uint32_t tag, void* stream = nullptr);
  Status Barrier();

  // Fails every pending and future operation of this channel with Aborted("...: <reason>")
  // (the watchdog's tool for hung collectives). Thread-safe, idempotent (the first reason is
  // kept), never waits for a peer. When it returns, the backend no longer touches the buffers
  // of this rank's pending operations. Peers are not waited for: they see Unavailable (UCX:
  // broken connection; local: every rank of the in-process gang is aborted; NCCL: the abort
  // reaches them through the peer monitor) or their own timeout. The channel cannot be used
  // again; build a new gang.
  void Abort(std::string_view reason);

  std::chrono::milliseconds op_timeout() const { return op_timeout_; }

  // Collective memory: `bytes` of memory on this rank's device that this backend's all-gathers
  // move without SM work where it can. NCCL: ncclMemAlloc'd and registered as a symmetric
  // window (ncclCommWindowRegister, NCCL_WIN_COLL_SYMMETRIC), so that an in-place AllGather
  // whose receive buffer starts at the same offset of such memory on every rank runs on the
  // copy engines when the communicator's CTA policy is zero (ChannelOptions::nccl_zero_sm, or
  // NCCL_CTA_POLICY=2); without that policy NCCL still uses its symmetric-memory kernels.
  // Collective: every rank calls it with the same `bytes`, in the same order. The memory lives
  // until its last owner lets go; the deleter waits for the device to finish its work, then
  // deregisters and frees it (give it up on every rank: drop the allocations in the same order).
  // Backends without such memory (local, UCX), and the NCCL backend when the communicator has no
  // symmetric-memory support (no NVLink between all ranks, NCCL_WIN_ENABLE=0), return a null
  // pointer: allocate ordinary memory then. Errors: InvalidArgument (bytes == 0), the
  // channel's failure, OutOfMemory.
  Result<std::shared_ptr<void>> AllocateCollectiveMemory(size_t bytes);

 protected:
  explicit Channel(std::chrono::milliseconds op_timeout) : op_timeout_(op_timeout) {}

  // Backends implement these; arguments are already checked against rank(), world_size(),
  // SupportsDevice() and each other (validate.h).
  virtual Handle DoAllGather(ConstBuffer send, Buffer recv, void* stream) = 0;
  virtual Handle DoAllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                              void* stream) = 0;
  virtual Handle DoAllReduce(ConstBuffer send, Buffer recv, ReduceOp op, void* stream) = 0;
  virtual Handle DoSend(ConstBuffer data, int peer, uint32_t tag, void* stream) = 0;
  virtual Handle DoRecv(Buffer data, int peer, uint32_t tag, void* stream) = 0;
  virtual Handle DoBarrier() = 0;
  virtual void DoAbort(std::string_view reason) = 0;
  // AllocateCollectiveMemory after its checks (bytes > 0, the channel not failed). Default: none
  // (a null pointer).
  virtual Result<std::shared_ptr<void>> DoAllocateCollectiveMemory(size_t bytes);

 private:
  Status Finish(Handle handle);

  const std::chrono::milliseconds op_timeout_;
};

}  // namespace distri::channel
