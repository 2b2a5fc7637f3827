// Metrics text format and the HTTP responder that serves it.
#include "runtime/head/metrics.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "runtime/channel/socket_util.h"
#include "runtime/head/http_responder.h"

namespace distri::head {
namespace {

std::string HttpGet(uint16_t port, const std::string& request) {
  const auto deadline = channel::DeadlineAfter(std::chrono::milliseconds(3000));
  channel::Fd fd = channel::ConnectTcp("127.0.0.1", port, deadline).value();
  EXPECT_TRUE(channel::SendAll(fd.get(), request.data(), request.size(), deadline).ok());
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m;
  m.SetJobsByState({3, 1, 2, 10, 1, 0});
  m.SetQueueLength(3);
  m.SetActors({.gpu_idle = 1, .gpu_busy = 2});
  m.ObserveStepSeconds(0.07);
  m.ObserveStepSeconds(0.3);
  m.JobSubmitted();
  const std::string text = m.Render();
  EXPECT_NE(text.find("distri_jobs{state=\"PENDING\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("distri_queue_length 3\n"), std::string::npos);
  EXPECT_NE(text.find("distri_gpu_actors_busy 2\n"), std::string::npos);
  EXPECT_NE(text.find("distri_step_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("distri_step_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("distri_step_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE distri_step_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("distri_jobs_submitted_total 1\n"), std::string::npos);
}

TEST(HttpResponder, ServesMetricsAndRejectsOthers) {
  auto http = HttpResponder::Start("127.0.0.1", 0, {"/metrics"}, [] { return std::string("x 1\n"); }).value();
  std::string ok = HttpGet(http->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("\r\n\r\nx 1\n"), std::string::npos);
  EXPECT_EQ(HttpGet(http->port(), "GET /nope HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(HttpGet(http->port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(HttpGet(http->port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // Still serving after the bad ones.
  EXPECT_EQ(HttpGet(http->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
}

}  // namespace
}  // namespace distri::head
