// client::Client against an in-process head: keys, addresses, waiting, concurrent use.
#include "runtime/client/client.h"

#include <gtest/gtest.h>

#include "runtime/wire/router_socket.h"
#include "tests/runtime/head/test_cluster.h"

namespace distri::client {
namespace {

using namespace distri::head::testing;

TEST(ClientKeys, ErrorsNameTheFile) {
  ClientOptions o;
  o.address = "127.0.0.1:1";
  o.keys_dir = "/nonexistent/keys";
  Result<std::unique_ptr<Client>> c = Client::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/keys/client.key"), std::string::npos) << c.status().ToString();
  ClientOptions empty;
  EXPECT_EQ(Client::Connect(empty).status().code(), StatusCode::kInvalidArgument);
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteKeys(dir_.path());
    head_ = head::HeadServer::Start(TestHeadOptions(dir_.path(), ":memory:")).value();
  }
  TempDir dir_;
  std::unique_ptr<head::HeadServer> head_;
};

TEST_F(ClientTest, AcceptsHostPortAndWaitsWithTimeout) {
  std::string hostport = head_->endpoint().substr(std::string("tcp://").size());
  auto c = ConnectClient(hostport, dir_.path());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->options().address, head_->endpoint());
  wire::JobAccepted acc = c->Submit(TinySpec()).value();  // no actor: stays PENDING
  int calls = 0;
  Result<wire::JobResult> r = c->WaitForJob(acc.job_id, std::chrono::milliseconds(200),
                                            [&](const wire::JobStatus& s) { ++calls; });
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("PENDING"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(calls, 1);  // only changes are reported
  EXPECT_EQ(c->GetResult(acc.job_id).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, UsableFromManyThreads) {
  auto c = ConnectClient(head_->endpoint(), dir_.path());
  ASSERT_NE(c, nullptr);
  FakeActorOptions o;
  o.keys_dir = dir_.path();
  FakeActor actor(head_->endpoint(), o);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      wire::JobSpec spec = TinySpec(2);
      spec.seed = static_cast<uint64_t>(t);
      Result<wire::JobAccepted> acc = c->Submit(spec);
      if (!acc.ok()) return;
      Result<wire::JobResult> r = c->WaitForJob(acc->job_id, std::chrono::seconds(10));
      if (r.ok() && r->image == FakeImage(spec)) ++ok;
      (void)c->GetClusterStatus();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 4);
}

// A head of wire minor version 4 (or `minor`, which its envelopes announce; set_minor changes
// it, as a head replaced by another build) as the client sees it: SubmitJobs is a type it does
// not know, so it answers with what its RouterSocket answers an undecodable envelope, Error
// InvalidArgument "envelope header: unknown message type 17" with request id 0 (or, with
// `reply_with_request_id`, with the request's id). SubmitJob, CancelJob and GetClusterStatus
// work; a spec with the sampler "magic" is refused.
class OldHead {
 public:
  explicit OldHead(bool reply_with_request_id, uint8_t minor = 4)
      : reply_with_request_id_(reply_with_request_id), minor_(minor) {
    ctx_ = wire::ZmqContext::Create().value();
    wire::RouterOptions o;
    o.endpoint = "tcp://127.0.0.1:*";
    o.sender_id = "head";
    o.allow_insecure = true;
    router_ = wire::RouterSocket::Bind(ctx_, o).value();
    thread_ = std::thread([this] { Serve(); });
  }
  ~OldHead() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return router_->endpoint(); }
  int batches() const { return batches_.load(); }
  int submits() const { return submits_.load(); }
  int cancels() const { return cancels_.load(); }
  int requests() const { return requests_.load(); }
  void set_minor(uint8_t minor) { minor_ = minor; }

 private:
  // Sends `m` in an envelope announcing minor_.
  template <typename M>
  void Send(const std::string& peer, const M& m, uint64_t request_id) {
    wire::Envelope e = wire::MakeEnvelope(m, request_id, "head").value();
    e.version_minor = minor_;
    (void)router_->SendEnvelope(peer, e);
  }
  template <typename M>
  void Reply(const wire::RouterSocket::Incoming& in, const M& m) {
    Send(in.peer, m, in.envelope.request_id);
  }

  void Serve() {
    while (!stop_) {
      Result<wire::RouterSocket::Incoming> in = router_->Receive(std::chrono::milliseconds(20));
      if (!in.ok()) continue;
      ++requests_;
      if (std::holds_alternative<wire::SubmitJobs>(in->message)) {
        ++batches_;
        const Status unknown = Status::InvalidArgument("envelope header: unknown message type 17");
        Send(in->peer, wire::Error::FromStatus(unknown), reply_with_request_id_ ? in->envelope.request_id : 0);
      } else if (auto* submit = std::get_if<wire::SubmitJob>(&in->message)) {
        ++submits_;
        if (submit->spec.sampler == "magic") {
          Reply(*in, wire::Error::FromStatus(Status::InvalidArgument("job: sampler 'magic' is not one of default, ...")));
        } else {
          Reply(*in, wire::JobAccepted{JobId::Random(), submit->spec.seed.value_or(9), 0});
        }
      } else if (auto* cancel = std::get_if<wire::CancelJob>(&in->message)) {
        ++cancels_;
        wire::JobStatus st;
        st.job_id = cancel->job_id;
        st.state = wire::JobState::kCancelled;
        Reply(*in, st);
      } else if (std::holds_alternative<wire::GetClusterStatus>(in->message)) {
        Reply(*in, wire::ClusterStatus{});
      }
    }
  }

