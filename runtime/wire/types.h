// Value types shared by several control-plane messages (messages.h).
//
// Enum values are frozen (never renumbered or reused). Ids travel as 16-byte msgpack bin.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/ids.h"

namespace distri::wire {

// State of a job in the head's job store. Terminal: SUCCEEDED, FAILED, CANCELLED.
enum class JobState : uint8_t {
  kPending = 0,    // accepted and queued, no gang yet
  kScheduled = 1,  // a gang is chosen, tasks are being sent
  kRunning = 2,    // at least one rank reported progress
  kSucceeded = 3,  // the image is in the result store
  kFailed = 4,     // gave up (error in JobStatus.error)
  kCancelled = 5,  // cancelled by a client before it finished
};
std::string_view JobStateName(JobState state);  // "PENDING", ...
bool IsTerminal(JobState state);

// Encoding of the image bytes of JobResult / TaskDone.
enum class OutputFormat : uint8_t {
  kPng = 0,   // a PNG file (8-bit RGB)
  kRgb8 = 1,  // raw interleaved 8-bit RGB, row-major, width * height * 3 bytes, no header
};
std::string_view OutputFormatName(OutputFormat format);  // "png", "rgb8"

// One GPU of a node.
struct GpuInfo {
  uint32_t index = 0;         // CUDA device ordinal on its node (what CUDA_VISIBLE_DEVICES takes)
  std::string name;           // "NVIDIA H100 80GB HBM3"; <= kMaxNameBytes
  uint64_t memory_bytes = 0;  // total device memory
  bool operator==(const GpuInfo&) const = default;
};

// What a node agent offers to the head.
struct NodeResources {
  std::string hostname;             // required, 1..kMaxNameBytes bytes
  std::vector<GpuInfo> gpus;        // one GPU actor per entry; <= kMaxGpusPerNode; may be empty
  uint32_t cpu_actors = 0;          // CPU actors the node runs (machines without GPUs, tests)
  std::vector<std::string> models;  // models loaded/loadable by its actors; optional on the wire
  bool operator==(const NodeResources&) const = default;
};

// The parameters of one image: what SubmitJob asks for and what AssignTask hands each rank.
struct JobSpec {
  std::string prompt;           // required; <= kMaxPromptBytes
  std::string negative_prompt;  // optional (default ""); <= kMaxPromptBytes
  uint32_t width = 0;           // required; pixels, 1..kMaxImageSide (the head checks the
  uint32_t height = 0;          //   model's constraints, e.g. multiples of 8)
  uint32_t steps = 0;           // required; denoising steps, 1..kMaxSteps
  double guidance = 0;          // required; classifier-free guidance scale, finite
  std::string sampler;          // required; "ddim", "euler", "dpmpp_2m"; 1..kMaxNameBytes bytes
  // Optional: absent means the head draws one (and reports it in JobAccepted / JobResult).
  // Always present in AssignTask so every attempt renders the same image.
  std::optional<uint64_t> seed;
  uint32_t gpus = 0;            // optional; GPUs for this image, 0 = auto; <= kMaxGangSize
  int32_t priority = 0;         // optional; higher runs first
  OutputFormat output_format = OutputFormat::kPng;  // optional (default PNG)
  std::string model;            // optional; "" = the cluster's default model; <= kMaxNameBytes
  // DistriFusion options of a gang (actors/parallel's ParallelOptions); absent = the actor's
  // defaults (corrected_async_gn, 4 warm-up steps). Since minor version 2.
  std::string sync_mode;        // optional; "" = default; <= kMaxNameBytes (names: the head checks)
  std::optional<uint32_t> warmup_steps;  // optional; synchronous steps first, 0..kMaxSteps
  // Optional (default 0 = off): rank 0 reports a latent preview (a small PNG, see
  // TaskProgress.preview) every this many steps, never after the last one; 0..kMaxSteps.
  // Each preview costs rank 0 a device sync and a small device->host copy.
  uint32_t preview_every = 0;
  // Optional (default 0 = off): diffusers' guidance_rescale (rescale_noise_cfg), a finite
  // number in [0, 1]. Since minor version 4; an older peer omits it (0).
  double guidance_rescale = 0;
  bool operator==(const JobSpec&) const = default;
};

// One rank of a gang: where it runs.
struct GangMember {
  uint32_t rank = 0;    // equals its index in the gang vector (checked on decode)
  NodeId node_id;       // node agent hosting the actor
  ActorId actor_id;     // the actor process
  int32_t gpu_index = -1;  // CUDA ordinal on that node, -1 for a CPU actor
  std::string hostname;    // the node's hostname (logs, same-host detection); <= kMaxNameBytes
  bool operator==(const GangMember&) const = default;
};

// Wall-clock timings of a job, in milliseconds.
struct JobTimings {
  double queued_ms = 0;   // accepted -> first task assigned
  double run_ms = 0;      // first task assigned -> image decoded on rank 0
  double total_ms = 0;    // accepted -> result stored
  // Optional (0 when unknown, e.g. results stored by an older head): rank 0's own report of
  // the successful attempt: its denoising loop, and its VAE decode + image encoding.
  double denoise_ms = 0;
  double decode_ms = 0;
  bool operator==(const JobTimings&) const = default;
};

}  // namespace distri::wire
