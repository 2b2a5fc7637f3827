#include "runtime/head/http_responder.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "runtime/common/logging.h"

namespace distri::head {
namespace {

constexpr size_t kMaxRequestBytes = 8192;

std::string Response(int code, const char* reason, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason +
         "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

Result<std::unique_ptr<HttpResponder>> HttpResponder::Start(const std::string& host, uint16_t port,
                                                            std::vector<std::string> paths, RenderFn render) {
  uint16_t bound = 0;
  Result<channel::Fd> fd = channel::ListenTcp(host, port, &bound);
  if (!fd.ok()) return fd.status().WithContext("metrics endpoint " + channel::HostPort(host, port));
  std::unique_ptr<HttpResponder> r(new HttpResponder(std::move(*fd), bound, std::move(paths), std::move(render)));
  r->thread_ = std::thread([p = r.get()] { p->Serve(); });
  return r;
}

HttpResponder::~HttpResponder() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void HttpResponder::Serve() {
  while (!stop_) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int conn = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;  // EAGAIN (listen socket is non-blocking), or a transient error
    channel::Fd owned(conn);
    Handle(conn);
  }
}

void HttpResponder::Handle(int conn) {
  const auto deadline = channel::DeadlineAfter(std::chrono::milliseconds(2000));
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    if (req.size() > kMaxRequestBytes || channel::TimeLeft(deadline).count() == 0) return;
    pollfd p{conn, POLLIN, 0};
    const int left = static_cast<int>(std::min<int64_t>(channel::TimeLeft(deadline).count(), 200));
    if (::poll(&p, 1, left) <= 0) continue;
    const ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
  }
  const size_t sp1 = req.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? sp1 : req.find(' ', sp1 + 1);
  std::string out;
  if (sp2 == std::string::npos) {
    out = Response(400, "Bad Request", "bad request line\n");
  } else if (req.compare(0, sp1, "GET") != 0) {
    out = Response(405, "Method Not Allowed", "only GET\n");
  } else {
    std::string path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    if (std::find(paths_.begin(), paths_.end(), path) == paths_.end()) {
      out = Response(404, "Not Found", "try /metrics\n");
    } else {
      out = Response(200, "OK", render_());
    }
  }
  Status s = channel::SendAll(conn, out.data(), out.size(), deadline);
  if (!s.ok()) DISTRI_LOG(DEBUG) << "metrics: " << s.ToString();
}

}  // namespace distri::head
