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
#include <string>

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
