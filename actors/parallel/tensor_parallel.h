// Tensor parallelism of the UNet (Megatron-style), for comparison with patch parallelism, as
// distrifuser's `--parallelism tensor` (docs/DISTRIFUSION.md, "Other parallelisms").
//
// Every rank of the gang holds the full weights (they are loaded anyway) and the full batch and
// image; in each split block it computes only its share and the shares are summed with one
// all-reduce per block:
//   Attention (attn1, attn2)  its share of the heads (h/N, the first h mod N ranks one more:
//                             SDXL's 10 heads on 4 ranks are 3, 3, 2, 2): its rows of to_q/to_k/to_v (one GEMM
//                             for self-attention's fused q|k|v, one for cross-attention's k|v),
//                             SDPA over its heads, its input columns of to_out.0 without the
//                             bias; all-reduce; the bias is added once, after it.
//   FeedForward (GEGLU)       its share of the inner channels (as the heads): those rows of both halves of
//                             net.0.proj (hidden and gate), GEGLU, those input columns of
//                             net.2; all-reduce; + bias.
//   ResnetBlock2D             conv1's output channels [r*c/N, ...) (and time_emb_proj's), norm2
//                             over that slice with groups/N groups (exact: groups are whole
//                             channel ranges), conv2's matching input channels; all-reduce;
//                             + conv2 bias + shortcut. Blocks whose group count the gang does not
//                             divide run replicated (every rank the whole block).
// Everything else (conv_in/out, time and text-time embeddings, down/upsamplers, norm1, the
// transformers' norm/proj_in/proj_out and layer norms, shortcuts) runs replicated.
//
// Hooking (why this way): the split spans whole blocks, so the blocks themselves
// (model/blocks/tensor_parallel_hook.h) call a TensorParallelHook when one is attached, as the
// leaf layers call a LayerContext for patch parallelism. A separate hook, not more virtuals on
// LayerContext, because LayerContext hooks leaves (and cross-attention deliberately has no
// site there) and adding block kinds would renumber the patch contexts' sites. The default
// path (no hook) is unchanged: one null-pointer test per block. The weight slices are taken
// once, when the context is made: row slices are views of the loaded weights; column slices
// and the concatenated q|k|v / hidden|gate rows are copies (about 1/N of those weights).
//
// Sizes: any gang size up to the smallest head count (uneven shares where N does not divide;
// the all-reduced partial sums do not care). A gang larger than a layer's head count or
// feed-forward inner size is InvalidArgument naming the layer and the sizes; every rank refuses
// before any collective, so nothing hangs. Group norms: see above.
// CFG: both halves run on every rank (the batch is not split; ParallelOptions::split_cfg and
// the sync options do not apply). The output is bit-identical on every rank: the replicated
// parts compute the same, and the channel's all-reduce gives every rank the same sum.
//
// Communication: synchronous, stream-ordered all-reduces over the gang's channel
// (AllReduceAsync(...).StreamWait(stream), as the patch path's synchronous exchanges), two per
// transformer block plus one per split attention/resnet block, so the gang can be captured in a
// CUDA graph (NCCL collectives are capturable) and replayed like DisplacedUNetRunner's phases.
// The CPU tests (local channel) cannot check graph capture: it is untested.
//
// Errors during a forward throw TensorParallelError; TensorParallelUNetRunner turns them into a
// Status and aborts the channel so that the other ranks stop waiting.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/model/blocks/tensor_parallel_hook.h"
#include "actors/model/unet/unet_2d_condition.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace at::cuda {
struct CUDAGraph;
}

