// distri-cluster: bring a distri cluster up and down, and use it.
//
//   distri-cluster up CLUSTER.yaml            keys (if missing), head, node agents; state file
//   distri-cluster down CLUSTER.yaml          stops what `up` started
//   distri-cluster status  --config CLUSTER.yaml | --address tcp://H:P --keys DIR
//   distri-cluster submit  --config ... --prompt "..." [job flags] --out image.png [--json]
//                          [--preview-every N --preview PATH]   (latent previews, see cluster-config.md)
//   distri-cluster batch   --config ... --prompts prompts.txt --out-dir DIR [job flags]
//                          (all prompts go to the head as one batch, SubmitJobs, so --gpus 0
//                          sizes gangs for the whole batch)
//   distri-cluster logs CLUSTER.yaml [head|NODE] [-n LINES] [-f]
//
// Job flags (as `distri generate`): --prompt, --negative-prompt, --height, --width, --steps,
// --seed, --guidance, --guidance-rescale, --sampler, --gpus (0 = auto), --priority, --model,
// --timeout; DistriFusion: --sync-mode, --warmup-steps (the head checks the names).
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <climits>
#include <filesystem>

#include "runtime/cli/commands.h"
#include "runtime/common/logging.h"

namespace {

std::string SelfDir() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : p.parent_path().string();
}

void AddTarget(CLI::App* cmd, distri::cli::Target* t) {
  cmd->add_option("--config,-c", t->config, "The cluster YAML (head address and keys from it)");
  cmd->add_option("--address", t->address, "The head's address, tcp://HOST:PORT (overrides the config's)");
  cmd->add_option("--keys", t->keys_dir, "Key directory with client.key and head.pub (overrides the config's)");
}

void AddJobFlags(CLI::App* cmd, distri::cli::JobFlags* j, bool with_prompt) {
  j->spec.width = 1024;
  j->spec.height = 1024;
  j->spec.steps = 30;
  j->spec.guidance = 5;
  j->spec.sampler = "default";
  if (with_prompt) cmd->add_option("--prompt,-p", j->spec.prompt, "Prompt")->required();
  cmd->add_option("--negative-prompt,-n", j->spec.negative_prompt, "Negative prompt");
  cmd->add_option("--height,-H", j->spec.height, "Image height in pixels, a multiple of 8")->capture_default_str();
  cmd->add_option("--width,-W", j->spec.width, "Image width in pixels, a multiple of 8")->capture_default_str();
  cmd->add_option("--steps,-s", j->spec.steps, "Denoising steps")->capture_default_str();
  cmd->add_option("--seed", j->seed, "Noise seed (-1: the head draws one; batch: seed + line index)")->capture_default_str();
  cmd->add_option("--guidance,-g", j->spec.guidance, "Classifier-free guidance scale")->capture_default_str();
  cmd->add_option("--guidance-rescale", j->spec.guidance_rescale,
                  "Rescale the guided prediction toward the conditional one's std (0..1, diffusers' guidance_rescale)")
      ->capture_default_str();
  cmd->add_option("--sampler", j->spec.sampler, "default, ddim, euler or dpmpp_2m")->capture_default_str();
  cmd->add_option("--gpus", j->spec.gpus, "GPUs per image (0: auto, by resolution and queue)")->capture_default_str();
  cmd->add_option("--priority", j->spec.priority, "Higher runs first")->capture_default_str();
  cmd->add_option("--model", j->spec.model, "Model name (default: any the actors hold)");
  cmd->add_option("--sync-mode", j->spec.sync_mode,
                  "DistriFusion sync mode of a gang: corrected_async_gn, stale_gn, sync_gn, separate_gn, full_sync "
                  "or no_sync (default: the actors', corrected_async_gn)");
  cmd->add_option("--warmup-steps", j->warmup_steps,
                  "Synchronous steps before displaced ones (-1: the actors' default, 4)")
      ->check(CLI::Range(int64_t{-1}, int64_t{10000}))
      ->capture_default_str();
  cmd->add_option("--timeout", j->timeout_s, "Seconds to wait for the result")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  distri::SetLogRole("client");
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"distri-cluster: run a distri cluster (head + node agents) and render on it"};
  app.require_subcommand(1);

  std::string config, bin_dir = SelfDir();
  CLI::App* up = app.add_subcommand("up", "Start the head and the node agents of a cluster YAML");
  up->add_option("config", config, "Cluster YAML (configs/*.yaml)")->required();
  up->add_option("--bin-dir", bin_dir, "Folder with distri-head and distri-node")->capture_default_str();

  CLI::App* down = app.add_subcommand("down", "Stop what `up` started");
  down->add_option("config", config, "Cluster YAML")->required();

  distri::cli::Target target;
  CLI::App* status = app.add_subcommand("status", "Nodes, GPUs, actors, queue, running jobs");
  AddTarget(status, &target);

  distri::cli::JobFlags job;
  std::string out = "out.png";
  bool quiet = false, json = false;
  CLI::App* submit = app.add_subcommand("submit", "Render one image and write it");
  AddTarget(submit, &target);
  AddJobFlags(submit, &job, /*with_prompt=*/true);
  submit->add_option("--out,-o", out, "Output file (PNG)")->capture_default_str();
  submit->add_flag("--quiet,-q", quiet, "No progress bar");
  submit->add_option("--preview-every", job.spec.preview_every,
                     "Rank 0 sends a latent preview every N steps (0: none; costs a device sync per preview)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  submit->add_option("--preview", job.preview_path,
                     "Write the latest latent preview (PNG, latent resolution = image/8) here whenever a new "
                     "one arrives (via PATH.tmp and rename); needs --preview-every");
  submit->add_flag("--json", json,
                   "Print one JSON line on stdout: job_id, state, seed, width, height, attempt, gang_size, gang, "
                   "queued_ms, run_ms, total_ms (the head's), denoise_ms, decode_ms (rank 0's), client_ms (submit -> PNG written), out");

  std::string prompts, out_dir = "batch-out";
  CLI::App* batch = app.add_subcommand(
      "batch",
      "Render one image per line of a prompts file, submitted as one batch (the head queues every job before it "
      "places any, so --gpus 0 sizes gangs seeing the whole batch); writes a manifest");
  AddTarget(batch, &target);
  AddJobFlags(batch, &job, /*with_prompt=*/false);
  batch->add_option("--prompts", prompts, "Prompts file: one prompt per line, # comments")->required();
  batch->add_option("--out-dir", out_dir, "Folder for <index>.png and manifest.jsonl")->capture_default_str();

  std::string which;
  int lines = 50;
  bool follow = false;
  CLI::App* logs = app.add_subcommand("logs", "Tail the head and node logs of the cluster");
  logs->add_option("config", config, "Cluster YAML")->required();
  logs->add_option("which", which, "head or a node name (default: all)");
  logs->add_option("-n,--lines", lines, "Lines per file")->capture_default_str();
  logs->add_flag("-f,--follow", follow, "Keep following");

  CLI11_PARSE(app, argc, argv);
  if (*up) return distri::cli::CmdUp(config, bin_dir);
  if (*down) return distri::cli::CmdDown(config);
  if (*status) return distri::cli::CmdStatus(target);
  if (*submit) return distri::cli::CmdSubmit(target, job, out, quiet, json);
  if (*batch) return distri::cli::CmdBatch(target, job, prompts, out_dir);
  if (*logs) return distri::cli::CmdLogs(config, which, lines, follow);
  return 2;
}
