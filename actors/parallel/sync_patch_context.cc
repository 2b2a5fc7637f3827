#include "actors/parallel/sync_patch_context.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "actors/model/blocks/layers.h"
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

SyncPatchContext::SyncPatchContext(channel::Channel& channel, PatchPlan plan)
    : channel_(channel), plan_(std::move(plan)), rank_(channel.rank()) {}

void SyncPatchContext::Fail(Status status) {
  if (status_.ok()) status_ = status;
  throw PatchParallelError(std::move(status));
}

at::Tensor SyncPatchContext::Conv2d(const model::LayerSite& site, const model::Conv2dImpl& conv, const at::Tensor& x) {
  const int64_t kernel = conv.options.kernel_size(), pad = conv.options.padding(), stride = conv.options.stride();
  if (kernel == 1 && pad == 0) return conv.Compute(x);
  if (pad != (kernel - 1) / 2) {
    Fail(Status::Unimplemented(site.name + ": patch-parallel convolution needs 'same' padding, got kernel " +
                               std::to_string(kernel) + " padding " + std::to_string(pad)));
  }
  at::Tensor padded = (site.index == 0 && site.name == "conv_in" && full_input_.defined())
                          ? SliceFullInput(site, x, pad)
                          : HaloExchange(site, x, pad);
  // The halo replaces the vertical zero padding; horizontal padding is the layer's own.
  const int64_t strides[2] = {stride, stride}, paddings[2] = {0, pad};
  return at::conv2d(padded, conv.weight, conv.bias, at::IntArrayRef(strides), at::IntArrayRef(paddings));
}

at::Tensor SyncPatchContext::SliceFullInput(const model::LayerSite& site, const at::Tensor& x, int64_t pad) {
  const RowRange rows = plan_.rows(rank_, 0);
  if (full_input_.dim() != 4 || x.dim() != 4 || full_input_.size(2) != plan_.height(0) ||
      x.size(2) != rows.rows() || x.size(3) != full_input_.size(3)) {
    Fail(Status::InvalidArgument(site.name + ": expected this rank's strip of the full input " + Shape(full_input_) +
                                 " (rows " + std::to_string(rows.start) + ".." + std::to_string(rows.end) +
                                 "), got " + Shape(x)));
  }
  const int64_t begin = std::max<int64_t>(rows.start - pad, 0), end = std::min(rows.end + pad, plan_.height(0));
  at::Tensor slice = full_input_.narrow(2, begin, end - begin).to(x.dtype());
  return at::constant_pad_nd(slice, {0, 0, begin - (rows.start - pad), rows.end + pad - end});
}

at::Tensor SyncPatchContext::HaloExchange(const model::LayerSite& site, const at::Tensor& x, int64_t pad) {
  if (x.dim() != 4 || x.size(2) < pad) {
    Fail(Status::InvalidArgument(site.name + ": a halo of " + std::to_string(pad) +
                                 " row(s) needs a [B, C, rows >= " + std::to_string(pad) + ", W] strip, got " +
                                 Shape(x)));
  }
  const int world = plan_.world_size();
  const int64_t rows = x.size(2);
  at::Tensor top_halo, bottom_halo;
  if (world > 1) {
    at::Tensor send = at::cat({x.narrow(2, 0, pad), x.narrow(2, rows - pad, pad)}, 2).contiguous();
    std::vector<int64_t> recv_shape{world};
    for (int64_t d : send.sizes()) recv_shape.push_back(d);
    at::Tensor recv = at::empty(recv_shape, send.options());
    auto send_buf = TensorBuffer(send);
    auto recv_buf = TensorBuffer(recv);
    if (!send_buf.ok()) Fail(send_buf.status().WithContext(site.name));
    if (!recv_buf.ok()) Fail(recv_buf.status().WithContext(site.name));
    Status st = channel_.AllGather(*send_buf, *recv_buf);
    if (!st.ok()) Fail(st.WithContext(site.name + ": halo all-gather"));
    if (rank_ > 0) top_halo = recv[rank_ - 1].narrow(2, pad, pad);
    if (rank_ + 1 < world) bottom_halo = recv[rank_ + 1].narrow(2, 0, pad);
  }
  // Zero rows at the image's top and bottom: the layer's own padding there.
  if (!top_halo.defined()) top_halo = at::zeros({x.size(0), x.size(1), pad, x.size(3)}, x.options());
  if (!bottom_halo.defined()) bottom_halo = at::zeros({x.size(0), x.size(1), pad, x.size(3)}, x.options());
  return at::cat({top_halo, x, bottom_halo}, 2);
}

