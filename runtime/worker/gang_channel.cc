#include "runtime/worker/gang_channel.h"

#include <charconv>

#include "runtime/channel/factory.h"
#include "runtime/channel/tcp_rendezvous.h"

namespace distri::worker {

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

Result<std::unique_ptr<channel::Channel>> MakeGangChannel(const wire::AssignTask& task,
                                                          const GangChannelOptions& options) {
  const int world = static_cast<int>(task.gang.size());
  if (world <= 1) return std::unique_ptr<channel::Channel>();
  DISTRI_ASSIGN_OR_RETURN(channel::Backend backend, channel::ParseBackend(task.channel_backend));
  std::string host;
  uint16_t port = 0;
  DISTRI_RETURN_IF_ERROR(ParseTcpAddress(task.rendezvous, &host, &port));
  DISTRI_ASSIGN_OR_RETURN(auto rendezvous,
                          channel::TcpRendezvousClient::Connect(host, port, options.connect_timeout));
  channel::ChannelOptions co;
  co.rendezvous_prefix = GangRendezvousPrefix(task);
  co.connect_timeout = options.connect_timeout;
  co.op_timeout = options.op_timeout;
  co.ucx_transports = options.ucx_transports;
  auto ch = channel::MakeChannel(backend, static_cast<int>(task.rank), world, *rendezvous, co);
  if (!ch.ok()) {
    return ch.status().WithContext("gang " + task.gang_id.Short() + " rank " + std::to_string(task.rank) + "/" +
                                   std::to_string(world) + " (" + task.channel_backend + " via " + task.rendezvous + ")");
  }
  return ch;
}

}  // namespace distri::worker
