// The serving side of the standalone TCP rendezvous: one thread, poll(2) over the listening
// socket, every connection and a wake-up pipe. Blocking GETs park their connection until the
// key is put or their deadline passes, so one thread serves any number of waiting ranks.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <vector>

#include "runtime/channel/tcp_rendezvous.h"
#include "runtime/channel/tcp_rendezvous_wire.h"

namespace distri::channel {
namespace {

using namespace tcp_wire;

struct Conn {
  Fd fd;
  std::string in;           // bytes received, not yet consumed
  std::string out;          // response bytes not yet sent
  size_t out_sent = 0;
  bool close_after_flush = false;
  bool waiting_get = false;  // a GET is parked: `get_key` until `get_deadline`
  std::string get_key;
  Clock::time_point get_deadline;
  Clock::time_point frame_started;  // when `in` became non-empty
};

}  // namespace

TcpRendezvousServer::TcpRendezvousServer(std::string host, uint16_t port, Fd listen_fd,
                                         Fd wake_read, Fd wake_write,
                                         TcpRendezvousServerOptions options)
    : host_(std::move(host)), port_(port), listen_fd_(std::move(listen_fd)),
      wake_read_(std::move(wake_read)), wake_write_(std::move(wake_write)), options_(options) {}

Result<std::unique_ptr<TcpRendezvousServer>> TcpRendezvousServer::Listen(
    const std::string& host, uint16_t port, TcpRendezvousServerOptions options) {
  uint16_t bound = 0;
  auto fd = ListenTcp(host, port, &bound);
  if (!fd.ok()) return fd.status().WithContext("rendezvous server");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::IoError(std::string("rendezvous server: pipe2: ") + std::strerror(errno));
  }
  return std::unique_ptr<TcpRendezvousServer>(new TcpRendezvousServer(
      host, bound, std::move(fd).value(), Fd(pipe_fds[0]), Fd(pipe_fds[1]), options));
}

TcpRendezvousServer::~TcpRendezvousServer() {
  stop_.store(true);
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &byte, 1);
  if (thread_.joinable()) thread_.join();
}

Status TcpRendezvousServer::Start() {
  std::lock_guard<std::mutex> lock(start_mu_);
  if (!thread_.joinable()) thread_ = std::thread([this] { Serve(); });
  return Status::Ok();
}

void TcpRendezvousServer::ErasePrefix(std::string prefix) {
  {
    std::lock_guard<std::mutex> lock(erase_mu_);
    erase_pending_.push_back(std::move(prefix));
  }
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &byte, 1);
}

