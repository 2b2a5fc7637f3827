#include "runtime/node/node_agent.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <thread>

#include "runtime/common/logging.h"
#include "runtime/node/resources.h"
#include "runtime/wire/dealer_socket.h"
#include "runtime/wire/zmq_context.h"

namespace distri::node {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

uint64_t UnixTimeMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// How long a queued ActorExited is retried while the head is unreachable; older ones no
// longer matter (a restarted head learns the actors from their own registrations).
constexpr auto kExitReportLifetime = std::chrono::seconds(30);

}  // namespace

Result<std::string> FindWorkerExecutable(const std::string& configured) {
  if (!configured.empty()) {
    if (access(configured.c_str(), X_OK) != 0) {
      return Status::NotFound("actor executable " + configured + " is not an executable file");
    }
    return configured;
  }
  std::vector<std::string> tried;
  if (const char* env = std::getenv("DISTRI_WORKER_PATH"); env != nullptr && *env != '\0') {
    if (access(env, X_OK) == 0) return std::string(env);
    tried.push_back(std::string(env) + " ($DISTRI_WORKER_PATH)");
  }
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto candidate = (self.parent_path() / "distri-worker").string();
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    tried.push_back(candidate);
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  return Status::NotFound("cannot find the actor executable distri-worker (looked at: " + list +
                          "); set DISTRI_WORKER_PATH");
}

int ActorThreads(int usable_cores, int actors) { return std::max(1, usable_cores / std::max(1, actors)); }

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

Result<std::unique_ptr<NodeAgent>> NodeAgent::Create(NodeAgentOptions o) {
  if (o.head.empty()) return Status::InvalidArgument("--head: the head's address is required (tcp://HOST:PORT)");
  if (o.head.find("://") == std::string::npos) o.head = "tcp://" + o.head;
  if (o.keys_dir.empty()) return Status::InvalidArgument("--keys: the cluster's key directory is required");
  if (o.model_dir.empty()) return Status::InvalidArgument("--model: the model directory is required");
  if (o.log_dir.empty()) return Status::InvalidArgument("--log-dir: a directory for actor logs is required");
  if (o.restart.max_restarts < 0) {
    return Status::InvalidArgument("--max-restarts: must be >= 0, got " + std::to_string(o.restart.max_restarts));
  }
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair keys, wire::ReadKeyPairFile(o.keys_dir + "/node.key"));
  DISTRI_ASSIGN_OR_RETURN(std::string head_pub, wire::ReadPublicKeyFile(o.keys_dir + "/head.pub"));
  DISTRI_ASSIGN_OR_RETURN(std::vector<int> gpus, SelectGpus(o.gpus));
  DISTRI_ASSIGN_OR_RETURN(wire::NodeResources resources,
                          DescribeNode(gpus, o.cpu_actors, o.model_dir, o.hostname));
  DISTRI_ASSIGN_OR_RETURN(std::string worker, FindWorkerExecutable(o.worker_path));
  o.worker_path = worker;
  std::error_code ec;
  std::filesystem::create_directories(o.log_dir, ec);
  if (ec) return Status::IoError("--log-dir: cannot create " + o.log_dir + ": " + ec.message());
  if (o.node_id.IsNil()) o.node_id = NodeId::Random();

  auto agent = std::unique_ptr<NodeAgent>(new NodeAgent(std::move(o), std::move(resources), std::move(keys),
                                                        std::move(head_pub)));
  const NodeAgentOptions& opt = agent->options_;
  // Slots: GPU actors in the order of --gpus, then CPU actors.
  std::vector<int> slot_gpus = gpus;
  for (int i = 0; i < opt.cpu_actors; ++i) slot_gpus.push_back(-1);
  // Each actor's share of the cores for its intra-op threads (ActorThreads), unless set.
  std::string omp_threads;
  const bool omp_given = std::getenv("OMP_NUM_THREADS") != nullptr ||
                         std::any_of(opt.worker_env.begin(), opt.worker_env.end(),
                                     [](const auto& kv) { return kv.first == "OMP_NUM_THREADS"; });
  if (!omp_given && !slot_gpus.empty()) {
    const int cores = UsableCores();
    omp_threads = std::to_string(ActorThreads(cores, static_cast<int>(slot_gpus.size())));
    DISTRI_LOG(INFO) << "actors get OMP_NUM_THREADS=" << omp_threads << " (" << cores << " cores, "
                     << slot_gpus.size() << " actors; set OMP_NUM_THREADS to choose)";
  }
  for (size_t slot = 0; slot < slot_gpus.size(); ++slot) {
    const int gpu = slot_gpus[slot];
    const ActorId actor_id = ActorId::Random();
    agent->actor_ids_.push_back(actor_id);
    ProcessSpec spec;
    spec.name = "actor-" + std::to_string(slot) + (gpu >= 0 ? " (gpu " + std::to_string(gpu) + ")" : " (cpu)");
    spec.executable = opt.worker_path;
    spec.args = {"--head", opt.head, "--keys", opt.keys_dir, "--node-id", opt.node_id.Hex(),
                 "--actor-id", actor_id.Hex(), "--gpu-index", std::to_string(gpu), "--model", opt.model_dir};
    spec.args.insert(spec.args.end(), opt.worker_args.begin(), opt.worker_args.end());
    // CPU actors see no GPU at all, so nothing in them can grab one by accident.
    spec.env.emplace_back("CUDA_VISIBLE_DEVICES", gpu >= 0 ? std::to_string(gpu) : "");
    if (!omp_threads.empty()) spec.env.emplace_back("OMP_NUM_THREADS", omp_threads);
    for (const auto& kv : opt.worker_env) spec.env.push_back(kv);
    spec.log_path = opt.log_dir + "/actor-" + std::to_string(slot) + ".log";
    agent->supervisor_->Add(std::move(spec));
  }
  return agent;
}

