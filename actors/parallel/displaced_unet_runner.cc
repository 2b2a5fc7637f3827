#include "actors/parallel/displaced_unet_runner.h"

#include <optional>
#include <string>
#include <vector>

#include "actors/parallel/tensor_buffer.h"

#ifdef DISTRI_HAVE_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace distri::parallel {

Result<std::unique_ptr<DisplacedUNetRunner>> DisplacedUNetRunner::Create(model::UNet2DConditionModel unet,
                                                                         channel::Channel* channel, GangLayout layout,
                                                                         int64_t latent_height, int64_t latent_width,
                                                                         RunnerOptions options,
                                                                         channel::Channel* group_channel) {
  const int world = channel ? channel->world_size() : 1;
  if (layout.groups < 1 || layout.patch_ranks < 1 || layout.world_size() != world) {
    return Status::InvalidArgument("patch parallelism: a layout of " + std::to_string(layout.groups) + " group(s) x " +
                                   std::to_string(layout.patch_ranks) + " rank(s) does not fit a gang of " +
                                   std::to_string(world));
  }
  DISTRI_ASSIGN_OR_RETURN(PatchPlan plan, PatchPlan::Make(latent_height, latent_width, layout.patch_ranks,
                                                          static_cast<int>(unet->num_upsamplers())));
  if (group_channel && (group_channel->world_size() != layout.patch_ranks ||
                        group_channel->rank() != layout.strip_of(channel->rank()))) {
    return Status::InvalidArgument("patch parallelism: the group channel must have the group's " +
                                   std::to_string(layout.patch_ranks) + " ranks with rank = strip");
  }
  if (options.warmup_steps < 1) options.warmup_steps = 1;
  return std::unique_ptr<DisplacedUNetRunner>(
      new DisplacedUNetRunner(std::move(unet), channel, layout, std::move(plan), options, group_channel));
}

DisplacedUNetRunner::DisplacedUNetRunner(model::UNet2DConditionModel unet, channel::Channel* channel,
                                         GangLayout layout, PatchPlan plan, RunnerOptions options,
                                         channel::Channel* group_channel)
    : unet_(std::move(unet)), channel_(channel), group_channel_(group_channel), layout_(layout), plan_(std::move(plan)), options_(options) {
  rank_ = channel_ ? channel_->rank() : 0;
  group_ = layout_.group_of(rank_);
  strip_ = layout_.strip_of(rank_);
  if (layout_.patch_ranks > 1) {
    if (group_channel) {
      context_ = std::make_shared<DisplacedPatchContext>(*group_channel, plan_, GangLayout{1, layout_.patch_ranks},
                                                         options_.context);
    } else {
      context_ = std::make_shared<DisplacedPatchContext>(*channel_, plan_, layout_, options_.context);
    }
    model::AttachLayerContext(*unet_, context_);
  }
}

DisplacedUNetRunner::~DisplacedUNetRunner() {
  if (context_) model::AttachLayerContext(*unet_, nullptr);
}

