#include "runtime/head/job_store.h"

#include <sqlite3.h>

#include <chrono>

#include "runtime/wire/messages.h"

namespace distri::head {

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr int kSchemaVersion = 1;

// A prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Text(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void Blob(int i, const std::string& v) {
    sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
  }
  void Id(int i, const JobId& id) { sqlite3_bind_blob(stmt_, i, id.bytes().data(), 16, SQLITE_TRANSIENT); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }

  int64_t ColInt(int c) const { return sqlite3_column_int64(stmt_, c); }
  std::string ColBytes(int c) const {
    const void* p = sqlite3_column_blob(stmt_, c);
    const int n = sqlite3_column_bytes(stmt_, c);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), static_cast<size_t>(n));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

constexpr const char* kJobColumns =
    "id, seq, spec, state, attempt, failures, submitted_ms, started_ms, finished_ms, error";

Result<JobRecord> ReadJob(const Stmt& s, const std::string& path) {
  JobRecord r;
  const std::string id = s.ColBytes(0);
  if (id.size() != 16) return Status::Internal(path + ": job row with an id of " + std::to_string(id.size()) + " bytes");
  std::array<uint8_t, 16> b;
  std::copy(id.begin(), id.end(), b.begin());
  r.id = JobId::FromBytes(b);
  r.sequence = s.ColInt(1);
  wire::SubmitJob submit;
  Status st = wire::DecodePayload(s.ColBytes(2), &submit);
  if (!st.ok()) return Status::Internal(path + ": job " + r.id.Hex() + ": stored spec does not decode: " + st.message());
  r.spec = std::move(submit.spec);
  const int64_t state = s.ColInt(3);
  if (state < 0 || state > static_cast<int64_t>(wire::JobState::kCancelled)) {
    return Status::Internal(path + ": job " + r.id.Hex() + ": unknown state " + std::to_string(state));
  }
  r.state = static_cast<wire::JobState>(state);
  r.attempt = static_cast<uint32_t>(s.ColInt(4));
  r.failures = static_cast<uint32_t>(s.ColInt(5));
  r.submitted_ms = s.ColInt(6);
  r.started_ms = s.ColInt(7);
  r.finished_ms = s.ColInt(8);
  r.error = s.ColBytes(9);
  return r;
}

}  // namespace

Result<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IoError("job store " + path + ": cannot open: " + msg);
  }
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  sqlite3_busy_timeout(db, 5000);
  // 64 KiB pages (SQLite's largest) for a new database: results hold the images, up to ~9 MB
  // of PNG at 2048 px, and a blob spans a chain of overflow pages. With 4 KiB pages storing
  // one took ~40 ms (synchronous=FULL, WAL), with 64 KiB pages ~13 ms, on the head's path from
  // an actor's TaskDone to the job's SUCCEEDED. Small rows (jobs) fit in one page either way.
  // The page size only takes effect before the file's first write, which the switch to WAL
  // below is (WAL fixes the page size for good), so it comes first; on an existing database it
  // is a no-op and that database keeps its page size (stores made by older heads: 4 KiB).
  DISTRI_RETURN_IF_ERROR(store->Exec("PRAGMA page_size=65536"));
  if (path != ":memory:") {
    DISTRI_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  }
  DISTRI_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  DISTRI_RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS jobs (id BLOB PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, spec BLOB NOT NULL,"
      " state INTEGER NOT NULL, attempt INTEGER NOT NULL, failures INTEGER NOT NULL,"
      " submitted_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,"
      " error TEXT NOT NULL);"
      "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, seq);"
      "CREATE TABLE IF NOT EXISTS results (job_id BLOB PRIMARY KEY, format INTEGER NOT NULL, meta BLOB NOT NULL,"
      " image BLOB NOT NULL);"
      "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', 1);"));
  Stmt s(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (!s.ok() || s.Step() != SQLITE_ROW) return store->Error("reading the schema version");
  if (s.ColInt(0) != kSchemaVersion) {
    return Status::FailedPrecondition("job store " + path + ": schema version " + std::to_string(s.ColInt(0)) +
                                      ", this head reads version " + std::to_string(kSchemaVersion));
  }
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

Status JobStore::Exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return Status::IoError("job store " + path_ + ": " + msg + " (in: " + std::string(sql).substr(0, 60) + ")");
  }
  return Status::Ok();
}