std::pair<at::Tensor, at::Tensor> SyncPatchContext::GroupStats(const model::LayerSite& site, const at::Tensor& x,
                                                               int64_t groups) {
  const int64_t batch = x.size(0), rows = x.size(2);
  const int world = plan_.world_size();
  at::Tensor xg = x.reshape({batch, groups, -1}).to(at::kDouble);
  const int64_t per_row = xg.size(2) / rows;  // (C / G) * W elements of one group in one row
  at::Tensor mean = xg.mean(2);
  at::Tensor m2 = (xg - mean.unsqueeze(2)).square().sum(2);
  if (world == 1) return {mean, m2 / static_cast<double>(xg.size(2))};
  // Packet of one rank: [rows, mean (B*G), M2 (B*G)] in f32 (the channel has no f64); the
  // statistics are combined in double below, so f32 only rounds each rank's summary once.
  at::Tensor packet = at::cat({at::full({1}, static_cast<double>(rows), xg.options()), mean.flatten(), m2.flatten()})
                          .to(at::kFloat)
                          .contiguous();
  at::Tensor recv = at::empty({world, packet.numel()}, packet.options());
  auto send_buf = TensorBuffer(packet);
  auto recv_buf = TensorBuffer(recv);
  if (!send_buf.ok()) Fail(send_buf.status().WithContext(site.name));
  if (!recv_buf.ok()) Fail(recv_buf.status().WithContext(site.name));
  Status st = channel_.AllGather(*send_buf, *recv_buf);
  if (!st.ok()) Fail(st.WithContext(site.name + ": group-norm statistics all-gather"));
  at::Tensor all = recv.to(at::kDouble);
  const int64_t bg = batch * groups;
  // Chan et al.: merging (n_a, mean_a, M2_a) and (n_b, mean_b, M2_b) gives
  // M2 = M2_a + M2_b + delta^2 * n_a * n_b / n, delta = mean_b - mean_a; in rank order.
  double n = 0;
  at::Tensor total_mean = at::zeros({bg}, all.options()), total_m2 = at::zeros({bg}, all.options());
  for (int r = 0; r < world; ++r) {
    const double n_r = all[r][0].item<double>() * static_cast<double>(per_row);
    at::Tensor mean_r = all[r].narrow(0, 1, bg), m2_r = all[r].narrow(0, 1 + bg, bg);
    const double n_new = n + n_r;
    at::Tensor delta = mean_r - total_mean;
    total_m2 = total_m2 + m2_r + delta.square() * (n * n_r / n_new);
    total_mean = total_mean + delta * (n_r / n_new);
    n = n_new;
  }
  return {total_mean.view({batch, groups}), (total_m2 / n).view({batch, groups})};
}

at::Tensor SyncPatchContext::GroupNorm(const model::LayerSite& site, const model::GroupNormImpl& norm,
                                       const at::Tensor& x) {
  const int64_t groups = norm.options.num_groups();
  if (x.dim() != 4 || x.size(1) % groups != 0 || x.size(2) == 0) {
    Fail(Status::InvalidArgument(site.name + ": patch-parallel group norm takes a [B, C, rows, W] strip with C a "
                                 "multiple of " + std::to_string(groups) + " groups, got " + Shape(x)));
  }
  auto [mean, var] = GroupStats(site, x, groups);
  // Normalise in float (double for double inputs), as nn.GroupNorm's CPU/CUDA kernels do.
  const at::ScalarType math = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t batch = x.size(0), channels = x.size(1);
  at::Tensor rstd = (var + norm.options.eps()).rsqrt().to(math).view({batch, groups, 1});
  at::Tensor xg = x.to(math).reshape({batch, groups, -1});
  at::Tensor y = ((xg - mean.to(math).view({batch, groups, 1})) * rstd).view(x.sizes());
  y = y * norm.weight.to(math).view({1, channels, 1, 1}) + norm.bias.to(math).view({1, channels, 1, 1});
  return y.to(x.scalar_type()).contiguous();
}

