// HeadServer in-process with fake actors: submit -> result, gangs, cancellation, re-queue on
// actor death, max_attempts, restart keeps jobs, refused clients, malformed messages.
#include "runtime/head/head_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "runtime/channel/socket_util.h"
#include "runtime/head/job_validation.h"
#include "tests/runtime/head/test_cluster.h"

namespace distri::head {
namespace {

using namespace distri::head::testing;

// `spec` for a gang of two.
wire::JobSpec GangSpec(wire::JobSpec spec = TinySpec()) {
  spec.gpus = 2;
  return spec;
}

class HeadServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteKeys(dir_.path());
    StartHead();
  }
  void StartHead(HeadOptions o) {
    auto h = HeadServer::Start(o);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    head_ = std::move(*h);
    client_ = ConnectClient(head_->endpoint(), dir_.path());
    ASSERT_NE(client_, nullptr);
  }
  void StartHead() { StartHead(Options()); }
  HeadOptions Options() { return TestHeadOptions(dir_.path(), dir_.path() + "/head.db"); }
  std::unique_ptr<FakeActor> Actor(FakeActorOptions o = {}) {
    o.keys_dir = dir_.path();
    return std::make_unique<FakeActor>(head_->endpoint(), o);
  }
  size_t AliveActors() { return testing::AliveActors(*client_); }
  // Two actors (options `o`) into *a and *b; true once both are registered.
  bool StartTwoActors(std::unique_ptr<FakeActor>* a, std::unique_ptr<FakeActor>* b, const FakeActorOptions& o = {}) {
    *a = Actor(o);
    *b = Actor(o);
    return WaitFor([&] { return AliveActors() == 2; });
  }
  // Runs a job of `spec` on the gang of `a` and `b` to its result, then waits until both are
  // idle again: the result needs rank 0 only, and the gang is kept once both answered.
  ::testing::AssertionResult RunGangJob(const wire::JobSpec& spec, const FakeActor& a, const FakeActor& b) {
    auto accepted = client_->Submit(spec);
    if (!accepted.ok()) return ::testing::AssertionFailure() << "submit: " << accepted.status().ToString();
    auto result = client_->WaitForJob(accepted->job_id, 5s);
    if (!result.ok()) return ::testing::AssertionFailure() << "job: " << result.status().ToString();
    if (!WaitFor([&] { return !a.busy() && !b.busy(); })) return ::testing::AssertionFailure() << "the gang stays busy";
    // The head keeps the gang once it has read both TaskDones (the result needs rank 0's
    // only): wait until it lists both actors idle, so that the next step sees a kept gang.
    auto idle_in_head = [&] {
      auto st = client_->GetClusterStatus();
      if (!st.ok()) return false;
      int idle = 0;
      for (const auto& s : st->actors) {
        if ((s.actor_id == a.id() || s.actor_id == b.id()) && s.state == wire::ActorState::kIdle) ++idle;
      }
      return idle == 2;
    };
    if (!WaitFor(idle_in_head)) return ::testing::AssertionFailure() << "the head never saw both actors idle";
    return ::testing::AssertionSuccess();
  }

  TempDir dir_;
  std::unique_ptr<HeadServer> head_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(HeadServerTest, SubmitToResult) {
  auto actor = Actor();
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  wire::JobSpec spec = TinySpec();
  spec.seed = 42;
  wire::JobAccepted acc = client_->Submit(spec).value();
  EXPECT_EQ(acc.seed, 42u);
  std::vector<wire::JobStatus> seen;
  auto result = client_->WaitForJob(acc.job_id, 5s, [&](const wire::JobStatus& s) { seen.push_back(s); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->image, FakeImage(spec));
  EXPECT_EQ(result->seed, 42u);
  EXPECT_EQ(result->width, 64u);
  ASSERT_EQ(result->gang.size(), 1u);
  EXPECT_EQ(result->gang[0].actor_id, actor->id());
  EXPECT_EQ(result->attempt, 0u);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state, wire::JobState::kSucceeded);

  // A seed is drawn when absent, and reported.
  wire::JobAccepted acc2 = client_->Submit(TinySpec()).value();
  auto r2 = client_->WaitForJob(acc2.job_id, 5s);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->seed, acc2.seed);

