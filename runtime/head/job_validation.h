// What the head accepts in a SubmitJob beyond the wire's own limits (runtime/wire).
#pragma once

#include "runtime/common/status.h"
#include "runtime/wire/types.h"

namespace distri::head {

// Samplers an actor understands ("default": the model's own scheduler).
inline constexpr const char* kSamplers[] = {"default", "ddim", "euler", "dpmpp_2m"};

// InvalidArgument naming the field: width and height multiples of 8 (the VAE's factor),
// sampler one of kSamplers, guidance in [0, 100].
Status ValidateJobSpec(const wire::JobSpec& spec);

}  // namespace distri::head
