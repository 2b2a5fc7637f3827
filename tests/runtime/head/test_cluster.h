// Test helpers for the head: a key directory like `distri-cluster up` writes, a head started
// on a free loopback port, and a fake actor (a DEALER that registers as an actor and answers
// AssignTask with progress and a TaskDone carrying deterministic image bytes).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/client/client.h"
#include "runtime/head/head_server.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/dealer_socket.h"
#include "runtime/wire/zmq_context.h"

namespace distri::head::testing {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/distri_head_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// head.key, head.pub, client.key, node.key, authorized_keys (client + node).
inline void WriteKeys(const std::string& dir) {
  const wire::CurveKeyPair head = wire::GenerateCurveKeyPair().value();
  const wire::CurveKeyPair client = wire::GenerateCurveKeyPair().value();
  const wire::CurveKeyPair node = wire::GenerateCurveKeyPair().value();
  ASSERT_TRUE(wire::WriteKeyPairFile(dir + "/head.key", head).ok());
  ASSERT_TRUE(wire::WritePublicKeyFile(dir + "/head.pub", head.public_key).ok());
  ASSERT_TRUE(wire::WriteKeyPairFile(dir + "/client.key", client).ok());
  ASSERT_TRUE(wire::WriteKeyPairFile(dir + "/node.key", node).ok());
  ASSERT_TRUE(wire::WriteAuthorizedKeysFile(dir + "/authorized_keys",
                                            {{client.public_key, "client"}, {node.public_key, "node"}})
                  .ok());
}

inline HeadOptions TestHeadOptions(const std::string& keys_dir, const std::string& db) {
  HeadOptions o;
  o.bind = "tcp://127.0.0.1:*";
  o.db_path = db;
  o.keys_dir = keys_dir;
  o.heartbeat_interval_ms = 50;
  o.missed_heartbeats = 3;
  o.metrics_port = 0;
  o.metrics_host = "127.0.0.1";
  return o;
}

inline std::unique_ptr<client::Client> ConnectClient(const std::string& endpoint, const std::string& keys_dir) {
  client::ClientOptions o;
  o.address = endpoint;
  o.keys_dir = keys_dir;
  o.connect_timeout = 3s;
  o.request_timeout = 3s;
  o.poll_interval = 20ms;
  auto c = client::Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// Actors the head reports alive (0 while it does not answer).
inline size_t AliveActors(client::Client& client) {
  auto st = client.GetClusterStatus();
  if (!st.ok()) return 0;
  size_t n = 0;
  for (const auto& a : st->actors) n += a.state != wire::ActorState::kDead;
  return n;
}

inline wire::JobSpec TinySpec(uint32_t steps = 4) {
  wire::JobSpec s;
  s.prompt = "a lighthouse";
  s.width = 64;
  s.height = 64;
  s.steps = steps;
  s.guidance = 5;
  s.sampler = "euler";
  return s;
}

// TinySpec with guidance_rescale (a field of minor version 4) and a fixed seed.
inline wire::JobSpec RescaledSpec(uint64_t seed) {
  wire::JobSpec spec = TinySpec();
  spec.guidance_rescale = 0.7;
  spec.seed = seed;
  return spec;
}

// The bytes the fake actor returns for a job: depend only on the spec (same seed => same image).
inline std::string FakeImage(const wire::JobSpec& spec) {
  return "fake-png:" + spec.prompt + ":" + std::to_string(spec.seed.value_or(0)) + ":" + std::to_string(spec.width);
}

// The preview the fake actor's rank 0 sends after `step` (JobSpec.preview_every).
inline std::string FakePreview(uint32_t step) { return "fake-preview:" + std::to_string(step); }

struct FakeActorOptions {
  std::string keys_dir;
  NodeId node_id = NodeId::Random();
  int32_t gpu_index = -1;
  std::string model = "tiny";
  std::chrono::milliseconds step_time{2};
  uint32_t heartbeat_ms = 50;
  int32_t fail_with = 0;  // a StatusCode value: every task fails with it
  bool ignore_cancel = false;  // CancelTask stops the task's steps but is never answered (hung)
  // A task naming a gang id this actor had before fails at once with FailedPrecondition, as a
  // real actor does when it no longer keeps that gang's channels.
  bool refuse_known_gangs = false;
  // The protocol minor version its envelopes announce: lower to act as an actor of an older
  // build (the head must not give it a job using a JobSpec field that version does not know).
  uint8_t wire_minor = wire::kProtocolVersionMinor;
};

class FakeActor {
 public:
  FakeActor(std::string endpoint, FakeActorOptions o) : endpoint_(std::move(endpoint)), o_(std::move(o)) {
    id_ = ActorId::Random();
    ctx_ = wire::ZmqContext::Create().value();
    wire::DealerOptions d;
    d.endpoint = endpoint_;
    d.sender_id = "actor:" + id_.Short();
    d.curve = wire::ReadKeyPairFile(o_.keys_dir + "/node.key").value();
    d.server_public_key = wire::ReadPublicKeyFile(o_.keys_dir + "/head.pub").value();
    socket_ = wire::DealerSocket::Connect(ctx_, d).value();
    Register();
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeActor() { Kill(); }

  // Dies silently: no more heartbeats, no answers (like SIGKILL).
  void Kill() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    socket_.reset();
  }
  const ActorId& id() const { return id_; }
  int tasks() const { return tasks_.load(); }
  int cancels() const { return cancels_.load(); }
  bool busy() const { return busy_.load(); }
  std::vector<wire::AssignTask> received() {
    std::lock_guard<std::mutex> l(mu_);
    return received_;
  }
  // The gang ids of the ReleaseGang messages received, in order.
  std::vector<GangId> releases() {
    std::lock_guard<std::mutex> l(mu_);
    return releases_;
  }
  // "assign <gang id hex>" / "release <gang id hex>", in the order they came.
  std::vector<std::string> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  void Register() {
    wire::RegisterActor r{id_, o_.node_id, o_.gpu_index, static_cast<uint32_t>(getpid()), o_.model,
                          o_.gpu_index < 0 ? "cpu" : "cuda:" + std::to_string(o_.gpu_index)};
    ASSERT_TRUE(Send(r, 3000ms).ok());
  }

  // Sends `m` in an envelope announcing o_.wire_minor.
  template <typename M>
  Status Send(const M& m, std::chrono::milliseconds timeout) {
    DISTRI_ASSIGN_OR_RETURN(wire::Envelope e, wire::MakeEnvelope(m, next_request_id_++, "actor:" + id_.Short()));
    e.version_minor = o_.wire_minor;
    return socket_->SendEnvelope(e, timeout);
  }

  void Loop() {
    auto next_hb = std::chrono::steady_clock::now();
    auto next_step = next_hb;
    uint64_t seq = 0;
    while (!stop_) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_hb) {
        (void)Send(wire::Heartbeat{seq++, 0, 0}, 100ms);
        next_hb = now + std::chrono::milliseconds(o_.heartbeat_ms);
      }
      if (task_ && !hung_ && now >= next_step) {
        Step();
        next_step = now + o_.step_time;
      }
      Result<wire::Envelope> e = socket_->Receive(2ms);
      if (!e.ok()) continue;
      Result<wire::AnyMessage> m = wire::DecodeMessage(*e);
      if (!m.ok()) continue;
      if (auto* t = std::get_if<wire::AssignTask>(&*m)) {
        {
          std::lock_guard<std::mutex> l(mu_);
          received_.push_back(*t);
          events_.push_back("assign " + t->gang_id.Hex());
        }
        ++tasks_;
        task_ = *t;
        step_ = 0;
        hung_ = false;
        busy_ = true;
        if (o_.refuse_known_gangs && t->gang.size() > 1 && !known_gangs_.insert(t->gang_id).second) {
          Done(static_cast<int32_t>(StatusCode::kFailedPrecondition), "gang " + t->gang_id.Short() +
                                                                         ": no longer kept here");
        }
      } else if (auto* r = std::get_if<wire::ReleaseGang>(&*m)) {
        std::lock_guard<std::mutex> l(mu_);
        releases_.push_back(r->gang_id);
        events_.push_back("release " + r->gang_id.Hex());
      } else if (auto* c = std::get_if<wire::CancelTask>(&*m)) {
        ++cancels_;
        if (task_ && task_->job_id == c->job_id && task_->attempt == c->attempt) {
          if (o_.ignore_cancel) {
            hung_ = true;
          } else {
            Done(static_cast<int32_t>(StatusCode::kCancelled), "cancelled");
          }
        }
      } else if (auto* err = std::get_if<wire::Error>(&*m)) {
        if (err->code == static_cast<int32_t>(StatusCode::kFailedPrecondition)) Register();
      }
    }
  }

