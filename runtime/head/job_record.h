// A job as the head keeps it (runtime/head): what the client asked for and where it stands.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/common/ids.h"
#include "runtime/wire/types.h"

namespace distri::head {

struct JobRecord {
  JobId id;
  wire::JobSpec spec;       // as accepted; spec.seed is always set (drawn by the head if absent)
  wire::JobState state = wire::JobState::kPending;
  uint32_t attempt = 0;     // 0 for the first run, +1 per re-run (failure or head restart)
  uint32_t failures = 0;    // failed attempts; the job is FAILED when it reaches max_attempts
  int64_t sequence = 0;     // order of acceptance (FIFO within a priority, across restarts)
  int64_t submitted_ms = 0;  // unix time, ms
  int64_t started_ms = 0;    // first task assigned (0: never)
  int64_t finished_ms = 0;   // terminal state reached (0: not yet)
  std::string error;         // the last error (FAILED), or why the last attempt failed
};

// Current unix time in milliseconds (wall clock: stored timings survive restarts).
int64_t UnixMillis();

}  // namespace distri::head
