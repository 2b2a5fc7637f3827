#include "runtime/node/actor_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <thread>

extern char** environ;

namespace distri::node {

namespace {

// The child's environment: ours with spec.env applied, as "NAME=value" strings.
std::vector<std::string> ChildEnvironment(const ProcessSpec& spec) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    vars[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [name, value] : spec.env) vars[name] = value;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [name, value] : vars) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Writes a message to fd 2 with async-signal-safe calls only (between fork and exec).
void ChildFail(const char* what, const char* detail, int err) {
  const char* reason = strerror(err);  // not strictly async-signal-safe, but glibc's is benign
  const char* parts[] = {"distri-node: ", what, " ", detail, ": ", reason, "\n"};
  for (const char* p : parts) {
    ssize_t ignored = write(2, p, strlen(p));
    (void)ignored;
  }
  _exit(127);
}

// Runs in the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(pid_t parent, int log_fd, int null_fd, const char* file, char* const* argv,
                            char* const* envp) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
  if (null_fd >= 0) dup2(null_fd, 0);
  if (log_fd >= 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
  }
  // No descriptor of the agent (sockets, other logs) leaks into the actor.
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 65536; ++fd) close(fd);
  }
  // Signal state is inherited across exec: undo what the agent set for itself.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  execvpe(file, argv, envp);
  ChildFail("cannot execute", file, errno);
  _exit(127);
}

}  // namespace

std::string ExitStatus::Describe() const {
  if (signal != 0) {
    const char* name = strsignal(signal);
    return "signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")";
  }
  return "exit code " + std::to_string(exit_code);
}

Result<ActorProcess> ActorProcess::Spawn(const ProcessSpec& spec) {
  if (spec.executable.empty()) return Status::InvalidArgument(spec.name + ": no executable given");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<std::string> argv_strings;
  argv_strings.push_back(spec.executable);
  argv_strings.insert(argv_strings.end(), spec.args.begin(), spec.args.end());
  std::vector<std::string> env_strings = ChildEnvironment(spec);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);

  int log_fd = -1;
  if (!spec.log_path.empty()) {
    log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return Status::IoError(spec.name + ": cannot open log file " + spec.log_path + ": " + strerror(errno));
    }
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(parent, log_fd, null_fd, spec.executable.c_str(), argv.data(), envp.data());
  const int fork_errno = errno;
  if (log_fd >= 0) close(log_fd);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) return Status::IoError(spec.name + ": fork failed: " + strerror(fork_errno));
  // Also set the group from the parent, so a Signal right after Spawn cannot miss the child
  // (whichever of the two setpgid calls runs first wins; the other is harmless).
  setpgid(pid, pid);
  return ActorProcess(pid, std::chrono::steady_clock::now());
}

ActorProcess::ActorProcess(ActorProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), started_at_(o.started_at_), exit_(std::move(o.exit_)) {}

ActorProcess& ActorProcess::operator=(ActorProcess&& o) noexcept {
  if (this != &o) {
    KillAndReap();
    pid_ = std::exchange(o.pid_, -1);
    started_at_ = o.started_at_;
    exit_ = std::move(o.exit_);
  }
  return *this;
}

ActorProcess::~ActorProcess() { KillAndReap(); }

void ActorProcess::KillAndReap() {
  if (pid_ > 0 && !exit_.has_value()) {
    kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

std::optional<ExitStatus> ActorProcess::Poll() {
  if (exit_.has_value() || pid_ <= 0) return exit_;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  ExitStatus e;
  if (r < 0) {
    // ECHILD: someone else reaped it (should not happen); report it as gone.
    e.exit_code = -1;
  } else if (WIFEXITED(status)) {
    e.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  }
  // The child may have left members of its group behind (a worker's own helpers): end them.
  kill(-pid_, SIGKILL);
  exit_ = e;
  return exit_;
}

void ActorProcess::Signal(int signal) {
  if (pid_ > 0 && !exit_.has_value()) kill(-pid_, signal);
}

ExitStatus ActorProcess::Terminate(std::chrono::milliseconds grace) {
  if (auto e = Poll()) return *e;
  Signal(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto e = Poll()) return *e;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Signal(SIGKILL);
  while (true) {
    if (auto e = Poll()) return *e;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace distri::node