  bool reply_with_request_id_;
  std::atomic<uint8_t> minor_;
  std::shared_ptr<wire::ZmqContext> ctx_;
  std::unique_ptr<wire::RouterSocket> router_;
  std::atomic<bool> stop_{false};
  std::atomic<int> batches_{0}, submits_{0}, cancels_{0}, requests_{0};
  std::thread thread_;
};

std::unique_ptr<Client> ConnectInsecure(const std::string& endpoint,
                                        std::chrono::milliseconds connect_timeout = std::chrono::seconds(3)) {
  ClientOptions o;
  o.address = endpoint;
  o.allow_insecure = true;
  o.connect_timeout = connect_timeout;
  o.request_timeout = std::chrono::seconds(3);
  return Client::Connect(o).value();
}

std::vector<wire::JobSpec> Specs(size_t n) {
  std::vector<wire::JobSpec> specs(n, TinySpec());
  for (size_t i = 0; i < n; ++i) specs[i].seed = 100 + i;
  return specs;
}

TEST(ClientBatch, FallsBackToOneSubmitPerJobOnAnOlderHead) {
  for (bool with_id : {false, true}) {
    SCOPED_TRACE(with_id ? "the old head answers with the request id" : "the old head answers with request id 0");
    OldHead head(with_id);
    auto c = ConnectInsecure(head.endpoint());
    const auto start = std::chrono::steady_clock::now();
    Result<std::vector<wire::JobAccepted>> accepted = c->SubmitBatch(Specs(3));
    ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
    // Recognised at once, not after the request timeout.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    ASSERT_EQ(accepted->size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*accepted)[i].seed, 100 + i);  // in order
    EXPECT_EQ(head.batches(), 1);
    EXPECT_EQ(head.submits(), 3);
    // Remembered: the next batch goes out one job per message at once.
    ASSERT_EQ(c->SubmitBatch(Specs(2)).value().size(), 2u);
    EXPECT_EQ(head.batches(), 1);
    EXPECT_EQ(head.submits(), 5);
    EXPECT_TRUE(c->SubmitBatch({}).value().empty());
    EXPECT_EQ(head.submits(), 5);

    // All or nothing in the fallback too: the jobs accepted before the refused one are cancelled.
    std::vector<wire::JobSpec> bad = Specs(3);
    bad[2].sampler = "magic";
    std::optional<size_t> refused_spec;
    const Status refused = c->SubmitBatch(bad, &refused_spec).status();
    EXPECT_EQ(refused_spec, std::optional<size_t>(2));
    EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(refused.message().find("jobs[2]: "), std::string::npos) << refused.ToString();
    EXPECT_NE(refused.message().find("sampler 'magic'"), std::string::npos) << refused.ToString();
    EXPECT_NE(refused.message().find("cancelled 2 of the 2 job(s)"), std::string::npos) << refused.ToString();
    EXPECT_EQ(head.cancels(), 2);
  }
}

// A head of minor version 3 would drop guidance_rescale (minor 4): the client refuses to send
// it, naming the field and the head's version, whether it learnt the version from Connect's
// status probe or has to ask first (connect_timeout 0: no answer yet).
TEST(ClientVersions, RefusesToSendAFieldTheHeadDoesNotKnow) {
  for (std::chrono::milliseconds connect_timeout : {std::chrono::milliseconds(3000), std::chrono::milliseconds(0)}) {
    SCOPED_TRACE(connect_timeout.count() > 0 ? "version known from Connect" : "no answer before the submit");
    OldHead head(/*reply_with_request_id=*/true, /*minor=*/3);
    auto c = ConnectInsecure(head.endpoint(), connect_timeout);
    Result<wire::JobAccepted> refused = c->Submit(RescaledSpec(1));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition) << refused.status().ToString();
    EXPECT_NE(refused.status().message().find("guidance_rescale (since 1.4) is unknown to the head at " +
                                              head.endpoint() + ", which speaks protocol 1.3"),
              std::string::npos)
        << refused.status().ToString();
    EXPECT_EQ(head.submits(), 0);
    // A batch: nothing sent, the spec named.
    std::optional<size_t> refused_spec;
    Result<std::vector<wire::JobAccepted>> batch = c->SubmitBatch({TinySpec(), RescaledSpec(2), TinySpec()}, &refused_spec);
    ASSERT_FALSE(batch.ok());
    EXPECT_EQ(batch.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(batch.status().message().find("jobs[1]: guidance_rescale (since 1.4)"), std::string::npos)
        << batch.status().ToString();
    EXPECT_EQ(refused_spec, std::optional<size_t>(1));
    EXPECT_EQ(head.submits(), 0);
    EXPECT_EQ(head.batches(), 0);
    // What the head knows still goes: fields of minor <= 3, and guidance_rescale left at 0.
    wire::JobSpec known = TinySpec();
    known.sync_mode = "stale_gn";
    known.preview_every = 2;
    EXPECT_TRUE(c->Submit(known).ok());
    EXPECT_TRUE(c->SubmitBatch({TinySpec(), known}).ok());
    EXPECT_EQ(head.submits(), 3);
  }
}

