// client::Client against an in-process head: keys, addresses, waiting, concurrent use.
#include "runtime/client/client.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace distri::client
