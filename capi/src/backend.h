// The seam between the C ABI and a cluster. distri_client_t holds one Backend:
//   - RemoteBackend   (remote_backend.cc): runtime/client talking to a head over ZeroMQ;
//   - EmbeddedBackend (embedded_backend.cc): a head and a node agent started in this process,
//                      reached through a RemoteBackend on loopback;
//   - FakeBackend     (fake_backend.cc): the "fake://" cluster, no processes, for tests of
//                      programs and bindings (documented in distri.h).
// Implementations need not be thread-safe: the client serialises calls with its mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/job_messages.h"
#include "runtime/wire/types.h"

namespace distri::capi {

struct ClusterSummary {
  uint32_t nodes = 0;
  uint32_t gpus = 0;
  uint32_t actors = 0;
  uint32_t idle_actors = 0;
  uint32_t queue_length = 0;
  uint32_t running_jobs = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Result<wire::JobAccepted> Submit(const wire::JobSpec& spec) = 0;
  // Submits `specs` (1..65536) as one batch: one JobAccepted per spec, in order. The cluster
  // sees the whole batch before it schedules any of it (the head queues a SubmitJobs message
  // at once; client::Client::SubmitBatch splits only past wire::kMaxBatchJobs specs or the
  // envelope limit, and falls back to one SubmitJob per spec for a head older than wire
  // minor version 5). All or nothing: on an error the jobs this call got accepted are
  // cancelled (best effort) and *refused_spec (never null) is the index of the spec the
  // cluster refused, or nullopt when the error is not about one spec (e.g. no answer).
  virtual Result<std::vector<wire::JobAccepted>> SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                             std::optional<size_t>* refused_spec) = 0;
  // with_preview: the status carries the job's newest latent preview, if it has one
  // (wire::GetJob.with_preview).
  virtual Result<wire::JobStatus> GetJob(const JobId& id, bool with_preview) = 0;
  virtual Result<wire::JobStatus> Cancel(const JobId& id) = 0;
  virtual Result<wire::JobResult> GetResult(const JobId& id) = 0;
  virtual Result<ClusterSummary> GetClusterSummary() = 0;
};

// distri_connect_params_t after validation (runtime/client reads key_dir's files).
struct ConnectConfig {
  std::string address;
  std::string key_dir;
  std::string server_public_key;
  std::string client_public_key;
  std::string client_secret_key;
  int request_timeout_ms = 30000;
};

// distri_local_params_t after validation.
struct LocalConfig {
  std::string model_path;
  int gpus = -1;
  int cpu_actors = -1;
  std::string dtype = "auto";
  std::string worker_path;  // empty: search (see distri.h)
  std::string work_dir;     // empty: a fresh temporary folder
  int startup_timeout_ms = 300000;
  int request_timeout_ms = 30000;
};

std::unique_ptr<Backend> MakeFakeBackend();
// Unimplemented when libdistri is built without runtime/client.
Result<std::unique_ptr<Backend>> ConnectRemoteBackend(const ConnectConfig& config);
// Unimplemented when libdistri is built without runtime/head and runtime/node.
Result<std::unique_ptr<Backend>> StartEmbeddedBackend(const LocalConfig& config);

}  // namespace distri::capi
