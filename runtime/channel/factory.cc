#include "runtime/channel/factory.h"

#include "runtime/channel/local/local_channel.h"
#if DISTRI_HAVE_UCX
#include "runtime/channel/ucx/ucx_channel.h"
#endif
#if DISTRI_HAVE_NCCL
#include "runtime/channel/nccl/nccl_channel.h"
#endif

namespace distri::channel {

std::string_view BackendName(Backend backend) {
  switch (backend) {
    case Backend::kLocal: return "local";
    case Backend::kUcx: return "ucx";
    case Backend::kNccl: return "nccl";
  }
  return "unknown";
}

Result<Backend> ParseBackend(std::string_view name) {
  for (Backend b : {Backend::kLocal, Backend::kUcx, Backend::kNccl}) {
    if (BackendName(b) == name) return b;
  }
  return Status::InvalidArgument("unknown channel backend '" + std::string(name) +
                                 "' (expected local, ucx or nccl)");
}

std::vector<Backend> AvailableBackends() {
  std::vector<Backend> out{Backend::kLocal};
#if DISTRI_HAVE_UCX
  out.push_back(Backend::kUcx);
#endif
#if DISTRI_HAVE_NCCL
  out.push_back(Backend::kNccl);
#endif
  return out;
}

Result<std::unique_ptr<Channel>> MakeChannel(Backend backend, int rank, int world_size,
                                             Rendezvous& rendezvous, const ChannelOptions& options) {
  if (world_size < 1 || world_size > kMaxWorldSize) {
    return Status::InvalidArgument("MakeChannel: world_size " + std::to_string(world_size) +
                                   " is outside [1, " + std::to_string(kMaxWorldSize) + "]");
  }
  if (rank < 0 || rank >= world_size) {
    return Status::InvalidArgument("MakeChannel: rank " + std::to_string(rank) +
                                   " is outside [0, " + std::to_string(world_size) + ")");
  }
  switch (backend) {
    case Backend::kLocal:
      return local::MakeLocalChannel(rank, world_size, rendezvous, options);
    case Backend::kUcx:
#if DISTRI_HAVE_UCX
      return ucx::MakeUcxChannel(rank, world_size, rendezvous, options);
#else
      break;
#endif
    case Backend::kNccl:
#if DISTRI_HAVE_NCCL
      return nccl::MakeNcclChannel(rank, world_size, rendezvous, options);
#else
      break;
#endif
  }
  std::string built;
  for (Backend b : AvailableBackends()) built += (built.empty() ? "" : ", ") + std::string(BackendName(b));
  return Status::Unimplemented("channel backend '" + std::string(BackendName(backend)) +
                               "' is not built into this binary (built: " + built + ")");
}

}  // namespace distri::channel
