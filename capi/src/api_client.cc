// distri_client_*: connecting, the embedded cluster, cluster info.
#include <cstdlib>
#include <mutex>

#include "capi/include/distri/distri.h"
#include "capi/src/errors.h"
#include "capi/src/handles.h"
#include "capi/src/params.h"
#include "runtime/common/logging.h"

namespace distri::capi {
namespace {

// A library should not chat on stderr unless asked: WARNING unless DISTRI_LOG_LEVEL says
// otherwise or the program called distri_log_set_level.
void DefaultLogLevelOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("DISTRI_LOG_LEVEL");
    if (env == nullptr || *env == '\0') {
      if (GetLogLevel() == LogLevel::kInfo) SetLogLevel(LogLevel::kWarning);
    }
    SetLogRole("client");
  });
}

Status Publish(std::unique_ptr<Backend> backend, distri_client_t** out) {
  auto* c = new distri_client{std::make_shared<ClientState>(std::move(backend))};
  Clients().Add(c);
  *out = c;
  return Status::Ok();
}

}  // namespace
}  // namespace distri::capi

using namespace distri::capi;  // NOLINT: this file implements the C entry points
using distri::Status;

extern "C" {

distri_status_t distri_client_connect(const distri_connect_params_t* params, distri_client_t** out_client) {
  return Guard("distri_client_connect", [&]() -> Status {
    if (out_client == nullptr) return Status::InvalidArgument("out_client is NULL");
    *out_client = nullptr;
    DISTRI_ASSIGN_OR_RETURN(ConnectConfig config, ConnectConfigFromParams(params));
    DefaultLogLevelOnce();
    if (config.address == "fake://") return Publish(MakeFakeBackend(), out_client);
    DISTRI_ASSIGN_OR_RETURN(auto backend, ConnectRemoteBackend(config));
    return Publish(std::move(backend), out_client);
  });
}

distri_status_t distri_client_create_local(const distri_local_params_t* params, distri_client_t** out_client) {
  return Guard("distri_client_create_local", [&]() -> Status {
    if (out_client == nullptr) return Status::InvalidArgument("out_client is NULL");
    *out_client = nullptr;
    DISTRI_ASSIGN_OR_RETURN(LocalConfig config, LocalConfigFromParams(params));
    DefaultLogLevelOnce();
    DISTRI_ASSIGN_OR_RETURN(auto backend, StartEmbeddedBackend(config));
    return Publish(std::move(backend), out_client);
  });
}

void distri_client_destroy(distri_client_t* client) {
  GuardValue("distri_client_destroy", 0, [&] {
    if (client == nullptr || !Clients().Remove(client)) return 0;
    client->state->Close();
    delete client;
    return 0;
  });
}

distri_status_t distri_client_get_cluster_info(distri_client_t* client, distri_cluster_info_t* out_info) {
  return Guard("distri_client_get_cluster_info", [&]() -> Status {
    DISTRI_RETURN_IF_ERROR(CheckHandle(client, "client"));
    if (out_info == nullptr) return Status::InvalidArgument("out_info is NULL");
    DISTRI_RETURN_IF_ERROR(CheckOutput("distri_cluster_info_t", out_info, kClusterInfoV1Size));
    auto state = client->state;
    DISTRI_ASSIGN_OR_RETURN(ClusterSummary s,
                            state->With([](Backend& b) { return b.GetClusterSummary(); }));
    distri_cluster_info_t info;
    distri_cluster_info_init(&info);
    info.nodes = s.nodes;
    info.gpus = s.gpus;
    info.actors = s.actors;
    info.idle_actors = s.idle_actors;
    info.queue_length = s.queue_length;
    info.running_jobs = s.running_jobs;
    WriteOutput(out_info, info);
    return Status::Ok();
  });
}

}  // extern "C"
