#include "actors/cli/launch_command.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

namespace distri::cli {
namespace {

// A port the kernel reports free on `addr` now (bind to 0, read it back, close).
int FreePort(const std::string& addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  if (::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = -1;
  socklen_t len = sizeof(sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  ::close(fd);
  return port;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

void AddLaunchOptions(CLI::App& cmd, LaunchArgs& a) {
  cmd.add_option("--nproc,-n", a.nproc, "Processes (ranks) to start")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd.add_option("--master-addr", a.master_addr, "Address of rank 0's rendezvous (one of this machine's)")
      ->capture_default_str();
  cmd.add_option("--master-port", a.master_port, "Port of rank 0's rendezvous (0: a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd.add_option("command", a.command, "The command to run, after --")->required();
}

int RunLaunch(const LaunchArgs& a) {
  const int port = a.master_port > 0 ? a.master_port : FreePort(a.master_addr);
  if (port <= 0) {
    std::cerr << "distri launch: no free port on " << a.master_addr << "\n";
    return 2;
  }
  std::map<pid_t, int> ranks;
  for (int r = 0; r < a.nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) {
      std::cerr << "distri launch: fork: " << std::strerror(errno) << "\n";
      for (auto& [p, _] : ranks) ::kill(p, SIGTERM);
      return 1;
    }
    if (pid == 0) {
      ::setenv("DISTRI_RANK", std::to_string(r).c_str(), 1);
      ::setenv("DISTRI_LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("DISTRI_WORLD_SIZE", std::to_string(a.nproc).c_str(), 1);
      ::setenv("DISTRI_MASTER_ADDR", a.master_addr.c_str(), 1);
      ::setenv("DISTRI_MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& s : a.command) argv.push_back(const_cast<char*>(s.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "distri launch: cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ranks[pid] = r;
  }
  int result = 0;
  bool stopping = false;
  auto stop_deadline = std::chrono::steady_clock::time_point::max();
  while (!ranks.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid > 0 && ranks.count(pid)) {
      const int rank = ranks[pid];
      ranks.erase(pid);
      const int code = ExitCode(status);
      if (code != 0 && result == 0) {
        result = code;
        std::fprintf(stderr, "distri launch: rank %d exited with status %d; stopping the other %zu rank(s)\n", rank,
                     code, ranks.size());
        for (auto& [p, _] : ranks) ::kill(p, SIGTERM);
        stopping = true;
        stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (stopping) {
      if (std::chrono::steady_clock::now() > stop_deadline) {
        for (auto& [p, _] : ranks) ::kill(p, SIGKILL);
        stop_deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return result;
}

}  // namespace distri::cli
