#include "runtime/cli/commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "runtime/cli/cluster_config.h"
#include "runtime/cli/launcher.h"
#include "runtime/cli/progress.h"
#include "runtime/client/client.h"
#include "runtime/common/logging.h"

namespace distri::cli {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "distri-cluster: %s\n", s.ToString().c_str());
  return 1;
}

Result<std::unique_ptr<client::Client>> Connect(const Target& t, bool previews = false) {
  client::ClientOptions o;
  o.previews = previews;
  o.name = "cli";
  o.address = t.address;
  o.keys_dir = t.keys_dir;
  if (!t.config.empty()) {
    DISTRI_ASSIGN_OR_RETURN(ClusterConfig c, LoadClusterConfig(t.config));
    if (o.address.empty()) o.address = c.HeadAddress();
    if (o.keys_dir.empty()) o.keys_dir = c.keys_dir;
  }
  if (o.address.empty()) return Status::InvalidArgument("give --config CLUSTER.yaml, or --address and --keys");
  return client::Client::Connect(o);
}

Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

// A reader of `path` sees the previous file or the new one, never a partial one.
Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  DISTRI_RETURN_IF_ERROR(WriteFile(tmp, bytes));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

wire::JobSpec SpecOf(const JobFlags& j) {
  wire::JobSpec s = j.spec;
  if (j.seed >= 0) s.seed = static_cast<uint64_t>(j.seed);
  if (j.warmup_steps >= 0) s.warmup_steps = static_cast<uint32_t>(j.warmup_steps);  // main.cc checks the range
  return s;
}

}  // namespace

int CmdUp(const std::string& config, const std::string& bin_dir) {
  Result<ClusterConfig> c = LoadClusterConfig(config);
  if (!c.ok()) return Fail(c.status());
  const std::string bins = c->bin_dir.empty() ? bin_dir : c->bin_dir;
  Result<std::vector<ProcessEntry>> up = ClusterUp(*c, bins);
  if (!up.ok()) return Fail(up.status());
  std::printf("cluster '%s' is up: %zu node(s); `distri-cluster status --config %s`\n", c->cluster_name.c_str(),
              up->size() - 1, config.c_str());
  return 0;
}

int CmdDown(const std::string& config) {
  Result<ClusterConfig> c = LoadClusterConfig(config);
  if (!c.ok()) return Fail(c.status());
  const Status s = ClusterDown(*c);
  return s.ok() ? 0 : Fail(s);
}

int CmdStatus(const Target& target) {
  auto client = Connect(target);
  if (!client.ok()) return Fail(client.status());
  Result<wire::ClusterStatus> st = (*client)->GetClusterStatus();
  if (!st.ok()) return Fail(st.status());
  std::printf("head %s (version %s)\n\nnodes:\n", (*client)->options().address.c_str(), st->head_version.c_str());
  // "protocol 1.N", or "?" from a head that does not report it; peers of an older minor
  // version than this client's are marked (docs/runtime-design.md, "Peers of older minor versions").
  auto protocol = [](uint32_t minor) {
    if (minor == 0) return std::string("protocol ?");
    std::string p = "protocol " + std::to_string(wire::kProtocolVersionMajor) + "." + std::to_string(minor);
    return minor < wire::kProtocolVersionMinor ? p + " (older)" : p;
  };
  for (const wire::NodeStatus& n : st->nodes) {
    std::printf("  %s  %-20s %-5s  %zu GPU(s)%s, %u CPU actor(s), %s\n", n.node_id.Short().c_str(), n.hostname.c_str(),
                n.alive ? "alive" : "DEAD", n.gpus.size(), n.gpus.empty() ? "" : (" (" + n.gpus[0].name + ")").c_str(),
                n.cpu_actors, protocol(n.protocol_minor).c_str());
  }
  std::printf("\nactors:\n");
  for (const wire::ActorStatus& a : st->actors) {
    std::printf("  %s  node %s  %-7s %-5s model %s, %s%s\n", a.actor_id.Short().c_str(), a.node_id.Short().c_str(),
                a.device.c_str(), std::string(wire::ActorStateName(a.state)).c_str(), a.model.c_str(),
                protocol(a.protocol_minor).c_str(),
                a.state == wire::ActorState::kBusy ? ("  job " + a.job_id.Short()).c_str() : "");
  }
  const wire::JobStateCounts& j = st->jobs_by_state;
  std::printf("\njobs: %llu pending, %llu scheduled, %llu running, %llu succeeded, %llu failed, %llu cancelled\n",
              (unsigned long long)j.pending, (unsigned long long)j.scheduled, (unsigned long long)j.running,
              (unsigned long long)j.succeeded, (unsigned long long)j.failed, (unsigned long long)j.cancelled);
  std::printf("queue: %u\n", st->queue_length);
  if (!st->running.empty()) std::printf("running:\n");
  for (const wire::RunningJob& r : st->running) {
    std::printf("  %s  %-9s step %u/%u  attempt %u  gang of %u\n", r.job_id.Hex().c_str(),
                std::string(wire::JobStateName(r.state)).c_str(), r.step, r.total_steps, r.attempt, r.gang_size);
  }
  if (st->truncated) std::printf("(lists truncated)\n");
  return 0;
}