namespace distri::parallel {

class TensorParallelError : public std::runtime_error {
 public:
  explicit TensorParallelError(Status status) : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// The hook of one rank: this rank's weight slices per split block, and the all-reduce.
class TensorParallelContext : public model::TensorParallelHook,
                              public std::enable_shared_from_this<TensorParallelContext> {
 public:
  // Plans the split of `unet` (its weights on their final device and dtype) for `channel`'s
  // rank and gang size (channel not owned; outlives the context). Does not attach anything.
  // InvalidArgument when the gang has more ranks than a layer has heads or inner channels.
  static Result<std::shared_ptr<TensorParallelContext>> Make(torch::nn::Module& unet, channel::Channel& channel);

  // Attaches this context to the blocks it splits (Attach) or detaches every block (Detach).
  void Attach(torch::nn::Module& unet);
  static void Detach(torch::nn::Module& unet);

  int64_t split_blocks() const { return static_cast<int64_t>(shards_.size()); }
  int64_t replicated_blocks() const { return replicated_blocks_; }  // resnets left whole

  at::Tensor Attention(const model::TensorParallelSite& site, const model::AttentionImpl& attn,
                       const at::Tensor& tokens, const at::Tensor& context) override;
  at::Tensor FeedForward(const model::TensorParallelSite& site, const model::FeedForwardImpl& ff,
                         const at::Tensor& x) override;
  at::Tensor ResnetBlock(const model::TensorParallelSite& site, const model::ResnetBlock2DImpl& block,
                         const at::Tensor& x, const at::Tensor& temb) override;

  // This rank's slices of one block's weights. "in" is the column-parallel first projection
  // (rows of the weight), "out" the row-parallel last one (columns), out_bias its full bias.
  struct Shard {
    std::string name;
    at::Tensor in_weight, in_bias;  // attention: q|k|v (self) or q (cross); ff: hidden|gate; resnet: conv1
    at::Tensor kv_weight, kv_bias;  // cross-attention: k|v
    at::Tensor temb_weight, temb_bias;  // resnet: time_emb_proj rows
    at::Tensor norm_weight, norm_bias;  // resnet: norm2's slice
    at::Tensor out_weight, out_bias;
    int64_t heads = 0;   // attention: this rank's heads
    int64_t groups = 0;  // resnet: norm2's groups in this rank's slice
  };

 private:
  explicit TensorParallelContext(channel::Channel& channel) : channel_(channel) {}
  // Sum of `partial` over the gang, in place; throws TensorParallelError.
  at::Tensor AllReduce(const Shard& shard, at::Tensor partial);

  channel::Channel& channel_;
  std::vector<Shard> shards_;  // by TensorParallelSite::index
  int64_t replicated_blocks_ = 0;
};

// One rank's UNet evaluations under tensor parallelism, the counterpart of DisplacedUNetRunner:
// attaches a TensorParallelContext to `unet` for its lifetime (a gang of one: none), keeps the
// text conditioning in static buffers, and on CUDA (cuda_graphs) runs the first Forward of a
// shape eagerly, captures the second on the current stream (a non-default stream: callers run
// under a CUDAStreamGuard of a pool stream) and replays it afterwards. Serves any number of
// jobs: SetConditioning starts one. Nothing else may run the UNet while the runner exists.
class TensorParallelUNetRunner {
 public:
  // `channel` null = a gang of one (the plain UNet).
  static Result<std::unique_ptr<TensorParallelUNetRunner>> Create(model::UNet2DConditionModel unet,
                                                                  channel::Channel* channel, bool cuda_graphs);
  ~TensorParallelUNetRunner();

  // encoder_hidden_states [B, tokens, dim] of the whole batch (the same on every rank).
  Status SetConditioning(const at::Tensor& encoder_hidden_states,
                         const std::optional<model::UNetAddedConditions>& added);
  // input [B, C, H, W] (the same on every rank), timestep a 0-dim tensor. Returns the full
  // [B, C_out, H, W] on every rank, valid until the next Forward. Errors abort the channel.
  Result<at::Tensor> Forward(const at::Tensor& input, const at::Tensor& timestep);

  // Whether this runner was made for `unet` and `channel` (a generator may keep it for jobs).
  bool Serves(const model::UNet2DConditionModel& unet, const channel::Channel* channel) const {
    return unet_.get() == unet.get() && channel_ == channel;
  }
  const TensorParallelContext* context() const { return context_.get(); }

 private:
  TensorParallelUNetRunner(model::UNet2DConditionModel unet, channel::Channel* channel, bool cuda_graphs,
                           std::shared_ptr<TensorParallelContext> context);
  at::Tensor ForwardOnce(const at::Tensor& input, const at::Tensor& timestep);

  model::UNet2DConditionModel unet_;
  channel::Channel* channel_;
  bool cuda_graphs_;
  std::shared_ptr<TensorParallelContext> context_;  // null for a gang of one
  at::Tensor ehs_;
  std::optional<model::UNetAddedConditions> added_;
  struct Graph {
    int eager_runs = 0;
    std::vector<int64_t> shape;  // of the input it was made for
    std::shared_ptr<at::cuda::CUDAGraph> graph;
    at::Tensor input, timestep, output;
  };
  Graph graph_;
};

}  // namespace distri::parallel