  void Step() {
    if (o_.fail_with != 0) return Done(o_.fail_with, "fake failure");
    ++step_;
    // Rank 0 sends a recognisable preview every preview_every steps (not after the last).
    const uint32_t every = task_->job.preview_every;
    const bool preview = task_->rank == 0 && every > 0 && step_ % every == 0 && step_ < task_->job.steps;
    (void)Send(wire::TaskProgress{task_->job_id, task_->attempt, task_->rank, step_, task_->job.steps,
                                           preview ? FakePreview(step_) : ""},
                        100ms);
    if (step_ >= task_->job.steps) Done(0, "");
  }

  void Done(int32_t code, const std::string& message) {
    wire::TaskDone d;
    d.job_id = task_->job_id;
    d.attempt = task_->attempt;
    d.rank = task_->rank;
    d.error_code = code;
    d.error_message = message;
    if (code == 0 && task_->rank == 0) {
      d.image = FakeImage(task_->job);
      d.width = task_->job.width;
      d.height = task_->job.height;
      // Rank 0's own timings, passed through to JobResult.timings (a recognisable pattern).
      d.denoise_ms = 10.0 * task_->job.steps;
      d.decode_ms = 7.5;
    }
    (void)Send(d, 100ms);
    task_.reset();
    busy_ = false;
  }

  std::string endpoint_;
  FakeActorOptions o_;
  ActorId id_;
  std::shared_ptr<wire::ZmqContext> ctx_;
  std::unique_ptr<wire::DealerSocket> socket_;
  std::optional<wire::AssignTask> task_;
  uint64_t next_request_id_ = 1;  // Register: the constructor's thread, then the loop's only
  uint32_t step_ = 0;
  bool hung_ = false;  // loop thread only
  std::set<GangId> known_gangs_;  // loop thread only
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::atomic<int> tasks_{0}, cancels_{0};
  std::mutex mu_;
  std::vector<wire::AssignTask> received_;
  std::vector<GangId> releases_;
  std::vector<std::string> events_;
  std::thread thread_;
};

// Polls `pred` every 10 ms until it holds or `timeout` passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

}  // namespace distri::head::testing
