// HeadServer with fake actors of older protocol minor versions (docs/runtime-design.md, "Peers
// of older minor versions"): a job using a JobSpec field an actor's version does not know never
// reaches that actor; with only such actors it fails (or is refused) naming the field.
#include <gtest/gtest.h>

#include "runtime/head/head_server.h"
#include "tests/runtime/head/test_cluster.h"

namespace distri::head {
namespace {

using namespace distri::head::testing;

class HeadVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteKeys(dir_.path());
    head_ = HeadServer::Start(TestHeadOptions(dir_.path(), dir_.path() + "/head.db")).value();
    client_ = ConnectClient(head_->endpoint(), dir_.path());
    ASSERT_NE(client_, nullptr);
  }
  // An actor announcing protocol 1.<minor>.
  std::unique_ptr<FakeActor> Actor(uint8_t minor, std::chrono::milliseconds step_time = 2ms) {
    FakeActorOptions o;
    o.keys_dir = dir_.path();
    o.wire_minor = minor;
    o.step_time = step_time;
    return std::make_unique<FakeActor>(head_->endpoint(), o);
  }
  size_t AliveActors() { return testing::AliveActors(*client_); }
  // The head fails jobs for versions only after its first liveness timeout (3 x 50 ms here).
  void WaitPastTheVersionGrace() { std::this_thread::sleep_for(200ms); }

  TempDir dir_;
  std::unique_ptr<HeadServer> head_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(HeadVersionsTest, AnOldActorNeverGetsAJobUsingAFieldItDoesNotKnow) {
  auto old_actor = Actor(3);
  auto new_actor = Actor(wire::kProtocolVersionMinor);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 2; }));
  // The status says which protocol each actor speaks.
  const wire::ClusterStatus status = client_->GetClusterStatus().value();
  ASSERT_EQ(status.actors.size(), 2u);
  for (const wire::ActorStatus& a : status.actors) {
    EXPECT_EQ(a.protocol_minor, a.actor_id == old_actor->id() ? 3u : uint32_t{wire::kProtocolVersionMinor});
  }
  // Jobs with guidance_rescale (minor 4) run on the new actor only, the old one idle beside it.
  std::vector<JobId> ids;
  for (uint64_t seed = 1; seed <= 4; ++seed) ids.push_back(client_->Submit(RescaledSpec(seed)).value().job_id);
  for (const JobId& id : ids) {
    Result<wire::JobResult> r = client_->WaitForJob(id, 5s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->gang.size(), 1u);
    EXPECT_EQ(r->gang[0].actor_id, new_actor->id());
  }
  EXPECT_EQ(old_actor->tasks(), 0);
  ASSERT_EQ(new_actor->received().size(), 4u);
  EXPECT_EQ(new_actor->received()[0].job.guidance_rescale, 0.7);

  // A job without newer fields runs on either, the old one included: with the new actor busy
  // on a long rescaled job, it goes to the old one.
  wire::JobSpec plain = TinySpec();
  plain.seed = 9;
  wire::JobSpec rescaled = RescaledSpec(8);
  rescaled.steps = 500;  // 1 s: the plain job comes while it runs
  const JobId long_job = client_->Submit(rescaled).value().job_id;
  ASSERT_TRUE(WaitFor([&] { return new_actor->busy(); }));
  Result<wire::JobResult> r = client_->WaitForJob(client_->Submit(plain).value().job_id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->gang[0].actor_id, old_actor->id());
  EXPECT_EQ(old_actor->received().at(0).job.guidance_rescale, 0.0);
  ASSERT_TRUE(client_->WaitForJob(long_job, 5s).ok());
}

TEST_F(HeadVersionsTest, WithOnlyOldActorsTheJobFailsNamingTheField) {
  auto old_actor = Actor(3);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  WaitPastTheVersionGrace();
  // Refused at once: every alive actor is too old, no node could bring a newer one.
  Result<wire::JobAccepted> refused = client_->Submit(RescaledSpec(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("guidance_rescale (since 1.4) is unknown to every alive actor (protocol "
                                            "1.3)"),
            std::string::npos)
      << refused.status().ToString();
  // In a batch: all or nothing, naming the spec.
  std::optional<size_t> refused_spec;
  Result<std::vector<wire::JobAccepted>> batch =
      client_->SubmitBatch({TinySpec(), RescaledSpec(2)}, &refused_spec);
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(refused_spec, std::optional<size_t>(1));
  EXPECT_NE(batch.status().message().find("guidance_rescale"), std::string::npos) << batch.status().ToString();
  // Several fields too new: all named (sync_mode since 1.2 for an actor of 1.1).
  auto older = Actor(1);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 2; }));
  old_actor->Kill();
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  wire::JobSpec distrifusion = RescaledSpec(3);
  distrifusion.sync_mode = "stale_gn";
  refused = client_->Submit(distrifusion);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("sync_mode (since 1.2), guidance_rescale (since 1.4) are unknown to "
                                            "every alive actor (protocol 1.1)"),
            std::string::npos)
      << refused.status().ToString();
  // A job without newer fields still runs on the old actor.
  Result<wire::JobResult> r = client_->WaitForJob(client_->Submit(TinySpec()).value().job_id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->gang[0].actor_id, older->id());
}