  wire::ClusterStatus st = client_->GetClusterStatus().value();
  EXPECT_EQ(st.jobs_by_state.succeeded, 2u);
  EXPECT_EQ(st.queue_length, 0u);
  ASSERT_EQ(st.actors.size(), 1u);
  EXPECT_EQ(st.actors[0].model, "tiny");
  EXPECT_EQ(st.actors[0].protocol_minor, wire::kProtocolVersionMinor);  // what its envelopes announce

  // The metrics endpoint reports it (updated twice a second).
  ASSERT_TRUE(WaitFor([&] { return head_->metrics().Render().find("distri_jobs{state=\"SUCCEEDED\"} 2") != std::string::npos; }));
}

TEST_F(HeadServerTest, GangGetsRanksAndRendezvous) {
  std::unique_ptr<FakeActor> a, b;
  ASSERT_TRUE(StartTwoActors(&a, &b));
  wire::JobAccepted acc = client_->Submit(GangSpec()).value();
  ASSERT_TRUE(client_->WaitForJob(acc.job_id, 5s).ok());
  // The job succeeds on rank 0's image: the other fake actor may still be reading its task.
  ASSERT_TRUE(WaitFor([&] { return !a->received().empty() && !b->received().empty(); }));
  auto ta = a->received(), tb = b->received();
  ASSERT_EQ(ta.size(), 1u);
  ASSERT_EQ(tb.size(), 1u);
  EXPECT_EQ(ta[0].gang_id, tb[0].gang_id);
  EXPECT_NE(ta[0].rank, tb[0].rank);
  EXPECT_EQ(ta[0].gang.size(), 2u);
  EXPECT_EQ(ta[0].rendezvous, head_->rendezvous_address());
  EXPECT_EQ(ta[0].rendezvous.rfind("tcp://127.0.0.1:", 0), 0u);
  EXPECT_EQ(ta[0].channel_backend, "ucx");  // CPU actors
  EXPECT_EQ(ta[0].job.seed, acc.seed);
}

