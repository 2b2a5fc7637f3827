#include "runtime/channel/nccl/nccl_channel.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <cstring>

#include "runtime/channel/nccl/nccl_comm.h"
#include "runtime/channel/nccl/peer_monitor.h"

namespace distri::channel::nccl {
namespace {

class NcclChannel final : public Channel {
 public:
  NcclChannel(std::shared_ptr<NcclComm> comm, std::shared_ptr<PeerMonitor> monitor,
              const ChannelOptions& options)
      : Channel(options.op_timeout), comm_(std::move(comm)), monitor_(std::move(monitor)) {
    if (monitor_ == nullptr) return;
    std::weak_ptr<NcclComm> weak = comm_;
    std::weak_ptr<PeerMonitor> weak_monitor = monitor_;
    comm_->SetFailureListener([weak_monitor](const Status& s) {
      if (auto m = weak_monitor.lock()) m->BroadcastAbort(s.message());
    });
    const int device = comm_->device();
    monitor_->Start(
        [weak](const Status& s) {
          if (auto c = weak.lock()) c->Fail(s, /*local=*/false);
        },
        [weak] {
          if (auto c = weak.lock()) c->CheckAsyncError();
        },
        [device] { cudaSetDevice(device); });
  }

  ~NcclChannel() override {
    const bool clean = comm_->Shutdown("nccl channel destroyed on rank " + std::to_string(rank()) +
                                       " with operations pending");
    comm_->SetFailureListener(nullptr);
    if (monitor_ != nullptr) monitor_->Close(clean);
  }

  int rank() const override { return comm_->rank(); }
  int world_size() const override { return comm_->world_size(); }
  std::string_view backend() const override { return "nccl"; }
  bool SupportsDevice(Device device) const override {
    return device.is_cuda() && device.index == comm_->device();
  }
  Status status() const override { return comm_->failure(); }

 protected:
  Result<std::shared_ptr<void>> DoAllocateCollectiveMemory(size_t bytes) override {
    auto memory = comm_->AllocateWindow(bytes);
    if (!memory.ok()) return memory.status().WithContext("AllocateCollectiveMemory" + Where());
    return memory;
  }

  Handle DoAllGather(ConstBuffer send, Buffer recv, void* stream) override {
    const std::string what = Describe("all_gather", send);
    if (send.count == 0) return Handle::Completed(comm_->failure(), what);
    return comm_->Collective(what, Stream(stream), true, [&](ncclComm_t comm, cudaStream_t s) {
      return ncclAllGather(send.data, recv.data, send.count, NcclDType(send.dtype), comm, s);
    });
  }

  Handle DoAllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                      void* stream) override {
    const std::string what = Describe("all_gather_v", send);
    size_t total = 0;
    bool equal = true;
    for (size_t c : counts) {
      total += c;
      equal = equal && c == counts[0];
    }
    if (total == 0) return Handle::Completed(comm_->failure(), what);
    if (equal) {
      return comm_->Collective(what, Stream(stream), true, [&](ncclComm_t comm, cudaStream_t s) {
        return ncclAllGather(send.data, recv.data, send.count, NcclDType(send.dtype), comm, s);
      });
    }
    // Uneven strips: every rank broadcasts its strip into its slot, all in one group.
    const size_t esize = DTypeSize(send.dtype);
    return comm_->Collective(what, Stream(stream), true, [&](ncclComm_t comm, cudaStream_t s) {
      ncclResult_t r = ncclGroupStart();
      size_t offset = 0;
      for (size_t root = 0; root < counts.size(); ++root) {
        char* slot = static_cast<char*>(recv.data) + offset * esize;
        offset += counts[root];
        if (counts[root] == 0 || (r != ncclSuccess && r != ncclInProgress)) continue;
        const void* src = static_cast<int>(root) == rank() ? send.data : slot;
        r = ncclBroadcast(src, slot, counts[root], NcclDType(send.dtype), static_cast<int>(root),
                          comm, s);
      }
      const ncclResult_t end = ncclGroupEnd();
      return r == ncclSuccess || r == ncclInProgress ? end : r;
    });
  }

  Handle DoAllReduce(ConstBuffer send, Buffer recv, ReduceOp, void* stream) override {
    const std::string what = Describe("all_reduce", send);
    if (send.count == 0) return Handle::Completed(comm_->failure(), what);
    return comm_->Collective(what, Stream(stream), true, [&](ncclComm_t comm, cudaStream_t s) {
      return ncclAllReduce(send.data, recv.data, send.count, NcclDType(send.dtype), ncclSum,
                           comm, s);
    });
  }

