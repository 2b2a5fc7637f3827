// MakeChannel: one entry point for every backend compiled into this binary.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/channel/channel.h"
#include "runtime/channel/rendezvous.h"

namespace distri::channel {

// Values are stable.
enum class Backend : int32_t { kLocal = 0, kUcx = 1, kNccl = 2 };

// "local", "ucx", "nccl".
std::string_view BackendName(Backend backend);
Result<Backend> ParseBackend(std::string_view name);
// Backends compiled into this binary (local always; ucx with DISTRI_HAVE_UCX; nccl with
// DISTRI_HAVE_NCCL).
std::vector<Backend> AvailableBackends();

// Creates this rank's channel of a gang of `world_size` ranks, exchanging addresses through
// `rendezvous` under options.rendezvous_prefix, and returns once every rank is connected
// (bounded by options.connect_timeout). Every rank of the gang calls it with the same backend,
// world_size and options. The rendezvous is only used during the call.
// Errors: InvalidArgument (bad rank/world_size), Unimplemented (backend not compiled in, the
// message lists those that are), DeadlineExceeded (a rank did not show up), ParseError (a
// peer's rendezvous record is malformed), Unavailable (transport failure).
Result<std::unique_ptr<Channel>> MakeChannel(Backend backend, int rank, int world_size,
                                             Rendezvous& rendezvous,
                                             const ChannelOptions& options = {});

}  // namespace distri::channel
