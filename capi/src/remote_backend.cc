// Backend over runtime/client: a cluster reached through its head's ROUTER socket.
#include "capi/src/remote_backend.h"

namespace distri::capi {

RemoteBackend::RemoteBackend(std::unique_ptr<client::Client> client) : client_(std::move(client)) {}

Result<wire::JobAccepted> RemoteBackend::Submit(const wire::JobSpec& spec) { return client_->Submit(spec); }
Result<std::vector<wire::JobAccepted>> RemoteBackend::SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                                  std::optional<size_t>* refused_spec) {
  return client_->SubmitBatch(specs, refused_spec);
}
Result<wire::JobStatus> RemoteBackend::GetJob(const JobId& id, bool with_preview) {
  return client_->GetJob(id, with_preview);
}
Result<wire::JobStatus> RemoteBackend::Cancel(const JobId& id) { return client_->Cancel(id); }
Result<wire::JobResult> RemoteBackend::GetResult(const JobId& id) { return client_->GetResult(id); }

Result<ClusterSummary> RemoteBackend::GetClusterSummary() {
  DISTRI_ASSIGN_OR_RETURN(wire::ClusterStatus st, client_->GetClusterStatus());
  ClusterSummary s;
  for (const auto& n : st.nodes) {
    if (!n.alive) continue;
    ++s.nodes;
    s.gpus += static_cast<uint32_t>(n.gpus.size());
  }
  for (const auto& a : st.actors) {
    if (a.state == wire::ActorState::kDead) continue;
    ++s.actors;
    if (a.state == wire::ActorState::kIdle) ++s.idle_actors;
  }
  s.queue_length = st.queue_length;
  s.running_jobs = static_cast<uint32_t>(st.running.size());
  return s;
}

Result<std::unique_ptr<client::Client>> ConnectClient(const ConnectConfig& config) {
  client::ClientOptions o;
  o.address = config.address;
  o.keys_dir = config.key_dir;
  if (!config.client_public_key.empty()) {
    o.client_keys = wire::CurveKeyPair{config.client_public_key, config.client_secret_key};
  }
  o.head_public_key = config.server_public_key;
  o.name = "capi";
  o.connect_timeout = std::chrono::milliseconds(config.request_timeout_ms);
  o.request_timeout = std::chrono::milliseconds(config.request_timeout_ms);
  return client::Client::Connect(std::move(o));
}

Result<std::unique_ptr<Backend>> ConnectRemoteBackend(const ConnectConfig& config) {
  DISTRI_ASSIGN_OR_RETURN(auto client, ConnectClient(config));
  return std::unique_ptr<Backend>(std::make_unique<RemoteBackend>(std::move(client)));
}

}  // namespace distri::capi
