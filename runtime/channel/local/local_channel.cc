#include "runtime/channel/local/local_channel.h"

#include <unistd.h>

#include <charconv>
#include <map>

#include "runtime/channel/local/local_gang.h"
#include "runtime/common/ids.h"

namespace distri::channel::local {

LocalChannel::LocalChannel(std::shared_ptr<LocalGang> gang, int rank, const ChannelOptions& options)
    : Channel(options.op_timeout), gang_(std::move(gang)), rank_(rank) {}

LocalChannel::~LocalChannel() { gang_->Leave(rank_); }

int LocalChannel::world_size() const { return gang_->world_size(); }

Status LocalChannel::status() const { return gang_->status(); }

std::string LocalChannel::Where() const {
  return " on rank " + std::to_string(rank_) + " of " + std::to_string(world_size()) + " (local)";
}

Handle LocalChannel::Collective(int kind_value, ConstBuffer send, Buffer recv,
                                std::vector<size_t> counts) {
  const auto kind = static_cast<CollKind>(kind_value);
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
  }
  std::string what = std::string(CollKindName(kind)) + " #" + std::to_string(seq);
  if (kind != CollKind::kBarrier) {
    what += " (" + DTypeName(send.dtype) + " x " + std::to_string(send.count) + ")";
  }
  auto op = std::make_shared<OpState>(what + Where());
  Handle handle(op);
  Contribution part{kind, send, recv, std::move(counts), std::move(op)};
  gang_->PostCollective(rank_, seq, std::move(part));
  return handle;
}

Handle LocalChannel::DoAllGather(ConstBuffer send, Buffer recv, void*) {
  return Collective(static_cast<int>(CollKind::kAllGather), send, recv, {});
}

Handle LocalChannel::DoAllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                                  void*) {
  return Collective(static_cast<int>(CollKind::kAllGatherV), send, recv,
                    std::vector<size_t>(counts.begin(), counts.end()));
}

Handle LocalChannel::DoAllReduce(ConstBuffer send, Buffer recv, ReduceOp, void*) {
  return Collective(static_cast<int>(CollKind::kAllReduce), send, recv, {});
}

Handle LocalChannel::DoBarrier() {
  return Collective(static_cast<int>(CollKind::kBarrier), ConstBuffer(), Buffer(), {});
}

Handle LocalChannel::DoSend(ConstBuffer data, int peer, uint32_t tag, void*) {
  auto op = std::make_shared<OpState>("send to rank " + std::to_string(peer) + " tag " +
                                      std::to_string(tag) + " (" + DTypeName(data.dtype) + " x " +
                                      std::to_string(data.count) + ")" + Where());
  Handle handle(op);
  gang_->PostSend(rank_, peer, tag, data, std::move(op));
  return handle;
}

Handle LocalChannel::DoRecv(Buffer data, int peer, uint32_t tag, void*) {
  auto op = std::make_shared<OpState>("recv from rank " + std::to_string(peer) + " tag " +
                                      std::to_string(tag) + " (" + DTypeName(data.dtype) + " x " +
                                      std::to_string(data.count) + ")" + Where());
  Handle handle(op);
  gang_->PostRecv(rank_, peer, tag, data, std::move(op));
  return handle;
}

void LocalChannel::DoAbort(std::string_view reason) { gang_->Abort(rank_, reason); }

Result<std::vector<std::unique_ptr<Channel>>> MakeLocalGang(int world_size,
                                                            const ChannelOptions& options) {
  if (world_size < 1 || world_size > kMaxWorldSize) {
    return Status::InvalidArgument("local channel: world_size " + std::to_string(world_size) +
                                   " is outside [1, " + std::to_string(kMaxWorldSize) + "]");
  }
  auto gang = std::make_shared<LocalGang>(world_size);
  std::vector<std::unique_ptr<Channel>> channels;
  for (int r = 0; r < world_size; ++r) {
    DISTRI_RETURN_IF_ERROR(gang->Join(r, world_size));
    channels.push_back(std::make_unique<LocalChannel>(gang, r, options));
  }
  return channels;
}

namespace {

// Gangs being joined, by id. An entry is removed once its gang is complete (or failed).
std::mutex g_registry_mu;
std::map<std::string, std::shared_ptr<LocalGang>>& Registry() {
  static auto* registry = new std::map<std::string, std::shared_ptr<LocalGang>>();
  return *registry;
}

}  // namespace

Result<std::unique_ptr<Channel>> MakeLocalChannel(int rank, int world_size, Rendezvous& rendezvous,
                                                  const ChannelOptions& options) {
  if (world_size < 1 || world_size > kMaxWorldSize || rank < 0 || rank >= world_size) {
    return Status::InvalidArgument("local channel: rank " + std::to_string(rank) +
                                   " / world_size " + std::to_string(world_size) +
                                   " is not a valid gang position");
  }
  const std::string key = options.rendezvous_prefix + "/local_gang";
  const std::string pid = std::to_string(::getpid());
  std::string id;
  std::shared_ptr<LocalGang> gang;
  if (rank == 0) {
    // "<pid>:<random>": the pid lets a rank of another process fail with a clear message.
    id = pid + ":" + GangId::Random().Hex();
    gang = std::make_shared<LocalGang>(world_size);
    {
      std::lock_guard<std::mutex> lock(g_registry_mu);
      Registry()[id] = gang;
    }
    if (Status s = rendezvous.Put(key, id); !s.ok()) {
      std::lock_guard<std::mutex> lock(g_registry_mu);
      Registry().erase(id);
      return s.WithContext("local channel");
    }
  } else {
    auto value = rendezvous.Get(key, options.connect_timeout);
    if (!value.ok()) return value.status().WithContext("local channel: waiting for rank 0's gang id");
    id = std::move(value).value();
    const size_t colon = id.find(':');
    if (colon == std::string::npos || colon == 0 || colon > 10 ||
        id.find_first_not_of("0123456789") != colon) {
      return Status::ParseError("local channel: rendezvous key '" + key +
                                "' does not hold a local gang id (expected <pid>:<hex>, got " +
                                std::to_string(id.size()) + " bytes)");
    }
    if (id.substr(0, colon) != pid) {
      return Status::FailedPrecondition(
          "local channel: the gang was created by process " + id.substr(0, colon) +
          " but this is process " + pid + "; the local backend works only between threads of "
          "one process (use the ucx backend across processes)");
    }
    std::lock_guard<std::mutex> lock(g_registry_mu);
    auto it = Registry().find(id);
    if (it == Registry().end()) {
      return Status::NotFound("local channel: gang '" + id + "' is not (or no longer) open in "
                              "this process (did rank 0 give up?)");
    }
    gang = it->second;
  }
  Status s = gang->Join(rank, world_size);
  if (s.ok()) s = gang->WaitAllJoined(options.connect_timeout);
  {
    std::lock_guard<std::mutex> lock(g_registry_mu);
    Registry().erase(id);  // complete or failed: nobody else may join
  }
  if (!s.ok()) return s;
  return std::unique_ptr<Channel>(std::make_unique<LocalChannel>(gang, rank, options));
}

}  // namespace distri::channel::local
