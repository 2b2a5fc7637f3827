// Argument checks shared by every backend (Channel calls them before Do...), so that a bad
// call gives the same clear InvalidArgument on every backend and nothing is sent.
#pragma once

#include <span>
#include <string_view>

#include "runtime/channel/types.h"
#include "runtime/common/status.h"

namespace distri::channel {

// One buffer: known dtype and device kind, non-null data when count > 0, byte size without
// overflow. `op` and `name` prefix the message: "all_gather: recv.data is null ...".
Status CheckBuffer(std::string_view op, std::string_view name, const ConstBuffer& buffer);

Status CheckAllGather(int rank, int world_size, const ConstBuffer& send, const Buffer& recv);
Status CheckAllGatherV(int rank, int world_size, const ConstBuffer& send, const Buffer& recv,
                       std::span<const size_t> counts);
Status CheckAllReduce(const ConstBuffer& send, const Buffer& recv, ReduceOp op);
Status CheckPeer(std::string_view op, int peer, int world_size);

// True when the byte ranges [a, a+a_bytes) and [b, b+b_bytes) share a byte.
bool Overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes);

}  // namespace distri::channel
