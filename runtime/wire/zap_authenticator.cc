#include "runtime/wire/zap_authenticator.h"

#include <zmq.h>

#include <array>
#include <cerrno>
#include <chrono>

#include "runtime/common/logging.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/zmq_socket.h"

namespace distri::wire {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr int kPollMs = 100;
constexpr int64_t kRefusalLogIntervalMs = 10'000;
constexpr size_t kMaxRefusalLogKeys = 4096;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Receives one multipart message from a socket that is known to be readable.
bool RecvAll(void* socket, std::vector<std::string>* frames) {
  frames->clear();
  while (true) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    int rc;
    do {
      rc = zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      zmq_msg_close(&msg);
      return false;
    }
    // ZAP requests come from libzmq itself; 16 frames is far beyond RFC 27's 7.
    if (frames->size() < 16) frames->emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    const bool more = zmq_msg_more(&msg) != 0;
    zmq_msg_close(&msg);
    if (!more) return true;
  }
}

void SendAll(void* socket, const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    int rc;
    do {
      rc = zmq_send(socket, frames[i].data(), frames[i].size(), i + 1 < frames.size() ? ZMQ_SNDMORE : 0);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return;
  }
}

}  // namespace

Result<std::unique_ptr<ZapAuthenticator>> ZapAuthenticator::Start(std::shared_ptr<ZmqContext> context,
                                                                  const std::vector<std::string>& allowed) {
  DISTRI_RETURN_IF_ERROR(CheckCurveSupport());
  for (size_t i = 0; i < allowed.size(); ++i) {
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(allowed[i], "allowed key #" + std::to_string(i)));
  }
  void* socket = zmq_socket(context->raw(), ZMQ_REP);
  if (socket == nullptr) return Status::Internal("zmq_socket(ZMQ_REP): " + internal::ZmqError(errno));
  const int linger = 0;
  zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(socket, kZapEndpoint) != 0) {
    const int err = errno;
    zmq_close(socket);
    if (err == EADDRINUSE) return Status::AlreadyExists("this ZeroMQ context already has a ZAP handler");
    return Status::Internal(std::string("bind ") + kZapEndpoint + ": " + internal::ZmqError(err));
  }
  std::unique_ptr<ZapAuthenticator> auth(new ZapAuthenticator(std::move(context), socket));
  for (const std::string& k : allowed) auth->allowed_.insert(k);
  // The socket moves to the thread here; std::thread's start is the memory barrier zmq asks for.
  auth->thread_ = std::thread([a = auth.get()] { a->Run(); });
  return auth;
}

ZapAuthenticator::ZapAuthenticator(std::shared_ptr<ZmqContext> context, void* socket)
    : context_(std::move(context)), socket_(socket) {}

ZapAuthenticator::~ZapAuthenticator() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (socket_ != nullptr) zmq_close(socket_);
}

Status ZapAuthenticator::Allow(const std::string& key) {
  DISTRI_RETURN_IF_ERROR(ValidateZ85Key(key, "allowed key"));
  std::lock_guard<std::mutex> lock(mu_);
  allowed_.insert(key);
  return Status::Ok();
}

void ZapAuthenticator::Revoke(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  allowed_.erase(key);
}

bool ZapAuthenticator::IsAllowed(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return allowed_.count(key) != 0;
}

void ZapAuthenticator::Run() {
  std::vector<std::string> request;
  while (!stop_.load()) {
    zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
    const int rc = zmq_poll(&item, 1, kPollMs);
    if (rc < 0) {
      if (errno == EINTR) continue;
      if (errno == ETERM) break;
      DISTRI_LOG(ERROR) << "ZAP handler: zmq_poll: " << internal::ZmqError(errno) << "; stopping";
      break;
    }
    if (rc == 0) continue;
    if (!RecvAll(socket_, &request)) continue;
    SendAll(socket_, Answer(request));
  }
}

std::vector<std::string> ZapAuthenticator::Answer(const std::vector<std::string>& req) {
  // Request (RFC 27): version, request id, domain, address, routing id, mechanism, credentials...
  const std::string version = req.size() > 0 ? req[0] : "";
  const std::string request_id = req.size() > 1 ? req[1] : "";
  auto reply = [&](const char* code, const std::string& text, const std::string& user) {
    return std::vector<std::string>{"1.0", request_id, code, text, user, ""};
  };
  if (req.size() < 6 || version != "1.0") {
    ++refused_;
    DISTRI_LOG(WARNING) << "ZAP handler: malformed request (" << req.size() << " frames, version '"
                        << version << "'); refusing";
    return reply("400", "malformed ZAP request", "");
  }
  const std::string& address = req[3];
  const std::string& mechanism = req[5];
  if (mechanism != "CURVE" || req.size() < 7 || req[6].size() != 32) {
    ++refused_;
    LogRefusal("(none)", address, "mechanism " + mechanism + " is not allowed, CURVE is required");
    return reply("400", "CURVE required", "");
  }
  char z85[kZ85KeyChars + 1];
  if (zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(req[6].data()), 32) == nullptr) {
    ++refused_;
    return reply("500", "cannot encode client key", "");
  }
  const std::string key(z85, kZ85KeyChars);
  if (!IsAllowed(key)) {
    ++refused_;
    LogRefusal(key, address, "public key not in the allow-list");
    return reply("400", "unknown client key", "");
  }
  ++accepted_;
  DISTRI_LOG(DEBUG) << "ZAP: admitted CURVE client " << key << " from " << address;
  // The user id becomes the "User-Id" property of every message from this connection.
  return reply("200", "OK", key);
}

void ZapAuthenticator::LogRefusal(const std::string& key, const std::string& address, const std::string& why) {
  if (refusal_log_.size() > kMaxRefusalLogKeys) refusal_log_.clear();  // bound memory under key spraying
  RefusalLog& entry = refusal_log_[key];
  const int64_t now = NowMs();
  ++entry.unreported;
  if (entry.last_log_ms != 0 && now - entry.last_log_ms < kRefusalLogIntervalMs) return;
  DISTRI_LOG(WARNING) << "refused control-plane client " << key << " from " << address << ": " << why << " ("
                      << entry.unreported << " attempt" << (entry.unreported == 1 ? "" : "s")
                      << (entry.last_log_ms == 0 ? "" : " since the last report") << ")";
  entry.last_log_ms = now;
  entry.unreported = 0;
}

}  // namespace distri::wire