NodeAgent::NodeAgent(NodeAgentOptions options, wire::NodeResources resources, wire::CurveKeyPair keys,
                     std::string head_public_key)
    : options_(std::move(options)),
      resources_(std::move(resources)),
      keys_(std::move(keys)),
      head_public_key_(std::move(head_public_key)) {
  supervisor_ = std::make_unique<ProcessSupervisor>(options_.restart, [this](const ExitEvent& e) { OnActorExit(e); });
}

NodeAgent::~NodeAgent() { Stop(); }

Status NodeAgent::Start() {
  if (started_.exchange(true)) return Status::FailedPrecondition("NodeAgent::Start called twice");
  DISTRI_ASSIGN_OR_RETURN(context_, wire::ZmqContext::Create());
  wire::DealerOptions d;
  d.endpoint = options_.head;
  d.sender_id = "node:" + options_.node_id.Hex();
  d.curve = keys_;
  d.server_public_key = head_public_key_;
  DISTRI_ASSIGN_OR_RETURN(socket_, wire::DealerSocket::Connect(context_, d));
  DISTRI_LOG(INFO) << "node " << options_.node_id.Short() << " (" << resources_.hostname << "): "
                   << resources_.gpus.size() << " GPU actor(s), " << resources_.cpu_actors << " CPU actor(s), model "
                   << options_.model_dir << ", head " << options_.head << ", actor logs in " << options_.log_dir;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void NodeAgent::Stop() {
  if (!started_.load()) return;
  // Actors first: their exits are queued as ActorExited and flushed by the thread below.
  supervisor_->Stop();
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void NodeAgent::OnActorExit(const ExitEvent& e) {
  wire::ActorExited m;
  m.actor_id = actor_ids_.at(e.slot);
  m.exit_code = e.status.signal != 0 ? -1 : e.status.exit_code;
  m.signal = e.status.signal;
  m.restarting = e.restarting;
  std::lock_guard<std::mutex> lock(mu_);
  exits_.push_back(m);
}

void NodeAgent::Run() {
  bool registered = false;
  bool actors_started = false;
  uint64_t register_request = 0;
  auto next_register = Clock::now();
  auto heartbeat_interval = milliseconds(1000);
  auto next_heartbeat = Clock::now();
  uint64_t sequence = 0;
  struct PendingExit {
    wire::ActorExited message;
    Clock::time_point queued;
  };
  std::deque<PendingExit> outbox;
  auto lost_head = [&](const std::string& why) {
    if (registered) DISTRI_LOG(WARNING) << "lost the head (" << why << "); registering again";
    registered = false;
    next_register = Clock::now();
  };

  std::optional<Clock::time_point> flush_deadline;
  while (true) {
    const bool stopping = stop_.load();
    if (stopping && !flush_deadline) flush_deadline = Clock::now() + std::chrono::seconds(2);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& m : exits_) outbox.push_back({m, Clock::now()});
      exits_.clear();
    }
    if (stopping && (outbox.empty() || !registered || Clock::now() > *flush_deadline)) break;
    const auto now = Clock::now();
    if (!registered && !stopping && now >= next_register) {
      next_register = now + options_.register_retry;
      wire::RegisterNode reg{.node_id = options_.node_id, .resources = resources_, .agent_version = "distri-node"};
      auto id = socket_->Send(reg, options_.send_timeout);
      if (id.ok()) {
        register_request = *id;
      } else {
        DISTRI_LOG(DEBUG) << "RegisterNode not sent: " << id.status().ToString();
      }
    }
    if (registered && !stopping && now >= next_heartbeat) {
      next_heartbeat = now + heartbeat_interval;
      wire::Heartbeat hb{.sequence = ++sequence, .unix_time_ms = UnixTimeMs(), .busy_actors = 0};
      if (auto id = socket_->Send(hb, options_.send_timeout); !id.ok()) lost_head(id.status().message());
    }
    while (registered && !outbox.empty()) {
      if (Clock::now() - outbox.front().queued > kExitReportLifetime) {
        outbox.pop_front();
        continue;
      }
      auto id = socket_->Send(outbox.front().message, options_.send_timeout);
      if (!id.ok()) {
        lost_head(id.status().message());
        break;
      }
      DISTRI_LOG(INFO) << "reported the exit of actor " << outbox.front().message.actor_id.Short();
      outbox.pop_front();
    }
    auto in = socket_->Receive(milliseconds(stopping ? 10 : 50));
    if (!in.ok()) {
      if (in.status().code() != StatusCode::kDeadlineExceeded) {
        DISTRI_LOG(WARNING) << "bad message from the head: " << in.status().ToString();
      }
      continue;
    }
    if (in->type == wire::MessageType::kNodeRegistered && in->request_id == register_request) {
      auto reg = wire::Open<wire::NodeRegistered>(*in);
      if (!reg.ok()) {
        DISTRI_LOG(WARNING) << "bad NodeRegistered: " << reg.status().ToString();
        continue;
      }
      registered = true;
      registrations_++;
      heartbeat_interval = milliseconds(std::max<uint32_t>(reg->heartbeat_interval_ms, 10));
      next_heartbeat = Clock::now() + heartbeat_interval;
      DISTRI_LOG(INFO) << "registered with the head " << options_.head << " (heartbeat every "
                       << heartbeat_interval.count() << " ms)";
      if (!actors_started && !stopping) {
        actors_started = true;
        if (auto s = supervisor_->Start(); !s.ok()) DISTRI_LOG(ERROR) << "cannot start actors: " << s.ToString();
      }
    } else if (in->type == wire::MessageType::kError) {
      auto err = wire::Open<wire::NodeRegistered>(*in);
      const std::string why = err.status().ToString();
      if (in->request_id == register_request) {
        DISTRI_LOG(ERROR) << "the head refused RegisterNode: " << why << " (retrying)";
      } else {
        // Most likely the head restarted and no longer knows this connection.
        lost_head("it answered " + why);
      }
    } else {
      DISTRI_LOG(DEBUG) << "ignoring " << wire::MessageTypeName(in->type) << " from the head";
    }
  }
  socket_.reset();
}

}  // namespace distri::node
