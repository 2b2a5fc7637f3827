// ROUTER/DEALER over tcp://127.0.0.1 with CURVE: request/reply, refusal of unknown or
// misconfigured clients (logged), a server that keeps serving through malformed input, and a
// DEALER's receive that another thread wakes through a WakeupFd.
#include <gtest/gtest.h>
#include <zmq.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "runtime/common/logging.h"
#include "runtime/common/wakeup_fd.h"
#include "runtime/wire/dealer_socket.h"
#include "runtime/wire/router_socket.h"
#include "runtime/wire/zap_authenticator.h"
#include "tests/runtime/wire/sample_messages.h"

namespace distri::wire {
namespace {

using namespace distri::wire::testing;
using std::chrono::milliseconds;

// Polls `pred` until it holds or 5 s pass (the server thread reacts asynchronously).
template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

// Collects log lines (the logger calls the sink under its own mutex; tests read under ours).
class LogCapture {
 public:
  LogCapture() {
    SetLogSink([this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { SetLogSink({}); }
  bool Contains(const std::string& text) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& l : lines_) if (l.find(text) != std::string::npos) return true;
    return false;
  }
  std::string All() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& l : lines_) out += l;
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// A tiny head: answers GetJob/CancelJob with JobStatus, SubmitJob with JobAccepted, and
// everything else with Error Unimplemented, until stopped.
class TestServer {
 public:
  explicit TestServer(std::vector<std::string> allowed) {
    ctx_ = ZmqContext::Create().value();
    keys_ = GenerateCurveKeyPair().value();
    auth_ = ZapAuthenticator::Start(ctx_, allowed).value();
    RouterOptions o;
    o.endpoint = "tcp://127.0.0.1:*";
    o.sender_id = "head";
    o.curve = keys_;
    o.authenticator = auth_.get();
    router_ = RouterSocket::Bind(ctx_, o).value();
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
  }

  const std::string& endpoint() const { return router_->endpoint(); }
  const std::string& public_key() const { return keys_.public_key; }
  ZapAuthenticator& auth() { return *auth_; }
  RouterSocket& router() { return *router_; }
  int served() const { return served_.load(); }
  std::string last_peer_key() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_peer_key_;
  }

 private:
  void Serve() {
    while (!stop_) {
      Result<RouterSocket::Incoming> in = router_->Receive(milliseconds(50));
      if (!in.ok()) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_peer_key_ = in->peer_key;
      }
      ++served_;
      Status sent = std::visit(
          [&](const auto& m) -> Status {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, GetJob> || std::is_same_v<M, CancelJob>) {
              JobStatus st;
              st.job_id = m.job_id;
              st.state = std::is_same_v<M, CancelJob> ? JobState::kCancelled : JobState::kRunning;
              st.step = 3;
              st.total_steps = 20;
              return router_->Reply(*in, st);
            } else if constexpr (std::is_same_v<M, SubmitJob>) {
              return router_->Reply(*in, JobAccepted{TestJobId(), m.spec.seed.value_or(42), 0});
            } else if constexpr (std::is_same_v<M, GetJobResult>) {
              JobResult r = SampleJobResult();
              r.image = std::string(6 * kMiB, '\x33');  // a large frame through CURVE
              return router_->Reply(*in, r);
            } else {
              return router_->ReplyError(*in, Status::Unimplemented(std::string(MessageTypeName(M::kType))));
            }
          },
          in->message);
      EXPECT_TRUE(sent.ok()) << sent.ToString();
    }
  }

  std::shared_ptr<ZmqContext> ctx_;
  CurveKeyPair keys_;
  std::unique_ptr<ZapAuthenticator> auth_;
  std::unique_ptr<RouterSocket> router_;
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  mutable std::mutex mu_;
  std::string last_peer_key_;
  std::thread thread_;
};

class WireTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(CheckCurveSupport().ok());
    client_keys_ = GenerateCurveKeyPair().value();
    server_ = std::make_unique<TestServer>(std::vector<std::string>{client_keys_.public_key});
    client_ctx_ = ZmqContext::Create().value();
  }
  void TearDown() override { server_.reset(); }

  std::unique_ptr<DealerSocket> Client(std::optional<CurveKeyPair> keys, std::string server_key,
                                       bool insecure = false) {
    DealerOptions o;
    o.endpoint = server_->endpoint();
    o.sender_id = "client:test";
    o.curve = std::move(keys);
    o.server_public_key = std::move(server_key);
    o.allow_insecure = insecure;
    return DealerSocket::Connect(client_ctx_, o).value();
  }
  std::unique_ptr<DealerSocket> GoodClient() { return Client(client_keys_, server_->public_key()); }

  // The good client still gets served.
  void ExpectServing() {
    auto client = GoodClient();
    Result<JobStatus> st = client->Call<JobStatus>(GetJob{TestJobId()}, milliseconds(3000));
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(st->job_id, TestJobId());
    EXPECT_EQ(st->state, JobState::kRunning);
  }

  LogCapture logs_;
  CurveKeyPair client_keys_;
  std::unique_ptr<TestServer> server_;
  std::shared_ptr<ZmqContext> client_ctx_;
};

TEST_F(WireTransportTest, CurveRequestReply) {
  auto client = GoodClient();
  Result<JobStatus> st = client->Call<JobStatus>(CancelJob{TestJobId()}, milliseconds(3000));
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->state, JobState::kCancelled);
  EXPECT_EQ(st->step, 3u);
  // The server saw who we are: the key its ZAP handler admitted.
  EXPECT_EQ(server_->last_peer_key(), client_keys_.public_key);
  EXPECT_GE(server_->auth().accepted(), 1u);

  Result<JobAccepted> acc = client->Call<JobAccepted>(SampleSubmitJob(), milliseconds(3000));
  ASSERT_TRUE(acc.ok()) << acc.status().ToString();
  EXPECT_EQ(acc->seed, *SampleSubmitJob().spec.seed);

  Result<JobResult> big = client->Call<JobResult>(GetJobResult{TestJobId()}, milliseconds(5000));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->image.size(), 6 * kMiB);

  // An Error reply becomes the caller's Status.
  Result<NodeRegistered> err = client->Call<NodeRegistered>(SampleRegisterNode(), milliseconds(3000));
  EXPECT_EQ(err.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(err.status().message(), "peer 'head' answered with an error: RegisterNode");
}

