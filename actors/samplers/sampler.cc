#include "actors/samplers/sampler.h"

#include "actors/samplers/ddim_sampler.h"
#include "actors/samplers/dpm_solver_sampler.h"
#include "actors/samplers/euler_sampler.h"

namespace distri::samplers {

double Sampler::timestep(int step_index) const {
  DISTRI_CHECK(step_index >= 0 && step_index < num_steps(),
               "timestep index " + std::to_string(step_index) + " outside 0.." + std::to_string(num_steps() - 1));
  return timesteps_[step_index].item<double>();
}

Status Sampler::CheckStepArgs(const at::Tensor& model_output, int step_index, const at::Tensor& sample) const {
  if (num_steps() == 0) {
    return Status::FailedPrecondition(std::string(name()) + ": Step called before SetTimesteps");
  }
  if (step_index < 0 || step_index >= num_steps()) {
    return Status::InvalidArgument(std::string(name()) + ": step index " + std::to_string(step_index) +
                                   " outside 0.." + std::to_string(num_steps() - 1));
  }
  if (!model_output.defined() || !sample.defined() || model_output.sizes() != sample.sizes()) {
    return Status::InvalidArgument(std::string(name()) + ": model output and sample must have the same shape, got " +
                                   (model_output.defined() ? c10::str(model_output.sizes()) : "undefined") + " and " +
                                   (sample.defined() ? c10::str(sample.sizes()) : "undefined"));
  }
  if (!at::isFloatingType(model_output.scalar_type()) || !at::isFloatingType(sample.scalar_type())) {
    return Status::InvalidArgument(std::string(name()) + ": model output and sample must be floating point");
  }
  return Status::Ok();
}

const std::vector<std::string_view>& SamplerNames() {
  static const std::vector<std::string_view> kNames = {"ddim", "euler", "dpmpp_2m"};
  return kNames;
}

Result<std::unique_ptr<Sampler>> MakeSampler(std::string_view name, const SchedulerConfig& config) {
  DISTRI_RETURN_IF_ERROR(ValidateSchedulerConfig(config));
  if (name == "ddim") return std::unique_ptr<Sampler>(std::make_unique<DdimSampler>(config));
  if (name == "euler") return std::unique_ptr<Sampler>(std::make_unique<EulerSampler>(config));
  if (name == "dpmpp_2m" || name == "dpm++_2m" || name == "dpmsolver++") {
    return std::unique_ptr<Sampler>(std::make_unique<DpmSolverSampler>(config));
  }
  return Status::InvalidArgument("unknown sampler '" + std::string(name) + "' (expected ddim, euler or dpmpp_2m)");
}

}  // namespace distri::samplers
