// The embedded local cluster of distri_client_create_local (distri.h): a head::HeadServer and a
// node::NodeAgent in this process, on loopback, with fresh CURVE keys in a work folder; the
// agent starts the distri-worker processes (one per GPU, or CPU actors), and a RemoteBackend
// talks to the head like any other client. Destruction order: client, agent (stops the
// workers), head, then the temporary folder.
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "capi/src/remote_backend.h"
#include "runtime/common/logging.h"
#include "runtime/head/head_server.h"
#include "runtime/node/node_agent.h"
#include "runtime/node/resources.h"
#include "runtime/wire/curve_keys.h"

namespace distri::capi {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// distri-worker: configured, $DISTRI_WORKER_PATH, next to libdistri, next to the executable,
// then PATH (distri.h documents this order).
Result<std::string> FindWorker(const std::string& configured) {
  if (!configured.empty() || (getenv("DISTRI_WORKER_PATH") && *getenv("DISTRI_WORKER_PATH"))) {
    return node::FindWorkerExecutable(configured);
  }
  std::vector<std::string> tried;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&FindWorker), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path lib = fs::canonical(info.dli_fname, ec);
    if (!ec) {
      // In a build tree libdistri is in capi/ and the executables in bin/.
      for (const fs::path& dir : {lib.parent_path(), lib.parent_path().parent_path() / "bin"}) {
        std::string candidate = (dir / "distri-worker").string();
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
        tried.push_back(candidate);
      }
    }
  }
  auto next_to_exe = node::FindWorkerExecutable("");
  if (next_to_exe.ok()) return next_to_exe;
  tried.push_back(next_to_exe.status().message());
  if (const char* path = getenv("PATH")) {
    std::string p(path);
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      std::string dir = p.substr(start, end - start);
      if (!dir.empty()) {
        std::string candidate = dir + "/distri-worker";
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
      }
      start = end + 1;
    }
    tried.push_back("PATH");
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : "; ") + t;
  return Status::NotFound("cannot find distri-worker (" + list +
                          "): set distri_local_params_t.worker_path or DISTRI_WORKER_PATH");
}

Status WriteKeys(const std::string& dir) {
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair head, wire::GenerateCurveKeyPair());
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair node, wire::GenerateCurveKeyPair());
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair client, wire::GenerateCurveKeyPair());
  DISTRI_RETURN_IF_ERROR(wire::WriteKeyPairFile(dir + "/head.key", head));
  DISTRI_RETURN_IF_ERROR(wire::WritePublicKeyFile(dir + "/head.pub", head.public_key));
  DISTRI_RETURN_IF_ERROR(wire::WriteKeyPairFile(dir + "/node.key", node));
  DISTRI_RETURN_IF_ERROR(wire::WriteKeyPairFile(dir + "/client.key", client));
  return wire::WriteAuthorizedKeysFile(dir + "/authorized_keys",
                                       {{node.public_key, "embedded node"}, {client.public_key, "embedded client"}});
}

