// JobStore::InsertAll: a batch of jobs in one transaction, all or none, in order, durable.
// (Its own file: job_store_test.cc covers the rest of the store.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "runtime/head/job_store.h"

namespace distri::head {
namespace {

JobRecord BatchJob(uint64_t seed) {
  JobRecord r;
  r.id = JobId::Random();
  r.spec.prompt = "a fox " + std::to_string(seed);
  r.spec.width = 64;
  r.spec.height = 64;
  r.spec.steps = 4;
  r.spec.guidance = 5;
  r.spec.sampler = "euler";
  r.spec.seed = seed;
  r.submitted_ms = 1000;
  return r;
}

TEST(JobStoreBatch, InsertsAllInOrderAndSurvivesReopen) {
  char tmpl[] = "/tmp/distri_store_batch_XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string db = dir + "/head.db";
  std::vector<JobRecord> batch;
  for (uint64_t i = 0; i < 50; ++i) batch.push_back(BatchJob(i));
  {
    auto store = JobStore::Open(db).value();
    JobRecord before = BatchJob(100);
    ASSERT_TRUE(store->Insert(&before).ok());
    ASSERT_TRUE(store->InsertAll(&batch).ok());
    for (size_t i = 0; i < batch.size(); ++i) EXPECT_EQ(batch[i].sequence, before.sequence + 1 + int64_t(i));
  }
  auto store = JobStore::Open(db).value();
  std::vector<JobRecord> loaded = store->LoadUnfinished().value();
  ASSERT_EQ(loaded.size(), 51u);
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(loaded[i + 1].id, batch[i].id);
    EXPECT_EQ(loaded[i + 1].spec, batch[i].spec);
  }
  std::filesystem::remove_all(dir);
}

TEST(JobStoreBatch, AFailureInsertsNone) {
  auto store = JobStore::Open(":memory:").value();
  JobRecord taken = BatchJob(1);
  ASSERT_TRUE(store->Insert(&taken).ok());
  std::vector<JobRecord> batch = {BatchJob(2), BatchJob(3), taken, BatchJob(4)};
  const Status s = store->InsertAll(&batch);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ(store->Get(batch[0].id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->LoadUnfinished().value().size(), 1u);
  // The store is usable afterwards (no transaction left open).
  std::vector<JobRecord> next = {BatchJob(5), BatchJob(6)};
  ASSERT_TRUE(store->InsertAll(&next).ok());
  EXPECT_EQ(store->LoadUnfinished().value().size(), 3u);
}

}  // namespace
}  // namespace distri::head
