#include "actors/parallel/displaced_patch_context.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <string_view>

#include "actors/model/blocks/fused_ops.h"
#include "actors/model/blocks/layers.h"
#include "actors/parallel/tensor_buffer.h"

#ifdef DISTRI_HAVE_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "actors/kernels/fused_kernels.h"
#endif

namespace distri::parallel {
namespace {

// Slot offsets are aligned so that every typed view of the u8 buffers is aligned.
constexpr int64_t kAlign = 256;
int64_t AlignUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string Shape(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

int64_t Numel(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

// DISTRI_FUSED_GN_COMBINE=0: a displaced group norm's statistics finalization and combination
// as two kernels instead of one (read once; a fallback should the fused kernel misbehave). 1 or
// unset: one kernel; any other value is an error naming the variable.
[[maybe_unused]] Result<bool> FusedStatsCombine() {
  static const Result<bool> on = []() -> Result<bool> {
    const char* e = std::getenv("DISTRI_FUSED_GN_COMBINE");
    if (e == nullptr || std::string_view(e) == "1") return true;
    if (std::string_view(e) == "0") return false;
    return Status::InvalidArgument(std::string("DISTRI_FUSED_GN_COMBINE must be 0 or 1, got '") + e + "'");
  }();
  return on;
}

bool IsChannelsLast(const at::Tensor& x) {
  return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

std::string_view SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kCorrectedAsyncGn: return "corrected_async_gn";
    case SyncMode::kStaleGn: return "stale_gn";
    case SyncMode::kSyncGn: return "sync_gn";
    case SyncMode::kSeparateGn: return "separate_gn";
    case SyncMode::kFullSync: return "full_sync";
    case SyncMode::kNoSync: return "no_sync";
  }
  return "unknown";
}

Result<SyncMode> ParseSyncMode(std::string_view name) {
  for (SyncMode m : {SyncMode::kCorrectedAsyncGn, SyncMode::kStaleGn, SyncMode::kSyncGn, SyncMode::kSeparateGn,
                     SyncMode::kFullSync, SyncMode::kNoSync}) {
    if (name == SyncModeName(m)) return m;
  }
  return Status::InvalidArgument("unknown sync mode '" + std::string(name) +
                                 "' (expected corrected_async_gn, stale_gn, sync_gn, separate_gn, full_sync or no_sync)");
}

DisplacedPatchContext::DisplacedPatchContext(channel::Channel& channel, PatchPlan plan, GangLayout layout,
                                             DisplacedOptions options)
    : channel_(channel),
      plan_(std::move(plan)),
      layout_(layout),
      options_(options),
      rank_(channel.rank()),
      group_(layout.group_of(channel.rank())),
      strip_(layout.strip_of(channel.rank())) {}

void DisplacedPatchContext::Fail(Status status) {
  if (status_.ok()) status_ = status;
  throw PatchParallelError(std::move(status));
}

void DisplacedPatchContext::BeginStep(bool synchronous) {
  if (!synchronous && !started_) {
    Fail(Status::FailedPrecondition("patch parallelism: the first step must be synchronous (warm-up >= 1): "
                                    "displaced steps need the previous step's activations"));
  }
  started_ = true;
  synchronous_ = synchronous || options_.mode == SyncMode::kFullSync;
  // Refresh the stale buffers unless no later step reads them.
  refresh_ = exchanges() && options_.mode != SyncMode::kFullSync &&
             !(options_.mode == SyncMode::kNoSync && !synchronous_);
}

void DisplacedPatchContext::EndStep() {
  norm_padded_ = at::Tensor();  // a group norm whose convolution never came: not kept past the step
  // A self-attention whose SelfAttentionDone never came (a model without the hook): its
  // refresh still goes out, after everything queued so far.
  IssueKeyValueRefresh();
  if (registering_) {
    if (open_chunk_ >= 0) CloseChunk();
    registering_ = false;
    AllocateDeferredChunks();
  }
  if (peer_ && !chunks_.empty()) {
    const Status st = peer_->Join(CurrentStream(chunks_.front().buffer));
    if (!st.ok()) Fail(st.WithContext("patch parallelism: stale exchange"));
  }
  for (Chunk& c : chunks_) {
    if (!c.handle.valid()) continue;
    Status st = c.handle.StreamWait(CurrentStream(c.buffer));
    c.handle = channel::Handle();
    if (!st.ok()) Fail(st.WithContext("patch parallelism: stale-activation all-gather"));
  }
}

int64_t DisplacedPatchContext::stale_bytes() const {
  int64_t total = 0;
  for (const Chunk& c : chunks_) total += c.buffer.defined() ? c.buffer.numel() : 0;
  return total;
}

int DisplacedPatchContext::SiteId(const model::LayerSite& site, at::ScalarType dtype,
                                  const std::vector<std::vector<int64_t>>& shapes) {
  const auto key = std::make_pair(static_cast<int>(site.kind), site.index);
  auto it = site_ids_.find(key);
  if (it != site_ids_.end()) {
    const Site& s = sites_[it->second];
    if (s.shapes != shapes || s.dtype != dtype) {
      Fail(Status::FailedPrecondition(site.name + ": the exchange payload changed from " + Shape(s.shapes[rank_]) +
                                      " to " + Shape(shapes[rank_]) +
                                      " between steps (one context serves one job of one size)"));
    }
    return it->second;
  }
  if (!registering_) {
    Fail(Status::FailedPrecondition(site.name + ": a layer that did not run in the first step"));
  }
  Site s;
  s.name = site.name;
  s.dtype = dtype;
  s.shapes = shapes;
  for (const auto& shape : shapes) s.bytes.push_back(Numel(shape) * static_cast<int64_t>(at::elementSize(dtype)));
  sites_.push_back(std::move(s));
  site_ids_.emplace(key, static_cast<int>(sites_.size()) - 1);
  return static_cast<int>(sites_.size()) - 1;
}

at::Tensor DisplacedPatchContext::Stale(int id, int gang_rank) const {
  const Site& s = sites_[id];
  if (s.chunk < 0 || !chunks_[s.chunk].buffer.defined()) {
    throw PatchParallelError(Status::FailedPrecondition(s.name + ": no stale activations (the layer was not "
                                                        "exchanged in an earlier step)"));
  }
  const Chunk& c = chunks_[s.chunk];
  return c.buffer.narrow(0, c.slot_base[gang_rank] + s.offset[gang_rank], s.bytes[gang_rank])
      .view(s.dtype)
      .view(s.shapes[gang_rank]);
}

void DisplacedPatchContext::Store(int id, const at::Tensor& payload) {
  if (!refresh_) return;
  Site& s = sites_[id];
  if (registering_) {
    if (s.chunk >= 0) Fail(Status::FailedPrecondition(s.name + ": the layer ran twice in one forward"));
    if (s.own_chunk && open_chunk_ >= 0) CloseChunk();
    if (open_chunk_ < 0) {
      chunks_.emplace_back();
      open_chunk_ = static_cast<int>(chunks_.size()) - 1;
      chunks_.back().slot_bytes.assign(layout_.world_size(), 0);
    }
    Chunk& c = chunks_[open_chunk_];
    s.chunk = open_chunk_;
    s.offset = c.slot_bytes;
    for (int r = 0; r < layout_.world_size(); ++r) c.slot_bytes[r] = AlignUp(c.slot_bytes[r] + s.bytes[r]);
    c.sites.push_back(id);
    s.pending = payload.contiguous();
    if (s.own_chunk || *std::max_element(c.slot_bytes.begin(), c.slot_bytes.end()) >= options_.chunk_bytes) {
      CloseChunk();
    }
    return;
  }
  if (s.chunk < 0) Fail(Status::FailedPrecondition(s.name + ": the layer has no stale buffer"));
  OwnSlot(id).copy_(payload);
  Stored(id);
}

bool DisplacedPatchContext::StoresDirectly(int id) const {
  return !synchronous_ && refresh_ && !registering_ && sites_[id].chunk >= 0;
}

void DisplacedPatchContext::Stored(int id) {
  Chunk& c = chunks_[sites_[id].chunk];
  if (c.sites.back() == id) IssueChunk(c);
}

at::Tensor DisplacedPatchContext::ZeroRows(const at::Tensor& like, int64_t dim, int64_t rows) {
  std::vector<int64_t> shape(like.sizes().begin(), like.sizes().end());
  shape[dim] = rows;
  for (const at::Tensor& z : zero_rows_) {
    if (z.sizes().equals(shape) && z.scalar_type() == like.scalar_type() && z.device() == like.device()) return z;
  }
  zero_rows_.push_back(at::zeros(shape, like.options().memory_format(at::MemoryFormat::Contiguous)));
  return zero_rows_.back();
}

void DisplacedPatchContext::CloseChunk() {
  Chunk& c = chunks_[open_chunk_];
  open_chunk_ = -1;
  c.slot_base.assign(layout_.world_size(), 0);
  for (int r = 1; r < layout_.world_size(); ++r) c.slot_base[r] = c.slot_base[r - 1] + c.slot_bytes[r - 1];
  const Site& first = sites_[c.sites.front()];
  // Collective memory is registered once, for all chunks, when the first step ends (no
  // registration while this step's exchanges are in flight; one window instead of one a chunk).
  if (options_.collective_memory || options_.peer_exchange) return;
  FillAndIssue(c, at::zeros({ChunkBytes(c)}, first.pending.options().dtype(at::kByte)));
}

int64_t DisplacedPatchContext::ChunkBytes(const Chunk& c) const { return c.slot_base.back() + c.slot_bytes.back(); }

void DisplacedPatchContext::FillAndIssue(Chunk& c, at::Tensor buffer) {
  c.buffer = std::move(buffer);
  for (int id : c.sites) {
    OwnSlot(id).copy_(sites_[id].pending);
    sites_[id].pending = at::Tensor();
  }
  IssueChunk(c);
}

void DisplacedPatchContext::AllocateDeferredChunks() {
  int64_t total = 0;
  std::vector<int> deferred;
  for (int i = 0; i < static_cast<int>(chunks_.size()); ++i) {
    if (chunks_[i].buffer.defined()) continue;
    deferred.push_back(i);
    total += ChunkBytes(chunks_[i]);
  }
  if (deferred.empty()) return;
  const at::TensorOptions options = sites_[chunks_[deferred.front()].sites.front()].pending.options().dtype(at::kByte);
  at::Tensor block;
  if (options_.peer_exchange) {
    block = AllocatePeerBlock(total, options);
    collective_bytes_ = total;  // outside LibTorch's statistics, as a window would be
  } else {
    auto memory = channel_.AllocateCollectiveMemory(static_cast<size_t>(total));
    if (!memory.ok()) Fail(memory.status().WithContext("patch parallelism: stale buffers"));
    if (std::shared_ptr<void> m = std::move(memory).value()) {
      void* data = m.get();
      block = at::from_blob(data, {total}, [m](void*) {}, options);
      block.zero_();
      collective_bytes_ = total;
    } else {
      block = at::zeros({total}, options);
    }
  }
  int64_t offset = 0;  // the same on every rank: the layout follows from the plan
  for (int i : deferred) {
    const int64_t bytes = ChunkBytes(chunks_[i]);
    FillAndIssue(chunks_[i], block.narrow(0, offset, bytes));
    offset += bytes;
  }
}

namespace {
// Whether `stream` is capturing a CUDA graph. The copy-engine exchange runs only inside
// captured graphs (see DisplacedOptions::peer_exchange).
bool Capturing(void* stream) {
#ifdef DISTRI_HAVE_CUDA
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &status) == cudaSuccess &&
         status == cudaStreamCaptureStatusActive;
#else
  (void)stream;
  return false;
#endif
}
}  // namespace

void DisplacedPatchContext::IssueChunk(Chunk& c) {
  if (peer_ && Capturing(CurrentStream(c.buffer))) {
    const Status st = peer_->Publish(static_cast<int>(&c - chunks_.data()), CurrentStream(c.buffer));
    if (!st.ok()) Fail(st.WithContext("patch parallelism: stale exchange"));
    ++peer_publishes_;
    return;
  }
  at::Tensor send = c.buffer.narrow(0, c.slot_base[rank_], c.slot_bytes[rank_]);
  auto send_buf = TensorBuffer(send);
  auto recv_buf = TensorBuffer(c.buffer);
  if (!send_buf.ok()) Fail(send_buf.status());
  if (!recv_buf.ok()) Fail(recv_buf.status());
  std::vector<size_t> counts(c.slot_bytes.begin(), c.slot_bytes.end());
  c.handle = channel_.AllGatherVAsync(*send_buf, *recv_buf, counts, CurrentStream(c.buffer));
}

at::Tensor DisplacedPatchContext::GatherNow(const model::LayerSite& site, int id, const at::Tensor& payload) {
  const Site& s = sites_[id];
  std::vector<size_t> counts;
  int64_t total = 0;
  for (const auto& shape : s.shapes) {
    counts.push_back(static_cast<size_t>(Numel(shape)));
    total += Numel(shape);
  }
  at::Tensor send = payload.contiguous();
  at::Tensor recv = at::empty({total}, send.options());
  auto send_buf = TensorBuffer(send);
  auto recv_buf = TensorBuffer(recv);
  if (!send_buf.ok()) Fail(send_buf.status().WithContext(site.name));
  if (!recv_buf.ok()) Fail(recv_buf.status().WithContext(site.name));
  void* stream = CurrentStream(send);
  Status st = channel_.AllGatherVAsync(*send_buf, *recv_buf, counts, stream).StreamWait(stream);
  if (!st.ok()) Fail(st.WithContext(site.name + ": synchronous exchange"));
  return recv;
}

at::Tensor DisplacedPatchContext::SliceFullInput(const model::LayerSite& site, const at::Tensor& x, int64_t pad) {
  const RowRange rows = plan_.rows(strip_, 0);
  if (full_input_.dim() != 4 || x.dim() != 4 || full_input_.size(2) != plan_.height(0) ||
      x.size(2) != rows.rows() || x.size(3) != full_input_.size(3)) {
    Fail(Status::InvalidArgument(site.name + ": expected this rank's strip of the full input " +
                                 Shape(full_input_.sizes()) + " (rows " + std::to_string(rows.start) + ".." +
                                 std::to_string(rows.end) + "), got " + Shape(x.sizes())));
  }
  const int64_t begin = std::max<int64_t>(rows.start - pad, 0), end = std::min(rows.end + pad, plan_.height(0));
  at::Tensor slice = full_input_.narrow(2, begin, end - begin).to(x.dtype());
  return at::constant_pad_nd(slice, {0, 0, begin - (rows.start - pad), rows.end + pad - end});
}

at::Tensor DisplacedPatchContext::ConvStrip(const model::LayerSite& site, const model::Conv2dImpl& conv,
                                            const at::Tensor& x, const at::Tensor& extra) {
  const int64_t kernel = conv.options.kernel_size(), pad = conv.options.padding();
  if ((kernel == 1 && pad == 0) || !exchanges()) return conv.ComputeAdd(x, pad, pad, extra);
  if (pad != (kernel - 1) / 2) {
    Fail(Status::Unimplemented(site.name + ": patch-parallel convolution needs 'same' padding, got kernel " +
                               std::to_string(kernel) + " padding " + std::to_string(pad)));
  }
  if (x.dim() != 4 || x.size(2) < pad) {
    Fail(Status::InvalidArgument(site.name + ": a halo of " + std::to_string(pad) + " row(s) needs a [B, C, rows >= " +
                                 std::to_string(pad) + ", W] strip, got " + Shape(x.sizes())));
  }
  if (site.index == 0 && site.name == "conv_in" && full_input_.defined()) {
    return conv.ComputeAdd(SliceFullInput(site, x, pad), 0, pad, extra);
  }
  const int64_t batch = x.size(0), channels = x.size(1), rows = x.size(2), width = x.size(3);
  // Everything below works on `xs`, x viewed in its memory order with the rows at dim `rd`:
  // [B, rows, W, C] (dim 1) for a channels-last x, [B, C, rows, W] (dim 2) otherwise. Both are
  // contiguous, so the payload writes and the padded strip's concatenation are concatenations
  // of contiguous tensors (ATen's fast batched-copy kernels; a dim-2 concatenation of
  // channels-last tensors takes the slow generic kernel: +40 ms a job at 1024 px on 4 GPUs).
  // Payload: the strip's top and bottom `pad` rows (same shape on every rank), [B, 2 pad, W, C]
  // or [B, C, 2 pad, W]. Not needed by a displaced step that does not refresh (no_sync); a
  // displaced step that refreshes writes it straight into its slot.
  const bool cl = IsChannelsLast(x);
  const at::Tensor xs = cl ? x.permute({0, 2, 3, 1}) : x;
  const int64_t rd = cl ? 1 : 2;
  const std::vector<int64_t> shape =
      cl ? std::vector<int64_t>{batch, 2 * pad, width, channels} : std::vector<int64_t>{batch, channels, 2 * pad, width};
  const int id = SiteId(site, x.scalar_type(), std::vector<std::vector<int64_t>>(layout_.world_size(), shape));
  const std::vector<at::Tensor> edge_rows{xs.narrow(rd, 0, pad), xs.narrow(rd, rows - pad, pad)};
  at::Tensor payload;  // contiguous, in xs's order
  const bool direct = StoresDirectly(id);
  if (direct) {
    at::Tensor slot = OwnSlot(id);
    at::cat_out(slot, edge_rows, rd);
  } else if (synchronous_ || refresh_) {
    payload = at::cat(edge_rows, rd);
  }
  const bool has_top = strip_ > 0, has_bottom = strip_ + 1 < layout_.patch_ranks;
  const int top_rank = layout_.gang_rank(group_, strip_ - 1), bottom_rank = layout_.gang_rank(group_, strip_ + 1);
  at::Tensor top, bottom;
  if (synchronous_) {
    std::vector<int64_t> all_shape{layout_.world_size()};
    all_shape.insert(all_shape.end(), shape.begin(), shape.end());
    at::Tensor all = GatherNow(site, id, payload).view(all_shape);
    if (has_top) top = all[top_rank].narrow(rd, pad, pad);
    if (has_bottom) bottom = all[bottom_rank].narrow(rd, 0, pad);
  } else {
    if (has_top) top = Stale(id, top_rank).narrow(rd, pad, pad);
    if (has_bottom) bottom = Stale(id, bottom_rank).narrow(rd, 0, pad);
  }
  // The halo replaces the vertical zero padding (zeros at the image's top and bottom).
  at::Tensor padded;
  if (IsPaddedNormOutput(x, pad)) {
    // x is rows 1..rows of its group norm's padded output: fill the spare rows, no copy of x.
    const at::Tensor ps = cl ? norm_padded_.permute({0, 2, 3, 1}) : norm_padded_;  // rows at dim rd
    if (top.defined()) {
      ps.narrow(rd, 0, 1).copy_(top);
    } else {
      ps.narrow(rd, 0, 1).zero_();
    }
    if (bottom.defined()) {
      ps.narrow(rd, rows + 1, 1).copy_(bottom);
    } else {
      ps.narrow(rd, rows + 1, 1).zero_();
    }
    padded = norm_padded_;
    ++padded_strip_convs_;
  } else {
    // One concatenation kernel; viewed back as [B, C, rows + 2 pad, W] in x's memory format.
    padded = at::cat({top.defined() ? top : ZeroRows(xs, rd, pad), xs,
                      bottom.defined() ? bottom : ZeroRows(xs, rd, pad)},
                     rd);
    if (cl) padded = padded.permute({0, 3, 1, 2});
  }
  norm_padded_ = at::Tensor();
  if (direct) {
    Stored(id);
  } else {
    Store(id, payload);
  }
  switch (model::ResolveStripConvForm(options_.strip_conv, padded, conv.weight, conv.options.stride())) {
    case model::StripConvForm::kSeam:
      ++seam_convs_;
      return model::SeamConvAdd(padded, conv.weight, conv.bias, extra);
    case model::StripConvForm::kWide:
      ++wide_convs_;
      return model::WideConvAdd(padded, conv.weight, conv.bias, extra);
    default:
      break;
  }
  return conv.ComputeAdd(padded, 0, pad, extra);
}

bool DisplacedPatchContext::IsPaddedNormOutput(const at::Tensor& x, int64_t pad) const {
  if (pad != 1 || !norm_padded_.defined() || x.dim() != 4) return false;
  const int64_t rows = x.size(2);
  if (norm_padded_.size(0) != x.size(0) || norm_padded_.size(1) != x.size(1) || norm_padded_.size(2) != rows + 2 ||
      norm_padded_.size(3) != x.size(3) || x.scalar_type() != norm_padded_.scalar_type() ||
      !x.storage().is_alias_of(norm_padded_.storage())) {
    return false;
  }
  const at::Tensor inner = norm_padded_.narrow(2, 1, rows);
  return x.data_ptr() == inner.data_ptr() && x.strides().equals(inner.strides());
}

at::Tensor DisplacedPatchContext::Normalize(const model::LayerSite& site, const model::GroupNormImpl& norm,
                                            const at::Tensor& x, bool silu) {
  const int64_t groups = norm.options.num_groups();
  const bool separate = !synchronous_ && options_.mode == SyncMode::kSeparateGn;
  if (!exchanges() || separate) {
    return silu ? LayerContext::GroupNormSilu(site, norm, x) : LayerContext::GroupNorm(site, norm, x);
  }
  if (x.dim() != 4 || x.size(1) % groups != 0 || x.size(2) == 0) {
    Fail(Status::InvalidArgument(site.name + ": patch-parallel group norm takes a [B, C, rows, W] strip with C a "
                                 "multiple of " + std::to_string(groups) + " groups, got " + Shape(x.sizes())));
  }
  const int64_t batch = x.size(0), channels = x.size(1), rows = x.size(2), width = x.size(3);
  // Rows of every strip at this level: the statistics' weights.
  const std::vector<int64_t> strip_rows = StripSizes(
      site, rows, [&](int s, int l) { return plan_.width(l) == width ? plan_.rows(s, l).rows() : int64_t{-1}; },
      "row(s) of a group-norm input");
  if (at::Tensor y = NormalizeCuda(site, norm, x, silu, strip_rows); y.defined()) return y;
  // Own statistics per (batch, group), biased variance, in float.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var_own, mean_own;
  if (IsChannelsLast(x)) {
    std::tie(var_own, mean_own) =
        at::var_mean(xf.permute({0, 2, 3, 1}).reshape({batch, rows * width, groups, channels / groups}), {1, 3},
                     /*correction=*/0, /*keepdim=*/false);
  } else {
    std::tie(var_own, mean_own) = at::var_mean(xf.reshape({batch, groups, -1}), {2}, /*correction=*/0, false);
  }
  at::Tensor packet = at::stack({mean_own.flatten(), var_own.flatten()});  // [2, B*G] f32
  const int64_t bg = batch * groups;
  const int id = SiteId(site, at::kFloat, std::vector<std::vector<int64_t>>(layout_.world_size(), {2, bg}));
  int64_t total_rows = 0;
  for (int64_t r : strip_rows) total_rows += r;
  at::Tensor mean, var;
  const bool exact = synchronous_ || options_.mode == SyncMode::kSyncGn;
  // Rank s's (mean, var) packet [2, bg] as double: gathered now, stale, or the fresh own one.
  std::vector<at::Tensor> packets(layout_.patch_ranks);
  if (exact) {
    at::Tensor all = GatherNow(site, id, packet).view({layout_.world_size(), 2, bg}).to(at::kDouble);
    for (int s = 0; s < layout_.patch_ranks; ++s) packets[s] = all[layout_.gang_rank(group_, s)];
  } else {
    for (int s = 0; s < layout_.patch_ranks; ++s) {
      packets[s] = s == strip_ ? packet.to(at::kDouble) : Stale(id, layout_.gang_rank(group_, s)).to(at::kDouble);
    }
  }
  if (exact || options_.mode == SyncMode::kStaleGn) {
    // Chan et al.'s pairwise merge of (n, mean, M2), in strip order: every rank of the group
    // gets bit-identical statistics, and no E[x^2] - E[x]^2 cancellation.
    double n = 0;
    at::Tensor m = at::zeros({bg}, packets[0].options()), m2 = at::zeros({bg}, packets[0].options());
    for (int s = 0; s < layout_.patch_ranks; ++s) {
      const double n_s = static_cast<double>(strip_rows[s]);
      const double n_new = n + n_s;
      at::Tensor delta = packets[s][0] - m;
      m2 = m2 + packets[s][1] * n_s + delta.square() * (n * n_s / n_new);
      m = m + delta * (n_s / n_new);
      n = n_new;
    }
    mean = m;
    var = m2 / n;
  } else {
    // corrected_async_gn (and no_sync): stale global E[x], E[x^2] plus the own strip's change.
    at::Tensor stale_own = Stale(id, rank_).to(at::kDouble);
    at::Tensor g_mean = at::zeros({bg}, packets[0].options()), g_e2 = at::zeros({bg}, packets[0].options());
    for (int s = 0; s < layout_.patch_ranks; ++s) {
      at::Tensor p = s == strip_ ? stale_own : packets[s];
      const double w = static_cast<double>(strip_rows[s]) / static_cast<double>(total_rows);
      g_mean = g_mean + p[0] * w;
      g_e2 = g_e2 + (p[1] + p[0].square()) * w;
    }
    at::Tensor fresh = packets[strip_];
    mean = g_mean + (fresh[0] - stale_own[0]);
    at::Tensor e2 = g_e2 + ((fresh[1] + fresh[0].square()) - (stale_own[1] + stale_own[0].square()));
    var = e2 - mean.square();
    var = at::where(var < 0, fresh[1], var);
  }
  // separate_gn never reads stale statistics: keep them out of the stale buffers.
  if (options_.mode != SyncMode::kSeparateGn) Store(id, packet);
  // y = x * scale + shift per (batch, channel), in float like nn.GroupNorm's kernels.
  at::Tensor rstd = (var + norm.options.eps()).rsqrt().to(at::kFloat).view({batch, groups, 1});
  at::Tensor scale = (rstd * norm.weight.to(at::kFloat).view({1, groups, channels / groups})).view({batch, channels});
  at::Tensor mean_c = mean.to(at::kFloat).view({batch, groups, 1}).expand({batch, groups, channels / groups});
  at::Tensor shift = norm.bias.to(at::kFloat).view({1, channels}) - mean_c.reshape({batch, channels}) * scale;
  at::Tensor y = (xf * scale.view({batch, channels, 1, 1}) + shift.view({batch, channels, 1, 1})).to(x.scalar_type());
  if (!silu) return y;
  at::silu_(y);
  norm_padded_ = at::Tensor();
  if (!options_.norm_into_padded_strip) return y;
  // As the GPU path does (NormalizeCuda), into a strip with a spare row above and below for the
  // next convolution's halo; here one more copy, which keeps the CPU runs on the same
  // convolution path as the GPU's.
  norm_padded_ = at::empty({batch, channels, rows + 2, width}, y.options().memory_format(x.suggest_memory_format()));
  at::Tensor inner = norm_padded_.narrow(2, 1, rows);
  inner.copy_(y);
  return inner;
}

at::Tensor DisplacedPatchContext::NormalizeCuda(const model::LayerSite& site, const model::GroupNormImpl& norm,
                                                const at::Tensor& x, bool silu,
                                                const std::vector<int64_t>& strip_rows) {
#ifdef DISTRI_HAVE_CUDA
  const bool half = x.scalar_type() == at::kHalf, bf16 = x.scalar_type() == at::kBFloat16;
  const bool channels_last = IsChannelsLast(x);
  if (!x.is_cuda() || !(half || bf16) || !model::FusedKernelsEnabled() ||
      !(x.is_contiguous() || channels_last) || layout_.patch_ranks > kernels::GroupStatsInputs::kMaxStrips ||
      norm.weight.scalar_type() != x.scalar_type()) {
    return at::Tensor();
  }
  const int64_t batch = x.size(0), channels = x.size(1), hw = x.size(2) * x.size(3);
  const int64_t groups = norm.options.num_groups(), bg = batch * groups;
  const kernels::ElemType t = half ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.get_device()).stream();
  auto check = [&](cudaError_t e, const char* what) {
    if (e != cudaSuccess) Fail(Status::Internal(site.name + ": " + what + ": " + cudaGetErrorString(e)));
  };
  const auto f32 = x.options().dtype(at::kFloat).memory_format(at::MemoryFormat::Contiguous);
  at::Tensor workspace = at::empty({kernels::GroupNormWorkspaceFloats(batch, groups, channels / groups * hw)}, f32);
  at::Tensor packet = at::empty({2, bg}, f32);  // own (mean, var), fresh
  const int id = SiteId(site, at::kFloat, std::vector<std::vector<int64_t>>(layout_.world_size(), {2, bg}));
  kernels::GroupStatsInputs in{};
  in.strips = layout_.patch_ranks;
  in.own = strip_;
  for (int s = 0; s < in.strips; ++s) in.rows[s] = static_cast<float>(strip_rows[s]);
  at::Tensor mean_rstd = at::empty({2 * bg}, f32);
  const float eps = static_cast<float>(norm.options.eps());
  // A displaced step's combination also writes the fresh packet into its slot (after reading
  // the stale one there): no copy node.
  const bool direct = options_.mode != SyncMode::kSeparateGn && StoresDirectly(id);
  at::Tensor gathered;  // keeps the exact path's packets alive until the kernel is queued
  if (synchronous_ || options_.mode == SyncMode::kSyncGn) {
    check(kernels::LaunchGroupNormStats(t, x.data_ptr(), batch, channels, hw, groups, channels_last,
                                        workspace.data_ptr<float>(), packet.data_ptr<float>(), stream),
          "group-norm statistics");
    gathered = GatherNow(site, id, packet);
    for (int s = 0; s < in.strips; ++s) {
      in.packets[s] = gathered.data_ptr<float>() + static_cast<int64_t>(layout_.gang_rank(group_, s)) * 2 * bg;
    }
    // sync_gn's displaced steps refresh the slot too (direct), as the other modes do.
    check(kernels::LaunchGroupStatsCombine(in, packet.data_ptr<float>(), bg, /*mode=*/0, eps,
                                           mean_rstd.data_ptr<float>(), stream,
                                           direct ? OwnSlot(id).data_ptr<float>() : nullptr),
          "group-norm statistics combination");
  } else {
    // The own statistics and their combination with the stale packets in one pass of kernels
    // (the finalization and the combination share a launch where the groups fit one block).
    for (int s = 0; s < in.strips; ++s) in.packets[s] = Stale(id, layout_.gang_rank(group_, s)).data_ptr<float>();
    const int mode = options_.mode == SyncMode::kStaleGn ? 2 : 1;
    const Result<bool> fused = FusedStatsCombine();
    if (!fused.ok()) Fail(fused.status());
    check(kernels::LaunchGroupNormStatsCombine(t, x.data_ptr(), batch, channels, hw, groups, channels_last,
                                               workspace.data_ptr<float>(), in, mode, eps, packet.data_ptr<float>(),
                                               mean_rstd.data_ptr<float>(), stream,
                                               direct ? OwnSlot(id).data_ptr<float>() : nullptr,
                                               *fused),
          "group-norm statistics and combination");
  }
  if (direct) {
    Stored(id);
  } else if (options_.mode != SyncMode::kSeparateGn) {
    Store(id, packet);
  }
  at::Tensor y;
  norm_padded_ = at::Tensor();
  if (silu && channels_last && batch == 1 && options_.norm_into_padded_strip) {
    // One spare row above and below for the next convolution's halo (ConvStrip); with one
    // image, rows 1..rows of a channels-last strip are one contiguous block, as the kernel
    // writes them.
    norm_padded_ = at::empty({1, channels, x.size(2) + 2, x.size(3)},
                             x.options().memory_format(at::MemoryFormat::ChannelsLast));
    y = norm_padded_.narrow(2, 1, x.size(2));
  } else {
    y = at::empty_like(x);
  }
  check(kernels::LaunchGroupNormApply(t, x.data_ptr(), norm.weight.data_ptr(), norm.bias.data_ptr(), y.data_ptr(),
                                      batch, channels, hw, groups, silu, channels_last, mean_rstd.data_ptr<float>(),
                                      stream),
        "group-norm apply");
  return y;
#else
  (void)site, (void)norm, (void)x, (void)silu, (void)strip_rows;
  return at::Tensor();
#endif
}

std::vector<int64_t> DisplacedPatchContext::StripSizes(const model::LayerSite& site, int64_t own,
                                                       const std::function<int64_t(int strip, int level)>& size,
                                                       const char* what) {
  std::vector<int64_t> per_strip;
  for (int l = 0; l < plan_.num_levels(); ++l) {
    if (size(strip_, l) != own) continue;
    std::vector<int64_t> sizes;
    for (int s = 0; s < layout_.patch_ranks; ++s) sizes.push_back(size(s, l));
    if (!per_strip.empty() && per_strip != sizes) {
      Fail(Status::InvalidArgument(site.name + ": " + std::to_string(own) + " " + what + " match several levels of the plan " + plan_.ToString() +
                                   " with different strips; cannot tell the other ranks' sizes"));
    }
    per_strip = std::move(sizes);
  }
  if (per_strip.empty()) {
    Fail(Status::InvalidArgument(site.name + ": " + std::to_string(own) + " " + what + " are no level's strip of rank " + std::to_string(strip_) +
                                 " in the plan " + plan_.ToString()));
  }
  return per_strip;
}

std::pair<at::Tensor, at::Tensor> DisplacedPatchContext::SelfAttentionKeyValue(const model::LayerSite& site,
                                                                               at::Tensor k, at::Tensor v) {
  if (!exchanges()) return {std::move(k), std::move(v)};
  if (k.dim() != 3 || !k.sizes().equals(v.sizes())) {
    Fail(Status::InvalidArgument(site.name + ": self-attention keys and values must both be [B, tokens, inner], got " +
                                 Shape(k.sizes()) + " and " + Shape(v.sizes())));
  }
  const int64_t batch = k.size(0), tokens = k.size(1), inner = k.size(2);
  const std::vector<int64_t> per_strip =
      StripSizes(site, tokens, [&](int s, int l) { return plan_.rows(s, l).rows() * plan_.width(l); },
                 "self-attention tokens");
  std::vector<std::vector<int64_t>> shapes;
  for (int r = 0; r < layout_.world_size(); ++r) shapes.push_back({per_strip[layout_.strip_of(r)], batch, 2 * inner});
  // A self-attention whose SelfAttentionDone did not come before this one: its refresh first.
  IssueKeyValueRefresh();
  const int id = SiteId(site, k.scalar_type(), shapes);
  if (registering_ && options_.kv_in_place) sites_[id].own_chunk = true;
  // Payload: token-major [tokens, B, 2 inner], so the strips concatenate in image row order. A
  // displaced step writes it straight into its slot (one kernel, no copy into the buffer); on
  // the GPU the same kernel also assembles the whole image's K/V (AssembleKeyValueCuda).
  const bool direct = StoresDirectly(id);
  const bool in_place = !synchronous_ && direct && sites_[id].own_chunk && GroupSlotsAdjacent(id);
  at::Tensor full;
  if (!synchronous_ && direct && !in_place) full = AssembleKeyValueCuda(id, k, v, per_strip);
  at::Tensor payload;
  if (full.defined()) {
    // The kernel wrote the own slot.
  } else if (direct) {
    payload = OwnSlot(id);
    at::cat_out(payload, {k.transpose(0, 1), v.transpose(0, 1)}, 2);
  } else {
    payload = at::cat({k, v}, 2).transpose(0, 1).contiguous();
  }
  const int64_t total = std::accumulate(per_strip.begin(), per_strip.end(), int64_t{0});
  bool issue_later = false;
  if (full.defined()) {
    ++kv_fused_assemblies_;
  } else if (synchronous_) {
    at::Tensor all = GatherNow(site, id, payload);
    int64_t offset = 0;  // elements of the gang ranks before this group
    for (int r = 0; r < layout_.gang_rank(group_, 0); ++r) offset += Numel(shapes[r]);
    full = all.narrow(0, offset, total * batch * 2 * inner).view({total, batch, 2 * inner});
  } else if (in_place) {
    // The chunk holds this site alone: the group's slots, in strip order, are the image's K/V
    // (stale others, the fresh own just written). Read in place; refreshed after the attention.
    const Site& s = sites_[id];
    const Chunk& c = chunks_[s.chunk];
    const int first = layout_.gang_rank(group_, 0);
    full = c.buffer.narrow(0, c.slot_base[first] + s.offset[first], total * batch * 2 * inner *
                                                                        static_cast<int64_t>(at::elementSize(s.dtype)))
               .view(s.dtype)
               .view({total, batch, 2 * inner});
    issue_later = true;
    ++kv_in_place_reads_;
  } else {
    // Fresh own rows between the other strips' stale ones, in image row order: one
    // concatenation kernel (a copy per strip was one more graph node each, every step).
    std::vector<at::Tensor> parts;
    for (int s = 0; s < layout_.patch_ranks; ++s) {
      parts.push_back(s == strip_ ? payload : Stale(id, layout_.gang_rank(group_, s)));
    }
    full = at::cat(parts, 0);
  }
  if (issue_later) {
    issue_after_attention_ = id;
  } else if (direct) {
    Stored(id);
  } else {
    Store(id, payload);
  }
  at::Tensor kv = full.transpose(0, 1);  // [B, total, 2 inner]
  return {kv.narrow(2, 0, inner), kv.narrow(2, inner, inner)};
}

at::Tensor DisplacedPatchContext::OwnSlot(int id) {
  at::Tensor slot = Stale(id, rank_);
  BeforeOwnWrite(id, slot);
  return slot;
}

void DisplacedPatchContext::BeforeOwnWrite(int id, const at::Tensor& slot) {
  const Site& s = sites_[id];
  if (peer_ && s.chunk >= 0 && chunks_[s.chunk].sites.front() == id && Capturing(CurrentStream(slot))) {
    const Status st = peer_->BeforeWrite(s.chunk, CurrentStream(slot));
    if (!st.ok()) Fail(st.WithContext(s.name));
  }
}

at::Tensor DisplacedPatchContext::AllocatePeerBlock(int64_t bytes, const at::TensorOptions& options) {
#ifdef DISTRI_HAVE_CUDA
  if (!options.device().is_cuda()) {
    Fail(Status::InvalidArgument("patch parallelism: the peer exchange needs the stale buffers on CUDA devices, got " +
                                 options.device().str()));
  }
  const int device = options.device().index();
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  // This step's collectives end before this thread allocates (PeerExchange::Create's deadlock
  // rule: no allocation while a peer's thread may wait in the driver for this one's launches).
  c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).synchronize();
  // Every chunk's place in the block and its slots: the same on every rank.
  PeerExchange::Layout layout;
  int64_t offset = 0;
  for (const Chunk& c : chunks_) {
    layout.chunk_base.push_back(offset);
    layout.slot_offset.push_back(c.slot_base);
    layout.slot_bytes.push_back(c.slot_bytes);
    offset += ChunkBytes(c);
  }
  const at::Tensor like = at::empty({1}, options);  // the address exchange's device
  auto exchange = PeerExchange::Create(rank_, channel_.world_size(), device, bytes, std::move(layout),
                                       [&](const std::vector<int64_t>& mine) {
                                         return Result<std::vector<std::vector<int64_t>>>(AllGatherInts(mine, like));
                                       },
                                       options_.peer_exchange_timeout);
  if (!exchange.ok()) Fail(exchange.status().WithContext("patch parallelism"));
  peer_ = std::move(exchange).value();
  // The exchange zeroed the block; the tensor keeps it alive (the memory is the exchange's).
  std::shared_ptr<void> memory = peer_->block();
  at::Tensor block = at::from_blob(memory.get(), {bytes}, [memory](void*) {}, options);
  return block;
#else
  (void)bytes, (void)options;
  Fail(Status::Unimplemented("patch parallelism: the peer exchange needs a CUDA build"));
#endif
}

