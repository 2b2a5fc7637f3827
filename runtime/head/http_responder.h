// HttpResponder: a minimal plain-HTTP/1.1 server for the head's Prometheus endpoint.
//
// One background thread accepts connections one at a time, reads the request head (at most
// 8 KiB, within 2 s, else the connection is dropped), and answers GET of any path in `paths`
// with 200 and the text `render()` returns, other paths with 404, other methods with 405;
// then closes the connection. Nothing is read from the body. No TLS, no keep-alive: it serves
// scrapers, not browsers. Bind to an address only the monitoring network reaches.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/channel/socket_util.h"
#include "runtime/common/status.h"

namespace distri::head {

class HttpResponder {
 public:
  using RenderFn = std::function<std::string()>;
  // Listens on host:port (port 0 picks a free one: port()) and starts serving.
  static Result<std::unique_ptr<HttpResponder>> Start(const std::string& host, uint16_t port,
                                                      std::vector<std::string> paths, RenderFn render);
  ~HttpResponder();  // stops the thread (within ~100 ms) and closes the socket
  HttpResponder(const HttpResponder&) = delete;
  HttpResponder& operator=(const HttpResponder&) = delete;

  uint16_t port() const { return port_; }

 private:
  HttpResponder(channel::Fd fd, uint16_t port, std::vector<std::string> paths, RenderFn render)
      : fd_(std::move(fd)), port_(port), paths_(std::move(paths)), render_(std::move(render)) {}
  void Serve();
  void Handle(int conn);

  channel::Fd fd_;
  uint16_t port_;
  std::vector<std::string> paths_;
  RenderFn render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace distri::head