// docs/runtime-design.md, "Kept gangs": consecutive jobs on the same actors reuse the gang id
// (the actors keep its channels); a gang of one on a member ends it.
TEST_F(HeadServerTest, ConsecutiveGangJobsReuseTheKeptGang) {
  std::unique_ptr<FakeActor> a, b;
  ASSERT_TRUE(StartTwoActors(&a, &b));
  const wire::JobSpec spec = GangSpec();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(RunGangJob(spec, *a, *b));
  auto ta = a->received(), tb = b->received();
  ASSERT_EQ(ta.size(), 2u);
  ASSERT_EQ(tb.size(), 2u);
  EXPECT_EQ(ta[1].gang_id, ta[0].gang_id);
  EXPECT_EQ(tb[1].gang_id, ta[0].gang_id);
  EXPECT_EQ(ta[1].rank, ta[0].rank);
  EXPECT_EQ(tb[1].rank, tb[0].rank);
  EXPECT_EQ(ta[1].rendezvous, head_->rendezvous_address());  // still valid
  const std::string m = head_->metrics().Render();
  EXPECT_NE(m.find("distri_gang_reuses_total 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("distri_gangs_formed_total 1\n"), std::string::npos) << m;

  // A job of one on one of them drops the gang there: the next gang job forms a new gang.
  wire::JobSpec one = TinySpec();
  one.gpus = 1;
  wire::JobAccepted acc = client_->Submit(one).value();
  ASSERT_TRUE(client_->WaitForJob(acc.job_id, 5s).ok());
  acc = client_->Submit(spec).value();
  ASSERT_TRUE(client_->WaitForJob(acc.job_id, 5s).ok());
  // The result needs rank 0 only: wait until the other rank has read its task too.
  ASSERT_TRUE(WaitFor([&] { return a->received().size() + b->received().size() == 7u; }));
  ta = a->received();
  ASSERT_EQ(ta.size() + b->received().size(), 7u);
  EXPECT_NE(ta.back().gang_id, tb[0].gang_id);
  EXPECT_EQ(ta.back().gang.size(), 2u);
  const std::string m2 = head_->metrics().Render();
  EXPECT_NE(m2.find("distri_gang_reuses_total 1\n"), std::string::npos) << m2;
  EXPECT_NE(m2.find("distri_gangs_formed_total 2\n"), std::string::npos) << m2;
}

// Breaking a kept gang (a member gets another task, a member dies) sends ReleaseGang to every
// live member at once, the member that gets the new task included, before that task.
TEST_F(HeadServerTest, BreakingAKeptGangReleasesItOnEveryMember) {
  std::unique_ptr<FakeActor> a, b;
  ASSERT_TRUE(StartTwoActors(&a, &b));
  const wire::JobSpec spec = GangSpec();
  ASSERT_TRUE(RunGangJob(spec, *a, *b));
  const GangId kept = a->received().at(0).gang_id;
  EXPECT_TRUE(a->releases().empty());
  EXPECT_NE(head_->metrics().Render().find("distri_gang_releases_total 0\n"), std::string::npos);

  // A job of one on a member: both members are told to release the gang.
  wire::JobSpec one = TinySpec();
  one.gpus = 1;
  wire::JobAccepted acc = client_->Submit(one).value();
  ASSERT_TRUE(client_->WaitForJob(acc.job_id, 5s).ok());
  ASSERT_TRUE(WaitFor([&] { return a->releases().size() == 1 && b->releases().size() == 1; }));
  EXPECT_EQ(a->releases()[0], kept);
  EXPECT_EQ(b->releases()[0], kept);
  FakeActor* solo = a->received().size() == 2 ? a.get() : b.get();
  ASSERT_EQ(solo->received().size(), 2u);
  const std::vector<std::string> ev = solo->events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[1], "release " + kept.Hex());  // before the new task
  EXPECT_EQ(ev[2], "assign " + solo->received()[1].gang_id.Hex());
  EXPECT_NE(head_->metrics().Render().find("distri_gang_releases_total 1\n"), std::string::npos);

  // A new gang, kept; then a member dies: the survivor is told to release it.
  ASSERT_TRUE(RunGangJob(spec, *a, *b));
  const GangId second = a->received().back().gang_id;
  EXPECT_NE(second, kept);
  EXPECT_EQ(a->releases().size(), 1u);  // forming and keeping a gang releases nothing
  b->Kill();
  ASSERT_TRUE(WaitFor([&] { return a->releases().size() == 2; }));
  EXPECT_EQ(a->releases()[1], second);
  EXPECT_NE(head_->metrics().Render().find("distri_gang_releases_total 2\n"), std::string::npos);
}

// An actor that no longer keeps the gang the head reuses fails the task with
// FailedPrecondition; the job runs again on a new gang.
TEST_F(HeadServerTest, AGangNoLongerKeptFailsTheAttemptAndANewGangRunsIt) {
  FakeActorOptions o;
  o.refuse_known_gangs = true;
  std::unique_ptr<FakeActor> a, b;
  ASSERT_TRUE(StartTwoActors(&a, &b, o));
  const wire::JobSpec spec = GangSpec();
  ASSERT_TRUE(RunGangJob(spec, *a, *b));
  wire::JobAccepted second = client_->Submit(spec).value();
  auto r = client_->WaitForJob(second.job_id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->attempt, 1u);
  const auto ta = a->received();
  ASSERT_EQ(ta.size(), 3u);
  EXPECT_EQ(r->image, FakeImage(ta[2].job));
  EXPECT_EQ(ta[1].gang_id, ta[0].gang_id);  // reused, refused
  EXPECT_NE(ta[2].gang_id, ta[0].gang_id);  // the re-run: a new gang
  EXPECT_EQ(ta[2].attempt, 1u);
}

TEST_F(HeadServerTest, DistriFusionOptionsReachTheGangAndBadModesAreRefused) {
  std::unique_ptr<FakeActor> a, b;
  ASSERT_TRUE(StartTwoActors(&a, &b));
  wire::JobSpec spec = GangSpec();
  spec.sync_mode = "stale_gn";
  spec.warmup_steps = 1;
  wire::JobAccepted acc = client_->Submit(spec).value();
  ASSERT_TRUE(client_->WaitForJob(acc.job_id, 5s).ok());
  ASSERT_TRUE(WaitFor([&] { return !a->received().empty() && !b->received().empty(); }));
  for (const auto& t : {a->received(), b->received()}) {
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].job.sync_mode, "stale_gn");
    EXPECT_EQ(t[0].job.warmup_steps, 1u);
  }
  // Absent stays absent (the actors' defaults).
  wire::JobAccepted plain = client_->Submit(TinySpec()).value();
  ASSERT_TRUE(client_->WaitForJob(plain.job_id, 5s).ok());
  auto all = a->received();
  for (const auto& t : b->received()) all.push_back(t);
  for (const auto& t : all) {
    if (t.job_id != plain.job_id) continue;
    EXPECT_EQ(t.job.sync_mode, "");
    EXPECT_FALSE(t.job.warmup_steps.has_value());
  }

  spec.sync_mode = "async";
  const Status refused = client_->Submit(spec).status();
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("sync_mode 'async' is not one of corrected_async_gn, stale_gn, sync_gn, "
                                   "separate_gn, full_sync, no_sync"),
            std::string::npos)
      << refused.ToString();
  for (const char* mode : kSyncModes) {
    spec.sync_mode = mode;
    EXPECT_TRUE(ValidateJobSpec(spec).ok()) << mode;
  }
}