std::vector<std::vector<int64_t>> DisplacedPatchContext::AllGatherInts(const std::vector<int64_t>& mine,
                                                                       const at::Tensor& like) {
  const int world = channel_.world_size();
  at::Tensor send = at::tensor(mine, at::TensorOptions().dtype(at::kLong)).to(like.device());
  at::Tensor recv = at::empty({world * static_cast<int64_t>(mine.size())}, send.options());
  auto send_buf = TensorBuffer(send);
  auto recv_buf = TensorBuffer(recv);
  if (!send_buf.ok()) Fail(send_buf.status());
  if (!recv_buf.ok()) Fail(recv_buf.status());
  void* stream = CurrentStream(send);
  const std::vector<size_t> counts(static_cast<size_t>(world), mine.size());
  const Status st = channel_.AllGatherVAsync(*send_buf, *recv_buf, counts, stream).StreamWait(stream);
  if (!st.ok()) Fail(st.WithContext("patch parallelism: exchanging the peer exchange's addresses"));
  // Wait without the driver's locks (a pageable copy would hold them while the all-gather waits
  // for a peer that may be allocating), then copy out.
#ifdef DISTRI_HAVE_CUDA
  if (like.is_cuda()) c10::cuda::getCurrentCUDAStream(like.get_device()).synchronize();
#endif
  at::Tensor host = recv.cpu();
  std::vector<std::vector<int64_t>> all(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    const int64_t* p = host.data_ptr<int64_t>() + static_cast<int64_t>(r) * static_cast<int64_t>(mine.size());
    all[static_cast<size_t>(r)].assign(p, p + mine.size());
  }
  return all;
}

