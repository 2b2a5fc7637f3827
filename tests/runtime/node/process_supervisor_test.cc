// ActorProcess and ProcessSupervisor with real child processes: /bin/sleep, crashing shell
// commands, a child that ignores SIGTERM, a child that starts its own children.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "runtime/common/png.h"
#include "runtime/node/actor_process.h"
#include "runtime/node/process_supervisor.h"

namespace distri::node {
namespace {

using std::chrono::milliseconds;

template <typename Pred>
bool WaitFor(Pred pred, milliseconds timeout = milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

bool Alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// Folders made by TempDir, removed when the test binary exits.
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};
TempDirs g_temp_dirs;

std::string TempDir() {
  char tmpl[] = "/tmp/distri_node_test_XXXXXX";
  const char* d = mkdtemp(tmpl);
  if (d == nullptr) return "/tmp";
  g_temp_dirs.dirs.push_back(d);
  return d;
}

ProcessSpec Command(const std::string& name, const std::string& executable, std::vector<std::string> args = {},
                    const std::string& log = "") {
  ProcessSpec spec;
  spec.name = name;
  spec.executable = executable;
  spec.args = std::move(args);
  spec.log_path = log;
  return spec;
}

ProcessSpec Shell(const std::string& name, const std::string& script, const std::string& log = "") {
  return Command(name, "/bin/sh", {"-c", script}, log);
}

TEST(ActorProcessTest, ReportsExitCodeAndSignal) {
  auto p = ActorProcess::Spawn(Shell("exit3", "exit 3"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return p->Poll().has_value(); }));
  EXPECT_EQ(p->Poll()->exit_code, 3);
  EXPECT_EQ(p->Poll()->signal, 0);
  EXPECT_EQ(p->Poll()->Describe(), "exit code 3");

  auto q = ActorProcess::Spawn(Command("sleep", "/bin/sleep", {"100"}));
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->running());
  EXPECT_FALSE(q->Poll().has_value());
  q->Signal(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return q->Poll().has_value(); }));
  EXPECT_EQ(q->Poll()->signal, SIGKILL);
  EXPECT_EQ(q->Poll()->exit_code, -1);
}

TEST(ActorProcessTest, EnvironmentAndLogFile) {
  const std::string dir = TempDir();
  const std::string log = dir + "/child.log";
  ProcessSpec spec = Shell("env", "echo \"dev=[$CUDA_VISIBLE_DEVICES] x=$DISTRI_TEST_X\"; echo oops >&2", log);
  spec.env = {{"CUDA_VISIBLE_DEVICES", "3"}, {"DISTRI_TEST_X", "y z"}};
  auto p = ActorProcess::Spawn(spec);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(WaitFor([&] { return p->Poll().has_value(); }));
  EXPECT_EQ(p->Poll()->exit_code, 0);
  auto text = ReadFile(log);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "dev=[3] x=y z\noops\n");
  // A second run appends.
  auto again = ActorProcess::Spawn(spec);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(WaitFor([&] { return again->Poll().has_value(); }));
  EXPECT_EQ(ReadFile(log).value(), "dev=[3] x=y z\noops\ndev=[3] x=y z\noops\n");
}

TEST(ActorProcessTest, MissingExecutableExits127) {
  const std::string dir = TempDir();
  auto p = ActorProcess::Spawn(Command("missing", "/nonexistent/distri-worker", {}, dir + "/missing.log"));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(WaitFor([&] { return p->Poll().has_value(); }));
  EXPECT_EQ(p->Poll()->exit_code, 127);
  EXPECT_NE(ReadFile(dir + "/missing.log").value().find("/nonexistent/distri-worker"), std::string::npos);
}