// SubmitJobs (wire minor version 5): the head queues the whole batch before it schedules, so
// "auto" gang sizes see it. 8 auto 1024 px jobs on 4 idle actors: the first schedule sees 7 to
// 4 other jobs beside jobs 0..3 and gives each one actor (all four at once). Jobs 4..7 start as
// jobs 0..3 finish; they weigh the jobs still running as well as those queued behind them
// (gang_scheduler.h), so the batch's tail also runs one image per actor instead of forming
// 2-actor gangs (each job takes 4 steps of 50 ms: the second wave starts while the first still
// runs). Submitted one message at a time, the first job would see an empty queue and take 2
// actors, as the single job at the end does on the idle actors.
TEST_F(HeadServerTest, ABatchOfAutoJobsRunsOneImagePerActor) {
  std::vector<std::unique_ptr<FakeActor>> actors;
  FakeActorOptions slow;
  slow.step_time = std::chrono::milliseconds(50);
  for (int i = 0; i < 4; ++i) actors.push_back(Actor(slow));
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 4; }));
  wire::JobSpec spec = TinySpec();
  spec.width = 1024;
  spec.height = 1024;
  std::vector<wire::JobSpec> specs(8, spec);
  for (size_t i = 0; i < specs.size(); ++i) specs[i].prompt = "image " + std::to_string(i);
  auto accepted = client_->SubmitBatch(specs);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  ASSERT_EQ(accepted->size(), 8u);
  std::vector<size_t> gang_sizes;
  std::set<ActorId> first_actors;
  for (size_t i = 0; i < accepted->size(); ++i) {
    EXPECT_EQ((*accepted)[i].queue_position, i);  // queued in batch order
    auto r = client_->WaitForJob((*accepted)[i].job_id, 10s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->image, FakeImage([&] {
                wire::JobSpec s = specs[i];
                s.seed = (*accepted)[i].seed;
                return s;
              }()));
    gang_sizes.push_back(r->gang.size());
    if (i < 4) first_actors.insert(r->gang[0].actor_id);
  }
  EXPECT_EQ(gang_sizes, (std::vector<size_t>(8, 1)));
  EXPECT_EQ(first_actors.size(), 4u);  // the first four ran side by side

  // A single auto job of the same size on the idle actors still gets two.
  ASSERT_TRUE(WaitFor([&] {
    return std::none_of(actors.begin(), actors.end(), [](const auto& a) { return a->busy(); });
  }));
  wire::JobAccepted single = client_->Submit(spec).value();
  auto r = client_->WaitForJob(single.job_id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->gang.size(), 2u);
}

