// The subcommands of distri-cluster (main.cc parses the flags). Each returns the process exit
// status: 0 success, 1 failure (printed on stderr).
#pragma once

#include <string>

#include "runtime/wire/types.h"

namespace distri::cli {

// Where the head is and which keys to use: from --config (the cluster YAML) or --address/--keys.
struct Target {
  std::string config;
  std::string address;
  std::string keys_dir;
};

struct JobFlags {
  wire::JobSpec spec;
  int64_t seed = -1;  // -1: the head draws one
  int64_t warmup_steps = -1;  // -1: absent (the actors' default)
  double timeout_s = 3600;
  // submit only: write each new latent preview (spec.preview_every) to this PNG file, atomically
  // (PATH.tmp, then rename); "" = no previews asked for.
  std::string preview_path;
};

int CmdUp(const std::string& config, const std::string& bin_dir);
int CmdDown(const std::string& config);
int CmdStatus(const Target& target);
// `json`: print one JSON line on stdout instead of the human summary: job_id, state, seed,
// width, height, attempt, gang_size, gang (CUDA ordinals, -1 = CPU actor), the head's
// queued_ms / run_ms / total_ms, rank 0's denoise_ms / decode_ms, client_ms (submit sent -> PNG written), out; on a failure after
// the head accepted the job: job_id, state "ERROR", error, client_ms.
int CmdSubmit(const Target& target, JobFlags job, const std::string& out, bool quiet, bool json = false);
int CmdBatch(const Target& target, JobFlags job, const std::string& prompts_file, const std::string& out_dir);
int CmdLogs(const std::string& config, const std::string& which, int lines, bool follow);

}  // namespace distri::cli