at::Tensor DisplacedPatchContext::AssembleKeyValueCuda(int id, const at::Tensor& k, const at::Tensor& v,
                                                      const std::vector<int64_t>& per_strip) {
#ifdef DISTRI_HAVE_CUDA
  const bool half = k.scalar_type() == at::kHalf, bf16 = k.scalar_type() == at::kBFloat16;
  if (!options_.fused_kv_assembly || !k.is_cuda() || !(half || bf16) || !model::FusedKernelsEnabled() ||
      v.scalar_type() != k.scalar_type() || !k.strides().equals(v.strides()) || k.stride(2) != 1 ||
      layout_.patch_ranks > kernels::KeyValueParts::kMaxStrips) {
    return at::Tensor();
  }
  const int64_t batch = k.size(0), inner = k.size(2);
  const int64_t total = std::accumulate(per_strip.begin(), per_strip.end(), int64_t{0});
  at::Tensor slot = Stale(id, rank_);  // written below, once the kernel is known to apply
  kernels::KeyValueParts parts{};
  parts.strips = layout_.patch_ranks;
  parts.own = strip_;
  std::vector<at::Tensor> stale(parts.strips);  // alive until the kernel is queued
  for (int s = 0; s < parts.strips; ++s) {
    parts.rows[s] = per_strip[s];
    if (s == strip_) continue;
    stale[s] = Stale(id, layout_.gang_rank(group_, s));
    if (!stale[s].is_contiguous()) return at::Tensor();
    parts.parts[s] = stale[s].data_ptr();
  }
  at::Tensor full = at::empty({total, batch, 2 * inner}, k.options().memory_format(at::MemoryFormat::Contiguous));
  if (!slot.is_contiguous() ||
      !kernels::KeyValueAssembleSupports(k.data_ptr(), v.data_ptr(), k.stride(0), k.stride(1), batch, inner, parts,
                                         slot.data_ptr(), full.data_ptr())) {
    return at::Tensor();
  }
  BeforeOwnWrite(id, slot);
  const cudaError_t e = kernels::LaunchKeyValueAssemble(
      half ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16, k.data_ptr(), v.data_ptr(), k.stride(0),
      k.stride(1), batch, inner, parts, slot.data_ptr(), full.data_ptr(),
      c10::cuda::getCurrentCUDAStream(k.get_device()).stream());
  if (e != cudaSuccess) Fail(Status::Internal(sites_[id].name + ": K/V assembly: " + cudaGetErrorString(e)));
  return full;
#else
  (void)id, (void)k, (void)v, (void)per_strip;
  return at::Tensor();
#endif
}

void DisplacedPatchContext::SelfAttentionDone(const model::LayerSite&) { IssueKeyValueRefresh(); }

void DisplacedPatchContext::IssueKeyValueRefresh() {
  if (issue_after_attention_ < 0) return;
  const int id = issue_after_attention_;
  issue_after_attention_ = -1;
  Stored(id);
}

bool DisplacedPatchContext::GroupSlotsAdjacent(int id) const {
  const Site& s = sites_[id];
  const Chunk& c = chunks_[s.chunk];
  int64_t expected = -1;
  for (int strip = 0; strip < layout_.patch_ranks; ++strip) {
    const int r = layout_.gang_rank(group_, strip);
    const int64_t start = c.slot_base[r] + s.offset[r];
    if (expected >= 0 && start != expected) return false;
    expected = start + s.bytes[r];
  }
  return true;
}

}  // namespace distri::parallel
