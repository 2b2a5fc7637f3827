// The distri-head binary: a job accepted before the head is SIGKILLed is still there after a
// restart on the same database, and then runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/channel/socket_util.h"
#include "tests/runtime/head/test_cluster.h"

namespace distri::head {
namespace {

using namespace distri::head::testing;

uint16_t FreePort() {
  uint16_t port = 0;
  channel::Fd fd = channel::ListenTcp("127.0.0.1", 0, &port).value();
  return port;
}

pid_t StartHeadProcess(const std::string& endpoint, const std::string& dir) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string db = dir + "/head.db";
    execl(DISTRI_HEAD_BINARY, "distri-head", "--bind", endpoint.c_str(), "--db", db.c_str(), "--keys", dir.c_str(),
          "--heartbeat-ms", "50", "--log-level", "warning", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

TEST(HeadProcess, SigkilledHeadLosesNoJob) {
  TempDir dir;
  WriteKeys(dir.path());
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  pid_t head = StartHeadProcess(endpoint, dir.path());
  auto client = ConnectClient(endpoint, dir.path());
  ASSERT_NE(client, nullptr);
  wire::JobSpec spec = TinySpec();
  spec.seed = 7;
  wire::JobAccepted acc = client->Submit(spec).value();

  ASSERT_EQ(kill(head, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(head, &status, 0), head);
  head = StartHeadProcess(endpoint, dir.path());
  // The same client reconnects by itself.
  Result<wire::JobStatus> st = Status::Unavailable("not yet");
  ASSERT_TRUE(WaitFor([&] { return (st = client->GetJob(acc.job_id)).ok(); }, 10s)) << st.status().ToString();
  EXPECT_EQ(st->state, wire::JobState::kPending);

  FakeActorOptions o;
  o.keys_dir = dir.path();
  FakeActor actor(endpoint, o);
  auto result = client->WaitForJob(acc.job_id, 10s);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->image, FakeImage(spec));

  ASSERT_EQ(kill(head, SIGTERM), 0);
  ASSERT_EQ(waitpid(head, &status, 0), head);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace distri::head