TEST_F(HeadVersionsTest, AQueuedJobFailsWhenItsLastNewEnoughActorDies) {
  auto old_actor = Actor(3);
  auto new_actor = Actor(wire::kProtocolVersionMinor, 30ms);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 2; }));
  WaitPastTheVersionGrace();
  // The first runs on the new actor (slowly), the second waits for it: the idle old actor
  // beside it never gets either.
  wire::JobSpec first = RescaledSpec(1);
  first.steps = 200;
  const JobId running = client_->Submit(first).value().job_id;
  ASSERT_TRUE(WaitFor([&] { return new_actor->busy(); }));
  const JobId waiting = client_->Submit(RescaledSpec(2)).value().job_id;
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(client_->GetJob(waiting).value().state, wire::JobState::kPending);
  EXPECT_EQ(old_actor->tasks(), 0);
  // The new actor dies: nobody left can ever run them; both fail (not wait forever), naming the
  // field, and the old actor still never got them.
  new_actor->Kill();
  for (const JobId& id : {running, waiting}) {
    Result<wire::JobResult> r = client_->WaitForJob(id, 5s);
    ASSERT_EQ(r.status().code(), StatusCode::kAborted) << r.status().ToString();
    EXPECT_NE(r.status().message().find("no actor can run it: guidance_rescale (since 1.4) is unknown to every "
                                        "alive actor (protocol 1.3)"),
              std::string::npos)
        << r.status().ToString();
  }
  EXPECT_EQ(old_actor->tasks(), 0);
  EXPECT_TRUE(WaitFor([&] { return head_->metrics().Render().find("distri_jobs{state=\"FAILED\"} 2") != std::string::npos; }));
}

TEST_F(HeadVersionsTest, ANewEnoughNodeStillStartingActorsMakesTheJobWait) {
  // A node agent of this build with one CPU actor slot, none registered yet (loading its
  // model): a rescaled job waits for it rather than failing on the old actor beside it.
  wire::DealerOptions d;
  d.endpoint = head_->endpoint();
  d.sender_id = "node:test";
  d.curve = wire::ReadKeyPairFile(dir_.path() + "/node.key").value();
  d.server_public_key = wire::ReadPublicKeyFile(dir_.path() + "/head.pub").value();
  auto ctx = wire::ZmqContext::Create().value();
  auto node_socket = wire::DealerSocket::Connect(ctx, d).value();
  const NodeId node_id = NodeId::Random();
  wire::RegisterNode reg;
  reg.node_id = node_id;
  reg.resources.hostname = "new-node";
  reg.resources.cpu_actors = 1;
  ASSERT_TRUE(node_socket->Call<wire::NodeRegistered>(reg, 3s).ok());
  std::atomic<bool> stop{false};
  std::thread heartbeats([&] {
    for (uint64_t seq = 0; !stop; ++seq) {
      (void)node_socket->Send(wire::Heartbeat{seq, 0, 0}, 100ms);
      (void)node_socket->Receive(20ms);  // drain
    }
  });
  struct Join {
    std::atomic<bool>* stop;
    std::thread* t;
    ~Join() { *stop = true; t->join(); }
  } join{&stop, &heartbeats};
  auto old_actor = Actor(3);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  WaitPastTheVersionGrace();
  Result<wire::JobAccepted> accepted = client_->Submit(RescaledSpec(1));
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(client_->GetJob(accepted->job_id).value().state, wire::JobState::kPending);
  // Its actor comes: the job runs there.
  FakeActorOptions o;
  o.keys_dir = dir_.path();
  o.node_id = node_id;
  FakeActor new_actor(head_->endpoint(), o);
  Result<wire::JobResult> r = client_->WaitForJob(accepted->job_id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->gang[0].actor_id, new_actor.id());
  EXPECT_EQ(old_actor->tasks(), 0);
}

}  // namespace
}  // namespace distri::head
