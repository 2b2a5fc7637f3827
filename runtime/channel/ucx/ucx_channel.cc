#include "runtime/channel/ucx/ucx_channel.h"

#include <functional>

#include "runtime/channel/ucx/ucx_address.h"
#include "runtime/channel/ucx/ucx_engine.h"
#include "runtime/channel/ucx/ucx_ops.h"
#if DISTRI_HAVE_CUDA
#include "runtime/channel/ucx/cuda_staging.h"
#endif

namespace distri::channel::ucx {
namespace {

class UcxChannel final : public Channel {
 public:
  UcxChannel(std::unique_ptr<UcxEngine> engine, const ChannelOptions& options)
      : Channel(options.op_timeout), engine_(std::move(engine)) {}
  ~UcxChannel() override {
    engine_.reset();  // stops the progress thread first: staged ops may use the copy streams
  }

  int rank() const override { return engine_->rank(); }
  int world_size() const override { return engine_->world_size(); }
  std::string_view backend() const override { return "ucx"; }
  bool SupportsDevice(Device device) const override {
#if DISTRI_HAVE_CUDA
    return true;
#else
    return device.is_cpu();
#endif
  }
  Status status() const override { return engine_->failure(); }

 protected:
  Handle DoAllGather(ConstBuffer send, Buffer recv, void* stream) override {
    std::vector<size_t> counts(static_cast<size_t>(world_size()), send.count);
    return Collective("all_gather", send, recv, stream, [&](CollectiveContext ctx, const void* s, void* r) {
      return MakeAllGatherVOp(Describe("all_gather", ctx.seq, send), ctx, send.dtype, s, r, counts);
    });
  }
  Handle DoAllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                      void* stream) override {
    std::vector<size_t> c(counts.begin(), counts.end());
    return Collective("all_gather_v", send, recv, stream, [&](CollectiveContext ctx, const void* s, void* r) {
      return MakeAllGatherVOp(Describe("all_gather_v", ctx.seq, send), ctx, send.dtype, s, r, c);
    });
  }
  Handle DoAllReduce(ConstBuffer send, Buffer recv, ReduceOp, void* stream) override {
    return Collective("all_reduce", send, recv, stream, [&](CollectiveContext ctx, const void* s, void* r) {
      return MakeAllReduceOp(Describe("all_reduce", ctx.seq, send), ctx, send.dtype, s, r, send.count);
    });
  }
  Handle DoBarrier() override {
    return Collective("barrier", ConstBuffer(), Buffer(), nullptr,
                      [&](CollectiveContext ctx, const void*, void*) {
                        return MakeBarrierOp("barrier #" + std::to_string(ctx.seq) + Where(), ctx);
                      });
  }
  Handle DoSend(ConstBuffer data, int peer, uint32_t tag, void* stream) override {
    std::string what = "send to rank " + std::to_string(peer) + " tag " + std::to_string(tag) +
                       " (" + DTypeName(data.dtype) + " x " + std::to_string(data.count) + ")" + Where();
    return Launch(what, data, Buffer(), stream, [&](const void* s, void*) {
      return MakeSendOp(what, rank(), peer, tag, s, data.bytes());
    });
  }
  Handle DoRecv(Buffer data, int peer, uint32_t tag, void* stream) override {
    std::string what = "recv from rank " + std::to_string(peer) + " tag " + std::to_string(tag) +
                       " (" + DTypeName(data.dtype) + " x " + std::to_string(data.count) + ")" + Where();
    return Launch(what, ConstBuffer(), data, stream, [&](const void*, void* r) {
      return MakeRecvOp(what, peer, tag, r, data.bytes());
    });
  }
  void DoAbort(std::string_view reason) override {
    engine_->Abort(Status::Aborted("channel aborted on rank " + std::to_string(rank()) + ": " +
                                   std::string(reason)));
  }

 private:
  using MakeOp = std::function<std::unique_ptr<UcxOp>(const void* send, void* recv)>;

  std::string Where() const {
    return " on rank " + std::to_string(rank()) + " of " + std::to_string(world_size()) + " (ucx)";
  }
  std::string Describe(const char* op, uint64_t seq, const ConstBuffer& send) const {
    return std::string(op) + " #" + std::to_string(seq) + " (" + DTypeName(send.dtype) + " x " +
           std::to_string(send.count) + ")" + Where();
  }