TEST(ClientVersions, ProbesOnlyWhenASpecUsesAVersionedField) {
  OldHead head(/*reply_with_request_id=*/true, /*minor=*/1);
  auto c = ConnectInsecure(head.endpoint(), std::chrono::milliseconds(0));
  ASSERT_TRUE(c->Submit(TinySpec()).ok());
  EXPECT_EQ(head.requests(), 1);  // no probe: nothing to check
  auto d = ConnectInsecure(head.endpoint(), std::chrono::milliseconds(0));
  wire::JobSpec sync = TinySpec();
  sync.sync_mode = "stale_gn";
  EXPECT_EQ(d->Submit(sync).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(head.requests(), 2);  // one probe, no submit
  EXPECT_EQ(d->Submit(sync).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(head.requests(), 2);  // known now
}

TEST(ClientVersions, AnOlderHeadAnsweringTheSubmitGetsTheJobCancelled) {
  // The head announced 1.5 to Connect, then an older build (1.3) took its place: its answer to
  // the submit shows it dropped guidance_rescale, so the client cancels the job and says so.
  OldHead head(/*reply_with_request_id=*/true, /*minor=*/5);
  auto c = ConnectInsecure(head.endpoint());
  head.set_minor(3);
  Result<wire::JobAccepted> r = c->Submit(RescaledSpec(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_NE(r.status().message().find("guidance_rescale (since 1.4) is unknown to the head"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find(": cancelled)"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(head.submits(), 1);
  EXPECT_EQ(head.cancels(), 1);
  // Known from then on: the next one is refused before it is sent.
  EXPECT_EQ(c->Submit(RescaledSpec(2)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(head.submits(), 1);
}

TEST_F(ClientTest, BatchesLargerThanOneMessageAreSplit) {
  auto connected = ConnectClient(head_->endpoint(), dir_.path());
  ASSERT_NE(connected, nullptr);
  // The 66 MiB batch below is stored by the head (SQLite) before it answers: more than the
  // default 10 s request timeout on a loaded 2-core CI machine (it failed once under ctest -j2).
  ClientOptions big = connected->options();
  big.request_timeout = std::chrono::milliseconds(120'000);
  std::unique_ptr<Client> c = Client::Connect(big).value();
  // Two messages by count (kMaxBatchJobs + 3 jobs), in order, all queued.
  std::vector<wire::JobSpec> specs = Specs(wire::kMaxBatchJobs + 3);
  Result<std::vector<wire::JobAccepted>> accepted = c->SubmitBatch(specs);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  ASSERT_EQ(accepted->size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) ASSERT_EQ((*accepted)[i].seed, 100 + i);
  EXPECT_EQ((*accepted)[wire::kMaxBatchJobs + 2].queue_position, wire::kMaxBatchJobs + 2);
  EXPECT_EQ(c->GetClusterStatus()->queue_length, specs.size());
  // By size: 66 prompts of 1 MiB do not fit in one 64 MiB envelope.
  std::vector<wire::JobSpec> long_prompts = Specs(66);
  for (wire::JobSpec& s : long_prompts) s.prompt = std::string(wire::kMaxPromptBytes, 'p');
  accepted = c->SubmitBatch(long_prompts);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->size(), 66u);
  // A spec the wire refuses is named before anything is sent.
  std::vector<wire::JobSpec> bad = Specs(2);
  bad[1].steps = 0;
  std::optional<size_t> refused_spec;
  Status s = c->SubmitBatch(bad, &refused_spec).status();
  EXPECT_NE(s.message().find("jobs[1]: SubmitJob.steps: value 0 outside [1, 10000]"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(refused_spec, std::optional<size_t>(1));
  EXPECT_EQ(c->GetClusterStatus()->queue_length, specs.size() + 66);
  // A spec the head refuses in the second message is named by its index in the whole batch,
  // and the first message's jobs are cancelled.
  bad = Specs(wire::kMaxBatchJobs + 3);
  bad[wire::kMaxBatchJobs + 1].width = 1001;
  s = c->SubmitBatch(bad, &refused_spec).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("jobs[1] of 3: width and height must be multiples of 8"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(refused_spec, std::optional<size_t>(wire::kMaxBatchJobs + 1));
  EXPECT_EQ(c->GetClusterStatus()->queue_length, specs.size() + 66);
  // Not about one spec (no answer): nullopt.
  ClientOptions o = c->options();
  o.request_timeout = std::chrono::milliseconds(200);
  std::unique_ptr<Client> gone = Client::Connect(o).value();
  head_->Stop();
  s = gone->SubmitBatch(Specs(2), &refused_spec).status();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(refused_spec, std::nullopt) << s.ToString();
}

}  // namespace
}  // namespace distri::client
