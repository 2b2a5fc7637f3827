// Flags in GPU memory that order the copy-engine stale exchange between the GPUs of one
// process (actors/parallel/peer_exchange.h): one-thread kernels that set a flag (local or a
// peer's, through peer access) or wait until a flag holds a value, with a time limit. No
// LibTorch here: raw device pointers and a stream.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace distri::kernels {

// *flag = value after every earlier write of the stream's work (a system-wide fence first).
// `flag` may be another GPU's memory (peer access enabled).
cudaError_t LaunchSetFlag(uint32_t* flag, uint32_t value, cudaStream_t stream);

// Waits on the GPU until *flag == value, then sets *flag = reset. Gives up after timeout_ns
// (GPU global timer), or at once when *error is already non-zero (an earlier wait gave up),
// and then writes error_code (non-zero) into *error - host-mapped memory the host polls - and
// leaves the flag as it is. Occupies one thread of one SM while it waits.
cudaError_t LaunchWaitFlag(uint32_t* flag, uint32_t value, uint32_t reset, uint64_t timeout_ns, uint32_t* error,
                           uint32_t error_code, cudaStream_t stream);

// flags[0..n) = value (the exchange's initial state; no pageable copy, which could block this
// thread while holding the driver's locks).
cudaError_t LaunchFillFlags(uint32_t* flags, int64_t n, uint32_t value, cudaStream_t stream);

}  // namespace distri::kernels