TEST(ActorProcessTest, UnwritableLogIsAnError) {
  auto p = ActorProcess::Spawn(Command("a", "/bin/true", {}, "/nonexistent/dir/x.log"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kIoError);
  EXPECT_NE(p.status().message().find("/nonexistent/dir/x.log"), std::string::npos);
}

TEST(ActorProcessTest, TerminateKillsTheWholeGroupAndEscalates) {
  const std::string dir = TempDir();
  // The shell starts a grandchild, then ignores SIGTERM, then writes the grandchild's pid.
  auto p = ActorProcess::Spawn(
      Shell("stubborn", "sleep 100 & gc=$!; trap '' TERM; echo $gc > " + dir + "/gc.pid; while :; do sleep 0.05; done"));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(WaitFor([&] { return ReadFile(dir + "/gc.pid").value_or("").find('\n') != std::string::npos; }));
  const pid_t grandchild = std::stoi(ReadFile(dir + "/gc.pid").value());
  EXPECT_TRUE(Alive(grandchild));
  const auto t0 = std::chrono::steady_clock::now();
  ExitStatus st = p->Terminate(milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - t0;
  // The grandchild got SIGTERM (sleep dies of it); the shell ignored it and needed SIGKILL.
  EXPECT_EQ(st.signal, SIGKILL) << st.Describe();
  EXPECT_GE(took, milliseconds(250));
  EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }));
}

TEST(ActorProcessTest, DestructorLeavesNoChild) {
  pid_t pid = -1;
  {
    auto p = ActorProcess::Spawn(Command("sleep", "/bin/sleep", {"100"}));
    ASSERT_TRUE(p.ok());
    pid = p->pid();
    EXPECT_TRUE(Alive(pid));
  }
  EXPECT_FALSE(Alive(pid));  // killed and reaped (a zombie would still answer kill(pid, 0))
}

// Records on_exit events.
struct Events {
  std::mutex mu;
  std::vector<ExitEvent> list;
  void Add(const ExitEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    list.push_back(e);
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return list.size();
  }
  std::vector<ExitEvent> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return list;
  }
};

RestartPolicy FastPolicy(int max_restarts) {
  RestartPolicy p;
  p.max_restarts = max_restarts;
  p.initial_backoff = milliseconds(20);
  p.max_backoff = milliseconds(80);
  p.poll_interval = milliseconds(5);
  p.stop_grace = milliseconds(2000);
  return p;
}

TEST(ProcessSupervisorTest, RestartsACrashingProcessUpToMaxRestarts) {
  Events events;
  ProcessSupervisor sup(FastPolicy(3), [&](const ExitEvent& e) { events.Add(e); });
  const std::string dir = TempDir();
  sup.Add(Shell("crasher", "echo run >> " + dir + "/runs; exit 7"));
  ASSERT_TRUE(sup.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return sup.Snapshot()[0].state == SlotState::kFailed; }));
  auto snap = sup.Snapshot();
  EXPECT_EQ(snap[0].restarts, 3);
  EXPECT_EQ(snap[0].total_restarts, 3);
  ASSERT_TRUE(snap[0].last_exit.has_value());
  EXPECT_EQ(snap[0].last_exit->exit_code, 7);
  EXPECT_EQ(ReadFile(dir + "/runs").value(), "run\nrun\nrun\nrun\n");  // 1 start + 3 restarts
  auto ev = events.Get();
  ASSERT_EQ(ev.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(ev[i].restarting) << i;
    EXPECT_EQ(ev[i].restarts, i);
    EXPECT_EQ(ev[i].status.exit_code, 7);
  }
  EXPECT_FALSE(ev[3].restarting);
  // Backoff doubles: 20, 40, 80 ms (capped at max_backoff).
  EXPECT_EQ(ev[0].backoff, milliseconds(20));
  EXPECT_EQ(ev[1].backoff, milliseconds(40));
  EXPECT_EQ(ev[2].backoff, milliseconds(80));
  sup.Stop();
  EXPECT_EQ(events.size(), 4u);  // nothing was running at Stop
}

