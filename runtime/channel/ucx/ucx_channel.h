// The UCX backend: host memory over any transport UCX selects (TCP, shared memory, RDMA), one
// UCX worker per channel driven by its own progress thread. Operations of one channel can be
// in flight in any number; collectives are told apart by their issue sequence number.
//
// CUDA buffers (only when built with CUDA): staged through pinned host buffers. The device to
// host copy is queued on the caller's stream, the network part runs once it finished, and the
// host to device copy runs on a channel-owned stream; Handle::StreamWait orders a stream after
// it. Without CUDA, SupportsDevice(cuda) is false and such buffers are rejected.
//
// Failure detection: endpoints use UCX's peer error handling, so a rank whose process dies or
// whose channel is aborted breaks its connections, and the peers' channels fail with
// Unavailable instead of hanging (over TCP within a few hundred ms). Only transports with peer
// failure detection are usable (tcp, rc/dc, ...); UCX 1.13's shared-memory ones are not.
#pragma once

#include <memory>

#include "runtime/channel/channel.h"
#include "runtime/channel/rendezvous.h"

namespace distri::channel::ucx {

// Creates the UCX engine, exchanges worker addresses through `rendezvous` under
// "<prefix>/ucx/<rank>", connects to every rank and runs a barrier (bounded by
// options.connect_timeout) before returning.
Result<std::unique_ptr<Channel>> MakeUcxChannel(int rank, int world_size, Rendezvous& rendezvous,
                                                const ChannelOptions& options);

}  // namespace distri::channel::ucx