Status DisplacedUNetRunner::SetConditioning(const at::Tensor& encoder_hidden_states,
                                            const std::optional<model::UNetAddedConditions>& added) {
  if (encoder_hidden_states.dim() != 3 || encoder_hidden_states.size(0) % layout_.groups != 0) {
    return Status::InvalidArgument("patch parallelism: the text conditioning must be [groups * b, tokens, dim] with " +
                                   std::to_string(layout_.groups) + " group(s)");
  }
  const int64_t b = encoder_hidden_states.size(0) / layout_.groups;
  at::Tensor ehs = encoder_hidden_states.narrow(0, group_ * b, b);
  std::optional<model::UNetAddedConditions> mine;
  if (added) {
    mine = model::UNetAddedConditions{added->text_embeds.narrow(0, group_ * b, b),
                                      added->time_ids.narrow(0, group_ * b, b)};
  }
  const bool same_shapes = ehs_.defined() && ehs_.sizes() == ehs.sizes() && ehs_.dtype() == ehs.dtype() &&
                           ehs_.device() == ehs.device() && added_.has_value() == mine.has_value() &&
                           (!mine || (added_->text_embeds.sizes() == mine->text_embeds.sizes() &&
                                      added_->time_ids.sizes() == mine->time_ids.sizes()));
  if (!same_shapes) {
    // New static buffers: graphs captured with the old ones must go.
    ehs_ = ehs.contiguous().clone();
    added_.reset();
    if (mine) added_ = model::UNetAddedConditions{mine->text_embeds.clone(), mine->time_ids.clone()};
    for (Phase& p : phases_) p = Phase();
    return Status::Ok();
  }
  ehs_.copy_(ehs);
  if (mine) {
    added_->text_embeds.copy_(mine->text_embeds);
    added_->time_ids.copy_(mine->time_ids);
  }
  // The cross-attention K/V caches hold ehs_: refresh them in place; if another context took
  // them over meanwhile, the captured graphs read storage that is gone: capture anew.
  if (!model::RecomputeCrossKeyValues(*unet_, ehs_)) {
    for (Phase& p : phases_) p = Phase();
  }
  return Status::Ok();
}

at::Tensor DisplacedUNetRunner::GatherOutput(const at::Tensor& strip_out) {
  if (layout_.world_size() == 1) return strip_out;
  // Row-major so that the strips of a group concatenate in image order: [rows, b, C, W]; the
  // gang's ranks are ordered by group, then strip.
  std::vector<int64_t> rows_per_rank;
  for (int r = 0; r < layout_.world_size(); ++r) rows_per_rank.push_back(plan_.rows(layout_.strip_of(r), 0).rows());
  auto all = AllGatherRows(*channel_, strip_out.permute({2, 0, 1, 3}), rows_per_rank);
  if (!all.ok()) throw PatchParallelError(all.status().WithContext("patch parallelism: output all-gather"));
  const int64_t h = plan_.height(0);
  std::vector<at::Tensor> groups;
  for (int g = 0; g < layout_.groups; ++g) groups.push_back(all->narrow(0, g * h, h).permute({1, 2, 0, 3}));
  return at::cat(groups, 0).contiguous();
}

DisplacedUNetRunner::GraphNodes DisplacedUNetRunner::graph_nodes(int phase) const {
  GraphNodes n;
#ifdef DISTRI_HAVE_CUDA
  if (phase < 0 || phase > 1 || !phases_[phase].graph) return n;
  cudaGraph_t g = phases_[phase].graph->raw_cuda_graph();
  size_t count = 0;
  if (g == nullptr || cudaGraphGetNodes(g, nullptr, &count) != cudaSuccess) return n;
  std::vector<cudaGraphNode_t> nodes(count);
  if (count > 0 && cudaGraphGetNodes(g, nodes.data(), &count) != cudaSuccess) return n;
  n.total = static_cast<int64_t>(count);
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type;
    if (cudaGraphNodeGetType(node, &type) != cudaSuccess) continue;
    if (type == cudaGraphNodeTypeKernel) ++n.kernels;
    else if (type == cudaGraphNodeTypeMemcpy) ++n.memcpy;
    else if (type == cudaGraphNodeTypeMemset) ++n.memset;
    else ++n.other;
  }
#else
  (void)phase;
#endif
  return n;
}

at::Tensor DisplacedUNetRunner::ForwardOnce(bool synchronous, const at::Tensor& input, const at::Tensor& timestep) {
  const int64_t b = input.size(0) / layout_.groups;
  at::Tensor mine = input.narrow(0, group_ * b, b);
  const RowRange rows = plan_.rows(strip_, 0);
  const bool channels_last = options_.channels_last.value_or(input.is_cuda());
  at::Tensor strip = mine.narrow(2, rows.start, rows.rows())
                         .contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  if (context_) {
    context_->SetFullInput(mine);
    context_->BeginStep(synchronous);
  }
  at::Tensor out = unet_->forward(strip, timestep, ehs_, added_);
  if (context_) context_->EndStep();
  return GatherOutput(out.contiguous());
}

