#include "runtime/head/head_server.h"

#include <unistd.h>

#include <type_traits>

#include "runtime/common/logging.h"

namespace distri::head {
namespace {

// "tcp://0.0.0.0:7070" -> "0.0.0.0".
std::string EndpointHost(const std::string& endpoint) {
  std::string s = endpoint;
  const size_t scheme = s.find("://");
  if (scheme != std::string::npos) s = s.substr(scheme + 3);
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos) s = s.substr(0, colon);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return s;
}

bool IsWildcard(const std::string& host) { return host.empty() || host == "*" || host == "0.0.0.0" || host == "::"; }

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "127.0.0.1";
  return buf;
}

}  // namespace

HeadServer::HeadServer(HeadOptions options)
    : options_(std::move(options)),
      nodes_(options_.heartbeat_interval_ms, options_.missed_heartbeats),
      actors_(options_.heartbeat_interval_ms, options_.missed_heartbeats),
      scheduler_(options_.scheduler) {}

Result<std::unique_ptr<HeadServer>> HeadServer::Start(HeadOptions options) {
  if (options.heartbeat_interval_ms == 0 || options.heartbeat_interval_ms > 3600 * 1000) {
    return Status::InvalidArgument("head: heartbeat_interval_ms must be in [1, 3600000], found " +
                                   std::to_string(options.heartbeat_interval_ms));
  }
  if (options.missed_heartbeats < 1) return Status::InvalidArgument("head: missed_heartbeats must be >= 1");
  if (options.max_attempts < 1) return Status::InvalidArgument("head: max_attempts must be >= 1");
  std::unique_ptr<HeadServer> head(new HeadServer(std::move(options)));
  DISTRI_RETURN_IF_ERROR(head->Init());
  head->thread_ = std::thread([h = head.get()] { h->Run(); });
  return head;
}

Status HeadServer::Init() {
  DISTRI_ASSIGN_OR_RETURN(store_, JobStore::Open(options_.db_path));
  DISTRI_RETURN_IF_ERROR(LoadJobs());

  DISTRI_ASSIGN_OR_RETURN(context_, wire::ZmqContext::Create());
  wire::RouterOptions ro;
  ro.endpoint = options_.bind;
  ro.sender_id = "head";
  if (!options_.allow_insecure) {
    if (!options_.keys) {
      if (options_.keys_dir.empty()) {
        return Status::InvalidArgument("head: no CURVE keys (give a key directory with head.key and authorized_keys)");
      }
      DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair keys, wire::ReadKeyPairFile(options_.keys_dir + "/head.key"));
      options_.keys = std::move(keys);
    }
    std::vector<std::string> allowed = options_.authorized_keys;
    if (!options_.keys_dir.empty()) {
      DISTRI_ASSIGN_OR_RETURN(std::vector<wire::AuthorizedKey> file,
                              wire::ReadAuthorizedKeysFile(options_.keys_dir + "/authorized_keys"));
      for (const wire::AuthorizedKey& k : file) allowed.push_back(k.public_key);
    }
    if (allowed.empty()) DISTRI_LOG(WARNING) << "head: no authorized keys: every client will be refused";
    DISTRI_ASSIGN_OR_RETURN(auth_, wire::ZapAuthenticator::Start(context_, allowed));
    ro.curve = options_.keys;
    ro.authenticator = auth_.get();
    public_key_ = options_.keys->public_key;
  } else {
    ro.allow_insecure = true;
  }
  DISTRI_ASSIGN_OR_RETURN(router_, wire::RouterSocket::Bind(context_, ro));
  endpoint_ = router_->endpoint();

  const std::string bind_host = EndpointHost(endpoint_);
  const std::string rv_host = !options_.rendezvous_host.empty() ? options_.rendezvous_host
                              : IsWildcard(bind_host)          ? "0.0.0.0"
                                                               : bind_host;
  DISTRI_ASSIGN_OR_RETURN(rendezvous_, channel::TcpRendezvousServer::Listen(rv_host, options_.rendezvous_port));
  DISTRI_RETURN_IF_ERROR(rendezvous_->Start());
  std::string advertise = options_.advertise_host;
  if (advertise.empty()) advertise = IsWildcard(bind_host) ? Hostname() : bind_host;
  rendezvous_address_ = "tcp://" + channel::HostPort(advertise, rendezvous_->port());

  if (options_.metrics_port >= 0) {
    DISTRI_ASSIGN_OR_RETURN(metrics_http_,
                            HttpResponder::Start(options_.metrics_host, static_cast<uint16_t>(options_.metrics_port),
                                                 {"/metrics", "/"}, [this] { return metrics_.Render(); }));
  }
  UpdateMetrics();
  DISTRI_LOG(INFO) << "head serving on " << endpoint_ << ", gang rendezvous " << rendezvous_address_
                   << ", job store " << options_.db_path
                   << (metrics_http_ ? ", metrics on :" + std::to_string(metrics_http_->port()) + "/metrics" : "");
  return Status::Ok();
}

void HeadServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  metrics_http_.reset();
  router_.reset();
  auth_.reset();
  rendezvous_.reset();
  context_.reset();
  store_.reset();
}

HeadServer::~HeadServer() { Stop(); }

uint64_t HeadServer::rejected_messages() const { return router_ ? router_->rejected() : 0; }
uint64_t HeadServer::refused_connections() const { return auth_ ? auth_->refused() : 0; }

int64_t HeadServer::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - epoch_).count();
}

void HeadServer::Run() {
  // Sweep for dead peers a few times per heartbeat interval (at most every 20 ms).
  const int64_t sweep_ms = std::max<int64_t>(20, options_.heartbeat_interval_ms / 4);
  while (!stop_) {
    Result<Incoming> in = router_->Receive(std::chrono::milliseconds(std::min<int64_t>(50, sweep_ms)));
    if (in.ok()) {
      Dispatch(*in);
      ReleaseBrokenGangs();
      Schedule();
      ReleaseBrokenGangs();
    } else if (in.status().code() != StatusCode::kDeadlineExceeded) {
      DISTRI_LOG(ERROR) << "head: receive failed: " << in.status().ToString();
    }
    const int64_t now = NowMs();
    if (now - last_sweep_ms_ >= sweep_ms) {
      last_sweep_ms_ = now;
      Tick();
    }
    if (now - last_metrics_ms_ >= 500) {
      last_metrics_ms_ = now;
      UpdateMetrics();
    }
  }
}

void HeadServer::Tick() {
  const int64_t now = NowMs();
  for (const NodeId& node : nodes_.Sweep(now)) {
    DISTRI_LOG(WARNING) << "node " << node.Short() << " missed its heartbeats: marked dead with its actors";
    for (const auto& [actor, task] : actors_.MarkNodeDead(node)) {
      OnActorDied(actor, task, "its node " + node.Short() + " died");
    }
  }
  for (const auto& [actor, task] : actors_.Sweep(now)) {
    OnActorDied(actor, task, "missed " + std::to_string(options_.missed_heartbeats) + " heartbeats");
  }
  // The task of a rank that never answered CancelTask is over for the head (its job was
  // cancelled or re-queued when the cancel went out): the actor may take new tasks.
  for (const auto& [actor, task] : actors_.ExpireCancels(now, options_.cancel_timeout_ms)) {
    DISTRI_LOG(WARNING) << "actor " << actor.Short() << " did not answer CancelTask of job " << task.job_id.Short()
                        << " attempt " << task.attempt << " within " << options_.cancel_timeout_ms
                        << " ms: it is free again (a new task supersedes the old one)";
  }
  ReleaseBrokenGangs();
  Schedule();
  ReleaseBrokenGangs();
}

