// DisplacedPatchContext: DistriFusion's displaced patch parallelism (docs/DISTRIFUSION.md) as a
// layer context, in every sync mode, for a gang split into batch groups (the CFG split).
//
// Gang layout: `groups` batch groups (1, or 2 when the conditional and unconditional halves of
// classifier-free guidance run on the two halves of the gang) of P = plan.world_size() patch
// ranks each; gang rank r computes strip r % P of batch group r / P. Exchanges happen only
// between the ranks of one group, over the gang's channel.
//
// Per step the caller says whether the step is synchronous (warm-up, full_sync) or displaced:
//   synchronous  every layer exchanges at once, so the forward equals the single-device one
//                up to rounding, with stream-ordered collectives only (no host
//                synchronisation, capturable in a CUDA graph):
//                  Conv2d, kernel > 1: every rank all-gathers its top and bottom `padding` rows
//                  and pads its strip with the neighbours' rows (zeros at the image's top and
//                  bottom), then convolves with no vertical padding; this also serves the
//                  stride-2 downsamplers, whose strips start at even rows (PatchPlan). conv_in
//                  slices its halo from the full latent instead (SetFullInput). 1x1: local.
//                  GroupNorm: every rank's (mean, biased variance) per (batch, group) are
//                  all-gathered and merged in strip order in double (Chan et al.), so every
//                  rank gets bit-identical statistics without E[x^2] - E[x]^2 cancellation.
//                  Self-attention K/V: all-gathered (AllGatherV: strips may be uneven) in strip
//                  order, which is image row order (tokens are row-major).
//   displaced    every layer uses the other strips' activations of the previous step (stale)
//                and its own fresh ones; no layer waits for a peer.
// In both, unless the mode never refreshes (full_sync; no_sync after warm-up), each layer's own
// fresh exchange payload (boundary rows, statistics packet, K/V) is written into its slot of a
// few large "stale" buffers; a buffer is all-gathered asynchronously (one collective for many
// layers, on the channel's own stream for NCCL) as soon as its last layer has run, overlapping
// the rest of the forward. EndStep makes the current stream wait for all of them, so the next
// step finds the stale data complete; a CUDA graph of one step therefore contains its own
// exchanges (fork and join inside the graph).
//
// GroupNorm by mode (displaced steps; synchronous steps always use the exact statistics):
//   corrected_async_gn  E[x], E[x^2] of (stale global) + (fresh own - stale own); where the
//                       variance comes out negative, the own strip's variance. The own
//                       difference is added in full, as the reference implementation does.
//   stale_gn            the stale packets of the others combined with the fresh own one.
//   sync_gn             exact statistics every step (one small synchronous all-gather per norm).
//   separate_gn         the own strip's statistics only.
//   full_sync           every step synchronous.
//   no_sync             displaced steps use the last warm-up step's data (no refresh).
// naive_patch (DisplacedOptions::naive): no exchange at all; every strip is its own image.
//
// Memory: the stale buffers hold exactly what one exchange of one step moves (every rank's
// boundary rows, statistics and K/V of its strip), once; no full-size per-layer copies are
// kept besides them. stale_bytes() reports their size.
//
// Layout: the first step must be synchronous; during it every layer registers its payload and
// the buffers are laid out in layer order (identically on every rank: sizes follow from the
// plan). Later forwards must run the same layers in the same order (same model, same shapes).
//
// Errors inside a forward (a channel failure, a tensor that is not a strip of the plan) cannot
// be returned through the LayerContext interface: the context records the first one (status())
// and throws PatchParallelError; the caller (RunPatchParallelForward, DisplacedUNetRunner,
// PatchParallelDecode) turns it into a Status and aborts the channel so that the other ranks do
// not wait for a collective that will never come.
// Threading: one context per rank, used from the thread running its forward.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "actors/model/blocks/fused_ops.h"
#include "actors/model/blocks/layer_context.h"
#include "actors/parallel/patch_plan.h"
#include "actors/parallel/peer_exchange.h"
#include "runtime/channel/channel.h"
#include "runtime/common/status.h"

