#include "runtime/channel/nccl/peer_monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace distri::channel::nccl {
namespace {

constexpr uint32_t kMagic = 0x4D434E44;  // "DNCM"
constexpr size_t kMaxReason = 4096;
constexpr auto kSendBound = std::chrono::milliseconds(100);

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

// "host:port" -> (host, port); the host may be an IPv6 literal in brackets.
Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return Status::ParseError("nccl peer monitor address '" + text + "' is not host:port");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || port > 65535) {
      return Status::ParseError("nccl peer monitor address '" + text + "' has a bad port");
    }
    port = port * 10 + static_cast<unsigned long>(text[i] - '0');
  }
  if (port == 0 || port > 65535) {
    return Status::ParseError("nccl peer monitor address '" + text + "' has a bad port");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Result<Fd> AcceptOne(int listen_fd, Clock::time_point deadline) {
  while (true) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return Fd(fd);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return Status::Unavailable(std::string("nccl peer monitor: accept: ") + std::strerror(errno));
    }
    const auto left = TimeLeft(deadline);
    if (left.count() == 0) {
      return Status::DeadlineExceeded("nccl peer monitor: a higher rank did not connect in time");
    }
    pollfd p{listen_fd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
  }
}

}  // namespace

Result<std::unique_ptr<PeerMonitor>> PeerMonitor::Connect(int rank, int world_size,
                                                          Rendezvous& rendezvous,
                                                          const std::string& prefix,
                                                          const std::string& host_option,
                                                          Clock::time_point deadline) {
  std::string host = host_option;
  if (host.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) != 0) {
      return Status::Unavailable(std::string("nccl peer monitor: gethostname: ") + std::strerror(errno));
    }
    host = name;
  }
  uint16_t port = 0;
  DISTRI_ASSIGN_OR_RETURN(Fd listener, ListenTcp(host, 0, &port));
  auto addresses = RendezvousAllGather(rendezvous, prefix, rank, world_size, HostPort(host, port),
                                       TimeLeft(deadline));
  if (!addresses.ok()) return addresses.status().WithContext("nccl peer monitor");

  std::unique_ptr<PeerMonitor> m(new PeerMonitor(rank, world_size));
  m->peers_.resize(static_cast<size_t>(world_size));
  // Lower ranks: connect (their listeners queue the connection until they accept).
  for (int peer = 0; peer < rank; ++peer) {
    DISTRI_ASSIGN_OR_RETURN(auto hp, SplitHostPort((*addresses)[static_cast<size_t>(peer)]));
    auto fd = ConnectTcp(hp.first, hp.second, deadline);
    if (!fd.ok()) return fd.status().WithContext("nccl peer monitor: connecting to rank " + std::to_string(peer));
    std::string hello;
    PutU32(hello, kMagic);
    PutU32(hello, static_cast<uint32_t>(rank));
    PutU32(hello, static_cast<uint32_t>(world_size));
    DISTRI_RETURN_IF_ERROR(SendAll(fd->get(), hello.data(), hello.size(), deadline));
    m->peers_[static_cast<size_t>(peer)] = std::move(fd).value();
  }
  // Higher ranks: accept, in whatever order they come.
  for (int n = rank + 1; n < world_size; ++n) {
    DISTRI_ASSIGN_OR_RETURN(Fd fd, AcceptOne(listener.get(), deadline));
    unsigned char hello[12];
    DISTRI_RETURN_IF_ERROR(RecvAll(fd.get(), hello, sizeof(hello), deadline));
    const uint32_t magic = GetU32(hello), peer = GetU32(hello + 4), world = GetU32(hello + 8);
    if (magic != kMagic || static_cast<int>(world) != world_size ||
        static_cast<int>(peer) <= rank || static_cast<int>(peer) >= world_size ||
        m->peers_[peer].valid()) {
      return Status::ParseError("nccl peer monitor: unexpected connection (magic " +
                                std::to_string(magic) + ", rank " + std::to_string(peer) +
                                ", world_size " + std::to_string(world) + ")");
    }
    m->peers_[peer] = std::move(fd);
  }
  if (::pipe2(m->wake_, O_CLOEXEC) != 0) {
    return Status::Unavailable(std::string("nccl peer monitor: pipe: ") + std::strerror(errno));
  }
  return m;
}

PeerMonitor::~PeerMonitor() {
  Close(false);
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void PeerMonitor::Start(std::function<void(const Status&)> on_peer_failure,
                        std::function<void()> tick, std::function<void()> set_device) {
  on_peer_failure_ = std::move(on_peer_failure);
  tick_ = std::move(tick);
  set_device_ = std::move(set_device);
  thread_ = std::thread([this] { Run(); });
}

void PeerMonitor::SendToAll(char kind, const std::string& text) {
  std::lock_guard<std::mutex> lock(send_mu_);
  if (sent_final_) return;
  sent_final_ = true;
  std::string message(1, kind);
  const std::string reason = text.substr(0, kMaxReason);
  PutU32(message, static_cast<uint32_t>(reason.size()));
  message += reason;
  for (Fd& fd : peers_) {
    if (fd.valid()) (void)SendAll(fd.get(), message.data(), message.size(), Clock::now() + kSendBound);
  }
}

void PeerMonitor::BroadcastAbort(const std::string& reason) { SendToAll('A', reason); }

void PeerMonitor::Close(bool clean) {
  if (closed_) return;
  closed_ = true;
  if (clean) SendToAll('C', "");
  if (thread_.joinable()) {
    const char byte = 1;
    (void)!::write(wake_[1], &byte, 1);
    thread_.join();
  }
  for (Fd& fd : peers_) fd.Reset();
}

Status PeerMonitor::ReadFrom(int peer) {
  const int fd = peers_[static_cast<size_t>(peer)].get();
  const std::string who = "rank " + std::to_string(peer);
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  char kind = 0;
  if (!RecvAll(fd, &kind, 1, deadline).ok()) {
    return Status::Unavailable(who + " of the nccl gang is gone (its process exited or dropped "
                               "the monitor connection without a word)");
  }
  unsigned char size[4];
  std::string reason;
  if (RecvAll(fd, size, 4, deadline).ok()) {
    reason.resize(std::min<size_t>(GetU32(size), kMaxReason));
    if (!RecvAll(fd, reason.data(), reason.size(), deadline).ok()) reason.clear();
  }
  if (kind == 'A') return Status::Unavailable(who + " aborted its nccl channel: " + reason);
  if (kind == 'C') return Status::Unavailable(who + " destroyed its nccl channel");
  return Status::Unavailable(who + " sent an unknown monitor message");
}

void PeerMonitor::Run() {
  if (set_device_) set_device_();
  std::vector<pollfd> fds;
  std::vector<int> rank_of;
  fds.push_back({wake_[0], POLLIN, 0});
  rank_of.push_back(-1);
  for (int r = 0; r < world_size_; ++r) {
    if (!peers_[static_cast<size_t>(r)].valid()) continue;
    fds.push_back({peers_[static_cast<size_t>(r)].get(), POLLIN, 0});
    rank_of.push_back(r);
  }
  bool reported = false;
  while (true) {
    const int n = ::poll(fds.data(), fds.size(), 20);
    if (n > 0 && (fds[0].revents & POLLIN) != 0) return;
    for (size_t i = 1; n > 0 && i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const Status s = ReadFrom(rank_of[i]);
      fds[i].fd = -1;  // one message or the end per peer: stop watching it
      if (!reported && on_peer_failure_) {
        reported = true;
        on_peer_failure_(s);
      }
    }
    if (tick_) tick_();
  }
}

}  // namespace distri::channel::nccl