// A batch is all or nothing, queues by priority then in order like single submits, and is
// durable (a head restart keeps it).
TEST_F(HeadServerTest, ABatchIsAllOrNothingAndQueuesLikeSingleSubmits) {
  std::vector<wire::JobSpec> specs(3, TinySpec());
  specs[1].priority = 5;
  specs[2].seed = 77;
  const std::vector<wire::JobAccepted> accepted = client_->SubmitBatch(specs).value();  // no actor: all wait
  ASSERT_EQ(accepted.size(), 3u);
  EXPECT_EQ(accepted[0].queue_position, 1u);
  EXPECT_EQ(accepted[1].queue_position, 0u);
  EXPECT_EQ(accepted[2].queue_position, 2u);
  EXPECT_EQ(accepted[2].seed, 77u);
  EXPECT_LT(accepted[0].seed, uint64_t{1} << 32);  // drawn as for SubmitJob
  EXPECT_EQ(client_->GetClusterStatus()->queue_length, 3u);

  // One job the cluster cannot run refuses the whole batch, naming it.
  std::vector<wire::JobSpec> bad(4, TinySpec());
  bad[2].sampler = "magic";
  std::optional<size_t> refused_spec;
  Status refused = client_->SubmitBatch(bad, &refused_spec).status();
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("jobs[2] of 4: sampler 'magic' is not one of"), std::string::npos)
      << refused.ToString();
  EXPECT_EQ(refused_spec, std::optional<size_t>(2));
  bad[2] = TinySpec();
  bad[3].width = 1001;
  refused = client_->SubmitBatch(bad, &refused_spec).status();
  EXPECT_NE(refused.message().find("jobs[3] of 4: width and height must be multiples of 8"), std::string::npos)
      << refused.ToString();
  EXPECT_EQ(refused_spec, std::optional<size_t>(3));
  // A malformed spec is refused by the head's decoder (the client's encoder refuses it before).
  bad[3] = TinySpec();
  bad[1].width = 0;
  refused = client_->SubmitBatch(bad, &refused_spec).status();
  EXPECT_NE(refused.message().find("jobs[1]: SubmitJob.width: value 0 outside [1, 16384]"), std::string::npos)
      << refused.ToString();
  EXPECT_EQ(refused_spec, std::optional<size_t>(1));
  auto ctx = wire::ZmqContext::Create().value();
  wire::DealerOptions d;
  d.endpoint = head_->endpoint();
  d.sender_id = "client:raw";
  d.curve = wire::ReadKeyPairFile(dir_.path() + "/client.key").value();
  d.server_public_key = head_->public_key();
  auto raw = wire::DealerSocket::Connect(ctx, d).value();
  wire::Envelope e = wire::MakeEnvelope(wire::SubmitJobs{{TinySpec(), TinySpec()}}, 5, "client:raw").value();
  // The second spec's map gets a second "width": the payload is SubmitJobs' map, "jobs", then
  // an array of two maps; the second map is the last thing in the payload.
  const std::string one = wire::EncodePayload(wire::SubmitJob{TinySpec()}).value();
  ASSERT_EQ(e.payload.substr(e.payload.size() - one.size()), one);
  ASSERT_EQ(static_cast<uint8_t>(one[0]) & 0xF0, 0x80);  // a fixmap
  e.payload[e.payload.size() - one.size()] = static_cast<char>(one[0] + 1);
  e.payload += std::string("\xa5width\x08", 7);
  ASSERT_TRUE(raw->SendEnvelope(e, 1s).ok());
  Result<wire::Envelope> reply = raw->Receive(2s);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->request_id, 5u);
  const Status decoded = wire::Open<wire::JobsAccepted>(*reply).status();
  EXPECT_EQ(decoded.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.message().find("SubmitJobs.jobs[1]: duplicate field 'width'"), std::string::npos)
      << decoded.ToString();
  wire::ClusterStatus st = client_->GetClusterStatus().value();
  EXPECT_EQ(st.queue_length, 3u);
  EXPECT_EQ(st.jobs_by_state.pending, 3u);

  // Durable: after a restart the batch waits in the same order.
  client_.reset();
  head_->Stop();
  head_.reset();
  StartHead();
  for (size_t i = 0; i < accepted.size(); ++i) {
    wire::JobStatus js = client_->GetJob(accepted[i].job_id).value();
    EXPECT_EQ(js.state, wire::JobState::kPending);
    EXPECT_EQ(js.queue_position, accepted[i].queue_position);
  }
  auto actor = Actor();
  for (const wire::JobAccepted& a : accepted) EXPECT_TRUE(client_->WaitForJob(a.job_id, 5s).ok());
  EXPECT_EQ(client_->GetResult(accepted[2].job_id)->seed, 77u);
}

