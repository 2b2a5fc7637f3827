// `distri generate`: one image, on one device or on a gang of ranks.
//
// Gangs (docs/DISTRIFUSION.md, actors/parallel):
//   --gpus N             N GPUs driven by one process, one thread per GPU (cuda:0 .. cuda:N-1),
//                        NCCL between them. This is the single-node default: no launcher, one
//                        copy of the CLI state, and CUDA graphs per thread.
//   --ranks N            N ranks as threads on --device (cpu: the local channel; cuda: as --gpus).
//   under `distri launch` one process per rank: the launcher's DISTRI_RANK / DISTRI_WORLD_SIZE /
//                        DISTRI_MASTER_ADDR / DISTRI_MASTER_PORT (DISTRI_LOCAL_RANK picks the
//                        GPU, default the rank) and --backend (auto: nccl on GPUs, ucx on CPUs).
// Rank 0 writes the image.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "actors/parallel/parallel_generate.h"
#include "actors/pipeline/generate_params.h"

namespace distri::cli {

struct GenerateArgs {
  std::string model, out = "out.png", device = "auto", dtype = "auto", variant;
  pipeline::GenerateParams params;
  bool quiet = false;
  int gpus = 0, ranks = 0;
  std::string backend = "auto";
  parallel::ParallelOptions parallel;
  bool no_split_cfg = false, no_cuda_graphs = false, no_collective_memory = false;
  std::string save_latents;  // rank 0 writes the final latents here: raw little-endian float32, [1, C, h, w]
  int repeat = 1;  // render the job this many times (warm timings: graphs are captured once)
  bool json = false;  // one JSON line per repeat on stdout (timings; bench/run_cluster_bench.sh)
  std::string attention;  // "" keeps DISTRI_SDPA_BACKEND / the default; else as that variable
  bool cudnn_benchmark = false;  // cuDNN times its convolution algorithms per shape (process-wide)
  std::string strip_conv = "halo";  // parallel::ParallelOptions::strip_conv, by name
};

// Adds the subcommand's options to `cmd`.
void AddGenerateOptions(CLI::App& cmd, GenerateArgs& args);
int RunGenerate(GenerateArgs args);

}  // namespace distri::cli