TEST(ProcessSupervisorTest, KilledProcessIsRestartedWithANewPid) {
  Events events;
  ProcessSupervisor sup(FastPolicy(2), [&](const ExitEvent& e) { events.Add(e); });
  sup.Add(Command("sleeper", "/bin/sleep", {"100"}));
  sup.Add(Command("other", "/bin/sleep", {"100"}));
  ASSERT_TRUE(sup.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return sup.pid(0) > 0 && sup.pid(1) > 0; }));
  const pid_t first = sup.pid(0);
  const pid_t other = sup.pid(1);
  kill(first, SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return sup.pid(0) > 0 && sup.pid(0) != first; }));
  EXPECT_EQ(sup.pid(1), other);  // the other slot is untouched
  auto ev = events.Get();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].slot, 0u);
  EXPECT_EQ(ev[0].pid, first);
  EXPECT_EQ(ev[0].status.signal, SIGKILL);
  EXPECT_TRUE(ev[0].restarting);
  EXPECT_EQ(sup.Snapshot()[0].restarts, 1);
  EXPECT_EQ(sup.Snapshot()[0].state, SlotState::kRunning);
}

TEST(ProcessSupervisorTest, StopTerminatesEverythingAndReportsStopping) {
  Events events;
  ProcessSupervisor sup(FastPolicy(5), [&](const ExitEvent& e) { events.Add(e); });
  const std::string dir = TempDir();
  for (int i = 0; i < 3; ++i) {
    sup.Add(Shell("s" + std::to_string(i), "sleep 100 & echo $! > " + dir + "/gc" + std::to_string(i) + "; wait"));
  }
  ASSERT_TRUE(sup.Start().ok());
  std::vector<pid_t> pids, grandchildren;
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 3; ++i) {
      if (ReadFile(dir + "/gc" + std::to_string(i)).value_or("").find('\n') == std::string::npos) return false;
    }
    return true;
  }));
  for (int i = 0; i < 3; ++i) {
    pids.push_back(sup.pid(i));
    grandchildren.push_back(std::stoi(ReadFile(dir + "/gc" + std::to_string(i)).value()));
  }
  const auto t0 = std::chrono::steady_clock::now();
  sup.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1500));  // SIGTERM was enough
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(Alive(pids[i])) << i;
    EXPECT_TRUE(WaitFor([&] { return !Alive(grandchildren[i]); })) << "grandchild " << i << " survived";
  }
  auto ev = events.Get();
  ASSERT_EQ(ev.size(), 3u);
  for (const auto& e : ev) {
    EXPECT_TRUE(e.stopping);
    EXPECT_FALSE(e.restarting);
  }
  for (const auto& s : sup.Snapshot()) EXPECT_EQ(s.state, SlotState::kStopped);
  sup.Stop();  // idempotent
}

TEST(ProcessSupervisorTest, StableProcessGetsItsRestartCountReset) {
  RestartPolicy policy = FastPolicy(1);
  policy.stable_after = milliseconds(200);
  ProcessSupervisor sup(policy);
  const std::string dir = TempDir();
  // Each run lives 300 ms (> stable_after) then crashes: max_restarts 1 is never used up.
  sup.Add(Shell("slow-crasher", "echo run >> " + dir + "/runs; sleep 0.3; exit 1"));
  ASSERT_TRUE(sup.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return sup.Snapshot()[0].total_restarts >= 3; }));
  EXPECT_NE(sup.Snapshot()[0].state, SlotState::kFailed);
  EXPECT_LE(sup.Snapshot()[0].restarts, 1);
}

TEST(ProcessSupervisorTest, ZeroMaxRestartsNeverRestarts) {
  Events events;
  ProcessSupervisor sup(FastPolicy(0), [&](const ExitEvent& e) { events.Add(e); });
  sup.Add(Shell("once", "exit 0"));
  ASSERT_TRUE(sup.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return sup.Snapshot()[0].state == SlotState::kFailed; }));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events.Get()[0].restarting);
  EXPECT_EQ(sup.Start().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace distri::node