// The last `max_bytes` of a log file, for startup errors.
std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  size_t from = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string text(size - from, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

class EmbeddedBackend final : public Backend {
 public:
  ~EmbeddedBackend() override {
    remote_.reset();
    if (agent_) agent_->Stop();
    agent_.reset();
    if (head_) head_->Stop();
    head_.reset();
    if (remove_dir_ && !work_dir_.empty()) {
      std::error_code ec;
      fs::remove_all(work_dir_, ec);
    }
  }

  Status Start(const LocalConfig& config) {
    std::error_code ec;
    if (!fs::is_directory(config.model_path, ec) || !fs::exists(fs::path(config.model_path) / "model_index.json", ec)) {
      return Status::NotFound("distri_local_params_t.model_path: " + config.model_path +
                              " is not a model folder (no model_index.json); make a tiny one with "
                              "`distri model init --arch sdxl-tiny DIR`");
    }
    DISTRI_ASSIGN_OR_RETURN(std::string worker, FindWorker(config.worker_path));

    if (config.work_dir.empty()) {
      std::string tmpl = (fs::temp_directory_path(ec) / "distri-local-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) return Status::IoError("cannot create a temporary folder " + tmpl);
      work_dir_ = tmpl;
      remove_dir_ = true;
    } else {
      work_dir_ = config.work_dir;
      fs::create_directories(work_dir_, ec);
      if (ec) return Status::IoError("distri_local_params_t.work_dir: cannot create " + work_dir_ + ": " + ec.message());
    }
    const std::string keys = work_dir_ + "/keys";
    log_dir_ = work_dir_ + "/logs";
    fs::create_directories(keys, ec);
    fs::permissions(keys, fs::perms::owner_all, ec);
    fs::create_directories(log_dir_, ec);
    DISTRI_RETURN_IF_ERROR(WriteKeys(keys));

    head::HeadOptions ho;
    ho.bind = "tcp://127.0.0.1:*";
    ho.db_path = work_dir_ + "/jobs.db";
    ho.keys_dir = keys;
    ho.advertise_host = "127.0.0.1";
    ho.rendezvous_host = "127.0.0.1";
    ho.metrics_port = -1;
    DISTRI_ASSIGN_OR_RETURN(head_, head::HeadServer::Start(ho));

    // GPU actors: every visible GPU, none, or the first N.
    std::string gpus = "none";
    size_t gpu_count = 0;
    if (config.gpus != 0) {
      DISTRI_ASSIGN_OR_RETURN(std::vector<int> all, node::SelectGpus("all"));
      size_t n = config.gpus < 0 ? all.size() : std::min(all.size(), size_t(config.gpus));
      if (config.gpus > 0 && all.size() < size_t(config.gpus)) {
        return Status::InvalidArgument("distri_local_params_t.gpus: " + std::to_string(config.gpus) +
                                       " GPUs asked, this machine has " + std::to_string(all.size()));
      }
      for (size_t i = 0; i < n; ++i) gpus = (i == 0 ? "" : gpus + ",") + std::to_string(all[i]);
      gpu_count = n;
    }
    node::NodeAgentOptions no;
    no.head = head_->endpoint();
    no.keys_dir = keys;
    no.model_dir = config.model_path;
    no.gpus = gpus;
    no.cpu_actors = config.cpu_actors >= 0 ? config.cpu_actors : (gpu_count == 0 ? 1 : 0);
    no.log_dir = log_dir_;
    no.worker_path = worker;
    no.hostname = "localhost";
    if (config.dtype != "auto") no.worker_args = {"--dtype", config.dtype};
    no.restart.max_restarts = 2;
    no.restart.stop_grace = std::chrono::milliseconds(3000);
    expected_actors_ = gpu_count + size_t(no.cpu_actors);
    if (expected_actors_ == 0) {
      return Status::InvalidArgument("distri_local_params_t: no GPU found and cpu_actors = 0: no actor to render");
    }
    DISTRI_ASSIGN_OR_RETURN(agent_, node::NodeAgent::Create(no));
    DISTRI_RETURN_IF_ERROR(agent_->Start());

    ConnectConfig cc;
    cc.address = head_->endpoint();
    cc.key_dir = keys;
    cc.request_timeout_ms = config.request_timeout_ms;
    DISTRI_ASSIGN_OR_RETURN(auto client, ConnectClient(cc));
    remote_ = std::make_unique<RemoteBackend>(std::move(client));
    return WaitForActors(config.startup_timeout_ms);
  }

  Result<wire::JobAccepted> Submit(const wire::JobSpec& spec) override { return remote_->Submit(spec); }
  Result<std::vector<wire::JobAccepted>> SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                     std::optional<size_t>* refused_spec) override {
    return remote_->SubmitBatch(specs, refused_spec);
  }
  Result<wire::JobStatus> GetJob(const JobId& id, bool with_preview) override {
    return remote_->GetJob(id, with_preview);
  }
  Result<wire::JobStatus> Cancel(const JobId& id) override { return remote_->Cancel(id); }
  Result<wire::JobResult> GetResult(const JobId& id) override { return remote_->GetResult(id); }
  Result<ClusterSummary> GetClusterSummary() override { return remote_->GetClusterSummary(); }

 private:
  // Ready = every actor registered with the head (an actor registers once its model is
  // loaded). Fails early when an actor slot gave up (crash loop), with its log's tail.
  Status WaitForActors(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto summary = remote_->GetClusterSummary();
      if (summary.ok() && summary->actors >= expected_actors_) return Status::Ok();
      auto slots = agent_->actors();
      for (size_t i = 0; i < slots.size(); ++i) {
        if (slots[i].state == node::SlotState::kFailed) {
          return Status::Unavailable("embedded cluster: " + slots[i].name + " keeps failing" +
                                     (slots[i].last_exit ? " (" + slots[i].last_exit->Describe() + ")" : "") +
                                     "; end of its log:\n" + Tail(log_dir_ + "/actor-" + std::to_string(i) + ".log", 2000));
        }
      }
      if (timeout_ms >= 0 && Clock::now() >= deadline) {
        return Status::DeadlineExceeded(
            "embedded cluster: " + std::to_string(summary.ok() ? summary->actors : 0) + " of " +
            std::to_string(expected_actors_) + " actors ready after " + std::to_string(timeout_ms) +
            " ms; end of actor-0's log:\n" + Tail(log_dir_ + "/actor-0.log", 2000));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::string work_dir_;
  std::string log_dir_;
  bool remove_dir_ = false;
  size_t expected_actors_ = 0;
  std::unique_ptr<head::HeadServer> head_;
  std::unique_ptr<node::NodeAgent> agent_;
  std::unique_ptr<RemoteBackend> remote_;
};

}  // namespace

Result<std::unique_ptr<Backend>> StartEmbeddedBackend(const LocalConfig& config) {
  auto backend = std::make_unique<EmbeddedBackend>();
  DISTRI_RETURN_IF_ERROR(backend->Start(config));  // on error, the destructor cleans up
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace distri::capi
