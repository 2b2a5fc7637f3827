#include "tests/runtime/channel/device_buffers.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <vector>

namespace distri::channel::testing {
namespace {

Status CudaError(const char* call, cudaError_t err) {
  return Status::Internal(std::string("test mirror: CUDA ") + call + ": " + cudaGetErrorString(err));
}

// The device and the upload/download stream, shared by the wrapper and its operations.
struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  ~Context() {
    cudaSetDevice(device);
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
  }
};

// The device copies of one operation's host buffers. Stream-ordered allocations: freeing
// never synchronizes the device (a rank blocked in cudaFree while its collective waits for a
// peer that is blocked the same way would deadlock the gang).
class Mirror {
 public:
  explicit Mirror(std::shared_ptr<Context> ctx) : ctx_(std::move(ctx)) {}

  Result<void*> Upload(const void* host, size_t bytes) {
    if (bytes == 0) return static_cast<void*>(nullptr);
    void* dev = nullptr;
    cudaError_t err = cudaMallocAsync(&dev, bytes, ctx_->stream);
    if (err != cudaSuccess) return CudaError("cudaMallocAsync", err);
    allocations_.push_back(dev);
    err = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, ctx_->stream);
    if (err != cudaSuccess) return CudaError("cudaMemcpyAsync (upload)", err);
    return dev;
  }

  // Mirrors recv (with its current contents) and send, keeping an in-place send in place.
  Status Map(const ConstBuffer& send, const Buffer& recv, ConstBuffer* dsend, Buffer* drecv) {
    const Device cuda = Device::Cuda(ctx_->device);
    DISTRI_ASSIGN_OR_RETURN(void* r, Upload(recv.data, recv.bytes()));
    *drecv = Buffer{r, recv.count, recv.dtype, cuda};
    const auto* s = static_cast<const char*>(send.data);
    const auto* base = static_cast<const char*>(recv.data);
    void* d = nullptr;
    if (send.bytes() > 0 && recv.bytes() > 0 && s >= base && s + send.bytes() <= base + recv.bytes()) {
      d = static_cast<char*>(r) + (s - base);
    } else {
      DISTRI_ASSIGN_OR_RETURN(d, Upload(send.data, send.bytes()));
    }
    *dsend = ConstBuffer(d, send.count, send.dtype, cuda);
    return Status::Ok();
  }

  void Free() {
    cudaSetDevice(ctx_->device);
    for (void* p : allocations_) cudaFreeAsync(p, ctx_->stream);
    allocations_.clear();
  }

  const std::shared_ptr<Context>& ctx() const { return ctx_; }

 private:
  std::shared_ptr<Context> ctx_;
  std::vector<void*> allocations_;
};

// The wrapper's operation: waits for the real one, then copies the result back to the host.
class MirrorState final : public OpState {
 public:
  MirrorState(Handle inner, Mirror mirror, void* host_recv, void* dev_recv, size_t recv_bytes)
      : OpState(inner.what()), inner_(std::move(inner)), mirror_(std::move(mirror)),
        host_recv_(host_recv), dev_recv_(dev_recv), recv_bytes_(recv_bytes) {}
  ~MirrorState() override {
    // Unfinished operations may still use the device memory: leaked (tests only).
    if (done() || inner_.Done()) mirror_.Free();
  }

  Status Wait(std::chrono::milliseconds timeout) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (done()) return WaitHost(std::chrono::milliseconds(0));
    Status s = inner_.Wait(timeout);
    if (s.code() == StatusCode::kDeadlineExceeded && !inner_.Done()) return s;
    if (s.ok()) s = CopyBack();
    mirror_.Free();
    Complete(s);
    return WaitHost(std::chrono::milliseconds(0));
  }
  Status StreamWait(void*) override { return Wait(Handle::kForever); }

 private:
  Status CopyBack() {
    cudaStream_t stream = mirror_.ctx()->stream;
    // Orders the download after the operation through the backend's own StreamWait.
    DISTRI_RETURN_IF_ERROR(inner_.StreamWait(stream));
    if (recv_bytes_ == 0) return Status::Ok();
    cudaError_t err = cudaMemcpyAsync(host_recv_, dev_recv_, recv_bytes_, cudaMemcpyDeviceToHost, stream);
    if (err != cudaSuccess) return CudaError("cudaMemcpyAsync (download)", err);
    err = cudaStreamSynchronize(stream);
    return err == cudaSuccess ? Status::Ok() : CudaError("cudaStreamSynchronize", err);
  }

  std::mutex mu_;
  Handle inner_;
  Mirror mirror_;
  void* host_recv_;
  void* dev_recv_;
  size_t recv_bytes_;
};

