#include "actors/common/step_pacer.h"

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <string>

namespace distri {
namespace {
#ifdef DISTRI_HAVE_CUDA
Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  return Status::Internal(std::string("step pacing: ") + what + ": " + cudaGetErrorString(err));
}
#endif
}  // namespace

StepPacer::StepPacer(const c10::Device& device) : device_(device) {
#ifdef DISTRI_HAVE_CUDA
  if (device_.is_cuda()) {
    c10::cuda::CUDAGuard guard(device_);
    for (void*& e : events_) {
      cudaEvent_t ev = nullptr;
      if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess) e = ev;
    }
  }
#endif
}

StepPacer::~StepPacer() {
#ifdef DISTRI_HAVE_CUDA
  for (void* e : events_) {
    if (e != nullptr) (void)cudaEventDestroy(static_cast<cudaEvent_t>(e));
  }
#endif
}

Result<int> StepPacer::Queued() {
  ++queued_;
#ifdef DISTRI_HAVE_CUDA
  if (device_.is_cuda()) {
    if (events_[0] == nullptr || events_[1] == nullptr) {
      return Status::Internal("step pacing: could not create CUDA events on " + device_.str());
    }
    // This step's event, recorded after its work on the stream the loop queues on. The event
    // of the step before it is re-recorded only after the wait below (next call).
    auto* mine = static_cast<cudaEvent_t>(events_[queued_ % 2]);
    DISTRI_RETURN_IF_ERROR(
        CudaStatus(cudaEventRecord(mine, c10::cuda::getCurrentCUDAStream(device_.index()).stream()), "event record"));
    if (queued_ == 1) return 0;
    DISTRI_RETURN_IF_ERROR(
        CudaStatus(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[(queued_ - 1) % 2])), "step wait"));
    return queued_ - 1;
  }
#endif
  return queued_;
}

Result<int> StepPacer::Finish() {
#ifdef DISTRI_HAVE_CUDA
  if (device_.is_cuda() && queued_ > 0 && events_[queued_ % 2] != nullptr) {
    DISTRI_RETURN_IF_ERROR(
        CudaStatus(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[queued_ % 2])), "final step wait"));
  }
#endif
  return queued_;
}

}  // namespace distri