  // Collectives take their sequence number at issue time, under the lock: issue order is the
  // order that must agree across ranks.
  Handle Collective(const char* name, ConstBuffer send, Buffer recv, void* stream,
                    const std::function<std::unique_ptr<UcxOp>(CollectiveContext, const void*, void*)>& make) {
    CollectiveContext ctx{rank(), world_size(), 0};
    {
      std::lock_guard<std::mutex> lock(seq_mu_);
      ctx.seq = next_seq_++;
    }
    const std::string what = std::string(name) + " #" + std::to_string(ctx.seq) + Where();
    return Launch(what, send, recv, stream,
                  [&](const void* s, void* r) { return make(ctx, s, r); });
  }

  Handle Launch(const std::string& what, ConstBuffer send, Buffer recv, void* stream,
                const MakeOp& make) {
    if (Status f = engine_->failure(); !f.ok()) return Handle::Completed(f, what);
    const bool cuda = send.device.is_cuda() || recv.device.is_cuda();
    if (!cuda) {
      auto state = std::make_shared<OpState>(what);
      std::unique_ptr<UcxOp> op = make(send.data, recv.data);
      op->on_done = [state](Status s) { state->Complete(std::move(s)); };
      engine_->Submit(std::move(op));
      return Handle(state);
    }
#if DISTRI_HAVE_CUDA
    const int device = send.device.is_cuda() ? send.device.index : recv.device.index;
    auto copy_stream = copy_streams_.Get(device);
    if (!copy_stream.ok()) return Handle::Completed(copy_stream.status().WithContext(what), what);
    auto staging = CudaStaging::Begin(device, send.data, send.bytes(), recv.data, recv.bytes(),
                                      stream, *copy_stream);
    if (!staging.ok()) return Handle::Completed(staging.status().WithContext(what), what);
    std::shared_ptr<CudaStaging> st = std::move(staging).value();
    auto state = std::make_shared<StagedOpState>(what, st);
    std::unique_ptr<UcxOp> op = make(st->host_send(), st->host_recv());
    op->on_done = [state, st](Status s) {
      if (s.ok()) s = st->InputStatus();
      if (s.ok()) s = st->CopyOut();
      state->Complete(std::move(s));
    };
    engine_->Submit(std::move(op), [st] { return st->InputReady(); });
    return Handle(state);
#else
    (void)stream;
    return Handle::Completed(
        Status::InvalidArgument(what + ": CUDA buffers need a build with CUDA"), what);
#endif
  }

#if DISTRI_HAVE_CUDA
  CopyStreams copy_streams_;  // destroyed after engine_ (declared before it)
#endif
  std::unique_ptr<UcxEngine> engine_;
  std::mutex seq_mu_;
  uint64_t next_seq_ = 0;
};

}  // namespace

Result<std::unique_ptr<Channel>> MakeUcxChannel(int rank, int world_size, Rendezvous& rendezvous,
                                                const ChannelOptions& options) {
  const auto deadline = DeadlineAfter(options.connect_timeout);
  DISTRI_ASSIGN_OR_RETURN(auto engine, UcxEngine::Create(rank, world_size, options.ucx_transports));
  const std::string record = EncodeAddressRecord(rank, world_size, engine->worker_address());
  auto records = RendezvousAllGather(rendezvous, options.rendezvous_prefix + "/ucx", rank,
                                     world_size, record, options.connect_timeout);
  if (!records.ok()) return records.status().WithContext("ucx channel");
  std::vector<std::string> addresses;
  for (int r = 0; r < world_size; ++r) {
    auto address = DecodeAddressRecord((*records)[static_cast<size_t>(r)], r, world_size);
    if (!address.ok()) return address.status().WithContext("ucx channel: rendezvous");
    addresses.push_back(std::move(address).value());
  }
  DISTRI_RETURN_IF_ERROR(engine->Connect(addresses));
  auto channel = std::make_unique<UcxChannel>(std::move(engine), options);
  // Every rank connected (and done with the rendezvous) before anyone returns.
  Status s = channel->BarrierAsync().Wait(TimeLeft(deadline));
  if (!s.ok()) {
    channel->Abort("wire-up barrier failed");
    return s.WithContext("ucx channel: connecting rank " + std::to_string(rank) + " of " +
                         std::to_string(world_size));
  }
  return std::unique_ptr<Channel>(std::move(channel));
}

}  // namespace distri::channel::ucx
