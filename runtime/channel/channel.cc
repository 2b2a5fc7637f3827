#include "runtime/channel/channel.h"

#include "runtime/channel/validate.h"

namespace distri::channel {
namespace {

// Devices every buffer of a call must be on; names the first one the backend refuses.
Status CheckDevices(const Channel& ch, std::string_view op, std::initializer_list<ConstBuffer> bufs) {
  for (const ConstBuffer& b : bufs) {
    if (!ch.SupportsDevice(b.device)) {
      return Status::InvalidArgument(std::string(op) + ": the " + std::string(ch.backend()) +
                                     " channel does not accept buffers on " +
                                     b.device.ToString());
    }
  }
  return Status::Ok();
}

Handle Rejected(Status status, std::string_view op) {
  return Handle::Completed(std::move(status), std::string(op));
}

}  // namespace

Handle Channel::AllGatherAsync(ConstBuffer send, Buffer recv, void* stream) {
  Status s = CheckAllGather(rank(), world_size(), send, recv);
  if (s.ok()) s = CheckDevices(*this, "all_gather", {send, recv});
  if (!s.ok()) return Rejected(std::move(s), "all_gather");
  return DoAllGather(send, recv, stream);
}

Handle Channel::AllGatherVAsync(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                                void* stream) {
  Status s = CheckAllGatherV(rank(), world_size(), send, recv, counts);
  if (s.ok()) s = CheckDevices(*this, "all_gather_v", {send, recv});
  if (!s.ok()) return Rejected(std::move(s), "all_gather_v");
  return DoAllGatherV(send, recv, counts, stream);
}

Handle Channel::AllReduceAsync(ConstBuffer send, Buffer recv, ReduceOp op, void* stream) {
  Status s = CheckAllReduce(send, recv, op);
  if (s.ok()) s = CheckDevices(*this, "all_reduce", {send, recv});
  if (!s.ok()) return Rejected(std::move(s), "all_reduce");
  return DoAllReduce(send, recv, op, stream);
}

Handle Channel::SendAsync(ConstBuffer data, int peer, uint32_t tag, void* stream) {
  Status s = CheckPeer("send", peer, world_size());
  if (s.ok()) s = CheckBuffer("send", "data", data);
  if (s.ok()) s = CheckDevices(*this, "send", {data});
  if (!s.ok()) return Rejected(std::move(s), "send");
  return DoSend(data, peer, tag, stream);
}

Handle Channel::RecvAsync(Buffer data, int peer, uint32_t tag, void* stream) {
  Status s = CheckPeer("recv", peer, world_size());
  if (s.ok()) s = CheckBuffer("recv", "data", data);
  if (s.ok()) s = CheckDevices(*this, "recv", {data});
  if (!s.ok()) return Rejected(std::move(s), "recv");
  return DoRecv(data, peer, tag, stream);
}

Handle Channel::BarrierAsync() { return DoBarrier(); }

Result<std::shared_ptr<void>> Channel::AllocateCollectiveMemory(size_t bytes) {
  if (bytes == 0) return Status::InvalidArgument("AllocateCollectiveMemory: 0 bytes");
  if (Status s = status(); !s.ok()) return s;
  return DoAllocateCollectiveMemory(bytes);
}

Result<std::shared_ptr<void>> Channel::DoAllocateCollectiveMemory(size_t) { return std::shared_ptr<void>(); }

void Channel::Abort(std::string_view reason) {
  DoAbort(reason.empty() ? std::string_view("no reason given") : reason);
}

Status Channel::Finish(Handle handle) {
  Status s = handle.Wait(op_timeout_);
  if (s.code() == StatusCode::kDeadlineExceeded && !handle.Done()) {
    // The operation still references the caller's buffers: it cannot outlive this call.
    Abort(handle.what() + " timed out after " + std::to_string(op_timeout_.count()) + " ms");
    return Status::DeadlineExceeded(s.message() + "; the channel was aborted (a rank may be "
                                    "missing or stuck)");
  }
  return s;
}

Status Channel::AllGather(ConstBuffer send, Buffer recv, void* stream) {
  return Finish(AllGatherAsync(send, recv, stream));
}
Status Channel::AllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                           void* stream) {
  return Finish(AllGatherVAsync(send, recv, counts, stream));
}
Status Channel::AllReduce(ConstBuffer send, Buffer recv, ReduceOp op, void* stream) {
  return Finish(AllReduceAsync(send, recv, op, stream));
}
Status Channel::Send(ConstBuffer data, int peer, uint32_t tag, void* stream) {
  return Finish(SendAsync(data, peer, tag, stream));
}
Status Channel::Recv(Buffer data, int peer, uint32_t tag, void* stream) {
  return Finish(RecvAsync(data, peer, tag, stream));
}
Status Channel::Barrier() { return Finish(BarrierAsync()); }

}  // namespace distri::channel