  Handle DoSend(ConstBuffer data, int peer, uint32_t tag, void* stream) override {
    const std::string what = "send to rank " + std::to_string(peer) + " tag " +
                             std::to_string(tag) + " (" + DTypeName(data.dtype) + " x " +
                             std::to_string(data.count) + ")" + Where();
    if (data.count == 0) return Handle::Completed(comm_->failure(), what);
    return comm_->PointToPoint(what, true, peer, const_cast<void*>(data.data), data.count,
                               data.dtype, Stream(stream));
  }

  Handle DoRecv(Buffer data, int peer, uint32_t tag, void* stream) override {
    const std::string what = "recv from rank " + std::to_string(peer) + " tag " +
                             std::to_string(tag) + " (" + DTypeName(data.dtype) + " x " +
                             std::to_string(data.count) + ")" + Where();
    if (data.count == 0) return Handle::Completed(comm_->failure(), what);
    return comm_->PointToPoint(what, false, peer, data.data, data.count, data.dtype,
                               Stream(stream));
  }

  Handle DoBarrier() override {
    return comm_->Barrier("barrier #" + std::to_string(next_seq_++) + Where());
  }

  void DoAbort(std::string_view reason) override {
    comm_->Fail(Status::Aborted("channel aborted on rank " + std::to_string(rank()) + ": " +
                                std::string(reason)),
                /*local=*/true);
  }

 private:
  static cudaStream_t Stream(void* stream) { return static_cast<cudaStream_t>(stream); }

  std::string Where() const {
    return " on rank " + std::to_string(rank()) + " of " + std::to_string(world_size()) + " (nccl)";
  }
  std::string Describe(const char* op, const ConstBuffer& send) {
    return std::string(op) + " #" + std::to_string(next_seq_++) + " (" + DTypeName(send.dtype) +
           " x " + std::to_string(send.count) + ")" + Where();
  }

  std::shared_ptr<NcclComm> comm_;
  std::shared_ptr<PeerMonitor> monitor_;
  std::atomic<uint64_t> next_seq_{0};
};

std::string ToHex(const void* data, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

Status FromHex(const std::string& text, void* out, size_t size, const std::string& key) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  auto bad = [&] {
    return Status::ParseError("rendezvous value of '" + key + "' is not an NCCL unique id (" +
                              std::to_string(2 * size) + " lowercase hex digits expected, got " +
                              std::to_string(text.size()) + " bytes); is every rank using the "
                              "nccl backend?");
  };
  if (text.size() != 2 * size) return bad();
  auto* p = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < size; ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return bad();
    p[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Channel>> MakeNcclChannel(int rank, int world_size, Rendezvous& rendezvous,
                                                 const ChannelOptions& options) {
  const auto deadline = DeadlineAfter(options.connect_timeout);
  const std::string where = "nccl channel (rank " + std::to_string(rank) + " of " +
                            std::to_string(world_size) + ")";
  int device = -1;
  if (const cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) {
    return Status::FailedPrecondition(where + ": no usable CUDA device (cudaGetDevice: " +
                                      cudaGetErrorString(err) + ")");
  }
  // The unique id: created by rank 0, fetched by the others.
  const std::string key = options.rendezvous_prefix + "/nccl_id";
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (rank == 0) {
    if (const ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      return NcclError("ncclGetUniqueId", r, nullptr).WithContext(where);
    }
    DISTRI_RETURN_IF_ERROR(rendezvous.Put(key, ToHex(&id, sizeof(id))));
  } else {
    auto value = rendezvous.Get(key, TimeLeft(deadline));
    if (!value.ok()) return value.status().WithContext(where + ": waiting for rank 0's unique id");
    DISTRI_RETURN_IF_ERROR(FromHex(*value, &id, sizeof(id), key));
  }
  std::shared_ptr<PeerMonitor> monitor;
  if (world_size > 1) {
    auto m = PeerMonitor::Connect(rank, world_size, rendezvous,
                                  options.rendezvous_prefix + "/nccl_monitor",
                                  options.nccl_monitor_host, deadline);
    if (!m.ok()) return m.status().WithContext(where);
    monitor = std::move(m).value();
  }
  auto comm = NcclComm::Create(id, rank, world_size, device, options.op_timeout, deadline,
                               options.nccl_zero_sm);
  if (!comm.ok()) return comm.status().WithContext(where);
  std::shared_ptr<NcclComm> c = std::move(comm).value();
  auto channel = std::make_unique<NcclChannel>(c, std::move(monitor), options);
  if (Status s = c->WarmUp(deadline); !s.ok()) {
    channel->Abort("wire-up failed: " + s.message());
    return s.WithContext(where + ": connecting the ranks");
  }
  return std::unique_ptr<Channel>(std::move(channel));
}

}  // namespace distri::channel::nccl
