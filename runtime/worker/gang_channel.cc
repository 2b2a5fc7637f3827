#include "runtime/worker/gang_channel.h"

#include <algorithm>
#include <atomic>
#include <charconv>

#include "runtime/channel/factory.h"
#include "runtime/channel/tcp_rendezvous.h"

namespace distri::worker {

// The head's rendezvous as the set keeps it: Abort ends a wait for a peer's key (a group
// channel being made when the task is cancelled) instead of leaving it to connect_timeout.
class AbortableRendezvous : public channel::Rendezvous {
 public:
  explicit AbortableRendezvous(std::unique_ptr<channel::TcpRendezvousClient> client) : client_(std::move(client)) {}

  Status Put(std::string_view key, std::string_view value) override {
    if (aborted_) return Aborted(key);
    return client_->Put(key, value);
  }
  Result<std::string> Get(std::string_view key, std::chrono::milliseconds timeout) override {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (aborted_) return Aborted(key);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto got = client_->Get(key, std::clamp(left, std::chrono::milliseconds(0), kSlice));
      if (got.ok() || got.status().code() != StatusCode::kDeadlineExceeded || Clock::now() >= deadline) return got;
    }
  }
  void Abort() { aborted_ = true; }

 private:
  static constexpr std::chrono::milliseconds kSlice{200};
  static Status Aborted(std::string_view key) {
    return Status::Aborted("rendezvous of '" + std::string(key) + "' abandoned: the gang's channels were aborted");
  }
  std::unique_ptr<channel::TcpRendezvousClient> client_;
  std::atomic<bool> aborted_{false};
};

Status ParseTcpAddress(const std::string& address, std::string* host, uint16_t* port) {
  const std::string prefix = "tcp://";
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("rendezvous address '" + address + "': " + why + " (expected tcp://HOST:PORT)");
  };
  if (address.compare(0, prefix.size(), prefix) != 0) return bad("not a tcp:// address");
  const std::string rest = address.substr(prefix.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("no host:port");
  std::string h = rest.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = rest.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || value == 0 || value > 65535) {
    return bad("port '" + p + "' is not in 1..65535");
  }
  *host = h;
  *port = static_cast<uint16_t>(value);
  return Status::Ok();
}

std::string GangRendezvousPrefix(const wire::AssignTask& task) { return "gang/" + task.gang_id.Hex(); }

std::string GroupRendezvousPrefix(const GangId& gang, int group) {
  return "gang/" + gang.Hex() + "/group" + std::to_string(group);
}

GangChannelSet::GangChannelSet(const wire::AssignTask& task, GangChannelOptions options)
    : gang_id_(task.gang_id),
      rank_(task.rank),
      world_(static_cast<int>(task.gang.size())),
      backend_(task.channel_backend),
      where_("gang " + task.gang_id.Short() + " rank " + std::to_string(task.rank) + "/" +
             std::to_string(task.gang.size()) + " (" + task.channel_backend + " via " + task.rendezvous + ")"),
      options_(std::move(options)) {}

GangChannelSet::~GangChannelSet() = default;

Result<std::unique_ptr<GangChannelSet>> GangChannelSet::Connect(const wire::AssignTask& task,
                                                               const GangChannelOptions& options) {
  const int world = static_cast<int>(task.gang.size());
  if (world <= 1) return Status::InvalidArgument("a gang of one has no channels");
  DISTRI_ASSIGN_OR_RETURN(channel::Backend backend, channel::ParseBackend(task.channel_backend));
  std::string host;
  uint16_t port = 0;
  DISTRI_RETURN_IF_ERROR(ParseTcpAddress(task.rendezvous, &host, &port));
  std::unique_ptr<GangChannelSet> set(new GangChannelSet(task, options));
  auto client = channel::TcpRendezvousClient::Connect(host, port, options.connect_timeout);
  if (!client.ok()) return client.status().WithContext(set->where_);
  set->rendezvous_ = std::make_unique<AbortableRendezvous>(std::move(*client));
  channel::ChannelOptions co;
  co.rendezvous_prefix = GangRendezvousPrefix(task);
  co.connect_timeout = options.connect_timeout;
  co.op_timeout = options.op_timeout;
  co.ucx_transports = options.ucx_transports;
  auto ch = channel::MakeChannel(backend, static_cast<int>(task.rank), world, *set->rendezvous_, co);
  if (!ch.ok()) return ch.status().WithContext(set->where_);
  set->gang_ = std::move(*ch);
  return set;
}

Result<channel::Channel*> GangChannelSet::Group(int group, int rank, int size) {
  if (group < 0 || size < 1 || size > world_ || rank < 0 || rank >= size) {
    return Status::InvalidArgument("group channel " + std::to_string(group) + " rank " + std::to_string(rank) + "/" +
                                   std::to_string(size) + " does not fit " + where_);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (abort_reason_) return Status::Aborted(where_ + " was aborted: " + *abort_reason_);
    auto it = groups_.find(group);
    if (it != groups_.end()) {
      if (it->second.rank != rank || it->second.size != size) {
        return Status::FailedPrecondition("group channel " + std::to_string(group) + " of " + where_ +
                                          " was made as rank " + std::to_string(it->second.rank) + "/" +
                                          std::to_string(it->second.size) + ", now asked as rank " +
                                          std::to_string(rank) + "/" + std::to_string(size));
      }
      return it->second.channel.get();
    }
  }
  DISTRI_ASSIGN_OR_RETURN(channel::Backend backend, channel::ParseBackend(backend_));
  channel::ChannelOptions co;
  co.rendezvous_prefix = GroupRendezvousPrefix(gang_id_, group);
  co.connect_timeout = options_.connect_timeout;
  co.op_timeout = options_.op_timeout;
  co.ucx_transports = options_.ucx_transports;
  // Made unlocked (it waits for the group's peers); Abort meanwhile ends the rendezvous wait.
  auto made = channel::MakeChannel(backend, rank, size, *rendezvous_, co);
  if (!made.ok()) {
    return made.status().WithContext("group channel " + std::to_string(group) + " of " + where_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  channel::Channel* ch = made->get();
  groups_[group] = GroupChannel{rank, size, std::move(*made)};
  if (abort_reason_) {
    ch->Abort(*abort_reason_);
    return Status::Aborted(where_ + " was aborted: " + *abort_reason_);
  }
  return ch;
}

void GangChannelSet::Abort(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!abort_reason_) abort_reason_ = std::string(reason);
  if (rendezvous_) rendezvous_->Abort();
  if (gang_) gang_->Abort(reason);
  for (auto& [group, g] : groups_) g.channel->Abort(reason);
}

bool GangChannelSet::aborted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abort_reason_.has_value();
}

Status GangChannelSet::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (abort_reason_) return Status::Aborted(where_ + " was aborted: " + *abort_reason_);
  if (gang_) DISTRI_RETURN_IF_ERROR(gang_->status());
  for (const auto& [group, g] : groups_) DISTRI_RETURN_IF_ERROR(g.channel->status());
  return Status::Ok();
}

int GangChannelSet::group_channels() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(groups_.size());
}

}  // namespace distri::worker
