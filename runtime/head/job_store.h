// JobStore: the head's durable record of jobs and their results, in one SQLite database.
//
// A job is written before the head answers JobAccepted and every state change is written
// before it is acted upon, so a head restart loses no accepted job (docs/runtime-design.md,
// "Job semantics"). Results (image bytes + metadata: seed, timings, gang, attempt) live in the
// same database. Writes use SQLite's WAL journal with synchronous=FULL: a committed write
// survives a crash of the head process and of the machine. New databases use 64 KiB pages (the
// images are large blobs); databases made with another page size keep it.
//
// Schema (version 1, in table `meta`): jobs(id, seq, spec, state, attempt, failures, priority,
// submitted_ms, started_ms, finished_ms, error); results(job_id, format, meta, image). `spec` and
// `meta` are msgpack payloads of runtime/wire (SubmitJob, JobResult without its image), so the
// store reuses the wire's validation when it reads them back.
//
// Not thread-safe: the head uses it from its one server thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/head/job_record.h"
#include "runtime/wire/cluster_messages.h"
#include "runtime/wire/job_messages.h"

struct sqlite3;

namespace distri::head {

class JobStore {
 public:
  // Opens (creating it and its tables when missing) the database at `path`; ":memory:" gives
  // a private in-memory store (tests). Errors name the path: IoError (cannot open, disk),
  // FailedPrecondition (a database of another schema version).
  static Result<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Adds a new job (AlreadyExists when the id is taken). Assigns record->sequence.
  Status Insert(JobRecord* record);
  // Adds every job of `records` in one transaction (one sync to disk for a whole batch), with
  // consecutive sequence numbers in vector order: all of them or, on any error, none (the
  // sequence numbers assigned then mean nothing).
  Status InsertAll(std::vector<JobRecord>* records);
  // Writes state, attempt, failures, timings and error of an existing job (NotFound otherwise).
  Status Update(const JobRecord& record);
  // Stores the result and marks the job SUCCEEDED (record's other fields written too), in one
  // transaction. A second result for the same job is ignored (the first one stays).
  Status PutResult(const JobRecord& record, const wire::JobResult& result);

  Result<JobRecord> Get(const JobId& id) const;
  // NotFound when the job has no result.
  Result<wire::JobResult> GetResult(const JobId& id) const;
  // Jobs not in a terminal state, in acceptance order (what a restarted head resumes).
  Result<std::vector<JobRecord>> LoadUnfinished() const;
  Result<wire::JobStateCounts> CountByState() const;

  const std::string& path() const { return path_; }

 private:
  JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql) const;
  Status Error(const std::string& what) const;

  sqlite3* db_;
  std::string path_;
};

}  // namespace distri::head