void TcpRendezvousServer::Serve() {
  std::map<std::string, std::string, std::less<>> store;
  size_t store_bytes = 0;
  std::list<Conn> conns;

  auto respond = [](Conn& c, StatusCode code, const std::string& payload) {
    c.out = EncodeResponse(static_cast<uint8_t>(code), payload);
    c.out_sent = 0;
  };
  auto reject = [&](Conn& c, StatusCode code, const std::string& message) {
    malformed_frames_.fetch_add(1);
    respond(c, code, message.substr(0, kMaxErrorBytes));
    c.close_after_flush = true;
    c.in.clear();
  };

  // Consumes complete frames of `c` while it has nothing else to do.
  auto process = [&](Conn& c) {
    while (!c.waiting_get && !c.close_after_flush && c.out.empty() &&
           c.in.size() >= kRequestHeaderBytes) {
      const char* h = c.in.data();
      const uint32_t magic = GetU32(h);
      const auto op = static_cast<uint8_t>(h[4]);
      const uint32_t key_len = GetU32(h + 8);
      const uint32_t value_len = GetU32(h + 12);
      if (magic != kMagic) {
        char buf[96];
        std::snprintf(buf, sizeof(buf), "bad magic 0x%08x (expected 0x%08x)", magic, kMagic);
        return reject(c, StatusCode::kParseError, std::string("rendezvous request: ") + buf);
      }
      if (op != kOpPut && op != kOpGet) {
        return reject(c, StatusCode::kParseError,
                      "rendezvous request: unknown op " + std::to_string(op) + " (expected 1 or 2)");
      }
      if (h[5] != 0 || h[6] != 0 || h[7] != 0) {
        return reject(c, StatusCode::kParseError, "rendezvous request: reserved bytes are not zero");
      }
      if (key_len == 0 || key_len > kMaxRendezvousKeyBytes) {
        return reject(c, StatusCode::kInvalidArgument,
                      "rendezvous request: key length " + std::to_string(key_len) +
                          " is outside 1.." + std::to_string(kMaxRendezvousKeyBytes));
      }
      if (op == kOpGet && value_len != 8) {
        return reject(c, StatusCode::kParseError,
                      "rendezvous GET: the timeout field has " + std::to_string(value_len) +
                          " bytes (expected 8)");
      }
      if (value_len > kMaxRendezvousValueBytes) {
        return reject(c, StatusCode::kInvalidArgument,
                      "rendezvous PUT: value of " + std::to_string(value_len) +
                          " bytes is over the limit of " + std::to_string(kMaxRendezvousValueBytes));
      }
      const size_t frame = kRequestHeaderBytes + key_len + value_len;
      if (c.in.size() < frame) return;  // wait for the rest
      std::string key = c.in.substr(kRequestHeaderBytes, key_len);
      std::string value = c.in.substr(kRequestHeaderBytes + key_len, value_len);
      c.in.erase(0, frame);
      c.frame_started = Clock::now();
      if (Status s = CheckRendezvousKey(key); !s.ok()) {
        respond(c, s.code(), s.message());
        continue;
      }
      if (op == kOpPut) {
        if (store.find(key) != store.end()) {
          respond(c, StatusCode::kAlreadyExists, "rendezvous key '" + key + "' already has a value");
        } else if (store_bytes + key.size() + value.size() > options_.max_store_bytes) {
          respond(c, StatusCode::kOutOfMemory,
                  "rendezvous store is full (" + std::to_string(store_bytes) + " of " +
                      std::to_string(options_.max_store_bytes) + " bytes used)");
        } else {
          store_bytes += key.size() + value.size();
          auto it = store.emplace(key, std::move(value)).first;
          respond(c, StatusCode::kOk, "");
          for (Conn& w : conns) {  // wake GETs parked on this key
            if (w.waiting_get && w.get_key == key) {
              w.waiting_get = false;
              respond(w, StatusCode::kOk, it->second);
            }
          }
        }
      } else {
        auto it = store.find(key);
        if (it != store.end()) {
          respond(c, StatusCode::kOk, it->second);
        } else {
          const auto asked = std::chrono::milliseconds(
              static_cast<int64_t>(std::min<uint64_t>(GetU64(value.data()), INT64_MAX / 2)));
          c.waiting_get = true;
          c.get_key = std::move(key);
          c.get_deadline = DeadlineAfter(std::min(asked, options_.max_get_timeout));
        }
      }
    }
  };

  std::vector<pollfd> fds;
  std::vector<Conn*> polled;
  char buf[64 * 1024];
  while (!stop_.load()) {
    std::vector<std::string> erase;
    {
      std::lock_guard<std::mutex> lock(erase_mu_);
      erase.swap(erase_pending_);
    }
    for (const std::string& prefix : erase) {
      for (auto it = store.lower_bound(prefix); it != store.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
        store_bytes -= it->first.size() + it->second.size();
        it = store.erase(it);
        erased_keys_.fetch_add(1);
      }
    }
    const auto now = Clock::now();
    // Expire parked GETs and drop connections stalled mid-frame.
    auto wake = now + std::chrono::milliseconds(1000);
    for (auto it = conns.begin(); it != conns.end();) {
      Conn& c = *it;
      if (c.waiting_get && now >= c.get_deadline) {
        c.waiting_get = false;
        respond(c, StatusCode::kDeadlineExceeded,
                "rendezvous key '" + c.get_key + "' was not put in time");
      }
      if (!c.in.empty() && !c.waiting_get && c.out.empty() &&
          now - c.frame_started > options_.frame_timeout) {
        dropped_connections_.fetch_add(1);
        it = conns.erase(it);
        continue;
      }
      if (c.waiting_get) wake = std::min(wake, c.get_deadline);
      if (!c.in.empty()) wake = std::min(wake, c.frame_started + options_.frame_timeout);
      ++it;
    }

    fds.clear();
    polled.clear();
    fds.push_back({wake_read_.get(), POLLIN, 0});
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    for (Conn& c : conns) {
      short events = POLLIN;
      if (!c.out.empty()) events |= POLLOUT;
      fds.push_back({c.fd.get(), events, 0});
      polled.push_back(&c);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now());
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait.count())) + 1);
    if (n < 0 && errno != EINTR) break;
    if (stop_.load()) break;
    if (fds[0].revents & POLLIN) {  // woken (ErasePrefix): drain the pipe (non-blocking)
      char drain[64];
      while (::read(wake_read_.get(), drain, sizeof(drain)) > 0) {
      }
    }

    if (fds[1].revents & POLLIN) {
      while (true) {
        const int cfd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) break;
        if (conns.size() >= options_.max_connections) {
          ::close(cfd);
          dropped_connections_.fetch_add(1);
          continue;
        }
        conns.emplace_back();
        conns.back().fd = Fd(cfd);
      }
    }

    std::vector<Conn*> dead;
    for (size_t i = 0; i < polled.size(); ++i) {
      Conn& c = *polled[i];
      const short re = fds[i + 2].revents;
      bool closed = false;
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        // Read what is there, unless this connection is already being closed.
        while (!c.close_after_flush) {
          const ssize_t got = ::recv(c.fd.get(), buf, sizeof(buf), 0);
          if (got > 0) {
            if (c.in.empty()) c.frame_started = Clock::now();
            c.in.append(buf, static_cast<size_t>(got));
            // Never buffer more than one maximal frame beyond what is being processed.
            if (c.in.size() > 2 * (kRequestHeaderBytes + kMaxRendezvousKeyBytes + kMaxRendezvousValueBytes)) {
              reject(c, StatusCode::kInvalidArgument, "rendezvous: too much unread data");
            }
            process(c);
            continue;
          }
          if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
          break;
        }
      }
      process(c);
      if (!closed && !c.out.empty()) {
        while (c.out_sent < c.out.size()) {
          const ssize_t sent = ::send(c.fd.get(), c.out.data() + c.out_sent,
                                      c.out.size() - c.out_sent, MSG_NOSIGNAL);
          if (sent > 0) {
            c.out_sent += static_cast<size_t>(sent);
            continue;
          }
          if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
          closed = true;
          break;
        }
        if (!closed && c.out_sent == c.out.size()) {
          c.out.clear();
          c.out_sent = 0;
          if (c.close_after_flush) closed = true;
          else process(c);  // a pipelined next request
        }
      }
      if (closed) dead.push_back(&c);
    }
    conns.remove_if([&](const Conn& c) {
      for (Conn* d : dead) {
        if (d == &c) return true;
      }
      return false;
    });
  }
}

}  // namespace distri::channel
