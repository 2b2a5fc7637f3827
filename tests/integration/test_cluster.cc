#include "tests/integration/test_cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "runtime/common/png.h"
#include "runtime/wire/curve_keys.h"

namespace distri::testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

Binaries BuiltBinaries() {
  return Binaries{DISTRI_TEST_CLI, DISTRI_TEST_HEAD, DISTRI_TEST_NODE, DISTRI_TEST_WORKER};
}

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int RunToCompletion(const std::string& exe, const std::vector<std::string>& args, const std::string& log,
                    const std::vector<std::pair<std::string, std::string>>& env) {
  node::ProcessSpec spec;
  spec.name = fs::path(exe).filename().string();
  spec.executable = exe;
  spec.args = args;
  spec.env = env;
  spec.log_path = log;
  auto p = node::ActorProcess::Spawn(spec);
  if (!p.ok()) return -2;
  while (true) {
    if (auto st = p->Poll()) return st->signal != 0 ? -1 : st->exit_code;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// ---- network namespaces ----------------------------------------------------------------------

namespace {
int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
}  // namespace

std::unique_ptr<NetnsHosts> NetnsHosts::Create(std::string* why) {
  if (const char* off = std::getenv("DISTRI_TEST_NO_NETNS"); off && *off) {
    *why = "DISTRI_TEST_NO_NETNS is set";
    return nullptr;
  }
  if (geteuid() != 0) {
    *why = "not root (network namespaces need CAP_NET_ADMIN)";
    return nullptr;
  }
  if (Sh("ip -V") != 0) {
    *why = "the ip command (iproute2) is not installed";
    return nullptr;
  }
  std::unique_ptr<NetnsHosts> owner(new NetnsHosts());
  NetnsHosts& h = *owner;
  // A /24 no interface of this machine uses yet (other test processes may run beside us).
  std::string used;
  if (FILE* f = popen("ip -o -4 addr show 2>/dev/null", "r")) {
    char buf[512];
    while (fgets(buf, sizeof(buf), f)) used += buf;
    pclose(f);
  }
  int subnet = static_cast<int>(getpid() % 250) + 1;
  for (int tries = 0; tries < 250 && used.find(" 10.231." + std::to_string(subnet) + ".") != std::string::npos;
       ++tries) {
    subnet = subnet % 250 + 1;
  }
  const std::string k = std::to_string(subnet);
  const std::string tag = "dst" + std::to_string(getpid());
  h.owned_ = true;
  h.bridge_ = tag + "br";
  h.head_ip_ = "10.231." + k + ".1";
  std::vector<std::string> steps = {
      "ip link add " + h.bridge_ + " type bridge",
      "ip addr add " + h.head_ip_ + "/24 dev " + h.bridge_,
      "ip link set " + h.bridge_ + " up",
  };
  for (int i = 0; i < 2; ++i) {
    const std::string letter(1, static_cast<char>('a' + i));
    h.names_[i] = tag + letter;
    h.veths_[i] = tag + letter + "0";
    h.devices_[i] = tag + letter + "1";
    const std::string ns = h.names_[i], v0 = h.veths_[i], v1 = h.devices_[i];
    const std::string ip = "10.231." + k + "." + std::to_string(2 + i);
    for (const std::string& step : {
             "ip netns add " + ns,
             "ip link add " + v0 + " type veth peer name " + v1,
             "ip link set " + v1 + " netns " + ns,
             "ip link set " + v0 + " master " + h.bridge_,
             "ip link set " + v0 + " up",
             "ip netns exec " + ns + " ip addr add " + ip + "/24 dev " + v1,
             "ip netns exec " + ns + " ip link set " + v1 + " up",
             "ip netns exec " + ns + " ip link set lo up",
             "ip netns exec " + ns + " ip route add default via " + h.head_ip_,
         }) {
      steps.push_back(step);
    }
  }
  for (const auto& step : steps) {
    if (Sh(step) != 0) {
      *why = "'" + step + "' failed";
      return nullptr;  // the destructor of `owner` removes what was made
    }
  }
  return owner;
}

NetnsHosts::~NetnsHosts() { Destroy(); }

void NetnsHosts::Destroy() {
  if (!owned_) return;
  owned_ = false;
  for (int i = 0; i < 2; ++i) {
    if (!veths_[i].empty()) Sh("ip link del " + veths_[i]);
    if (!names_[i].empty()) Sh("ip netns del " + names_[i]);
  }
  if (!bridge_.empty()) Sh("ip link del " + bridge_);
}

// ---- the cluster -----------------------------------------------------------------------------

TestCluster::TestCluster(std::string dir, std::string model_dir, Options options)
    : dir_(std::move(dir)), model_dir_(std::move(model_dir)), options_(options), bin_(BuiltBinaries()) {
  fs::create_directories(dir_ + "/keys");
  const std::string keys = dir_ + "/keys";
  auto head = wire::GenerateCurveKeyPair().value();
  auto node = wire::GenerateCurveKeyPair().value();
  auto client = wire::GenerateCurveKeyPair().value();
  EXPECT_TRUE(wire::WriteKeyPairFile(keys + "/head.key", head).ok());
  EXPECT_TRUE(wire::WritePublicKeyFile(keys + "/head.pub", head.public_key).ok());
  EXPECT_TRUE(wire::WriteKeyPairFile(keys + "/node.key", node).ok());
  EXPECT_TRUE(wire::WriteKeyPairFile(keys + "/client.key", client).ok());
  EXPECT_TRUE(wire::WriteAuthorizedKeysFile(keys + "/authorized_keys",
                                            {{node.public_key, "nodes"}, {client.public_key, "client"}})
                  .ok());
  std::string why;
  hosts_ = NetnsHosts::Create(&why);
  if (hosts_) {
    std::printf("[ cluster  ] two hosts as network namespaces %s and %s on a bridge (head at %s)\n",
                hosts_->ns(0).c_str(), hosts_->ns(1).c_str(), hosts_->head_ip().c_str());
  } else {
    std::printf("[ cluster  ] network namespaces unavailable (%s): every node runs on loopback\n", why.c_str());
  }
  std::fflush(stdout);
  port_ = FreePort();
  nodes_.resize(options_.nodes);
  for (int i = 0; i < options_.nodes; ++i) node_ids_.push_back(NodeId::Random());
}

TestCluster::~TestCluster() {
  client_.reset();
  for (auto& n : nodes_) {
    if (n) n->Terminate(milliseconds(5000));
  }
  if (head_) head_->Terminate(milliseconds(5000));
}

std::string TestCluster::HeadAddressFor(int node) const {
  const std::string host = hosts_ ? hosts_->head_ip() : "127.0.0.1";
  return "tcp://" + host + ":" + std::to_string(port_);
}

void TestCluster::StartHead() {
  node::ProcessSpec spec;
  spec.name = "distri-head";
  spec.executable = bin_.head;
  spec.args = {"--bind", "tcp://0.0.0.0:" + std::to_string(port_), "--db", dir_ + "/head.db",
               "--keys", dir_ + "/keys", "--heartbeat-ms", std::to_string(options_.heartbeat_ms),
               "--missed-heartbeats", std::to_string(options_.missed_heartbeats),
               "--advertise-host", hosts_ ? hosts_->head_ip() : "127.0.0.1"};
  spec.log_path = dir_ + "/head.log";
  auto p = node::ActorProcess::Spawn(spec);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  head_.emplace(std::move(*p));
}

void TestCluster::StopHead(bool crash) {
  if (!head_) return;
  if (crash) {
    head_->Signal(SIGKILL);
    head_->Terminate(milliseconds(5000));
  } else {
    head_->Terminate(milliseconds(5000));
  }
  head_.reset();
}

void TestCluster::StartNode(int index) {
  const std::string log_dir = dir_ + "/node" + std::to_string(index);
  fs::create_directories(log_dir);
  std::vector<std::string> args = {
      "--head", HeadAddressFor(index), "--keys", dir_ + "/keys", "--model", model_dir_, "--gpus", "none",
      "--cpu-actors", std::to_string(options_.cpu_actors_per_node), "--max-restarts",
      std::to_string(options_.max_restarts), "--log-dir", log_dir, "--node-id", node_ids_[index].Hex(),
      "--hostname", "host-" + std::string(1, static_cast<char>('a' + index)), "--worker", bin_.worker};
  node::ProcessSpec spec;
  spec.name = "distri-node " + std::to_string(index);
  if (hosts_) {
    spec.executable = "ip";
    spec.args = {"netns", "exec", hosts_->ns(index % 2), bin_.node};
    spec.args.insert(spec.args.end(), args.begin(), args.end());
  } else {
    spec.executable = bin_.node;
    spec.args = args;
  }
  // One thread per CPU actor: the machine is small, and `distri generate` gets the same.
  // Gangs across hosts talk UCX over TCP on the host's interface (as between machines).
  spec.env = {{"OMP_NUM_THREADS", "1"},
              {"UCX_TLS", "tcp,self"},
              {"UCX_NET_DEVICES", hosts_ ? hosts_->device(index % 2) : "lo"}};
  spec.log_path = dir_ + "/node" + std::to_string(index) + ".log";
  auto p = node::ActorProcess::Spawn(spec);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  nodes_[index].emplace(std::move(*p));
}

void TestCluster::KillNode(int index) {
  if (!nodes_[index]) return;
  nodes_[index]->Signal(SIGKILL);
  nodes_[index]->Terminate(milliseconds(5000));
  nodes_[index].reset();
}

node::ExitStatus TestCluster::StopNode(int index) {
  node::ExitStatus st{.exit_code = -1, .signal = 0};
  if (!nodes_[index]) return st;
  st = nodes_[index]->Terminate(milliseconds(20'000));
  nodes_[index].reset();
  return st;
}

client::Client& TestCluster::client() {
  if (!client_) {
    client::ClientOptions o;
    o.address = "tcp://127.0.0.1:" + std::to_string(port_);
    o.keys_dir = dir_ + "/keys";
    o.name = "integration";
    o.connect_timeout = milliseconds(0);  // the head may still be starting
    o.request_timeout = milliseconds(5000);
    auto c = client::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }
  return *client_;
}

bool TestCluster::WaitForIdleActors(size_t actors, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = Status();
    if (st.ok()) {
      size_t idle = 0;
      for (const auto& a : st->actors) idle += a.state == wire::ActorState::kIdle;
      if (idle >= actors) return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

pid_t TestCluster::ActorPid(const ActorId& actor_id) const {
  // distri-worker logs "... pid=<pid> ...] registered with the head ... as actor <short id>".
  const std::regex pid_re("pid=([0-9]+)");
  pid_t found = -1;
  for (int i = 0; i < options_.nodes; ++i) {
    const std::string log_dir = dir_ + "/node" + std::to_string(i);
    if (!fs::exists(log_dir)) continue;
    for (const auto& entry : fs::directory_iterator(log_dir)) {
      std::ifstream in(entry.path());
      std::string line;
      while (std::getline(in, line)) {
        if (line.find("as actor " + actor_id.Short()) == std::string::npos) continue;
        std::smatch m;
        if (std::regex_search(line, m, pid_re)) found = std::stoi(m[1]);  // the last registration wins
      }
    }
  }
  return found;
}

int TestCluster::NodeOf(const ActorId& actor_id) const {
  for (int i = 0; i < options_.nodes; ++i) {
    const std::string log_dir = dir_ + "/node" + std::to_string(i);
    if (!fs::exists(log_dir)) continue;
    for (const auto& entry : fs::directory_iterator(log_dir)) {
      std::ifstream in(entry.path());
      std::stringstream s;
      s << in.rdbuf();
      if (s.str().find("as actor " + actor_id.Short()) != std::string::npos) return i;
    }
  }
  return -1;
}

std::string TestCluster::Logs() const {
  std::string out;
  for (const auto& entry : fs::recursive_directory_iterator(dir_)) {
    if (entry.path().extension() != ".log") continue;
    std::ifstream in(entry.path());
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    if (text.size() > 6000) text = "...\n" + text.substr(text.size() - 6000);
    out += "===== " + entry.path().string() + "\n" + text + "\n";
  }
  return out;
}

}  // namespace distri::testing
