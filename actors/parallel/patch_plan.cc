#include "actors/parallel/patch_plan.h"

#include <sstream>

namespace distri::parallel {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

Result<PatchPlan> PatchPlan::Make(int64_t height, int64_t width, int world_size, int num_downsamplings) {
  if (height <= 0 || width <= 0) {
    return Status::InvalidArgument("patch plan: latent size must be positive, got " + std::to_string(height) +
                                   " x " + std::to_string(width));
  }
  if (world_size < 1) {
    return Status::InvalidArgument("patch plan: world size must be >= 1, got " + std::to_string(world_size));
  }
  if (num_downsamplings < 0 || num_downsamplings > 16) {
    return Status::InvalidArgument("patch plan: number of downsamplings must be in [0, 16], got " +
                                   std::to_string(num_downsamplings));
  }
  PatchPlan plan;
  plan.world_size_ = world_size;
  plan.num_downsamplings_ = num_downsamplings;
  const int64_t unit = plan.row_unit();
  const int64_t units = CeilDiv(height, unit);
  if (units < world_size) {
    return Status::InvalidArgument(
        "patch plan: latent height " + std::to_string(height) + " gives " + std::to_string(units) +
        " row unit(s) of " + std::to_string(unit) + " rows (2^" + std::to_string(num_downsamplings) +
        " downsamplings), but " + std::to_string(world_size) +
        " ranks need one unit each: use a latent height of at least " +
        std::to_string((world_size - 1) * unit + 1) + " or fewer ranks");
  }
  // Level-0 boundaries, then each level's by halving: interior boundaries are multiples of
  // the unit, so they halve exactly; the image bottom rounds up like the downsamplers do.
  std::vector<int64_t> bounds(world_size + 1, 0);
  const int64_t base = units / world_size, extra = units % world_size;
  for (int r = 0; r < world_size; ++r) bounds[r + 1] = bounds[r] + (base + (r < extra ? 1 : 0)) * unit;
  bounds[world_size] = height;
  for (int level = 0; level <= num_downsamplings; ++level) {
    const int64_t div = int64_t{1} << level;
    plan.heights_.push_back(CeilDiv(height, div));
    plan.widths_.push_back(CeilDiv(width, div));
    std::vector<RowRange> ranges(world_size);
    for (int r = 0; r < world_size; ++r) ranges[r] = {CeilDiv(bounds[r], div), CeilDiv(bounds[r + 1], div)};
    plan.ranges_.push_back(std::move(ranges));
  }
  return plan;
}

std::vector<int> PatchPlan::LevelsOf(int rank, int64_t rows, int64_t width) const {
  std::vector<int> levels;
  for (int l = 0; l < num_levels(); ++l) {
    if (ranges_[l].at(rank).rows() == rows && widths_[l] == width) levels.push_back(l);
  }
  return levels;
}

std::string PatchPlan::ToString() const {
  std::ostringstream os;
  os << heights_[0] << " x " << widths_[0] << ", " << world_size_ << " rank(s), unit " << row_unit() << ": rows";
  for (const RowRange& r : ranges_[0]) os << " [" << r.start << "," << r.end << ")";
  return os.str();
}

}  // namespace distri::parallel
