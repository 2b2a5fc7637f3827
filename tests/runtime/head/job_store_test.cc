// JobStore: durable across reopen, results stored once, unfinished jobs in order.
#include "runtime/head/job_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace distri::head {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/distri_store_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

JobRecord MakeJob(uint64_t seed, int32_t priority = 0) {
  JobRecord r;
  r.id = JobId::Random();
  r.spec.prompt = "a fox";
  r.spec.width = 64;
  r.spec.height = 64;
  r.spec.steps = 4;
  r.spec.guidance = 5;
  r.spec.sampler = "euler";
  r.spec.seed = seed;
  r.spec.priority = priority;
  r.submitted_ms = 1000;
  return r;
}

TEST(JobStore, SurvivesReopen) {
  TempDir dir;
  const std::string db = dir.path() + "/head.db";
  JobRecord a = MakeJob(1), b = MakeJob(2), c = MakeJob(3);
  b.spec.sync_mode = "stale_gn";  // the DistriFusion options survive a head restart
  b.spec.warmup_steps = 0;
  b.spec.guidance_rescale = 0.7;  // so does guidance_rescale (the whole JobSpec is stored)
  {
    auto store = JobStore::Open(db).value();
    ASSERT_TRUE(store->Insert(&a).ok());
    ASSERT_TRUE(store->Insert(&b).ok());
    ASSERT_TRUE(store->Insert(&c).ok());
    EXPECT_LT(a.sequence, b.sequence);
    b.state = wire::JobState::kRunning;
    b.attempt = 1;
    b.started_ms = 1500;
    ASSERT_TRUE(store->Update(b).ok());
    c.state = wire::JobState::kCancelled;
    ASSERT_TRUE(store->Update(c).ok());
  }
  auto store = JobStore::Open(db).value();
  JobRecord got = store->Get(b.id).value();
  EXPECT_EQ(got.state, wire::JobState::kRunning);
  EXPECT_EQ(got.attempt, 1u);
  EXPECT_EQ(got.started_ms, 1500);
  EXPECT_EQ(got.spec, b.spec);
  std::vector<JobRecord> unfinished = store->LoadUnfinished().value();
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[0].id, a.id);
  EXPECT_EQ(unfinished[1].id, b.id);
  wire::JobStateCounts counts = store->CountByState().value();
  EXPECT_EQ(counts.pending, 1u);
  EXPECT_EQ(counts.running, 1u);
  EXPECT_EQ(counts.cancelled, 1u);
  // New sequence numbers continue after the reopened ones.
  JobRecord d = MakeJob(4);
  ASSERT_TRUE(store->Insert(&d).ok());
  EXPECT_GT(d.sequence, c.sequence);
}

TEST(JobStore, ResultIsStoredOnceWithTheJobState) {
  auto store = JobStore::Open(":memory:").value();
  JobRecord r = MakeJob(9);
  ASSERT_TRUE(store->Insert(&r).ok());
  EXPECT_EQ(store->GetResult(r.id).status().code(), StatusCode::kNotFound);
  wire::JobResult res;
  res.job_id = r.id;
  res.format = wire::OutputFormat::kRgb8;
  res.width = 2;
  res.height = 1;
  res.image = std::string("\x01\x02\x03\x04\x05\x06", 6);
  res.seed = 9;
  res.timings = {1, 2, 3};
  res.gang = {{0, NodeId::Random(), ActorId::Random(), -1, "host"}};
  res.attempt = 2;
  r.state = wire::JobState::kSucceeded;
  ASSERT_TRUE(store->PutResult(r, res).ok());
  wire::JobResult second = res;
  second.image = "xxxxxx";
  ASSERT_TRUE(store->PutResult(r, second).ok());
  EXPECT_EQ(store->GetResult(r.id).value(), res);
  EXPECT_EQ(store->Get(r.id)->state, wire::JobState::kSucceeded);
}

TEST(JobStore, ErrorsNameTheJobAndPath) {
  auto store = JobStore::Open(":memory:").value();
  JobRecord r = MakeJob(1);
  ASSERT_TRUE(store->Insert(&r).ok());
  EXPECT_EQ(store->Insert(&r).code(), StatusCode::kAlreadyExists);
  JobRecord other = MakeJob(2);
  EXPECT_EQ(store->Update(other).code(), StatusCode::kNotFound);
  Result<JobRecord> missing = store->Get(other.id);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(other.id.Hex()), std::string::npos);
  Result<std::unique_ptr<JobStore>> bad = JobStore::Open("/nonexistent-dir/x/head.db");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/nonexistent-dir/x/head.db"), std::string::npos);
}

}  // namespace
}  // namespace distri::head