void HeadServer::Dispatch(Incoming& in) {
  // Any message from a known actor counts as a sign of life.
  actors_.Touch(in.peer, NowMs());
  std::visit(
      [&](const auto& m) {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, wire::RegisterNode>) OnRegisterNode(in, m);
        else if constexpr (std::is_same_v<M, wire::Heartbeat>) OnHeartbeat(in, m);
        else if constexpr (std::is_same_v<M, wire::RegisterActor>) OnRegisterActor(in, m);
        else if constexpr (std::is_same_v<M, wire::ActorExited>) OnActorExited(in, m);
        else if constexpr (std::is_same_v<M, wire::SubmitJob>) OnSubmit(in, m);
        else if constexpr (std::is_same_v<M, wire::SubmitJobs>) OnSubmitJobs(in, m);
        else if constexpr (std::is_same_v<M, wire::GetJob>) OnGetJob(in, m);
        else if constexpr (std::is_same_v<M, wire::CancelJob>) OnCancel(in, m);
        else if constexpr (std::is_same_v<M, wire::GetJobResult>) OnGetResult(in, m);
        else if constexpr (std::is_same_v<M, wire::GetClusterStatus>) OnClusterStatus(in);
        else if constexpr (std::is_same_v<M, wire::TaskProgress>) OnTaskProgress(in, m);
        else if constexpr (std::is_same_v<M, wire::TaskDone>) OnTaskDone(in, m);
        else if constexpr (std::is_same_v<M, wire::Error>) {
          DISTRI_LOG(WARNING) << "head: " << in.envelope.sender_id << " sent an error (request "
                              << in.envelope.request_id << "): " << m.ToStatus().ToString();
        } else {
          const Status s = Status::InvalidArgument("the head does not accept " +
                                                   std::string(wire::MessageTypeName(M::kType)) + " messages");
          DISTRI_LOG(WARNING) << "head: from " << in.envelope.sender_id << ": " << s.message();
          (void)router_->ReplyError(in, s);
        }
      },
      in.message);
}

void HeadServer::OnRegisterNode(const Incoming& in, const wire::RegisterNode& m) {
  nodes_.Register(m.node_id, m.resources, m.agent_version, in.peer, NowMs(), in.envelope.version_minor);
  DISTRI_LOG(INFO) << "node " << m.node_id.Short() << " (" << m.resources.hostname << ") registered: "
                   << m.resources.gpus.size() << " GPUs, " << m.resources.cpu_actors << " CPU actors, protocol "
                   << int{in.envelope.version_major} << "." << int{in.envelope.version_minor};
  (void)router_->Reply(in, wire::NodeRegistered{m.node_id, options_.heartbeat_interval_ms});
}

void HeadServer::OnHeartbeat(const Incoming& in, const wire::Heartbeat&) {
  const int64_t now = NowMs();
  if (nodes_.Heartbeat(in.peer, now)) return;
  if (actors_.FindByPeer(in.peer) != nullptr && actors_.Touch(in.peer, now)) return;
  // After a head restart (or after being declared dead) the peer must register again.
  (void)router_->ReplyError(in, Status::FailedPrecondition(
                                    "not registered with this head (it may have restarted, or declared you dead): "
                                    "send RegisterNode / RegisterActor again"));
}

void HeadServer::OnRegisterActor(const Incoming& in, const wire::RegisterActor& m) {
  const NodeEntry* node = nodes_.Find(m.node_id);
  // Its envelope's minor version is what it knows: the scheduler gives it no job using a newer
  // JobSpec field (docs/runtime-design.md, "Peers of older minor versions").
  std::optional<TaskRef> lost = actors_.Register(m, in.peer, NowMs(), in.envelope.version_minor);
  DISTRI_LOG(INFO) << "actor " << m.actor_id.Short() << " registered: " << m.device << " on node "
                   << m.node_id.Short() << (node ? " (" + node->resources.hostname + ")" : " (unknown node)")
                   << ", model " << m.model << ", pid " << m.pid << ", protocol " << int{in.envelope.version_major}
                   << "." << int{in.envelope.version_minor};
  if (lost) OnActorDied(m.actor_id, lost, "it registered again while running a task");
  (void)router_->Reply(in, wire::ActorRegistered{m.actor_id, options_.heartbeat_interval_ms});
}

