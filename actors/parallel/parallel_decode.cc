#include "actors/parallel/parallel_decode.h"

#include <memory>
#include <string>
#include <vector>

#include "actors/model/blocks/layer_context.h"
#include "actors/parallel/displaced_patch_context.h"
#include "actors/parallel/tensor_buffer.h"

namespace distri::parallel {

Result<at::Tensor> PatchParallelDecode(model::AutoencoderKL& vae, channel::Channel& channel, const at::Tensor& latents,
                                       std::optional<at::ScalarType> compute_dtype) {
  if (latents.dim() != 4 || latents.size(0) != 1) {
    return Status::InvalidArgument("patch-parallel decode takes one latent [1, C, h, w]");
  }
  const int world = channel.world_size(), rank = channel.rank();
  const int64_t levels = vae->options().num_levels(), f = vae->options().downscale_factor();
  const int64_t h = latents.size(2), w = latents.size(3);
  // Strips are planned on the image: level `levels - 1` of the plan is the latent, and every
  // upsampler doubles a strip's rows exactly (boundaries are multiples of f image rows).
  DISTRI_ASSIGN_OR_RETURN(PatchPlan plan, PatchPlan::Make(h * f, w * f, world, static_cast<int>(levels - 1)));
  const RowRange rows = plan.rows(rank, static_cast<int>(levels - 1));
  auto ctx = std::make_shared<DisplacedPatchContext>(channel, plan, GangLayout{1, world},
                                                     DisplacedOptions{SyncMode::kFullSync, false});
  torch::nn::Module& module = vae->DecodeModule(compute_dtype);
  at::Tensor strip;
  Status failure;
  {
    model::AttachLayerContext(module, ctx);
    try {
      ctx->BeginStep(/*synchronous=*/true);
      at::Tensor z = vae->UnscaleLatents(latents.narrow(2, rows.start, rows.rows()).contiguous());
      strip = vae->Decode(z, compute_dtype);
      ctx->EndStep();
    } catch (const PatchParallelError& e) {
      failure = e.status();
    } catch (const std::exception& e) {
      failure = Status::Internal(std::string("patch-parallel decode on rank ") + std::to_string(rank) + ": " + e.what());
    }
    model::AttachLayerContext(module, nullptr);
  }
  if (!failure.ok()) {
    channel.Abort(failure.ToString());
    return failure;
  }
  // Row-major so that the strips concatenate in image order: [rows, C, W].
  std::vector<int64_t> rows_per_rank;
  for (int r = 0; r < world; ++r) rows_per_rank.push_back(plan.rows(r, 0).rows());
  auto all = AllGatherRows(channel, strip[0].permute({1, 0, 2}), rows_per_rank);
  if (!all.ok()) {
    channel.Abort(all.status().ToString());
    return all.status().WithContext("patch-parallel decode: image all-gather");
  }
  return all->permute({1, 0, 2}).unsqueeze(0).contiguous();
}

}  // namespace distri::parallel
