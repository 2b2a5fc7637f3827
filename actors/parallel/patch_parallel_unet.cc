#include "actors/parallel/patch_parallel_unet.h"

#include "actors/parallel/sync_patch_context.h"

namespace distri::parallel {

Result<PatchPlan> PlanForUNet(const model::UNet2DConditionModelImpl& unet, int64_t height, int64_t width,
                              int world_size) {
  return PatchPlan::Make(height, width, world_size, static_cast<int>(unet.num_upsamplers()));
}

Result<at::Tensor> PatchParallelUNetForward(model::UNet2DConditionModel& unet, channel::Channel& channel,
                                            const PatchPlan& plan, const at::Tensor& sample,
                                            const at::Tensor& timestep, const at::Tensor& encoder_hidden_states,
                                            const std::optional<model::UNetAddedConditions>& added) {
  if (plan.num_downsamplings() != unet->num_upsamplers()) {
    return Status::InvalidArgument("patch-parallel UNet: the plan's strips are aligned to " +
                                   std::to_string(plan.num_downsamplings()) + " downsampling(s), the UNet has " +
                                   std::to_string(unet->num_upsamplers()));
  }
  return RunPatchParallelForward(*unet, channel, plan, sample, [&](const at::Tensor& strip) {
    return unet->forward(strip, timestep, encoder_hidden_states, added);
  });
}

}  // namespace distri::parallel
