// PatchPlan: how a latent is cut into horizontal strips, one per rank (docs/DISTRIFUSION.md).
//
// Rank r owns latent rows [start, end) of the full image; rank 0 is the top strip and the
// strips tile the image in rank order. Every strip boundary is a multiple of the row unit
// 2^num_downsamplings, so that after each stride-2 downsampler every rank still owns a whole
// number of rows and the strips of every level tile that level exactly (no row is shared or
// split). Any world size >= 1 works: the units are dealt out as evenly as possible (the first
// ranks get one unit more when they don't divide), and a height that is not a multiple of the
// unit gives the last strip a partial unit. Level l (0 = the latent, 1 = after the first
// downsampler, ...) has height ceil(H / 2^l) and width ceil(W / 2^l), which is what a 3x3
// stride-2 padding-1 convolution produces.
//
// A PatchPlan is an immutable value: copy it freely, share it between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace distri::parallel {

// Rows [start, end) of one rank at one level.
struct RowRange {
  int64_t start = 0;
  int64_t end = 0;
  int64_t rows() const { return end - start; }
  bool operator==(const RowRange&) const = default;
};

class PatchPlan {
 public:
  // Plans `world_size` strips of a latent of `height` x `width` for a model with
  // `num_downsamplings` stride-2 downsamplers (UNet: UNet2DConditionModelImpl::num_upsamplers()).
  // InvalidArgument when a size is not positive, num_downsamplings is negative or above 16, or
  // the height has fewer row units than ranks (every rank needs at least one unit).
  static Result<PatchPlan> Make(int64_t height, int64_t width, int world_size, int num_downsamplings);

  int world_size() const { return world_size_; }
  int num_levels() const { return num_downsamplings_ + 1; }
  int num_downsamplings() const { return num_downsamplings_; }
  // 2^num_downsamplings latent rows: the granularity of strip boundaries.
  int64_t row_unit() const { return int64_t{1} << num_downsamplings_; }

  // Full height and width of level `level` in [0, num_levels()).
  int64_t height(int level) const { return heights_.at(level); }
  int64_t width(int level) const { return widths_.at(level); }
  // Rows of rank `rank` at level `level`.
  RowRange rows(int rank, int level = 0) const { return ranges_.at(level).at(rank); }

  // The levels whose shape matches an activation of this rank: rows(rank, l).rows() == rows
  // and width(l) == width. Usually one; none for a tensor that is not a strip of this plan.
  std::vector<int> LevelsOf(int rank, int64_t rows, int64_t width) const;

  // "H x W, N ranks, unit U: rows [0,8) [8,12) [12,16)" for logs and error messages.
  std::string ToString() const;

 private:
  PatchPlan() = default;
  int world_size_ = 1;
  int num_downsamplings_ = 0;
  std::vector<int64_t> heights_, widths_;
  std::vector<std::vector<RowRange>> ranges_;  // [level][rank]
};

}  // namespace distri::parallel
