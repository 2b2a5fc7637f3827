// Fully populated instances of every control-plane message, for the round-trip tests, the
// mutation tests and the fuzzer's seed corpus. Every optional field is set to a non-default
// value so a field the codec drops shows up as a round-trip mismatch.
#pragma once

#include <string>
#include <vector>

#include "runtime/wire/messages.h"

namespace distri::wire::testing {

inline NodeId TestNodeId(uint8_t seed) {
  std::array<uint8_t, 16> b{};
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(seed * 16 + i);
  return NodeId::FromBytes(b);
}

inline JobId TestJobId() {
  std::array<uint8_t, 16> b{};
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(0xA0 + i);
  return JobId::FromBytes(b);
}

inline JobSpec SampleJobSpec() {
  JobSpec s;
  s.prompt = "a watercolor fox in a snowy forest, \xE2\x9D\x84";  // UTF-8 snowflake
  s.negative_prompt = "blurry, low quality";
  s.width = 2048;
  s.height = 1024;
  s.steps = 50;
  s.guidance = 7.25;
  s.sampler = "dpmpp_2m";
  s.seed = 0xFFFFFFFFFFFFFFF0ull;  // above 2^63: must survive as unsigned
  s.gpus = 4;
  s.priority = -3;
  s.output_format = OutputFormat::kRgb8;
  s.model = "sdxl-base-1.0";
  s.sync_mode = "stale_gn";
  s.warmup_steps = 2;
  s.preview_every = 5;
  s.guidance_rescale = 0.7;
  return s;
}

inline std::vector<GangMember> SampleGang(uint32_t n) {
  std::vector<GangMember> gang;
  for (uint32_t r = 0; r < n; ++r) {
    GangMember m;
    m.rank = r;
    m.node_id = TestNodeId(static_cast<uint8_t>(r / 2));
    std::array<uint8_t, 16> a{};
    a[0] = static_cast<uint8_t>(r + 1);
    m.actor_id = ActorId::FromBytes(a);
    m.gpu_index = r == n - 1 ? -1 : static_cast<int32_t>(r % 2);
    m.hostname = "gpu-host-" + std::to_string(r / 2);
    gang.push_back(m);
  }
  return gang;
}

inline RegisterNode SampleRegisterNode() {
  RegisterNode m;
  m.node_id = TestNodeId(1);
  m.resources.hostname = "gpu-host-0.example";
  m.resources.gpus = {{0, "NVIDIA H100 80GB HBM3", 85520809984ull}, {1, "NVIDIA H100 80GB HBM3", 85520809984ull}};
  m.resources.cpu_actors = 2;
  m.resources.models = {"sd-1.5", "sdxl-base-1.0"};
  m.agent_version = "0.1.0";
  return m;
}

inline NodeRegistered SampleNodeRegistered() { return {TestNodeId(1), 1500}; }
inline Heartbeat SampleHeartbeat() { return {77, 1767225600123ull, 3}; }
inline SubmitJob SampleSubmitJob() { return {SampleJobSpec()}; }
inline JobAccepted SampleJobAccepted() { return {TestJobId(), 424242, 5}; }
inline GetJob SampleGetJob() { return {TestJobId(), /*with_preview=*/true}; }

// A spec with only the required fields set (every optional one absent).
inline JobSpec MinimalJobSpec() {
  JobSpec s;
  s.prompt = "a lighthouse at dawn";
  s.width = 1024;
  s.height = 1024;
  s.steps = 30;
  s.guidance = 5;
  s.sampler = "default";
  return s;
}

// Three specs: the full sample, one with only the required fields, one with other values.
inline SubmitJobs SampleSubmitJobs() {
  SubmitJobs m;
  m.jobs.push_back(SampleJobSpec());
  m.jobs.push_back(MinimalJobSpec());
  JobSpec other = SampleJobSpec();
  other.prompt = "a red fox";
  other.seed = 7;
  other.gpus = 0;
  other.priority = 9;
  other.warmup_steps.reset();
  m.jobs.push_back(other);
  return m;
}

inline JobsAccepted SampleJobsAccepted() {
  JobsAccepted m;
  for (uint8_t i = 0; i < 3; ++i) {
    std::array<uint8_t, 16> b{};
    for (size_t k = 0; k < b.size(); ++k) b[k] = static_cast<uint8_t>(0xB0 + i + k);
    m.jobs.push_back({JobId::FromBytes(b), 1000u + i, 4u + i});
  }
  return m;
}

inline JobStatus SampleJobStatus() {
  JobStatus m;
  m.job_id = TestJobId();
  m.state = JobState::kFailed;
  m.step = 17;
  m.total_steps = 50;
  m.attempt = 2;
  m.queue_position = 9;
  m.error = "rank 3: NCCL watchdog: collective hung for 30 s";
  m.preview = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(200, '\x07');
  m.preview_step = 15;
  return m;
}

inline CancelJob SampleCancelJob() { return {TestJobId()}; }
inline GetJobResult SampleGetJobResult() { return {TestJobId()}; }

inline JobResult SampleJobResult() {
  JobResult m;
  m.job_id = TestJobId();
  m.format = OutputFormat::kPng;
  m.image = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(3000, '\0') + "IEND";
  m.width = 1024;
  m.height = 768;
  m.seed = 1234567;
  m.timings = {12.5, 3400.25, 3420.0, 3100.5, 250.25};
  m.gang = SampleGang(4);
  m.attempt = 1;
  return m;
}

inline AssignTask SampleAssignTask() {
  AssignTask m;
  m.job_id = TestJobId();
  m.attempt = 1;
  std::array<uint8_t, 16> g{};
  g[15] = 9;
  m.gang_id = GangId::FromBytes(g);
  m.rank = 2;
  m.gang = SampleGang(4);
  m.job = SampleJobSpec();
  m.channel_backend = "nccl";
  m.rendezvous = std::string(128, '\x5a');  // the size of an NCCL unique id
  m.rendezvous[0] = '\0';
  return m;
}

inline TaskProgress SampleTaskProgress() {
  TaskProgress m;
  m.job_id = TestJobId();
  m.attempt = 1;
  m.rank = 0;
  m.step = 12;
  m.total_steps = 50;
  m.preview = std::string("\x89PNG preview", 12);
  return m;
}

inline TaskDone SampleTaskDone() {
  TaskDone m;
  m.job_id = TestJobId();
  m.attempt = 1;
  m.rank = 0;
  m.error_code = 0;
  m.error_message = "";
  m.format = OutputFormat::kPng;
  m.image = std::string("\x89PNG\r\n\x1a\n", 8) + "pixels";
  m.width = 512;
  m.height = 512;
  m.denoise_ms = 2100.5;
  m.decode_ms = 180.25;
  return m;
}

inline ActorId TestActorId(uint8_t seed) {
  std::array<uint8_t, 16> b{};
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(0x30 + seed + i);
  return ActorId::FromBytes(b);
}

inline RegisterActor SampleRegisterActor() {
  RegisterActor m;
  m.actor_id = TestActorId(1);
  m.node_id = TestNodeId(1);
  m.gpu_index = 3;
  m.pid = 41234;
  m.model = "sdxl-base-1.0";
  m.device = "cuda:3";
  return m;
}

inline ActorRegistered SampleActorRegistered() { return {TestActorId(1), 1000}; }
inline ActorExited SampleActorExited() { return {TestActorId(2), -1, 9, true}; }
inline CancelTask SampleCancelTask() { return {TestJobId(), 2}; }
inline ReleaseGang SampleReleaseGang() {
  std::array<uint8_t, 16> b{};
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(0x60 + i);
  return {GangId::FromBytes(b)};
}
inline GetClusterStatus SampleGetClusterStatus() { return {}; }

inline ClusterStatus SampleClusterStatus() {
  ClusterStatus m;
  NodeStatus n;
  n.node_id = TestNodeId(1);
  n.hostname = "gpu-host-0.example";
  n.alive = true;
  n.gpus = {{0, "NVIDIA H100 80GB HBM3", 85520809984ull}};
  n.cpu_actors = 1;
  n.protocol_minor = 5;
  m.nodes.push_back(n);
  n.node_id = TestNodeId(2);
  n.hostname = "cpu-host-1";
  n.alive = false;
  n.gpus.clear();
  n.cpu_actors = 2;
  m.nodes.push_back(n);
  ActorStatus a;
  a.actor_id = TestActorId(1);
  a.node_id = TestNodeId(1);
  a.gpu_index = 0;
  a.state = ActorState::kBusy;
  a.job_id = TestJobId();
  a.model = "sdxl-base-1.0";
  a.device = "cuda:0";
  a.protocol_minor = 4;
  m.actors.push_back(a);
  a.actor_id = TestActorId(2);
  a.node_id = TestNodeId(2);
  a.gpu_index = -1;
  a.state = ActorState::kDead;
  a.job_id = JobId();
  a.device = "cpu";
  m.actors.push_back(a);
  m.jobs_by_state = {4, 1, 2, 100, 3, 5};
  m.queue_length = 4;
  m.running.push_back({TestJobId(), JobState::kRunning, 12, 50, 1, 4});
  m.truncated = true;
  m.head_version = "0.1.0";
  return m;
}

inline Error SampleError() { return {static_cast<int32_t>(StatusCode::kNotFound), "job a0a1a2a3 not found"}; }

// One envelope of each message type, as bytes (request ids 1, 2, ...).
inline std::vector<std::string> SampleEnvelopes() {
  std::vector<std::string> out;
  uint64_t id = 1;
  auto add = [&](const auto& m) { out.push_back(Seal(m, id++, "test:sample").value()); };
  add(SampleRegisterNode());
  add(SampleNodeRegistered());
  add(SampleHeartbeat());
  add(SampleSubmitJob());
  add(SampleJobAccepted());
  add(SampleGetJob());
  add(SampleJobStatus());
  add(SampleCancelJob());
  add(SampleGetJobResult());
  add(SampleJobResult());
  add(SampleAssignTask());
  add(SampleTaskProgress());
  add(SampleTaskDone());
  add(SampleError());
  add(SampleRegisterActor());
  add(SampleActorRegistered());
  add(SampleActorExited());
  add(SampleGetClusterStatus());
  add(SampleClusterStatus());
  add(SampleCancelTask());
  add(SampleReleaseGang());
  add(SampleSubmitJobs());
  add(SampleJobsAccepted());
  return out;
}

}  // namespace distri::wire::testing