namespace distri::parallel {

// Thrown out of a forward by DisplacedPatchContext; carries the Status.
class PatchParallelError : public std::runtime_error {
 public:
  explicit PatchParallelError(Status status) : std::runtime_error(status.ToString()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

enum class SyncMode { kCorrectedAsyncGn, kStaleGn, kSyncGn, kSeparateGn, kFullSync, kNoSync };

// "corrected_async_gn", ... (the reference's --sync_mode names).
std::string_view SyncModeName(SyncMode mode);
Result<SyncMode> ParseSyncMode(std::string_view name);

struct GangLayout {
  int groups = 1;       // batch groups: 1, or 2 for the CFG split
  int patch_ranks = 1;  // ranks per group (the plan's world size)
  int world_size() const { return groups * patch_ranks; }
  int group_of(int gang_rank) const { return gang_rank / patch_ranks; }
  int strip_of(int gang_rank) const { return gang_rank % patch_ranks; }
  int gang_rank(int group, int strip) const { return group * patch_ranks + strip; }
};

struct DisplacedOptions {
  SyncMode mode = SyncMode::kCorrectedAsyncGn;
  bool naive = false;                 // naive_patch: no exchange
  int64_t chunk_bytes = int64_t{32} << 20;  // stale-buffer size that closes a chunk (per rank)
  // Stale buffers in the channel's collective memory (Channel::AllocateCollectiveMemory: one
  // NCCL symmetric window for all of them, registered when the first step ends; all-gathers
  // into it run on the copy engines under a zero CTA policy) where the channel has it;
  // LibTorch's allocator otherwise. Not counted by LibTorch's memory statistics:
  // collective_bytes() reports it. The first step's exchanges then start at its end instead of
  // overlapping its forward.
  bool collective_memory = false;
  // Self-attention K/V without a concatenation in displaced steps: each self-attention's K/V
  // gets a chunk of its own, so the group's slots of it are the whole image's K/V in row order;
  // the own fresh K/V is written into its slot and the attention reads the buffer itself; the
  // chunk's all-gather is issued after the attention (SelfAttentionDone) instead of before.
  // One all-gather per self-attention layer instead of a few large ones. Falls back to the
  // concatenation where the group's slots are not adjacent (alignment padding).
  bool kv_in_place = false;
  // GPU, fp16/bf16: a displaced step assembles each self-attention's K/V with one kernel
  // (kernels::LaunchKeyValueAssemble: the fresh own K/V into its slot and the whole image's K/V
  // at once) instead of two concatenations. Same bits; off only to compare.
  bool fused_kv_assembly = true;
  // A group norm + SiLU writes its output into a strip with one spare row above and below,
  // and the 3x3 convolution that reads it fills those rows with the halo and runs on it,
  // instead of concatenating halo + strip + halo into a new tensor (a copy of the whole
  // activation per convolution). The fused GPU kernel (fp16/bf16, channels-last, one image per
  // rank) writes there directly; the ATen path copies its result there, so CPU runs take the
  // same convolution path. Same bits; off only to compare.
  bool norm_into_padded_strip = true;
  // How a 3x3 convolution runs over the strip with its halo rows (model::StripConvForm): one
  // convolution over halo + strip + halo (kHalo), the strip alone plus its two seam rows again
  // (kSeam), halo + strip + halo with symmetric padding and two output rows dropped (kWide; both
  // for batch-1 channels-last strips), or the fastest, timed once per shape on the GPU (kAuto;
  // kHalo on the CPU). kHalo by default: the same bits every run; kAuto's timed choice can
  // change between processes, and it gained at most 1.1% (docs/perf/parallel-sdxl.md, tenth
  // session).
  model::StripConvForm strip_conv = model::StripConvForm::kHalo;
  // Experimental, not yet shown to work (peer_exchange.h, "Status"): inside captured CUDA
  // graphs, the stale chunks move between the GPUs of this process over the copy engines
  // (PeerExchange: copies of peer addresses ordered by flags in GPU memory) instead of NCCL
  // all-gathers, whose kernels take SMs from the UNet. Eager steps (the first run of each
  // phase, or runs without graphs) keep the channel's all-gathers, into the same buffers: the
  // flags' spinning waits never run while a rank's thread may allocate or free. Needs every
  // rank of the channel in this process, on GPUs with peer access; the stale buffers then come
  // from the exchange's memory pool (not the channel's collective memory).
  bool peer_exchange = false;
  // How long a peer-exchange wait waits for a peer before it gives up (the job then fails
  // with DeadlineExceeded, CheckExchange).
  std::chrono::milliseconds peer_exchange_timeout{60'000};
};

class DisplacedPatchContext : public model::LayerContext {
 public:
  // `channel` (not owned, outlives the context) is this rank's channel of a gang of
  // layout.world_size() ranks; plan.world_size() == layout.patch_ranks.
  DisplacedPatchContext(channel::Channel& channel, PatchPlan plan, GangLayout layout, DisplacedOptions options);

  // Before each forward. The first step must be synchronous.
  void BeginStep(bool synchronous);
  // After the forward (inside the same try as the forward: throws PatchParallelError): issues
  // what is left and orders the current stream after every exchange of the step.
  void EndStep();
  // This rank's group's full input latent [b, C, H, W], for conv_in's exact halo.
  void SetFullInput(at::Tensor latent) { full_input_ = std::move(latent); }

  at::Tensor Conv2d(const model::LayerSite& site, const model::Conv2dImpl& conv, const at::Tensor& x) override {
    return ConvStrip(site, conv, x, at::Tensor());
  }
  at::Tensor Conv2dAdd(const model::LayerSite& site, const model::Conv2dImpl& conv, const at::Tensor& x,
                       const at::Tensor& extra) override {
    return ConvStrip(site, conv, x, extra);
  }
  at::Tensor GroupNorm(const model::LayerSite& site, const model::GroupNormImpl& norm, const at::Tensor& x) override {
    return Normalize(site, norm, x, /*silu=*/false);
  }
  at::Tensor GroupNormSilu(const model::LayerSite& site, const model::GroupNormImpl& norm,
                           const at::Tensor& x) override {
    return Normalize(site, norm, x, /*silu=*/true);
  }
  std::pair<at::Tensor, at::Tensor> SelfAttentionKeyValue(const model::LayerSite& site, at::Tensor k,
                                                          at::Tensor v) override;
  void SelfAttentionDone(const model::LayerSite& site) override;

  // Bytes of the stale buffers (every rank's slots), 0 before the first step ends.
  int64_t stale_bytes() const;
  // The part of stale_bytes() outside LibTorch's allocator: the channel's collective memory, or
  // the peer exchange's block (cudaMalloc).
  int64_t collective_bytes() const { return collective_bytes_; }
  int64_t num_chunks() const { return static_cast<int64_t>(chunks_.size()); }
  // Self-attentions that read their K/V in place (kv_in_place) so far.
  int64_t kv_in_place_reads() const { return kv_in_place_reads_; }
  // Self-attention K/V assembled by the fused kernel (fused_kv_assembly) so far.
  int64_t kv_fused_assemblies() const { return kv_fused_assemblies_; }
  // Convolutions that ran on their group norm's padded output (norm_into_padded_strip) so far.
  int64_t padded_strip_convs() const { return padded_strip_convs_; }
  // Convolutions that ran in the seam and the wide form (strip_conv) so far.
  int64_t seam_convs() const { return seam_convs_; }
  int64_t wide_convs() const { return wide_convs_; }
  // Chunks handed to the copy-engine exchange so far (peer_exchange; captured steps only).
  int64_t peer_publishes() const { return peer_publishes_; }
  const Status& status() const { return status_; }
  // The peer exchange's failures seen by the GPU (a wait that gave up), a step or so late; Ok
  // without the exchange. Callers check it before each step.
  Status CheckExchange() const { return peer_ ? peer_->Check() : Status::Ok(); }

 private:
  struct Site {
    std::string name;
    at::ScalarType dtype = at::kFloat;
    std::vector<std::vector<int64_t>> shapes;  // payload shape per gang rank
    std::vector<int64_t> bytes;                // payload bytes per gang rank
    int chunk = -1;
    std::vector<int64_t> offset;               // byte offset inside the chunk slot, per gang rank
    at::Tensor pending;                        // first step: payload waiting for its buffer
    bool own_chunk = false;                    // alone in its chunk (kv_in_place)
  };
  struct Chunk {
    std::vector<int> sites;
    std::vector<int64_t> slot_bytes, slot_base;  // per gang rank
    at::Tensor buffer;                           // u8, sum(slot_bytes)
    channel::Handle handle;
  };

  bool exchanges() const { return !options_.naive && layout_.patch_ranks > 1; }
  // The site's id, registering it (first step) with its payload shape for every gang rank.
  int SiteId(const model::LayerSite& site, at::ScalarType dtype,
             const std::vector<std::vector<int64_t>>& shapes);
  // Rank r's stale payload of a site (a typed view into its chunk buffer).
  at::Tensor Stale(int site, int gang_rank) const;
  // Writes the own fresh payload for the next step and issues its chunk when complete.
  void Store(int site, const at::Tensor& payload);
  // Whether a layer may write its own fresh payload straight into its slot (Stale(site,
  // rank_)) instead of building it and calling Store: a displaced step that refreshes, after
  // the first step laid the buffers out. Saves a copy (a graph node) per layer and step.
  bool StoresDirectly(int site) const;
  // After a layer wrote its slot directly: issues its chunk when it is the chunk's last layer.
  void Stored(int site);
  // kv_in_place: issues the chunk of the self-attention that read its K/V in place, if one waits.
  void IssueKeyValueRefresh();
  // Whether the slots of a site of the group's ranks follow each other in strip order in its
  // chunk (no alignment padding between them): then they read as one tensor.
  bool GroupSlotsAdjacent(int site) const;
  // Contiguous zeros of `like`'s shape with `rows` at dim `dim`, its dtype and device: the halo
  // of a strip at the image's top or bottom. Made once per shape and kept (stable between CUDA
  // graph replays; the first step of each phase runs eagerly, so none is made while capturing).
  at::Tensor ZeroRows(const at::Tensor& like, int64_t dim, int64_t rows);
  // Lays out the open chunk's slots; allocates its buffer, fills it with its layers' pending
  // payloads and issues it, unless collective memory defers that to AllocateDeferredChunks.
  void CloseChunk();
  int64_t ChunkBytes(const Chunk& c) const;
  void FillAndIssue(Chunk& c, at::Tensor buffer);
  // End of the first step: one block of collective memory (or LibTorch memory where the
  // channel has none) for every chunk not allocated yet; fills and issues them.
  void AllocateDeferredChunks();
  void IssueChunk(Chunk& chunk);
  // Synchronous all-gather of one payload over the gang (per-rank shapes from the site).
  at::Tensor GatherNow(const model::LayerSite& site, int id, const at::Tensor& payload);
  at::Tensor SliceFullInput(const model::LayerSite& site, const at::Tensor& x, int64_t pad);
  // Sizes of every strip of this rank's group at the plan level where this rank's strip has
  // size `own` (size(strip, level): rows, tokens, ...; negative where a level does not apply).
  // Fails naming `what` ("self-attention tokens") when no level, or several levels with
  // different strips, match.
  std::vector<int64_t> StripSizes(const model::LayerSite& site, int64_t own,
                                  const std::function<int64_t(int strip, int level)>& size, const char* what);
  // A convolution of this rank's strip with its halo rows, plus `extra` where defined (Conv2dAdd).
  at::Tensor ConvStrip(const model::LayerSite& site, const model::Conv2dImpl& conv, const at::Tensor& x,
                       const at::Tensor& extra);
  at::Tensor Normalize(const model::LayerSite& site, const model::GroupNormImpl& norm, const at::Tensor& x, bool silu);
  // GPU path of Normalize (fused kernels: statistics, combination, normalisation + SiLU);
  // undefined when it does not apply (CPU, fp32, odd layouts, more strips than it takes).
  at::Tensor NormalizeCuda(const model::LayerSite& site, const model::GroupNormImpl& norm, const at::Tensor& x,
                           bool silu, const std::vector<int64_t>& strip_rows);
  // GPU path of a displaced step's K/V assembly (fused_kv_assembly): writes the own slot of
  // site `id` and returns the whole image's K/V [total, B, 2 inner]; undefined when it does not
  // apply (CPU, fp32, unaligned or odd strides), and then nothing was written.
  at::Tensor AssembleKeyValueCuda(int id, const at::Tensor& k, const at::Tensor& v,
                                  const std::vector<int64_t>& per_strip);
  // This rank's slot of a site, to be written: with the peer exchange, the chunk's first site
  // first waits (on the stream) until every peer copied the slot's previous contents.
  at::Tensor OwnSlot(int id);
  // x is rows 1..rows of norm_padded_ (its group norm's output, untouched view) and the
  // convolution pads one row: ConvStrip fills the spare rows instead of concatenating.
  bool IsPaddedNormOutput(const at::Tensor& x, int64_t pad) const;
  // OwnSlot's wait alone, for a caller that holds the slot (Stale(id, rank_)) already.
  void BeforeOwnWrite(int id, const at::Tensor& slot);
  // peer_exchange: the stale block from cudaMalloc and the exchange over it (end of step 0).
  at::Tensor AllocatePeerBlock(int64_t bytes, const at::TensorOptions& options);
  // Exchanges a few integers with every rank of the channel (synchronous; setup only).
  std::vector<std::vector<int64_t>> AllGatherInts(const std::vector<int64_t>& mine, const at::Tensor& like);
  [[noreturn]] void Fail(Status status);

  channel::Channel& channel_;
  PatchPlan plan_;
  GangLayout layout_;
  DisplacedOptions options_;
  int rank_, group_, strip_;
  bool synchronous_ = true, refresh_ = false, registering_ = true, started_ = false;
  at::Tensor full_input_;
  std::map<std::pair<int, int64_t>, int> site_ids_;  // (kind, index) -> sites_
  std::vector<Site> sites_;
  std::vector<Chunk> chunks_;
  int open_chunk_ = -1;
  std::vector<at::Tensor> zero_rows_;  // ZeroRows' cache
  int64_t collective_bytes_ = 0;
  int issue_after_attention_ = -1;
  int64_t kv_in_place_reads_ = 0;
  int64_t kv_fused_assemblies_ = 0;
  int64_t padded_strip_convs_ = 0;
  int64_t seam_convs_ = 0;
  int64_t peer_publishes_ = 0;
  int64_t wide_convs_ = 0;
  // norm_into_padded_strip: the last group norm + SiLU's padded output ([1, C, rows + 2, W],
  // channels-last; the norm returned rows 1..rows of it), until a convolution takes it.
  at::Tensor norm_padded_;
  std::unique_ptr<PeerExchange> peer_;  // peer_exchange, from the end of the first step  // kv_in_place: the site whose chunk SelfAttentionDone issues
  Status status_;
};

}  // namespace distri::parallel