at::Tensor SyncPatchContext::GatherKeyValue(const model::LayerSite& site, const at::Tensor& kv) {
  const int world = plan_.world_size();
  const int64_t batch = kv.size(0), tokens = kv.size(1), width = kv.size(2);
  // Which level is this? The one where this rank's strip has `tokens` tokens; the other ranks'
  // token counts follow from the plan.
  std::vector<int64_t> per_rank;
  for (int l = 0; l < plan_.num_levels(); ++l) {
    if (plan_.rows(rank_, l).rows() * plan_.width(l) != tokens) continue;
    std::vector<int64_t> counts;
    for (int r = 0; r < world; ++r) counts.push_back(plan_.rows(r, l).rows() * plan_.width(l));
    if (!per_rank.empty() && per_rank != counts) {
      Fail(Status::InvalidArgument(site.name + ": " + std::to_string(tokens) +
                                   " tokens match several levels of the plan " + plan_.ToString() +
                                   " with different strips; cannot tell the other ranks' token counts"));
    }
    per_rank = std::move(counts);
  }
  if (per_rank.empty()) {
    Fail(Status::InvalidArgument(site.name + ": " + std::to_string(tokens) +
                                 " self-attention tokens are no level's strip of rank " + std::to_string(rank_) +
                                 " in the plan " + plan_.ToString()));
  }
  // Token-major so that the ranks' blocks concatenate in image row order.
  at::Tensor send = kv.transpose(0, 1).contiguous();  // [tokens, B, width]
  int64_t total = 0;
  std::vector<size_t> counts;
  for (int64_t t : per_rank) {
    total += t;
    counts.push_back(static_cast<size_t>(t * batch * width));
  }
  at::Tensor recv = at::empty({total, batch, width}, send.options());
  auto send_buf = TensorBuffer(send);
  auto recv_buf = TensorBuffer(recv);
  if (!send_buf.ok()) Fail(send_buf.status().WithContext(site.name));
  if (!recv_buf.ok()) Fail(recv_buf.status().WithContext(site.name));
  Status st = channel_.AllGatherV(*send_buf, *recv_buf, counts);
  if (!st.ok()) Fail(st.WithContext(site.name + ": key/value all-gather"));
  return recv.transpose(0, 1);  // [B, total, width]
}

std::pair<at::Tensor, at::Tensor> SyncPatchContext::SelfAttentionKeyValue(const model::LayerSite& site, at::Tensor k,
                                                                          at::Tensor v) {
  if (plan_.world_size() == 1) return {std::move(k), std::move(v)};
  if (k.dim() != 3 || !k.sizes().equals(v.sizes())) {
    Fail(Status::InvalidArgument(site.name + ": self-attention keys and values must both be [B, tokens, inner], got " +
                                 Shape(k) + " and " + Shape(v)));
  }
  const int64_t inner = k.size(2);
  // One collective for both: [B, tokens, 2 * inner].
  at::Tensor all = GatherKeyValue(site, at::cat({k, v}, 2));
  return {all.narrow(2, 0, inner).contiguous(), all.narrow(2, inner, inner).contiguous()};
}

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
  auto ctx = std::make_shared<SyncPatchContext>(channel, plan);
  ctx->SetFullInput(sample);
  at::Tensor out;
  {
    model::AttachLayerContext(model, ctx);
    DetachGuard detach{model};
    Status failure;
    try {
      out = forward(sample.narrow(2, rows.start, rows.rows()).contiguous());
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
  at::Tensor send = out.permute({2, 0, 1, 3}).contiguous();
  std::vector<size_t> counts;
  for (int r = 0; r < plan.world_size(); ++r) {
    counts.push_back(static_cast<size_t>(plan.rows(r, 0).rows() * send.size(1) * send.size(2) * send.size(3)));
  }
  at::Tensor recv = at::empty({plan.height(0), send.size(1), send.size(2), send.size(3)}, send.options());
  DISTRI_ASSIGN_OR_RETURN(channel::Buffer send_buf, TensorBuffer(send));
  DISTRI_ASSIGN_OR_RETURN(channel::Buffer recv_buf, TensorBuffer(recv));
  Status st = channel.AllGatherV(send_buf, recv_buf, counts);
  if (!st.ok()) return st.WithContext("patch-parallel forward: output all-gather");
  return recv.permute({1, 2, 0, 3}).contiguous();
}

}  // namespace distri::parallel