int CmdSubmit(const Target& target, JobFlags job, const std::string& out, bool quiet, bool json) {
  if (!job.preview_path.empty() && job.spec.preview_every == 0) {
    return Fail(Status::InvalidArgument("--preview needs --preview-every N (N >= 1)"));
  }
  auto client = Connect(target, /*previews=*/!job.preview_path.empty());
  if (!client.ok()) return Fail(client.status());
  const auto start = std::chrono::steady_clock::now();
  auto client_ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  Result<wire::JobAccepted> acc = (*client)->Submit(SpecOf(job));
  if (!acc.ok()) return Fail(acc.status());
  auto fail_json = [&](const Status& s) {
    if (json) {
      std::printf("%s\n", nlohmann::json({{"job_id", acc->job_id.Hex()}, {"state", "ERROR"}, {"error", s.ToString()},
                                           {"client_ms", client_ms()}}).dump().c_str());
      std::fflush(stdout);
    }
    return Fail(s);
  };
  std::fprintf(stderr, "job %s accepted (seed %llu, %u ahead in the queue)\n", acc->job_id.Hex().c_str(),
               (unsigned long long)acc->seed, acc->queue_position);
  ProgressLine bar("job " + acc->job_id.Short(), !quiet && isatty(2));
  uint32_t preview_step = 0;  // of the preview last written
  Result<wire::JobResult> r = (*client)->WaitForJob(
      acc->job_id, std::chrono::milliseconds(static_cast<int64_t>(job.timeout_s * 1000)),
      [&](const wire::JobStatus& s) {
        bar.Update(s);
        if (!job.preview_path.empty() && !s.preview.empty() && s.preview_step != preview_step) {
          preview_step = s.preview_step;
          if (Status w = WriteFileAtomically(job.preview_path, s.preview); !w.ok()) {
            DISTRI_LOG(WARNING) << "preview: " << w.ToString();
          }
        }
      });
  bar.Finish();
  if (!r.ok()) return fail_json(r.status());
  if (Status s = WriteFile(out, r->image); !s.ok()) return fail_json(s);
  if (json) {
    nlohmann::json gang = nlohmann::json::array();
    for (const wire::GangMember& m : r->gang) gang.push_back(m.gpu_index);
    nlohmann::json line = {{"job_id", acc->job_id.Hex()}, {"state", "SUCCEEDED"}, {"seed", r->seed},
                           {"width", r->width}, {"height", r->height}, {"attempt", r->attempt},
                           {"gang_size", r->gang.size()}, {"gang", gang}, {"queued_ms", r->timings.queued_ms},
                           {"run_ms", r->timings.run_ms}, {"total_ms", r->timings.total_ms},
                           {"denoise_ms", r->timings.denoise_ms}, {"decode_ms", r->timings.decode_ms},
                           {"client_ms", client_ms()}, {"out", out}};
    std::printf("%s\n", line.dump().c_str());
    return 0;
  }
  std::printf("%s: %ux%u, seed %llu, attempt %u, gang of %zu, %.0f ms (queued %.0f ms)\n", out.c_str(), r->width,
              r->height, (unsigned long long)r->seed, r->attempt, r->gang.size(), r->timings.total_ms,
              r->timings.queued_ms);
  return 0;
}

