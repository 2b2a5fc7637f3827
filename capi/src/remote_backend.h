// Backend over runtime/client (a head reached over ZeroMQ + CURVE); also used by the
// embedded cluster, whose head listens on loopback.
#pragma once

#include <memory>

#include "capi/src/backend.h"
#include "runtime/client/client.h"

namespace distri::capi {

class RemoteBackend : public Backend {
 public:
  explicit RemoteBackend(std::unique_ptr<client::Client> client);
  Result<wire::JobAccepted> Submit(const wire::JobSpec& spec) override;
  Result<std::vector<wire::JobAccepted>> SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                     std::optional<size_t>* refused_spec) override;
  Result<wire::JobStatus> GetJob(const JobId& id, bool with_preview) override;
  Result<wire::JobStatus> Cancel(const JobId& id) override;
  Result<wire::JobResult> GetResult(const JobId& id) override;
  Result<ClusterSummary> GetClusterSummary() override;

 private:
  std::unique_ptr<client::Client> client_;
};

// Builds client::ClientOptions from `config` and connects (checks the head answers).
Result<std::unique_ptr<client::Client>> ConnectClient(const ConnectConfig& config);

}  // namespace distri::capi
