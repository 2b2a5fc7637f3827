#include "actors/parallel/tensor_parallel.h"

#include <initializer_list>
#include <string>
#include <unordered_map>
#include <algorithm>
#include <utility>

#include "actors/model/blocks/attention.h"
#include "actors/model/blocks/feed_forward.h"
#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"
#include "actors/model/blocks/resnet.h"
#include "actors/parallel/tensor_buffer.h"

#ifdef DISTRI_HAVE_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace distri::parallel {
namespace {

// Rows [start, start + n) of a weight or bias: a view (row ranges of a dense tensor are dense).
at::Tensor Rows(const at::Tensor& t, int64_t start, int64_t n) {
  return t.defined() ? t.narrow(0, start, n) : at::Tensor();
}

// Input columns [start, start + n) of a Linear or Conv2d weight, as a dense copy in the
// weight's memory format (channels_last convolutions stay channels_last).
at::Tensor Columns(const at::Tensor& t, int64_t start, int64_t n) {
  const at::MemoryFormat format = t.suggest_memory_format();
  return t.narrow(1, start, n).contiguous(format);
}

// Rows of several weights stacked into one (one GEMM for q|k|v, k|v, hidden|gate).
at::Tensor StackRows(std::initializer_list<at::Tensor> parts) {
  for (const at::Tensor& p : parts) {
    if (!p.defined()) return at::Tensor();
  }
  return at::cat(parts, 0);
}

// Rank `rank`'s share of `count` units (heads, channels) over `world` ranks: the first
// count % world ranks take one more, so any gang size works (SDXL's 10-head attentions over 4
// ranks: 3, 3, 2, 2 heads). {start, count} in units.
std::pair<int64_t, int64_t> Share(int64_t count, int world, int rank) {
  const int64_t base = count / world, extra = count % world;
  return {rank * base + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

Status TooFew(const std::string& name, const char* what, int64_t count, int world) {
  return Status::InvalidArgument("tensor parallelism: " + name + " has " + std::to_string(count) + " " + what +
                                 ", fewer than the gang's " + std::to_string(world) +
                                 " ranks (every rank needs at least one)");
}

}  // namespace

Result<std::shared_ptr<TensorParallelContext>> TensorParallelContext::Make(torch::nn::Module& unet,
                                                                           channel::Channel& channel) {
  const int world = channel.world_size(), rank = channel.rank();
  std::shared_ptr<TensorParallelContext> ctx(new TensorParallelContext(channel));
  at::NoGradGuard no_grad;
  for (const auto& item : unet.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    torch::nn::Module* module = item.value().get();
    Shard s;
    s.name = item.key();
    if (auto* attn = dynamic_cast<model::AttentionImpl*>(module)) {
      // The spatial form (a VAE's mid-block attention) is not split; the UNet has none.
      if (attn->options.norm_num_groups() > 0) continue;
      const int64_t heads = attn->options.heads();
      if (heads < world) return TooFew(s.name, "attention heads", heads, world);
      const auto [first_head, own_heads] = Share(heads, world, rank);
      s.heads = own_heads;
      const int64_t local = own_heads * attn->options.dim_head(), start = first_head * attn->options.dim_head();
      if (attn->is_cross_attention()) {
        s.in_weight = Rows(attn->to_q->weight, start, local);
        s.in_bias = Rows(attn->to_q->bias, start, local);
        s.kv_weight = StackRows({Rows(attn->to_k->weight, start, local), Rows(attn->to_v->weight, start, local)});
        s.kv_bias = StackRows({Rows(attn->to_k->bias, start, local), Rows(attn->to_v->bias, start, local)});
      } else {
        s.in_weight = StackRows({Rows(attn->to_q->weight, start, local), Rows(attn->to_k->weight, start, local),
                                 Rows(attn->to_v->weight, start, local)});
        s.in_bias = StackRows({Rows(attn->to_q->bias, start, local), Rows(attn->to_k->bias, start, local),
                               Rows(attn->to_v->bias, start, local)});
      }
      s.out_weight = Columns(attn->to_out_0->weight, start, local);
      s.out_bias = attn->to_out_0->bias;
    } else if (auto* ff = dynamic_cast<model::FeedForwardImpl*>(module)) {
      const model::LinearImpl& proj = *ff->geglu->proj;
      const int64_t inner = proj.options.out_features() / 2;
      if (inner < world) return TooFew(s.name, "feed-forward inner channels", inner, world);
      const auto [start, local] = Share(inner, world, rank);
      // GEGLU: rows [0, inner) are the hidden half, [inner, 2 inner) the gate.
      s.in_weight = StackRows({Rows(proj.weight, start, local), Rows(proj.weight, inner + start, local)});
      s.in_bias = StackRows({Rows(proj.bias, start, local), Rows(proj.bias, inner + start, local)});
      s.out_weight = Columns(ff->out->weight, start, local);
      s.out_bias = ff->out->bias;
    } else if (auto* block = dynamic_cast<model::ResnetBlock2DImpl*>(module)) {
      const int64_t groups = block->norm2->options.num_groups();
      const int64_t channels = block->conv1->options.out_channels();
      if (groups % world != 0) {
        ++ctx->replicated_blocks_;  // norm2's groups cannot be dealt out: the block runs whole
        continue;
      }
      const int64_t local = channels / world, start = rank * local;
      s.groups = groups / world;
      s.in_weight = Rows(block->conv1->weight, start, local);
      s.in_bias = Rows(block->conv1->bias, start, local);
      if (block->time_emb_proj) {
        s.temb_weight = Rows(block->time_emb_proj->weight, start, local);
        s.temb_bias = Rows(block->time_emb_proj->bias, start, local);
      }
      s.norm_weight = Rows(block->norm2->weight, start, local);
      s.norm_bias = Rows(block->norm2->bias, start, local);
      s.out_weight = Columns(block->conv2->weight, start, local);
      s.out_bias = block->conv2->bias;
    } else {
      continue;
    }
    ctx->shards_.push_back(std::move(s));
  }
  return ctx;
}

void TensorParallelContext::Attach(torch::nn::Module& unet) {
  std::unordered_map<std::string, int64_t> index;
  for (size_t i = 0; i < shards_.size(); ++i) index[shards_[i].name] = static_cast<int64_t>(i);
  const auto self = std::static_pointer_cast<model::TensorParallelHook>(shared_from_this());
  for (const auto& item : unet.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    auto* block = dynamic_cast<model::TensorParallelBlock*>(item.value().get());
    if (block == nullptr) continue;
    auto it = index.find(item.key());
    if (it == index.end()) {
      block->AttachTensorParallel(nullptr, {});
    } else {
      block->AttachTensorParallel(self, model::TensorParallelSite{item.key(), it->second});
    }
  }
}

void TensorParallelContext::Detach(torch::nn::Module& unet) {
  for (const auto& m : unet.modules(/*include_self=*/true)) {
    if (auto* block = dynamic_cast<model::TensorParallelBlock*>(m.get())) block->AttachTensorParallel(nullptr, {});
  }
}

at::Tensor TensorParallelContext::AllReduce(const Shard& shard, at::Tensor partial) {
  // Any dense layout will do for an element-wise sum, as long as every rank has the same one
  // (they run the same ops on the same shapes).
  partial = partial.contiguous(partial.suggest_memory_format());
  if (!partial.is_non_overlapping_and_dense()) partial = partial.contiguous();
  auto dtype = ChannelDType(partial.scalar_type());
  if (!dtype.ok()) throw TensorParallelError(dtype.status().WithContext("tensor parallelism: " + shard.name));
  channel::Device device = channel::Device::Cpu();
  if (partial.is_cuda()) device = channel::Device::Cuda(partial.get_device());
  const channel::Buffer buffer{partial.data_ptr(), static_cast<size_t>(partial.numel()), *dtype, device};
  void* stream = CurrentStream(partial);
  Status st = channel_.AllReduceAsync(buffer, buffer, channel::ReduceOp::kSum, stream).StreamWait(stream);
  if (!st.ok()) throw TensorParallelError(st.WithContext("tensor parallelism: " + shard.name + ": all-reduce"));
  return partial;
}

at::Tensor TensorParallelContext::Attention(const model::TensorParallelSite& site, const model::AttentionImpl& attn,
                                            const at::Tensor& tokens, const at::Tensor& context) {
  const Shard& s = shards_[static_cast<size_t>(site.index)];
  const int64_t batch = tokens.size(0), dim_head = attn.options.dim_head(), local = s.heads * dim_head;
  at::Tensor q, k, v;
  if (context.defined()) {
    // Not cached across steps (unlike AttentionImpl's cross K/V): recomputing the text tokens'
    // slice is cheap, and a CUDA graph replay then always reads the current static text buffer.
    q = model::TunedLinear(tokens, s.in_weight, s.in_bias);
    at::Tensor kv = model::TunedLinear(context, s.kv_weight, s.kv_bias);
    k = kv.narrow(2, 0, local);
    v = kv.narrow(2, local, local);
  } else {
    at::Tensor qkv = model::TunedLinear(tokens, s.in_weight, s.in_bias);
    q = qkv.narrow(2, 0, local);
    k = qkv.narrow(2, local, local);
    v = qkv.narrow(2, 2 * local, local);
  }
  q = q.view({batch, -1, s.heads, dim_head}).transpose(1, 2);
  k = k.view({batch, -1, s.heads, dim_head}).transpose(1, 2);
  v = v.view({batch, -1, s.heads, dim_head}).transpose(1, 2);
  at::Tensor out = model::ScaledDotProductAttention(q, k, v, /*cross=*/context.defined());
  out = out.transpose(1, 2).reshape({batch, -1, local});
  out = AllReduce(s, model::TunedLinear(out, s.out_weight, {}));
  return out.add_(s.out_bias);
}

at::Tensor TensorParallelContext::FeedForward(const model::TensorParallelSite& site, const model::FeedForwardImpl&,
                                              const at::Tensor& x) {
  const Shard& s = shards_[static_cast<size_t>(site.index)];
  at::Tensor h = model::FusedGeglu(model::TunedLinear(x, s.in_weight, s.in_bias));
  at::Tensor out = AllReduce(s, model::TunedLinear(h, s.out_weight, {}));
  return out.add_(s.out_bias);
}

at::Tensor TensorParallelContext::ResnetBlock(const model::TensorParallelSite& site,
                                              const model::ResnetBlock2DImpl& block, const at::Tensor& x,
                                              const at::Tensor& temb) {
  const Shard& s = shards_[static_cast<size_t>(site.index)];
  at::Tensor t;
  if (block.time_emb_proj) {
    TORCH_CHECK(temb.defined(), "ResnetBlock2D: this block has a time embedding projection but temb is undefined");
    t = model::TunedLinear(at::silu(temb), s.temb_weight, s.temb_bias).unsqueeze(-1).unsqueeze(-1);
  }
  const model::Conv2dOptions& c1 = block.conv1->options;
  at::Tensor h = model::FusedConvAdd(block.norm1->ForwardSilu(x), s.in_weight, s.in_bias, c1.stride(), c1.padding(), t);
  h = model::FusedGroupNorm(h, s.groups, s.norm_weight, s.norm_bias, block.norm2->options.eps(), /*silu=*/true);
  const model::Conv2dOptions& c2 = block.conv2->options;
  at::Tensor out = at::conv2d(h, s.out_weight, {}, {c2.stride(), c2.stride()}, {c2.padding(), c2.padding()});
  out = AllReduce(s, std::move(out));
  if (s.out_bias.defined()) out.add_(s.out_bias.view({1, -1, 1, 1}));
  out.add_(block.conv_shortcut ? block.conv_shortcut->forward(x) : x);
  if (block.options.output_scale_factor() != 1.0) out.div_(block.options.output_scale_factor());
  return out;
}

// ---- TensorParallelUNetRunner

Result<std::unique_ptr<TensorParallelUNetRunner>> TensorParallelUNetRunner::Create(model::UNet2DConditionModel unet,
                                                                                   channel::Channel* channel,
                                                                                   bool cuda_graphs) {
  std::shared_ptr<TensorParallelContext> context;
  if (channel && channel->world_size() > 1) {
    DISTRI_ASSIGN_OR_RETURN(context, TensorParallelContext::Make(*unet, *channel));
  }
  return std::unique_ptr<TensorParallelUNetRunner>(
      new TensorParallelUNetRunner(std::move(unet), channel, cuda_graphs, std::move(context)));
}

TensorParallelUNetRunner::TensorParallelUNetRunner(model::UNet2DConditionModel unet, channel::Channel* channel,
                                                   bool cuda_graphs, std::shared_ptr<TensorParallelContext> context)
    : unet_(std::move(unet)), channel_(channel), cuda_graphs_(cuda_graphs), context_(std::move(context)) {
  if (context_) context_->Attach(*unet_);
}

TensorParallelUNetRunner::~TensorParallelUNetRunner() {
  if (context_) TensorParallelContext::Detach(*unet_);
}

Status TensorParallelUNetRunner::SetConditioning(const at::Tensor& encoder_hidden_states,
                                                 const std::optional<model::UNetAddedConditions>& added) {
  if (encoder_hidden_states.dim() != 3) {
    return Status::InvalidArgument("tensor parallelism: the text conditioning must be [b, tokens, dim]");
  }
  const bool same_shapes =
      ehs_.defined() && ehs_.sizes() == encoder_hidden_states.sizes() && ehs_.dtype() == encoder_hidden_states.dtype() &&
      ehs_.device() == encoder_hidden_states.device() && added_.has_value() == added.has_value() &&
      (!added || (added_->text_embeds.sizes() == added->text_embeds.sizes() &&
                  added_->time_ids.sizes() == added->time_ids.sizes()));
  if (!same_shapes) {
    // New static buffers: a graph captured with the old ones must go.
    ehs_ = encoder_hidden_states.contiguous().clone();
    added_.reset();
    if (added) added_ = model::UNetAddedConditions{added->text_embeds.clone(), added->time_ids.clone()};
    graph_ = Graph();
    return Status::Ok();
  }
  // In place: a captured graph reads these buffers (and computes the cross-attention K/V from
  // them on every replay).
  ehs_.copy_(encoder_hidden_states);
  if (added) {
    added_->text_embeds.copy_(added->text_embeds);
    added_->time_ids.copy_(added->time_ids);
  }
  return Status::Ok();
}

at::Tensor TensorParallelUNetRunner::ForwardOnce(const at::Tensor& input, const at::Tensor& timestep) {
  return unet_->forward(input, timestep, ehs_, added_);
}

Result<at::Tensor> TensorParallelUNetRunner::Forward(const at::Tensor& input, const at::Tensor& timestep) {
  if (!ehs_.defined()) return Status::FailedPrecondition("tensor parallelism: Forward before SetConditioning");
  if (input.dim() != 4 || input.size(0) != ehs_.size(0)) {
    return Status::InvalidArgument("tensor parallelism: expected a [" + std::to_string(ehs_.size(0)) +
                                   ", C, H, W] input (as many rows as the conditioning), got a " +
                                   std::to_string(input.dim()) + "-d input");
  }
  Status failure;
  at::Tensor out;
  try {
#ifdef DISTRI_HAVE_CUDA
    const bool graphs = cuda_graphs_ && input.is_cuda();
#else
    const bool graphs = false;
#endif
    if (graphs && graph_.shape != input.sizes().vec()) {
      graph_ = Graph();
      graph_.shape = input.sizes().vec();
    }
    if (!graphs || graph_.eager_runs == 0) {
      ++graph_.eager_runs;
      out = ForwardOnce(input, timestep);
    } else {
#ifdef DISTRI_HAVE_CUDA
      if (!graph_.graph) {
        graph_.input = input.clone();
        graph_.timestep = timestep.to(input.device()).clone();
        auto graph = std::make_shared<at::cuda::CUDAGraph>();
        graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
        graph_.output = ForwardOnce(graph_.input, graph_.timestep);
        graph->capture_end();
        graph_.graph = std::move(graph);
      }
      graph_.input.copy_(input);
      graph_.timestep.copy_(timestep);
      graph_.graph->replay();
      out = graph_.output;
#endif
    }
  } catch (const TensorParallelError& e) {
    failure = e.status();
  } catch (const std::exception& e) {
    failure = Status::Internal(std::string("tensor-parallel UNet forward on rank ") +
                               std::to_string(channel_ ? channel_->rank() : 0) + ": " + e.what());
  }
  if (!failure.ok()) {
    if (channel_) channel_->Abort(failure.ToString());
    return failure;
  }
  return out;
}

}  // namespace distri::parallel
