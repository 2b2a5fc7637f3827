// What the head accepts in a SubmitJob beyond the wire's own limits (runtime/wire).
#pragma once

#include "runtime/common/status.h"
#include "runtime/wire/types.h"

namespace distri::head {

// Samplers an actor understands ("default": the model's own scheduler).
inline constexpr const char* kSamplers[] = {"default", "ddim", "euler", "dpmpp_2m"};
// DistriFusion sync modes an actor understands (actors/parallel's ParallelOptions::sync_mode).
inline constexpr const char* kSyncModes[] = {"corrected_async_gn", "stale_gn", "sync_gn",
                                             "separate_gn", "full_sync", "no_sync"};

// InvalidArgument naming the field: width and height multiples of 8 (the VAE's factor),
// sampler one of kSamplers, guidance in [0, 100], sync_mode empty (the actors' default) or one
// of kSyncModes (warmup_steps' range is the wire's: 0..kMaxSteps; more than steps = all synchronous).
Status ValidateJobSpec(const wire::JobSpec& spec);

}  // namespace distri::head
