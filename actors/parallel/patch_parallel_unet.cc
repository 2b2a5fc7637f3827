#include "actors/parallel/patch_parallel_unet.h"

#include <memory>
#include <string>
#include <vector>

#include "actors/parallel/displaced_patch_context.h"
#include "actors/parallel/tensor_buffer.h"

namespace distri::parallel {
namespace {

std::string Shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Detaches the context from every hooked layer when a forward leaves, however it leaves.
struct DetachGuard {
  torch::nn::Module& model;
  ~DetachGuard() { model::AttachLayerContext(model, nullptr); }
};

}  // namespace

Result<at::Tensor> RunPatchParallelForward(torch::nn::Module& model, channel::Channel& channel, const PatchPlan& plan,
                                           const at::Tensor& sample,
                                           const std::function<at::Tensor(const at::Tensor&)>& forward) {
  if (channel.world_size() != plan.world_size()) {
    return Status::InvalidArgument("patch-parallel forward: the plan has " + std::to_string(plan.world_size()) +
                                   " ranks, the channel " + std::to_string(channel.world_size()));
  }
  if (sample.dim() != 4 || sample.size(2) != plan.height(0) || sample.size(3) != plan.width(0)) {
    return Status::InvalidArgument("patch-parallel forward: expected a [B, C, " + std::to_string(plan.height(0)) +
                                   ", " + std::to_string(plan.width(0)) + "] latent (plan " + plan.ToString() +
                                   "), got " + Shape(sample));
  }
  const int rank = channel.rank();
  const RowRange rows = plan.rows(rank, 0);
  auto ctx = std::make_shared<DisplacedPatchContext>(channel, plan, GangLayout{1, plan.world_size()},
                                                     DisplacedOptions{SyncMode::kFullSync, false});
  ctx->SetFullInput(sample);
  at::Tensor out;
  {
    model::AttachLayerContext(model, ctx);
    DetachGuard detach{model};
    Status failure;
    try {
      ctx->BeginStep(/*synchronous=*/true);
      out = forward(sample.narrow(2, rows.start, rows.rows()).contiguous());
      ctx->EndStep();
    } catch (const PatchParallelError& e) {
      failure = e.status();
    } catch (const std::exception& e) {
      failure = Status::Internal(std::string("patch-parallel forward on rank ") + std::to_string(rank) + ": " + e.what());
    }
    if (!failure.ok()) {
      channel.Abort(failure.ToString());
      return failure;
    }
  }
  if (out.dim() != 4 || out.size(2) != rows.rows() || out.size(3) != plan.width(0)) {
    Status failure = Status::InvalidArgument("patch-parallel forward: rank " + std::to_string(rank) + " expected a [B, C, " +
                                             std::to_string(rows.rows()) + ", " + std::to_string(plan.width(0)) +
                                             "] strip from the model, got " + Shape(out));
    channel.Abort(failure.ToString());
    return failure;
  }
  // Row-major so the strips concatenate in image order: [rows, B, C, W].
  std::vector<int64_t> rows_per_rank;
  for (int r = 0; r < plan.world_size(); ++r) rows_per_rank.push_back(plan.rows(r, 0).rows());
  auto all = AllGatherRows(channel, out.permute({2, 0, 1, 3}), rows_per_rank);
  if (!all.ok()) return all.status().WithContext("patch-parallel forward: output all-gather");
  return all->permute({1, 2, 0, 3}).contiguous();
}

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