TEST_F(WireTransportTest, UnknownClientIsRefusedAndLoggedWhileGoodClientIsServed) {
  const CurveKeyPair stranger = GenerateCurveKeyPair().value();
  auto bad = Client(stranger, server_->public_key());
  const int served_before = server_->served();
  Result<uint64_t> sent = bad->Send(GetJob{TestJobId()}, milliseconds(700));
  EXPECT_EQ(sent.status().code(), StatusCode::kUnavailable) << sent.status().ToString();
  EXPECT_NE(sent.status().message().find("no authenticated connection"), std::string::npos);
  EXPECT_EQ(bad->Receive(milliseconds(200)).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(WaitFor([&] { return server_->auth().refused() >= 1; }));
  EXPECT_TRUE(WaitFor([&] { return logs_.Contains("refused control-plane client " + stranger.public_key); }))
      << logs_.All();
  EXPECT_TRUE(logs_.Contains("public key not in the allow-list"));
  EXPECT_EQ(server_->served(), served_before);
  ExpectServing();

  // Once allowed, a new connection with that key gets in.
  ASSERT_TRUE(server_->auth().Allow(stranger.public_key).ok());
  auto admitted = Client(stranger, server_->public_key());
  EXPECT_TRUE(admitted->Call<JobStatus>(GetJob{TestJobId()}, milliseconds(3000)).ok());
}

TEST_F(WireTransportTest, ClientWithWrongServerKeyIsRefused) {
  // Our key is allowed, but we talk to an impostor's public key: the handshake cannot complete.
  auto client = Client(client_keys_, GenerateCurveKeyPair().value().public_key);
  EXPECT_EQ(client->Send(GetJob{TestJobId()}, milliseconds(700)).status().code(), StatusCode::kUnavailable);
  ExpectServing();
  EXPECT_TRUE(WaitFor([&] { return server_->router().handshake_failures() >= 1; }));
  EXPECT_TRUE(WaitFor([&] { return logs_.Contains("refused a connection: handshake failed"); })) << logs_.All();
}

TEST_F(WireTransportTest, ClientWithoutCurveIsRefused) {
  auto client = Client(std::nullopt, "", /*insecure=*/true);
  EXPECT_EQ(client->Send(GetJob{TestJobId()}, milliseconds(700)).status().code(), StatusCode::kUnavailable);
  ExpectServing();
  EXPECT_TRUE(WaitFor([&] { return server_->router().handshake_failures() >= 1; }));
  // Which side notices the mismatch first is a race: the server logs either the reason or
  // that the client hung up mid-handshake.
  EXPECT_TRUE(WaitFor([&] { return logs_.Contains("refused a connection: handshake failed"); })) << logs_.All();
}

TEST_F(WireTransportTest, MalformedMessagesAreRejectedAndServerKeepsServing) {
  auto client = GoodClient();
  // 1. Not an envelope at all.
  ASSERT_TRUE(client->SendBytes("GET / HTTP/1.1\r\n\r\n", milliseconds(3000)).ok());
  Result<Envelope> r1 = client->Receive(milliseconds(3000));
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_EQ(r1->type, MessageType::kError);
  Error e1 = Open<Error>(*r1).value();
  EXPECT_EQ(e1.code, static_cast<int32_t>(StatusCode::kParseError));
  EXPECT_NE(e1.message.find("not a distri envelope"), std::string::npos) << e1.message;
  EXPECT_EQ(r1->request_id, 0u);

  // 2. A future major version.
  std::string v2 = Seal(GetJob{TestJobId()}, 8, "client:test").value();
  v2[4] = 2;
  ASSERT_TRUE(client->SendBytes(v2, milliseconds(3000)).ok());
  Error e2 = Open<Error>(client->Receive(milliseconds(3000)).value()).value();
  EXPECT_EQ(e2.code, static_cast<int32_t>(StatusCode::kFailedPrecondition));
  EXPECT_NE(e2.message.find("unsupported protocol version 2." + std::to_string(kProtocolVersionMinor)), std::string::npos) << e2.message;

  // 3. A valid envelope whose payload breaks a limit: the reply names the field and carries
  // the request id.
  Envelope bad = MakeEnvelope(SampleSubmitJob(), 77, "client:test").value();
  bad.payload = EncodePayload(SampleSubmitJob()).value();
  const std::string key = "\xa5width";  // fixstr "width"
  const size_t at = bad.payload.find(key);
  ASSERT_NE(at, std::string::npos);
  bad.payload[at + key.size()] = 0;  // width := 0 (the value was a 1-byte header + uint16)
  bad.payload.erase(at + key.size() + 1, 2);
  ASSERT_TRUE(client->SendEnvelope(bad, milliseconds(3000)).ok());
  Result<Envelope> r3 = client->Receive(milliseconds(3000));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->request_id, 77u);
  Error e3 = Open<Error>(*r3).value();
  EXPECT_EQ(e3.code, static_cast<int32_t>(StatusCode::kInvalidArgument));
  EXPECT_EQ(e3.message, "SubmitJob.width: value 0 outside [1, 16384]");

  // 4. An Error that does not decode is logged but not answered (no error ping-pong).
  Envelope bad_error = MakeEnvelope(SampleError(), 78, "client:test").value();
  bad_error.payload = "\x80";  // empty map: code and message missing
  ASSERT_TRUE(client->SendEnvelope(bad_error, milliseconds(3000)).ok());

  // The same connection is still served, and so is a fresh one.
  Result<JobStatus> st = client->Call<JobStatus>(GetJob{TestJobId()}, milliseconds(3000));
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ExpectServing();
  EXPECT_EQ(server_->router().rejected(), 4u);
  EXPECT_TRUE(logs_.Contains("rejected a message from peer")) << logs_.All();
  EXPECT_TRUE(logs_.Contains("Error: missing required field 'code'")) << logs_.All();
}