class DeviceBufferChannel final : public Channel {
 public:
  DeviceBufferChannel(std::unique_ptr<Channel> inner, std::shared_ptr<Context> ctx)
      : Channel(inner->op_timeout()), inner_(std::move(inner)), ctx_(std::move(ctx)) {}

  int rank() const override { return inner_->rank(); }
  int world_size() const override { return inner_->world_size(); }
  std::string_view backend() const override { return inner_->backend(); }
  bool SupportsDevice(Device device) const override {
    return device.is_cpu() || inner_->SupportsDevice(device);
  }
  Status status() const override { return inner_->status(); }

 protected:
  Handle DoAllGather(ConstBuffer send, Buffer recv, void* stream) override {
    if (send.device.is_cuda()) return inner_->AllGatherAsync(send, recv, stream);
    return Mirrored(send, recv, [&](ConstBuffer s, Buffer r, void* st) { return inner_->AllGatherAsync(s, r, st); });
  }
  Handle DoAllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                      void* stream) override {
    if (send.device.is_cuda()) return inner_->AllGatherVAsync(send, recv, counts, stream);
    return Mirrored(send, recv, [&](ConstBuffer s, Buffer r, void* st) { return inner_->AllGatherVAsync(s, r, counts, st); });
  }
  Handle DoAllReduce(ConstBuffer send, Buffer recv, ReduceOp op, void* stream) override {
    if (send.device.is_cuda()) return inner_->AllReduceAsync(send, recv, op, stream);
    return Mirrored(send, recv, [&](ConstBuffer s, Buffer r, void* st) { return inner_->AllReduceAsync(s, r, op, st); });
  }
  Handle DoSend(ConstBuffer data, int peer, uint32_t tag, void* stream) override {
    if (data.device.is_cuda()) return inner_->SendAsync(data, peer, tag, stream);
    return Mirrored(data, Buffer{nullptr, 0, data.dtype}, [&](ConstBuffer s, Buffer, void* st) { return inner_->SendAsync(s, peer, tag, st); });
  }
  Handle DoRecv(Buffer data, int peer, uint32_t tag, void* stream) override {
    if (data.device.is_cuda()) return inner_->RecvAsync(data, peer, tag, stream);
    return Mirrored(ConstBuffer(nullptr, 0, data.dtype), data, [&](ConstBuffer, Buffer r, void* st) { return inner_->RecvAsync(r, peer, tag, st); });
  }
  Handle DoBarrier() override { return inner_->BarrierAsync(); }
  void DoAbort(std::string_view reason) override { inner_->Abort(reason); }

 private:
  template <typename Call>
  Handle Mirrored(ConstBuffer send, Buffer recv, const Call& call) {
    cudaSetDevice(ctx_->device);
    Mirror mirror(ctx_);
    ConstBuffer dsend;
    Buffer drecv;
    if (Status s = mirror.Map(send, recv, &dsend, &drecv); !s.ok()) {
      mirror.Free();
      return Handle::Completed(s, "mirrored operation");
    }
    Handle inner = call(dsend, drecv, static_cast<void*>(ctx_->stream));
    return Handle(std::make_shared<MirrorState>(std::move(inner), std::move(mirror), recv.data,
                                                drecv.data, recv.bytes()));
  }

  std::unique_ptr<Channel> inner_;
  std::shared_ptr<Context> ctx_;
};

}  // namespace

std::unique_ptr<Channel> WithDeviceBuffers(std::unique_ptr<Channel> inner) {
  auto ctx = std::make_shared<Context>();
  cudaGetDevice(&ctx->device);
  cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
  return std::make_unique<DeviceBufferChannel>(std::move(inner), std::move(ctx));
}

}  // namespace distri::channel::testing
