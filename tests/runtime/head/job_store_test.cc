// JobStore: durable across reopen, batches (InsertAll), results stored once, unfinished jobs in
// order, 64 KiB pages for new databases while databases of older heads (4 KiB pages) keep
// working.
#include "runtime/head/job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "runtime/wire/messages.h"

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

// The page size of the database file at `path`, read with SQLite itself (-1 on errors).
int64_t PageSizeOf(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t size = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
      size = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return size;
}

// A result whose image spans many pages of any size (a 2048 px PNG is ~9 MB).
wire::JobResult BigResult(const JobRecord& r) {
  wire::JobResult res;
  res.job_id = r.id;
  res.format = wire::OutputFormat::kPng;
  res.width = 2048;
  res.height = 2048;
  res.image.resize(3 << 20);
  for (size_t i = 0; i < res.image.size(); ++i) res.image[i] = static_cast<char>((i * 131) >> 7);
  res.seed = r.spec.seed.value_or(0);
  res.timings = {1, 2, 3};
  res.gang = {{0, NodeId::Random(), ActorId::Random(), 0, "host"}};
  res.attempt = 1;
  return res;
}

TEST(JobStore, NewDatabasesUse64KiBPages) {
  TempDir dir;
  const std::string db = dir.path() + "/head.db";
  JobRecord r = MakeJob(5);
  const wire::JobResult res = BigResult(r);
  {
    auto store = JobStore::Open(db).value();
    ASSERT_TRUE(store->Insert(&r).ok());
    r.state = wire::JobState::kSucceeded;
    ASSERT_TRUE(store->PutResult(r, res).ok());
  }
  EXPECT_EQ(PageSizeOf(db), 65536);
  auto store = JobStore::Open(db).value();
  EXPECT_EQ(store->GetResult(r.id).value(), res);
  EXPECT_EQ(store->Get(r.id)->state, wire::JobState::kSucceeded);
}

// A store made before 64 KiB pages: 4 KiB pages, WAL, the version 1 schema as those heads
// created it, and one pending job. It opens, keeps its page size, and jobs and results
// round-trip through it.
TEST(JobStore, OpensADatabaseWith4KiBPagesOfAnOlderHead) {
  TempDir dir;
  const std::string path = dir.path() + "/head.db";
  JobRecord old_job = MakeJob(7);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* schema =
        "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE jobs (id BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, spec BLOB NOT NULL,"
        " state INTEGER NOT NULL, attempt INTEGER NOT NULL, failures INTEGER NOT NULL,"
        " submitted_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,"
        " error TEXT NOT NULL);"
        "CREATE INDEX jobs_by_state ON jobs(state, seq);"
        "CREATE TABLE results (job_id BLOB PRIMARY KEY, format INTEGER NOT NULL, meta BLOB NOT NULL,"
        " image BLOB NOT NULL);"
        "INSERT INTO meta(key, value) VALUES ('schema_version', 1);";
    ASSERT_EQ(sqlite3_exec(db, schema, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    const std::string spec = wire::EncodePayload(wire::SubmitJob{old_job.spec}).value();
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "INSERT INTO jobs (id, seq, spec, state, attempt, failures, submitted_ms,"
                                 " started_ms, finished_ms, error) VALUES (?1, 1, ?2, 0, 0, 0, 1000, 0, 0, '')",
                                 -1, &s, nullptr),
              SQLITE_OK);
    sqlite3_bind_blob(s, 1, old_job.id.bytes().data(), 16, SQLITE_TRANSIENT);
    sqlite3_bind_blob(s, 2, spec.data(), static_cast<int>(spec.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  ASSERT_EQ(PageSizeOf(path), 4096);

  JobRecord fresh = MakeJob(8);
  const wire::JobResult res = BigResult(fresh);
  {
    Result<std::unique_ptr<JobStore>> store = JobStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    JobRecord got = (*store)->Get(old_job.id).value();
    EXPECT_EQ(got.spec, old_job.spec);
    EXPECT_EQ(got.sequence, 1);
    ASSERT_TRUE((*store)->Insert(&fresh).ok());
    EXPECT_EQ(fresh.sequence, 2);
    fresh.state = wire::JobState::kSucceeded;
    ASSERT_TRUE((*store)->PutResult(fresh, res).ok());
  }
  EXPECT_EQ(PageSizeOf(path), 4096);
  auto store = JobStore::Open(path).value();
  EXPECT_EQ(store->GetResult(fresh.id).value(), res);
  std::vector<JobRecord> unfinished = store->LoadUnfinished().value();
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].id, old_job.id);
  wire::JobStateCounts counts = store->CountByState().value();
  EXPECT_EQ(counts.pending, 1u);
  EXPECT_EQ(counts.succeeded, 1u);
}

// InsertAll: a batch of jobs in one transaction, in order after the jobs before it, durable.
TEST(JobStore, InsertAllKeepsTheBatchInOrderAndSurvivesReopen) {
  TempDir dir;
  const std::string db = dir.path() + "/head.db";
  std::vector<JobRecord> batch;
  for (uint64_t i = 0; i < 50; ++i) batch.push_back(MakeJob(i));
  {
    auto store = JobStore::Open(db).value();
    JobRecord before = MakeJob(100);
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
}

// InsertAll is all or nothing, and leaves no transaction open after a failure.
TEST(JobStore, InsertAllFailingInsertsNone) {
  auto store = JobStore::Open(":memory:").value();
  JobRecord taken = MakeJob(1);
  ASSERT_TRUE(store->Insert(&taken).ok());
  std::vector<JobRecord> batch = {MakeJob(2), MakeJob(3), taken, MakeJob(4)};
  const Status s = store->InsertAll(&batch);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ(store->Get(batch[0].id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->LoadUnfinished().value().size(), 1u);
  std::vector<JobRecord> next = {MakeJob(5), MakeJob(6)};
  ASSERT_TRUE(store->InsertAll(&next).ok());
  EXPECT_EQ(store->LoadUnfinished().value().size(), 3u);
}

}  // namespace
}  // namespace distri::head
