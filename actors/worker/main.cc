// distri-worker: one actor process (docs/runtime-design.md). Started by the node agent:
//
//   distri-worker --head tcp://HOST:PORT --keys DIR --node-id HEX --actor-id HEX
//                 --gpu-index N|-1 --model DIR [--device auto|cpu|cuda:N] [--dtype auto|fp32|fp16|bf16]
//                 [--variant fp16] [--log-level LEVEL]
//
// Loads the model once, then registers with the head and serves tasks until SIGTERM/SIGINT.
// Exit codes: 0 after a signal, 1 when the model or the connection cannot be set up, 2 for
// bad flags, 3 when a task hung past the watchdog (the node agent restarts the process).
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "actors/worker/denoise_executor.h"
#include "runtime/common/logging.h"
#include "runtime/worker/actor_host.h"

int main(int argc, char** argv) {
  distri::SetLogRole("actor");
  CLI::App app{"distri-worker: a GPU (or CPU) actor of a distri cluster; started by distri-node"};
  std::string head, keys, node_id, actor_id, log_level;
  int gpu_index = -1;
  distri::worker::DenoiseOptions d;
  app.add_option("--head", head, "The head's address, tcp://HOST:PORT")->required();
  app.add_option("--keys", keys, "The cluster's key directory (node.key, head.pub)")->required();
  app.add_option("--node-id", node_id, "Id of the node agent that started this actor")->required();
  app.add_option("--actor-id", actor_id, "This actor's id (chosen by the node agent)")->required();
  app.add_option("--gpu-index", gpu_index, "CUDA ordinal on the node (-1: CPU actor)")->capture_default_str();
  app.add_option("--model", d.model_dir, "Model folder in diffusers' layout")->required();
  app.add_option("--device", d.device, "auto, cpu, cuda or cuda:N (auto: the GPU this process sees, else cpu)")
      ->capture_default_str();
  app.add_option("--dtype", d.dtype, "auto (fp16 on GPUs, fp32 on CPUs), fp32, fp16 or bf16")->capture_default_str();
  app.add_option("--variant", d.variant, "Weight file variant to prefer, e.g. fp16");
  app.add_option("--log-level", log_level, "debug, info, warning or error");
  CLI11_PARSE(app, argc, argv);

  if (distri::Status s = distri::ApplyLogLevelFlag(log_level); !s.ok()) {
    std::cerr << "distri-worker: " << s.message() << "\n";
    return 2;
  }
  auto nid = distri::NodeId::ParseHex(node_id);
  auto aid = distri::ActorId::ParseHex(actor_id);
  if (!nid.ok() || !aid.ok()) {
    std::cerr << "distri-worker: " << (!nid.ok() ? "--node-id: " + nid.status().message()
                                                 : "--actor-id: " + aid.status().message()) << "\n";
    return 2;
  }
  // A CPU actor stays on the CPU even where the machine has GPUs.
  if (gpu_index < 0 && d.device == "auto") d.device = "cpu";

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  DISTRI_LOG(INFO) << "actor " << aid->Short() << " (pid " << getpid() << ", gpu " << gpu_index << "): loading "
                   << d.model_dir;
  auto exec = distri::worker::DenoiseExecutor::Load(d);
  if (!exec.ok()) {
    DISTRI_LOG(ERROR) << exec.status().ToString();
    return 1;
  }
  distri::worker::ActorHostOptions o;
  o.head = head;
  o.keys_dir = keys;
  o.actor_id = *aid;
  o.node_id = *nid;
  o.gpu_index = gpu_index;
  o.model = [&] {
    std::string m = d.model_dir;
    while (m.size() > 1 && m.back() == '/') m.pop_back();
    const size_t slash = m.rfind('/');
    return slash == std::string::npos ? m : m.substr(slash + 1);
  }();
  o.device = gpu_index >= 0 && (*exec)->device().rfind("cuda", 0) == 0 ? "cuda:" + std::to_string(gpu_index)
                                                                      : (*exec)->device();
  o.on_hung = [] {
    DISTRI_LOG(ERROR) << "exiting with code 3 so that the node agent restarts this actor";
    _exit(3);
  };
  auto host = distri::worker::ActorHost::Create(o, exec->get());
  if (!host.ok()) {
    DISTRI_LOG(ERROR) << host.status().ToString();
    return host.status().code() == distri::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (auto s = (*host)->Start(); !s.ok()) {
    DISTRI_LOG(ERROR) << s.ToString();
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  DISTRI_LOG(INFO) << "signal " << sig << ": stopping";
  (*host)->Stop();
  return 0;
}
