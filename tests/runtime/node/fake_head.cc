#include "tests/runtime/node/fake_head.h"

#include <stdlib.h>

#include <cstdio>
#include <stdexcept>

namespace distri::testing {

using std::chrono::milliseconds;

namespace {
template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) throw std::runtime_error(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}
void Must(const Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.ToString());
}
}  // namespace

FakeHead::FakeHead(const std::string& keys_dir, uint32_t heartbeat_interval_ms)
    : keys_dir_(keys_dir), heartbeat_interval_ms_(heartbeat_interval_ms) {
  head_keys_ = Must(wire::GenerateCurveKeyPair(), "head keys");
  node_keys_ = Must(wire::GenerateCurveKeyPair(), "node keys");
  Must(wire::WriteKeyPairFile(keys_dir + "/head.key", head_keys_), "head.key");
  Must(wire::WritePublicKeyFile(keys_dir + "/head.pub", head_keys_.public_key), "head.pub");
  Must(wire::WriteKeyPairFile(keys_dir + "/node.key", node_keys_), "node.key");
  Bind(0);
}

FakeHead::~FakeHead() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void FakeHead::Bind(uint16_t port) {
  ctx_ = Must(wire::ZmqContext::Create(), "context");
  auth_ = Must(wire::ZapAuthenticator::Start(ctx_, {node_keys_.public_key}), "zap");
  wire::RouterOptions o;
  o.endpoint = port == 0 ? "tcp://127.0.0.1:*" : "tcp://127.0.0.1:" + std::to_string(port);
  o.sender_id = "head";
  o.curve = head_keys_;
  o.authenticator = auth_.get();
  // A port just released may need a moment before it can be bound again.
  for (int attempt = 0;; ++attempt) {
    auto r = wire::RouterSocket::Bind(ctx_, o);
    if (r.ok()) {
      router_ = std::move(r).value();
      break;
    }
    if (attempt > 100) throw std::runtime_error("bind " + o.endpoint + ": " + r.status().ToString());
    std::this_thread::sleep_for(milliseconds(50));
  }
  endpoint_ = router_->endpoint();
  stop_ = false;
  thread_ = std::thread([this] { Serve(); });
}

void FakeHead::Restart() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  const uint16_t port = static_cast<uint16_t>(std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1)));
  router_.reset();
  auth_.reset();
  ctx_.reset();
  registered_peers_.clear();
  handshakes_ = 0;
  Bind(port);
}

std::vector<FakeHead::Received> FakeHead::Messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

std::string FakeHead::PeerOf(wire::MessageType type) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = received_.rbegin(); it != received_.rend(); ++it) {
    if (it->envelope.type == type) return it->peer;
  }
  return "";
}

void FakeHead::Serve() {
  while (!stop_) {
    std::deque<std::pair<std::string, wire::Envelope>> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out.swap(outbox_);
    }
    for (auto& [peer, env] : out) (void)router_->SendEnvelope(peer, env);
    handshakes_ = auth_->accepted();
    auto in = router_->Receive(milliseconds(10));
    if (!in.ok()) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back({in->peer, in->envelope, in->message});
    }
    if (auto* m = std::get_if<wire::RegisterNode>(&in->message)) {
      registered_peers_.insert(in->peer);
      (void)router_->Reply(*in, wire::NodeRegistered{m->node_id, heartbeat_interval_ms_});
    } else if (auto* a = std::get_if<wire::RegisterActor>(&in->message)) {
      if (answer_register_actor_) {
        registered_peers_.insert(in->peer);
        (void)router_->Reply(*in, wire::ActorRegistered{a->actor_id, heartbeat_interval_ms_});
      }
    } else if (std::holds_alternative<wire::Heartbeat>(in->message) ||
               std::holds_alternative<wire::TaskDone>(in->message) ||
               std::holds_alternative<wire::TaskProgress>(in->message)) {
      if (!registered_peers_.count(in->peer)) {
        ++errors_sent_;
        (void)router_->ReplyError(*in, Status::FailedPrecondition("not registered: send RegisterActor again"));
      }
    }
  }
}

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "_XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl);
  return tmpl;
}

}  // namespace distri::testing