int CmdBatch(const Target& target, JobFlags job, const std::string& prompts_file, const std::string& out_dir) {
  std::ifstream in(prompts_file);
  if (!in) return Fail(Status::IoError("cannot read prompts file " + prompts_file));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    prompts.push_back(line);
  }
  auto client = Connect(target);
  if (!client.ok()) return Fail(client.status());
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  std::ofstream manifest(out_dir + "/manifest.jsonl", std::ios::app);
  if (!manifest) return Fail(Status::IoError("cannot write " + out_dir + "/manifest.jsonl"));
  std::vector<wire::JobSpec> specs;
  specs.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    JobFlags j = job;
    j.spec.prompt = prompts[i];
    if (job.seed >= 0) j.seed = job.seed + static_cast<int64_t>(i);
    specs.push_back(SpecOf(j));
  }
  // One batch (SubmitJobs messages of up to wire::kMaxBatchJobs jobs): the head queues the
  // whole batch before it schedules, so --gpus 0 (auto) sees it and runs a long batch of small
  // images one per GPU instead of giving the first ones the gang an idle cluster would. The
  // error of an invalid job names it as jobs[i] (prompt i + 1).
  Result<std::vector<wire::JobAccepted>> accepted = (*client)->SubmitBatch(specs);
  if (!accepted.ok()) return Fail(accepted.status().WithContext(prompts_file));
  std::map<size_t, wire::JobAccepted> pending;
  for (size_t i = 0; i < accepted->size(); ++i) pending.emplace(i, (*accepted)[i]);
  std::fprintf(stderr, "submitted %zu jobs\n", pending.size());
  int failures = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(job.timeout_s * 1000));
  while (!pending.empty()) {
    for (auto it = pending.begin(); it != pending.end();) {
      Result<wire::JobStatus> st = (*client)->GetJob(it->second.job_id);
      if (!st.ok() || !wire::IsTerminal(st->state)) {
        ++it;
        continue;
      }
      nlohmann::json line = {{"index", it->first}, {"prompt", prompts[it->first]}, {"job_id", it->second.job_id.Hex()},
                             {"seed", it->second.seed}, {"state", std::string(wire::JobStateName(st->state))}};
      if (st->state == wire::JobState::kSucceeded) {
        Result<wire::JobResult> r = (*client)->GetResult(it->second.job_id);
        const std::string file = std::to_string(it->first) + ".png";
        if (r.ok() && WriteFile(out_dir + "/" + file, r->image).ok()) {
          line["file"] = file;
          line["total_ms"] = r->timings.total_ms;
        } else {
          line["error"] = r.ok() ? "cannot write " + file : r.status().ToString();
          ++failures;
        }
      } else {
        line["error"] = st->error;
        ++failures;
      }
      manifest << line.dump() << "\n" << std::flush;
      std::fprintf(stderr, "[%zu/%zu] %s\n", prompts.size() - pending.size() + 1, prompts.size(),
                   line.value("file", std::string(wire::JobStateName(st->state))).c_str());
      it = pending.erase(it);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail(Status::DeadlineExceeded(std::to_string(pending.size()) + " jobs not finished in time"));
    }
    if (!pending.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  std::printf("%zu images in %s (manifest.jsonl), %d failed\n", prompts.size() - failures, out_dir.c_str(), failures);
  return failures == 0 ? 0 : 1;
}

int CmdLogs(const std::string& config, const std::string& which, int lines, bool follow) {
  Result<ClusterConfig> c = LoadClusterConfig(config);
  if (!c.ok()) return Fail(c.status());
  std::vector<std::string> files;
  if (which.empty() || which == "head") files.push_back(c->log_dir + "/head.log");
  for (const NodeConfig& n : c->nodes) {
    if (which.empty() || which == n.name) files.push_back(c->log_dir + "/node-" + n.name + ".log");
  }
  if (files.empty()) return Fail(Status::NotFound("no log named '" + which + "' (head or a node name)"));
  std::vector<std::string> argv = {"tail", "-n", std::to_string(lines)};
  if (follow) argv.push_back("-F");
  argv.insert(argv.end(), files.begin(), files.end());
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  execvp("tail", args.data());
  return Fail(Status::Internal("cannot run tail"));
}

}  // namespace distri::cli
