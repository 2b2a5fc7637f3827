#include "runtime/cli/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/client/client.h"
#include "runtime/common/logging.h"
#include "runtime/wire/curve_keys.h"

namespace distri::cli {
namespace {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + ShellQuote(a);
  return out;
}

std::string Replace(std::string s, const std::string& key, const std::string& value) {
  for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size())) {
    s.replace(at, key.size(), value);
  }
  return s;
}

// Starts argv detached (own session), stdout+stderr appended to `log`. Returns its pid.
Result<int> SpawnLocal(const std::vector<std::string>& argv, const std::string& log) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot open log file " + log);
  const pid_t pid = fork();
  if (pid < 0) {
    ::close(fd);
    return Status::Internal("fork failed");
  }
  if (pid == 0) {
    setsid();
    dup2(fd, 1);
    dup2(fd, 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::fprintf(stderr, "distri-cluster: cannot execute %s\n", args[0]);
    _exit(127);
  }
  ::close(fd);
  return static_cast<int>(pid);
}

// Runs a shell command and returns its stdout (exit status must be 0).
Result<std::string> RunShell(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return Status::Internal("cannot run: " + command);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) return Status::Unavailable("command failed (status " + std::to_string(rc) + "): " + command);
  return out;
}

// Exists and is not a zombie: the processes `up` started are orphans once it exits, and a
// container's pid 1 may never reap them, so a stopped one can linger as a zombie.
bool Alive(int pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return true;  // no procfs: trust kill()
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

void StopLocal(int pid, const std::string& what) {
  if (!Alive(pid)) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 150 && Alive(pid); ++i) {
    ::waitpid(pid, nullptr, WNOHANG);  // reaps it when it is our child
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (Alive(pid)) {
    DISTRI_LOG(WARNING) << what << " (pid " << pid << ") did not stop within 15 s: SIGKILL";
    ::kill(pid, SIGKILL);
  }
}

std::string RemoteCommand(const NodeConfig& node, const std::string& command) {
  return Replace(node.ssh, "{host}", node.host) + " " + ShellQuote(command);
}

Status StopEntry(const ClusterConfig& config, const ProcessEntry& e) {
  if (e.host == "local") {
    StopLocal(e.pid, e.role + " " + e.name);
    return Status::Ok();
  }
  for (const NodeConfig& n : config.nodes) {
    if (n.name == e.name) {
      return RunShell(RemoteCommand(n, "kill " + std::to_string(e.pid))).status();
    }
  }
  return Status::NotFound("node " + e.name + " on " + e.host + " is not in " + config.path + ": stop pid " +
                          std::to_string(e.pid) + " there by hand");
}

}  // namespace

Status EnsureClusterKeys(const std::string& dir, bool* created) {
  *created = false;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create key directory " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  if (std::filesystem::exists(dir + "/head.key")) return Status::Ok();
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair head, wire::GenerateCurveKeyPair());
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair client, wire::GenerateCurveKeyPair());
  DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair node, wire::GenerateCurveKeyPair());
  DISTRI_RETURN_IF_ERROR(wire::WriteKeyPairFile(dir + "/client.key", client));
  DISTRI_RETURN_IF_ERROR(wire::WriteKeyPairFile(dir + "/node.key", node));
  DISTRI_RETURN_IF_ERROR(wire::WritePublicKeyFile(dir + "/head.pub", head.public_key));
  DISTRI_RETURN_IF_ERROR(wire::WriteAuthorizedKeysFile(
      dir + "/authorized_keys", {{client.public_key, "clients (client.key)"}, {node.public_key, "nodes and actors (node.key)"}}));
  // head.key last: its presence means the directory is complete.
  DISTRI_RETURN_IF_ERROR(wire::WriteKeyPairFile(dir + "/head.key", head));
  *created = true;
  return Status::Ok();
}

Status WriteState(const std::string& path, const std::vector<ProcessEntry>& entries) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return Status::IoError("cannot write " + tmp);
    f << "# distri-cluster state: role name host pid\n";
    for (const ProcessEntry& e : entries) f << e.role << " " << e.name << " " << e.host << " " << e.pid << "\n";
    if (!f) return Status::IoError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError("cannot replace " + path);
  return Status::Ok();
}

Result<std::vector<ProcessEntry>> ReadState(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("no state file " + path + " (is the cluster up?)");
  std::vector<ProcessEntry> out;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    ProcessEntry e;
    if (!(in >> e.role >> e.name >> e.host >> e.pid) || e.pid <= 0) {
      return Status::ParseError(path + ":" + std::to_string(lineno) + ": expected 'role name host pid', found '" +
                                line + "'");
    }
    out.push_back(e);
  }
  return out;
}

std::vector<std::string> HeadCommand(const ClusterConfig& c, const std::string& bin_dir) {
  return {bin_dir + "/distri-head", "--bind", "tcp://" + c.head.bind + ":" + std::to_string(c.head.port),
          "--advertise-host", c.head.host, "--db", c.head.db, "--keys", c.keys_dir,
          "--metrics-port", std::to_string(c.head.metrics_port), "--heartbeat-ms", std::to_string(c.head.heartbeat_ms),
          "--max-attempts", std::to_string(c.head.max_attempts), "--placement", c.head.placement,
          "--log-level", c.log_level};
}