TEST_F(WireTransportTest, MultiFrameMessageIsRejected) {
  // A raw DEALER (allowed key) that sends a two-frame message.
  void* raw = zmq_socket(client_ctx_->raw(), ZMQ_DEALER);
  ASSERT_NE(raw, nullptr);
  const int zero = 0;
  zmq_setsockopt(raw, ZMQ_LINGER, &zero, sizeof(zero));
  zmq_setsockopt(raw, ZMQ_CURVE_SERVERKEY, server_->public_key().data(), 40);
  zmq_setsockopt(raw, ZMQ_CURVE_PUBLICKEY, client_keys_.public_key.data(), 40);
  zmq_setsockopt(raw, ZMQ_CURVE_SECRETKEY, client_keys_.secret_key.data(), 40);
  const int timeout = 3000;
  zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
  ASSERT_EQ(zmq_connect(raw, server_->endpoint().c_str()), 0);
  const std::string env = Seal(GetJob{TestJobId()}, 5, "raw").value();
  ASSERT_EQ(zmq_send(raw, env.data(), env.size(), ZMQ_SNDMORE), static_cast<int>(env.size()));
  ASSERT_EQ(zmq_send(raw, env.data(), env.size(), 0), static_cast<int>(env.size()));
  char buf[4096];
  const int n = zmq_recv(raw, buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  Error e = Open<Error>(DecodeEnvelope(std::string_view(buf, static_cast<size_t>(n))).value()).value();
  EXPECT_NE(e.message.find("message of 3 frames, expected at most 2"), std::string::npos) << e.message;
  zmq_close(raw);
  ExpectServing();
}

TEST_F(WireTransportTest, ReceiveOrWokenReturnsWhenWokenAndPrefersMessages) {
  auto client = GoodClient();
  auto wake = WakeupFd::Create().value();
  using Clock = std::chrono::steady_clock;
  // Neither a message nor a wake: the timeout.
  EXPECT_EQ(client->ReceiveOrWoken(milliseconds(20), wake->fd()).status().code(), StatusCode::kDeadlineExceeded);

  // Woken from another thread long before the (hour-long) timeout: no envelope.
  std::thread waker([&] {
    std::this_thread::sleep_for(milliseconds(50));
    wake->Notify();
  });
  const auto t0 = Clock::now();
  Result<std::optional<Envelope>> woken = client->ReceiveOrWoken(std::chrono::hours(1), wake->fd());
  waker.join();
  ASSERT_TRUE(woken.ok()) << woken.status().ToString();
  EXPECT_FALSE(woken->has_value());
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(30));
  // Notifications do not queue: one Drain clears them all.
  wake->Notify();
  EXPECT_TRUE(wake->Drain());
  EXPECT_FALSE(wake->Drain());
  EXPECT_EQ(client->ReceiveOrWoken(milliseconds(0), wake->fd()).status().code(), StatusCode::kDeadlineExceeded);

  // A reply is received even while the wake fd stays readable (never drained below): a ready
  // message comes first, so a caller that is woken often still reads its messages.
  Result<uint64_t> id = client->Send(GetJob{TestJobId()}, milliseconds(3000));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  wake->Notify();
  std::optional<Envelope> reply;
  for (int i = 0; i < 500 && !reply; ++i) {
    Result<std::optional<Envelope>> r = client->ReceiveOrWoken(milliseconds(3000), wake->fd());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r) {
      reply = std::move(*r);
    } else {
      std::this_thread::sleep_for(milliseconds(10));  // woken, the reply is still on its way
    }
  }
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id, *id);
  EXPECT_EQ(Open<JobStatus>(*reply)->job_id, TestJobId());
  // Without a wake fd it is Receive.
  ASSERT_TRUE(client->Send(GetJob{TestJobId()}, milliseconds(3000)).ok());
  Result<std::optional<Envelope>> plain = client->ReceiveOrWoken(milliseconds(3000), -1);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->has_value());
}

TEST(WireTransportSetup, CurveServerRequiresAnAuthenticatorOfItsContext) {
  auto ctx = ZmqContext::Create().value();
  RouterOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  o.curve = GenerateCurveKeyPair().value();
  Result<std::unique_ptr<RouterSocket>> r = RouterSocket::Bind(ctx, o);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("needs a ZapAuthenticator"), std::string::npos);

  auto other_ctx = ZmqContext::Create().value();
  auto other_auth = ZapAuthenticator::Start(other_ctx, {}).value();
  o.authenticator = other_auth.get();
  EXPECT_NE(RouterSocket::Bind(ctx, o).status().message().find("another ZmqContext"), std::string::npos);

  RouterOptions plain;
  plain.endpoint = "tcp://127.0.0.1:*";
  EXPECT_EQ(RouterSocket::Bind(ctx, plain).status().code(), StatusCode::kInvalidArgument);

  // One ZAP handler per context.
  EXPECT_EQ(ZapAuthenticator::Start(other_ctx, {}).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ZapAuthenticator::Start(ctx, {"not a key"}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace distri::wire
