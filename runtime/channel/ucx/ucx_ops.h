// The operations of the UCX backend as UcxOp state machines (see ucx_engine.h).
//
// Collectives use direct exchanges, which suit the small gangs of patch parallelism
// (2-16 ranks): every message goes straight to its destination, so latency is one hop.
//   all_gather(v): each rank sends its part to every other rank.
//   all_reduce:    reduce-scatter then all-gather over world_size chunks: rank r sums chunk r
//                  (in rank order, so every rank gets the same bits) and sends it to all; each
//                  rank moves 2 (n-1)/n of the buffer, like a ring, in two rounds.
//   barrier:       a zero-byte message to and from every other rank.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/channel/types.h"
#include "runtime/channel/ucx/ucx_engine.h"

namespace distri::channel::ucx {

struct CollectiveContext {
  int rank = 0;
  int world_size = 1;
  uint64_t seq = 0;
};

// counts[r] elements of `dtype` from rank r, packed in rank order in `recv`.
std::unique_ptr<UcxOp> MakeAllGatherVOp(std::string what, CollectiveContext ctx, DType dtype,
                                        const void* send, void* recv, std::vector<size_t> counts);
std::unique_ptr<UcxOp> MakeAllReduceOp(std::string what, CollectiveContext ctx, DType dtype,
                                       const void* send, void* recv, size_t count);
std::unique_ptr<UcxOp> MakeBarrierOp(std::string what, CollectiveContext ctx);
std::unique_ptr<UcxOp> MakeSendOp(std::string what, int rank, int peer, uint32_t tag,
                                  const void* data, size_t bytes);
std::unique_ptr<UcxOp> MakeRecvOp(std::string what, int peer, uint32_t tag, void* data,
                                  size_t bytes);

}  // namespace distri::channel::ucx