Result<at::Tensor> DisplacedUNetRunner::Forward(int step, const at::Tensor& input, const at::Tensor& timestep) {
  if (!ehs_.defined()) return Status::FailedPrecondition("patch parallelism: Forward before SetConditioning");
  if (input.dim() != 4 || input.size(0) != ehs_.size(0) * layout_.groups || input.size(2) != plan_.height(0) ||
      input.size(3) != plan_.width(0)) {
    return Status::InvalidArgument("patch parallelism: expected a [" + std::to_string(layout_.groups) + "*b, C, " +
                                   std::to_string(plan_.height(0)) + ", " + std::to_string(plan_.width(0)) +
                                   "] input with as many conditioning rows, got " + std::to_string(input.dim()) +
                                   "-d input of batch " + std::to_string(input.size(0)));
  }
  if (context_) {
    // A peer-exchange wait that gave up on the GPU in an earlier step (a rank stopped).
    const Status exchange = context_->CheckExchange();
    if (!exchange.ok()) return exchange;
  }
  const bool synchronous = step < options_.warmup_steps || options_.context.mode == SyncMode::kFullSync;
  Phase& phase = phases_[synchronous ? 0 : 1];
  Status failure;
  at::Tensor out;
  try {
#ifdef DISTRI_HAVE_CUDA
    const bool graphs = options_.cuda_graphs && input.is_cuda();
#else
    const bool graphs = false;
#endif
    if (!graphs || phase.eager_runs == 0) {
      ++phase.eager_runs;
      out = ForwardOnce(synchronous, input, timestep);
    } else {
#ifdef DISTRI_HAVE_CUDA
      if (!phase.graph) {
        phase.input = input.clone();
        phase.timestep = timestep.to(input.device()).clone();
        // keep_graph: the captured graph stays inspectable (graph_nodes) after instantiation.
        auto graph = std::make_shared<at::cuda::CUDAGraph>(/*keep_graph=*/true);
        // Both phases share one memory pool: they are captured and replayed in the same order
        // and never overlap.
        const Phase& other = phases_[synchronous ? 1 : 0];
        // LibTorch captures only on a non-default stream; a caller on the default stream gets
        // the capture on a pool stream, and the replays below run on its own stream as usual.
        std::optional<c10::cuda::CUDAStreamGuard> capture_stream;
        if (c10::cuda::getCurrentCUDAStream() == c10::cuda::getDefaultCUDAStream()) {
          capture_stream.emplace(c10::cuda::getStreamFromPool());
        }
        if (other.graph) {
          graph->capture_begin(other.graph->pool(), cudaStreamCaptureModeThreadLocal);
        } else {
          graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
        }
        try {
          phase.output = ForwardOnce(synchronous, phase.input, phase.timestep);
        } catch (...) {
          // End the capture, so that the capturing stream (perhaps a pool stream other code
          // gets later) is usable again; the graph is discarded.
          try {
            graph->capture_end();
          } catch (...) {
          }
          throw;
        }
        graph->capture_end();
        capture_stream.reset();
        phase.graph = std::move(graph);
      }
      phase.input.copy_(input);
      phase.timestep.copy_(timestep);
      phase.graph->replay();
      out = phase.output;
#endif
    }
  } catch (const PatchParallelError& e) {
    failure = e.status();
  } catch (const std::exception& e) {
    failure = Status::Internal("patch-parallel UNet step " + std::to_string(step) + " on rank " +
                               std::to_string(rank_) + ": " + e.what());
  }
  if (!failure.ok()) {
    if (channel_) channel_->Abort(failure.ToString());
    if (group_channel_) group_channel_->Abort(failure.ToString());
    return failure;
  }
  return out;
}

}  // namespace distri::parallel