std::vector<std::string> NodeCommand(const ClusterConfig& c, const NodeConfig& n, const std::string& bin_dir) {
  const bool local = n.IsLocal();
  const std::string bin = local || n.remote_bin_dir.empty() ? bin_dir : n.remote_bin_dir;
  std::vector<std::string> cmd{bin + "/distri-node", "--head", c.HeadAddress(), "--keys",
                               local ? c.keys_dir : n.remote_keys_dir, "--model", n.model, "--gpus", n.gpus,
                               "--cpu-actors", std::to_string(n.cpu_actors), "--max-restarts",
                               std::to_string(n.max_restarts), "--log-dir",
                               (local ? c.log_dir : n.remote_log_dir) + "/actors-" + n.name, "--log-level",
                               c.log_level};
  for (const auto& [name, value] : n.env) {
    cmd.push_back("--env");
    cmd.push_back(name + "=" + value);
  }
  return cmd;
}

Result<std::vector<ProcessEntry>> ClusterUp(const ClusterConfig& c, const std::string& bin_dir) {
  if (Result<std::vector<ProcessEntry>> old = ReadState(c.StateFile()); old.ok()) {
    for (const ProcessEntry& e : *old) {
      if (e.host != "local" || Alive(e.pid)) {
        return Status::FailedPrecondition("cluster '" + c.cluster_name + "' is already up (" + c.StateFile() +
                                          "); run `distri-cluster down` first");
      }
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(c.state_dir, ec);
  std::filesystem::create_directories(c.log_dir, ec);
  bool created = false;
  DISTRI_RETURN_IF_ERROR(EnsureClusterKeys(c.keys_dir, &created));
  if (created) std::printf("created cluster keys in %s\n", c.keys_dir.c_str());

  std::vector<ProcessEntry> started;
  auto fail = [&](const Status& s) -> Status {
    for (auto it = started.rbegin(); it != started.rend(); ++it) (void)StopEntry(c, *it);
    std::remove(c.StateFile().c_str());
    return s;
  };
  DISTRI_ASSIGN_OR_RETURN(int head_pid, SpawnLocal(HeadCommand(c, bin_dir), c.log_dir + "/head.log"));
  started.push_back({"head", "head", "local", head_pid});
  DISTRI_RETURN_IF_ERROR(WriteState(c.StateFile(), started));
  client::ClientOptions co;
  co.address = c.HeadAddress();
  co.keys_dir = c.keys_dir;
  co.connect_timeout = std::chrono::seconds(15);
  co.name = "cluster-up";
  if (Result<std::unique_ptr<client::Client>> probe = client::Client::Connect(co); !probe.ok()) {
    return fail(Status::Unavailable("the head did not come up (see " + c.log_dir + "/head.log): " +
                                    probe.status().message()));
  }
  std::printf("head up at %s (pid %d, log %s/head.log)\n", c.HeadAddress().c_str(), head_pid, c.log_dir.c_str());

  for (const NodeConfig& n : c.nodes) {
    const std::vector<std::string> argv = NodeCommand(c, n, bin_dir);
    if (n.IsLocal()) {
      Result<int> pid = SpawnLocal(argv, c.log_dir + "/node-" + n.name + ".log");
      if (!pid.ok()) return fail(pid.status());
      started.push_back({"node", n.name, "local", *pid});
      std::printf("node %s up (pid %d, log %s/node-%s.log)\n", n.name.c_str(), *pid, c.log_dir.c_str(), n.name.c_str());
    } else {
      if (!n.copy_keys.empty()) {
        if (Result<std::string> r = RunShell(RemoteCommand(n, "mkdir -p -m 700 " + ShellQuote(n.remote_keys_dir)));
            !r.ok()) {
          return fail(r.status());
        }
        std::string copy = Replace(Replace(Replace(n.copy_keys, "{src}", c.keys_dir), "{dst}", n.remote_keys_dir),
                                   "{host}", n.host);
        if (Result<std::string> r = RunShell(copy); !r.ok()) return fail(r.status());
      }
      const std::string remote = "mkdir -p " + ShellQuote(n.remote_log_dir) + " && nohup " + Join(argv) + " >> " +
                                 ShellQuote(n.remote_log_dir + "/node-" + n.name + ".log") +
                                 " 2>&1 < /dev/null & echo $!";
      Result<std::string> out = RunShell(RemoteCommand(n, remote));
      if (!out.ok()) return fail(out.status());
      const int pid = std::atoi(out->c_str());
      if (pid <= 0) return fail(Status::Unavailable("node " + n.name + " on " + n.host + ": no pid in '" + *out + "'"));
      started.push_back({"node", n.name, n.host, pid});
      std::printf("node %s up on %s (remote pid %d, log %s/node-%s.log there)\n", n.name.c_str(), n.host.c_str(), pid,
                  n.remote_log_dir.c_str(), n.name.c_str());
    }
    if (Status s = WriteState(c.StateFile(), started); !s.ok()) return fail(s);
  }
  return started;
}

Status ClusterDown(const ClusterConfig& c) {
  Result<std::vector<ProcessEntry>> state = ReadState(c.StateFile());
  if (!state.ok()) {
    if (state.status().code() == StatusCode::kNotFound) return Status::Ok();
    return state.status();
  }
  Status first;
  // Nodes first (they stop their actors), the head last.
  for (auto it = state->rbegin(); it != state->rend(); ++it) {
    Status s = StopEntry(c, *it);
    if (!s.ok() && first.ok()) first = s;
    std::printf("stopped %s %s\n", it->role.c_str(), it->name.c_str());
  }
  std::remove(c.StateFile().c_str());
  return first;
}

}  // namespace distri::cli