// Rank 0's latest preview is kept in memory and served only to GetJob with_preview.
TEST_F(HeadServerTest, LatestPreviewOnlyWhenAsked) {
  FakeActorOptions slow;
  slow.step_time = 20ms;
  auto actor = Actor(slow);
  wire::JobSpec spec = TinySpec(100);
  spec.preview_every = 3;
  wire::JobAccepted acc = client_->Submit(spec).value();
  ASSERT_TRUE(WaitFor([&] { return client_->GetJob(acc.job_id, true)->preview_step >= 6; }));
  wire::JobStatus with = client_->GetJob(acc.job_id, /*with_preview=*/true).value();
  EXPECT_EQ(with.state, wire::JobState::kRunning);
  EXPECT_EQ(with.preview_step % 3, 0u);
  EXPECT_LE(with.preview_step, with.step);
  EXPECT_EQ(with.preview, FakePreview(with.preview_step));
  wire::JobStatus without = client_->GetJob(acc.job_id).value();
  EXPECT_TRUE(without.preview.empty());
  EXPECT_EQ(without.preview_step, 0u);
  // WaitForJob with previews: the callback sees new previews as they come.
  client::ClientOptions o = client_->options();
  o.previews = true;
  auto previews_client = client::Client::Connect(o).value();
  std::vector<uint32_t> preview_steps;
  auto result = previews_client->WaitForJob(acc.job_id, 10s, [&](const wire::JobStatus& s) {
    if (!s.preview.empty() && (preview_steps.empty() || preview_steps.back() != s.preview_step)) {
      EXPECT_EQ(s.preview, FakePreview(s.preview_step));
      preview_steps.push_back(s.preview_step);
    }
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_GE(preview_steps.size(), 2u);
  EXPECT_LE(preview_steps.back(), 99u);  // none after the last step
  // A finished job has no preview.
  EXPECT_TRUE(client_->GetJob(acc.job_id, true)->preview.empty());
  // Without preview_every: never a preview.
  wire::JobAccepted plain = client_->Submit(TinySpec(5)).value();
  ASSERT_TRUE(client_->WaitForJob(plain.job_id, 5s).ok());
  EXPECT_TRUE(client_->GetJob(plain.job_id, true)->preview.empty());
}

TEST_F(HeadServerTest, CancelPendingAndRunning) {
  // Pending: no actor yet.
  wire::JobAccepted pending = client_->Submit(TinySpec()).value();
  wire::JobStatus st = client_->Cancel(pending.job_id).value();
  EXPECT_EQ(st.state, wire::JobState::kCancelled);
  EXPECT_EQ(client_->GetResult(pending.job_id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->WaitForJob(pending.job_id, 1s).status().code(), StatusCode::kCancelled);

  // Running: a slow actor gets CancelTask and is free again afterwards.
  FakeActorOptions slow;
  slow.step_time = 100ms;
  auto actor = Actor(slow);
  wire::JobAccepted running = client_->Submit(TinySpec(200)).value();
  ASSERT_TRUE(WaitFor([&] { return client_->GetJob(running.job_id)->state == wire::JobState::kRunning; }));
  EXPECT_EQ(client_->Cancel(running.job_id)->state, wire::JobState::kCancelled);
  ASSERT_TRUE(WaitFor([&] { return actor->cancels() == 1 && !actor->busy(); }));
  wire::JobAccepted next = client_->Submit(TinySpec(2)).value();
  EXPECT_TRUE(client_->WaitForJob(next.job_id, 5s).ok());
  EXPECT_EQ(client_->GetJob(running.job_id)->state, wire::JobState::kCancelled);
  // Unknown ids.
  EXPECT_EQ(client_->GetJob(JobId::Random()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Cancel(JobId::Random()).status().code(), StatusCode::kNotFound);
}

TEST_F(HeadServerTest, ACancelTaskNeverAnsweredFreesTheActorAfterTheTimeout) {
  head_.reset();
  HeadOptions o = Options();
  o.cancel_timeout_ms = 400;
  StartHead(o);
  FakeActorOptions hangs;
  hangs.step_time = 50ms;
  hangs.ignore_cancel = true;
  auto actor = Actor(hangs);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  wire::JobAccepted running = client_->Submit(TinySpec(1000)).value();
  ASSERT_TRUE(WaitFor([&] { return client_->GetJob(running.job_id)->state == wire::JobState::kRunning; }));
  auto actor_state = [&] {
    auto st = client_->GetClusterStatus();
    return st.ok() && st->actors.size() == 1 ? st->actors[0].state : wire::ActorState::kDead;
  };
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(client_->Cancel(running.job_id)->state, wire::JobState::kCancelled);
  ASSERT_TRUE(WaitFor([&] { return actor->cancels() == 1; }));
  EXPECT_EQ(actor_state(), wire::ActorState::kBusy);  // waits for the answer first
  ASSERT_TRUE(WaitFor([&] { return actor_state() == wire::ActorState::kIdle; }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 400ms);
  // It takes new work (the new task supersedes the hung one) and the actor stays alive.
  wire::JobAccepted next = client_->Submit(TinySpec(2)).value();
  auto r = client_->WaitForJob(next.job_id, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(actor->tasks(), 2);
  EXPECT_EQ(AliveActors(), 1u);
}

TEST_F(HeadServerTest, DeadActorRequeuesWithTheSameSeed) {
  FakeActorOptions slow;
  slow.step_time = 50ms;
  auto first = Actor(slow);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  wire::JobAccepted acc = client_->Submit(TinySpec(100)).value();
  ASSERT_TRUE(WaitFor([&] { return first->tasks() == 1; }));
  first->Kill();  // silent death: missed heartbeats
  auto second = Actor();
  auto result = client_->WaitForJob(acc.job_id, 5s);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->attempt, 1u);
  EXPECT_EQ(result->seed, acc.seed);
  EXPECT_EQ(result->gang[0].actor_id, second->id());
  EXPECT_EQ(second->received().at(0).job.seed, acc.seed);
  EXPECT_NE(second->received().at(0).gang_id, first->received().at(0).gang_id);
}

TEST_F(HeadServerTest, ActorExitedAbortsTheGangAtOnce) {
  FakeActorOptions slow;
  slow.step_time = 50ms;
  slow.heartbeat_ms = 20;
  std::unique_ptr<FakeActor> a, b;
  ASSERT_TRUE(StartTwoActors(&a, &b, slow));
  wire::JobAccepted acc = client_->Submit(GangSpec(TinySpec(1000))).value();
  ASSERT_TRUE(WaitFor([&] { return a->tasks() == 1 && b->tasks() == 1; }));
  // The node agent reports a's exit; b (alive) must get CancelTask; the job goes back to PENDING
  // (only one actor left for a gang of 2).
  auto ctx = wire::ZmqContext::Create().value();
  wire::DealerOptions d;
  d.endpoint = head_->endpoint();
  d.sender_id = "node:test";
  d.curve = wire::ReadKeyPairFile(dir_.path() + "/node.key").value();
  d.server_public_key = head_->public_key();
  auto node = wire::DealerSocket::Connect(ctx, d).value();
  ASSERT_TRUE(node->Send(wire::Heartbeat{0, 0, 0}, 1s).ok());  // connected before the kill
  a->Kill();  // its process is gone (else it would re-register, as a restarted actor does)
  ASSERT_TRUE(node->Send(wire::ActorExited{a->id(), -1, 9, true}, 1s).ok());
  ASSERT_TRUE(WaitFor([&] { return b->cancels() == 1; }, 2s));
  wire::JobStatus st = client_->GetJob(acc.job_id).value();
  EXPECT_EQ(st.state, wire::JobState::kPending);
  EXPECT_EQ(st.attempt, 1u);
  EXPECT_NE(st.error.find("killed by signal 9"), std::string::npos) << st.error;
}

TEST_F(HeadServerTest, FailsAfterMaxAttempts) {
  FakeActorOptions bad;
  bad.fail_with = static_cast<int32_t>(StatusCode::kInternal);
  auto actor = Actor(bad);
  wire::JobAccepted acc = client_->Submit(TinySpec()).value();
  auto r = client_->WaitForJob(acc.job_id, 5s);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_NE(r.status().message().find("fake failure"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(actor->tasks(), 3);
  EXPECT_EQ(client_->GetJob(acc.job_id)->state, wire::JobState::kFailed);
}

TEST_F(HeadServerTest, RestartKeepsJobs) {
  // Two jobs wait (no actor); one runs on a slow actor when the head stops.
  FakeActorOptions slow;
  slow.step_time = 50ms;
  auto actor = Actor(slow);
  ASSERT_TRUE(WaitFor([&] { return AliveActors() == 1; }));
  wire::JobAccepted running = client_->Submit(TinySpec(200)).value();
  ASSERT_TRUE(WaitFor([&] { return actor->tasks() == 1; }));
  wire::JobAccepted p1 = client_->Submit(TinySpec()).value();
  wire::JobAccepted p2 = client_->Submit(TinySpec()).value();
  actor->Kill();
  client_.reset();
  head_->Stop();
  head_.reset();

  StartHead();
  wire::JobStatus st = client_->GetJob(running.job_id).value();
  EXPECT_EQ(st.state, wire::JobState::kPending);
  EXPECT_EQ(st.attempt, 1u);
  EXPECT_EQ(client_->GetJob(p1.job_id)->state, wire::JobState::kPending);
  // Order is kept: the once-running job first.
  EXPECT_EQ(client_->GetJob(running.job_id)->queue_position, 0u);
  EXPECT_EQ(client_->GetJob(p2.job_id)->queue_position, 2u);
  auto fresh = Actor();
  for (const JobId& id : {running.job_id, p1.job_id, p2.job_id}) {
    auto r = client_->WaitForJob(id, 5s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(client_->GetResult(running.job_id)->seed, running.seed);
}

TEST_F(HeadServerTest, ClientWithoutKeysIsRefused) {
  client::ClientOptions o;
  o.address = head_->endpoint();
  o.client_keys = wire::GenerateCurveKeyPair().value();  // not in authorized_keys
  o.head_public_key = head_->public_key();
  o.connect_timeout = 500ms;
  auto c = client::Client::Connect(o);
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_GE(head_->refused_connections(), 1u);
  // No keys at all: the client cannot even try.
  client::ClientOptions none;
  none.address = head_->endpoint();
  EXPECT_EQ(client::Client::Connect(none).status().code(), StatusCode::kInvalidArgument);
  // Without CURVE: the handshake fails.
  client::ClientOptions plain;
  plain.address = head_->endpoint();
  plain.allow_insecure = true;
  plain.connect_timeout = 500ms;
  EXPECT_EQ(client::Client::Connect(plain).status().code(), StatusCode::kUnavailable);
  // The authorized client still works.
  EXPECT_TRUE(client_->GetClusterStatus().ok());
}

TEST_F(HeadServerTest, MalformedMessagesAreRejectedAndTheHeadKeepsServing) {
  auto ctx = wire::ZmqContext::Create().value();
  wire::DealerOptions d;
  d.endpoint = head_->endpoint();
  d.sender_id = "client:evil";
  d.curve = wire::ReadKeyPairFile(dir_.path() + "/client.key").value();
  d.server_public_key = head_->public_key();
  auto raw = wire::DealerSocket::Connect(ctx, d).value();
  auto expect_error = [&](StatusCode code) {
    Result<wire::Envelope> e = raw->Receive(2s);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(e->type, wire::MessageType::kError);
    wire::Error err;
    ASSERT_TRUE(wire::DecodePayload(e->payload, &err).ok());
    EXPECT_EQ(err.code, static_cast<int32_t>(code)) << err.message;
  };
  ASSERT_TRUE(raw->SendBytes("not an envelope at all", 1s).ok());
  expect_error(StatusCode::kParseError);
  // A message only the head sends.
  wire::AssignTask task;
  task.job_id = JobId::Random();
  task.gang = {{0, NodeId::Random(), ActorId::Random(), -1, ""}};
  task.job = TinySpec();
  task.job.seed = 1;
  task.channel_backend = "ucx";
  ASSERT_TRUE(raw->Send(task, 1s).ok());
  expect_error(StatusCode::kInvalidArgument);
  // A job the cluster cannot run.
  wire::JobSpec odd = TinySpec();
  odd.width = 1001;
  ASSERT_TRUE(raw->Send(wire::SubmitJob{odd}, 1s).ok());
  expect_error(StatusCode::kInvalidArgument);
  odd = TinySpec();
  odd.sampler = "magic";
  EXPECT_EQ(client_->Submit(odd).status().code(), StatusCode::kInvalidArgument);
  // A TaskDone from a stranger.
  ASSERT_TRUE(raw->Send(wire::TaskDone{JobId::Random(), 0, 0, 0, "", wire::OutputFormat::kPng, "x", 1, 1, 0, 0}, 1s).ok());
  expect_error(StatusCode::kFailedPrecondition);
  EXPECT_GE(head_->rejected_messages(), 1u);
  // Still serving.
  auto actor = Actor();
  wire::JobAccepted acc = client_->Submit(TinySpec()).value();
  EXPECT_TRUE(client_->WaitForJob(acc.job_id, 5s).ok());
}

TEST_F(HeadServerTest, MetricsOverHttp) {
  const uint16_t port = head_->metrics_port();
  ASSERT_NE(port, 0);
  const auto deadline = channel::DeadlineAfter(3000ms);
  channel::Fd fd = channel::ConnectTcp("127.0.0.1", port, deadline).value();
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: head\r\n\r\n";
  ASSERT_TRUE(channel::SendAll(fd.get(), req.data(), req.size(), deadline).ok());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd.get(), buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  EXPECT_NE(out.find("distri_queue_length 0"), std::string::npos) << out;
  EXPECT_NE(out.find("distri_step_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace distri::head