void HeadServer::OnActorExited(const Incoming& in, const wire::ActorExited& m) {
  const ActorEntry* a = actors_.Find(m.actor_id);
  if (a == nullptr) {
    DISTRI_LOG(WARNING) << "head: " << in.envelope.sender_id << " reported the exit of unknown actor "
                        << m.actor_id.Short();
    return;
  }
  std::string why = m.signal != 0 ? "killed by signal " + std::to_string(m.signal)
                                  : "exited with code " + std::to_string(m.exit_code);
  DISTRI_LOG(WARNING) << "actor " << m.actor_id.Short() << " " << why
                      << (m.restarting ? " (its node restarts it)" : "");
  std::optional<TaskRef> task = actors_.MarkDead(m.actor_id);
  OnActorDied(m.actor_id, task, why);
}

void HeadServer::OnClusterStatus(const Incoming& in) {
  wire::ClusterStatus st;
  for (const NodeEntry* n : nodes_.All()) {
    if (st.nodes.size() == wire::kMaxStatusEntries) { st.truncated = true; break; }
    st.nodes.push_back({n->id, n->resources.hostname, n->alive, n->resources.gpus, n->resources.cpu_actors,
                        n->wire_minor});
  }
  for (const ActorEntry* a : actors_.All()) {
    if (st.actors.size() == wire::kMaxStatusEntries) { st.truncated = true; break; }
    wire::ActorStatus s;
    s.actor_id = a->id;
    s.node_id = a->node_id;
    s.gpu_index = a->gpu_index;
    s.state = a->state;
    if (a->task) s.job_id = a->task->job_id;
    s.model = a->model;
    s.device = a->device;
    s.protocol_minor = a->wire_minor;
    st.actors.push_back(std::move(s));
  }
  Result<wire::JobStateCounts> counts = store_->CountByState();
  if (counts.ok()) st.jobs_by_state = *counts;
  st.queue_length = static_cast<uint32_t>(queue_.size());
  for (const auto& [id, j] : active_) {
    if (j.rec.state != wire::JobState::kScheduled && j.rec.state != wire::JobState::kRunning) continue;
    if (st.running.size() == wire::kMaxStatusEntries) { st.truncated = true; break; }
    st.running.push_back({id, j.rec.state, j.step, j.rec.spec.steps, j.rec.attempt,
                          static_cast<uint32_t>(j.gang.size())});
  }
  st.head_version = options_.version;
  (void)router_->Reply(in, st);
}

void HeadServer::UpdateMetrics() {
  if (Result<wire::JobStateCounts> c = store_->CountByState(); c.ok()) metrics_.SetJobsByState(*c);
  metrics_.SetQueueLength(queue_.size());
  ActorCounts ac;
  for (const ActorEntry* a : actors_.All()) {
    const bool gpu = a->gpu_index >= 0;
    switch (a->state) {
      case wire::ActorState::kIdle: ++(gpu ? ac.gpu_idle : ac.cpu_idle); break;
      case wire::ActorState::kBusy: ++(gpu ? ac.gpu_busy : ac.cpu_busy); break;
      case wire::ActorState::kDead: ++(gpu ? ac.gpu_dead : ac.cpu_dead); break;
    }
  }
  metrics_.SetActors(ac);
  size_t alive = 0, dead = 0;
  for (const NodeEntry* n : nodes_.All()) ++(n->alive ? alive : dead);
  metrics_.SetNodes(alive, dead);
  if (router_) metrics_.SetMessagesRejected(router_->rejected());
}

}  // namespace distri::head
