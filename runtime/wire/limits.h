// Size limits of the control-plane protocol (runtime/wire).
//
// Every message from the network is untrusted. The decoder enforces these limits before it
// allocates anything proportional to a length read from the wire, so a hostile or corrupt
// buffer costs at most a small multiple of its own size in memory. The limits are part of the
// protocol: a sender that exceeds them gets an error locally (Encode fails) instead of having
// its message dropped by the receiver.
#pragma once

#include <cstddef>
#include <cstdint>

namespace distri::wire {

inline constexpr size_t kMiB = size_t{1} << 20;

// A whole envelope (header + payload), as one ZeroMQ frame.
inline constexpr size_t kMaxEnvelopeBytes = 64 * kMiB;
// Prompt and negative prompt, in bytes of UTF-8.
inline constexpr size_t kMaxPromptBytes = 1 * kMiB;
// Envelope sender id ("node:<hex>", "client:<name>").
inline constexpr size_t kMaxSenderIdBytes = 256;
// Hostnames, GPU names, sampler and model names, channel backend names.
inline constexpr size_t kMaxNameBytes = 256;
// Free-text error messages (Error, JobStatus.error, TaskDone.error_message).
inline constexpr size_t kMaxErrorMessageBytes = 64 * 1024;
// Channel rendezvous blob of AssignTask (an NCCL unique id is 128 bytes; UCX worker
// addresses of a large gang are a few KiB each).
inline constexpr size_t kMaxRendezvousBytes = 1 * kMiB;
// Optional latent preview of TaskProgress (a small PNG).
inline constexpr size_t kMaxPreviewBytes = 8 * kMiB;
// Encoded image bytes of JobResult / TaskDone; the envelope limit also applies.
inline constexpr size_t kMaxImageBytes = kMaxEnvelopeBytes - kMiB;
// Gang members of AssignTask / JobResult, GPUs of a node, models of a node.
inline constexpr size_t kMaxGangSize = 1024;
inline constexpr size_t kMaxGpusPerNode = 256;
inline constexpr size_t kMaxModelsPerNode = 256;
// Jobs of one SubmitJobs / JobsAccepted (the envelope limit also applies: a batch of long
// prompts is split by the client into several messages).
inline constexpr size_t kMaxBatchJobs = 4096;
// Image side in pixels, denoising steps.
inline constexpr uint32_t kMaxImageSide = 16384;
inline constexpr uint32_t kMaxSteps = 10000;
// Keys per map and nesting depth accepted by the msgpack parser (unknown fields included).
inline constexpr size_t kMaxMapEntries = 256;
inline constexpr size_t kMaxNestingDepth = 8;

}  // namespace distri::wire