Status JobStore::Error(const std::string& what) const {
  return Status::IoError("job store " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status JobStore::Insert(JobRecord* r) {
  DISTRI_ASSIGN_OR_RETURN(std::string spec, wire::EncodePayload(wire::SubmitJob{r->spec}));
  Stmt seq(db_, "SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs");
  if (!seq.ok() || seq.Step() != SQLITE_ROW) return Error("choosing a sequence number");
  r->sequence = seq.ColInt(0);
  Stmt s(db_, "INSERT INTO jobs (id, seq, spec, state, attempt, failures, submitted_ms, started_ms, finished_ms,"
              " error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  if (!s.ok()) return Error("preparing insert");
  s.Id(1, r->id);
  s.Int(2, r->sequence);
  s.Blob(3, spec);
  s.Int(4, static_cast<int64_t>(r->state));
  s.Int(5, r->attempt);
  s.Int(6, r->failures);
  s.Int(7, r->submitted_ms);
  s.Int(8, r->started_ms);
  s.Int(9, r->finished_ms);
  s.Text(10, r->error);
  const int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) return Status::AlreadyExists("job store " + path_ + ": job " + r->id.Hex() + " exists");
  if (rc != SQLITE_DONE) return Error("inserting job " + r->id.Hex());
  return Status::Ok();
}

Status JobStore::InsertAll(std::vector<JobRecord>* records) {
  DISTRI_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (JobRecord& r : *records) {
    if (Status s = Insert(&r); !s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
  }
  if (Status s = Exec("COMMIT"); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Status::Ok();
}

Status JobStore::Update(const JobRecord& r) {
  Stmt s(db_, "UPDATE jobs SET state = ?2, attempt = ?3, failures = ?4, started_ms = ?5, finished_ms = ?6,"
              " error = ?7 WHERE id = ?1");
  if (!s.ok()) return Error("preparing update");
  s.Id(1, r.id);
  s.Int(2, static_cast<int64_t>(r.state));
  s.Int(3, r.attempt);
  s.Int(4, r.failures);
  s.Int(5, r.started_ms);
  s.Int(6, r.finished_ms);
  s.Text(7, r.error);
  if (s.Step() != SQLITE_DONE) return Error("updating job " + r.id.Hex());
  if (sqlite3_changes(db_) == 0) return Status::NotFound("job store " + path_ + ": no job " + r.id.Hex());
  return Status::Ok();
}

Status JobStore::PutResult(const JobRecord& r, const wire::JobResult& result) {
  wire::JobResult meta = result;
  meta.image.clear();
  meta.format = wire::OutputFormat::kPng;  // rgb8's size check needs the image: the format has its own column
  DISTRI_ASSIGN_OR_RETURN(std::string meta_bytes, wire::EncodePayload(meta));
  DISTRI_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Stmt s(db_, "INSERT OR IGNORE INTO results (job_id, format, meta, image) VALUES (?1, ?2, ?3, ?4)");
  if (!s.ok()) {
    Status e = Error("preparing result insert");
    (void)Exec("ROLLBACK");
    return e;
  }
  s.Id(1, r.id);
  s.Int(2, static_cast<int64_t>(result.format));
  s.Blob(3, meta_bytes);
  s.Blob(4, result.image);
  if (s.Step() != SQLITE_DONE) {
    Status e = Error("storing the result of job " + r.id.Hex());
    (void)Exec("ROLLBACK");
    return e;
  }
  Status u = Update(r);
  if (!u.ok()) {
    (void)Exec("ROLLBACK");
    return u;
  }
  return Exec("COMMIT");
}

Result<JobRecord> JobStore::Get(const JobId& id) const {
  const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?1";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return Error("preparing get");
  s.Id(1, id);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return Status::NotFound("job " + id.Hex() + " not found");
  if (rc != SQLITE_ROW) return Error("reading job " + id.Hex());
  return ReadJob(s, path_);
}

Result<wire::JobResult> JobStore::GetResult(const JobId& id) const {
  Stmt s(db_, "SELECT format, meta, image FROM results WHERE job_id = ?1");
  if (!s.ok()) return Error("preparing result read");
  s.Id(1, id);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return Status::NotFound("job " + id.Hex() + " has no result");
  if (rc != SQLITE_ROW) return Error("reading the result of job " + id.Hex());
  wire::JobResult out;
  Status st = wire::DecodePayload(s.ColBytes(1), &out);
  if (!st.ok()) return Status::Internal(path_ + ": result of job " + id.Hex() + " does not decode: " + st.message());
  const int64_t format = s.ColInt(0);
  if (format < 0 || format > static_cast<int64_t>(wire::OutputFormat::kRgb8)) {
    return Status::Internal(path_ + ": result of job " + id.Hex() + ": unknown image format " + std::to_string(format));
  }
  out.format = static_cast<wire::OutputFormat>(format);
  out.image = s.ColBytes(2);
  return out;
}

Result<std::vector<JobRecord>> JobStore::LoadUnfinished() const {
  const std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE state IN (?1, ?2, ?3) ORDER BY seq";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return Error("preparing load");
  s.Int(1, static_cast<int64_t>(wire::JobState::kPending));
  s.Int(2, static_cast<int64_t>(wire::JobState::kScheduled));
  s.Int(3, static_cast<int64_t>(wire::JobState::kRunning));
  std::vector<JobRecord> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    DISTRI_ASSIGN_OR_RETURN(JobRecord r, ReadJob(s, path_));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Error("loading unfinished jobs");
  return out;
}

Result<wire::JobStateCounts> JobStore::CountByState() const {
  Stmt s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!s.ok()) return Error("preparing count");
  wire::JobStateCounts c;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    const uint64_t n = static_cast<uint64_t>(s.ColInt(1));
    switch (static_cast<wire::JobState>(s.ColInt(0))) {
      case wire::JobState::kPending: c.pending = n; break;
      case wire::JobState::kScheduled: c.scheduled = n; break;
      case wire::JobState::kRunning: c.running = n; break;
      case wire::JobState::kSucceeded: c.succeeded = n; break;
      case wire::JobState::kFailed: c.failed = n; break;
      case wire::JobState::kCancelled: c.cancelled = n; break;
    }
  }
  if (rc != SQLITE_DONE) return Error("counting jobs");
  return c;
}

}  // namespace distri::head
