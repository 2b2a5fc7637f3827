// PatchPlan: strip boundaries on row units, uneven and ragged strips, per-level ranges, refusals.
#include <gtest/gtest.h>

#include "actors/parallel/patch_plan.h"

namespace distri::parallel {
namespace {

std::vector<RowRange> Level(const PatchPlan& plan, int level) {
  std::vector<RowRange> out;
  for (int r = 0; r < plan.world_size(); ++r) out.push_back(plan.rows(r, level));
  return out;
}

TEST(PatchPlan, EvenStripsHalvePerLevel) {
  auto plan = PatchPlan::Make(32, 20, 4, 2);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->row_unit(), 4);
  EXPECT_EQ(plan->num_levels(), 3);
  EXPECT_EQ(Level(*plan, 0), (std::vector<RowRange>{{0, 8}, {8, 16}, {16, 24}, {24, 32}}));
  EXPECT_EQ(Level(*plan, 1), (std::vector<RowRange>{{0, 4}, {4, 8}, {8, 12}, {12, 16}}));
  EXPECT_EQ(Level(*plan, 2), (std::vector<RowRange>{{0, 2}, {2, 4}, {4, 6}, {6, 8}}));
  EXPECT_EQ(plan->width(0), 20);
  EXPECT_EQ(plan->width(1), 10);
  EXPECT_EQ(plan->width(2), 5);
}

TEST(PatchPlan, UnevenStripsGiveTheFirstRanksTheExtraUnits) {
  // 24 rows = 6 units of 4 over 4 ranks: 2, 2, 1, 1 units.
  auto plan = PatchPlan::Make(24, 8, 4, 2);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Level(*plan, 0), (std::vector<RowRange>{{0, 8}, {8, 16}, {16, 20}, {20, 24}}));
  EXPECT_EQ(Level(*plan, 2), (std::vector<RowRange>{{0, 2}, {2, 4}, {4, 5}, {5, 6}}));
  // Three ranks, not a power of two.
  auto three = PatchPlan::Make(20, 8, 3, 2);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(Level(*three, 0), (std::vector<RowRange>{{0, 8}, {8, 16}, {16, 20}}));
}

TEST(PatchPlan, RaggedHeightGivesTheLastStripAPartialUnit) {
  // 18 rows, unit 4: levels are 18, 9, 5 rows high (the downsamplers round up).
  auto plan = PatchPlan::Make(18, 8, 4, 2);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(Level(*plan, 0), (std::vector<RowRange>{{0, 8}, {8, 12}, {12, 16}, {16, 18}}));
  EXPECT_EQ(Level(*plan, 1), (std::vector<RowRange>{{0, 4}, {4, 6}, {6, 8}, {8, 9}}));
  EXPECT_EQ(Level(*plan, 2), (std::vector<RowRange>{{0, 2}, {2, 3}, {3, 4}, {4, 5}}));
  EXPECT_EQ(plan->height(2), 5);
}

TEST(PatchPlan, StripsTileEveryLevel) {
  for (int world = 1; world <= 7; ++world) {
    for (int64_t height = 1; height <= 40; ++height) {
      auto plan = PatchPlan::Make(height, 5, world, 3);
      if (!plan.ok()) continue;
      for (int l = 0; l < plan->num_levels(); ++l) {
        EXPECT_EQ(plan->rows(0, l).start, 0);
        for (int r = 0; r < world; ++r) {
          EXPECT_GE(plan->rows(r, l).rows(), 1) << "H=" << height << " N=" << world << " level " << l;
          if (r > 0) EXPECT_EQ(plan->rows(r, l).start, plan->rows(r - 1, l).end);
          if (r > 0 && l < 3) EXPECT_EQ(plan->rows(r, l).start % (int64_t{1} << (3 - l)), 0);
        }
        EXPECT_EQ(plan->rows(world - 1, l).end, plan->height(l));
      }
    }
  }
}

TEST(PatchPlan, OneRankOwnsEverything) {
  auto plan = PatchPlan::Make(13, 7, 1, 3);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->rows(0, 0), (RowRange{0, 13}));
  EXPECT_EQ(plan->rows(0, 3), (RowRange{0, 2}));
}

TEST(PatchPlan, TooFewRowUnitsIsAClearError) {
  auto plan = PatchPlan::Make(8, 8, 4, 2);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = plan.status().message();
  EXPECT_NE(m.find("latent height 8 gives 2 row unit(s) of 4 rows"), std::string::npos) << m;
  EXPECT_NE(m.find("4 ranks"), std::string::npos) << m;
  EXPECT_NE(m.find("at least 13"), std::string::npos) << m;
  EXPECT_TRUE(PatchPlan::Make(13, 8, 4, 2).ok());
}

TEST(PatchPlan, RefusesBadArguments) {
  EXPECT_FALSE(PatchPlan::Make(0, 8, 1, 0).ok());
  EXPECT_FALSE(PatchPlan::Make(8, -1, 1, 0).ok());
  EXPECT_FALSE(PatchPlan::Make(8, 8, 0, 0).ok());
  EXPECT_FALSE(PatchPlan::Make(8, 8, 1, -1).ok());
}

TEST(PatchPlan, LevelsOfFindsTheLevelOfAStrip) {
  auto plan = PatchPlan::Make(32, 16, 2, 2);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->LevelsOf(1, 8, 8), std::vector<int>{1});
  EXPECT_TRUE(plan->LevelsOf(1, 8, 16).empty());
}

}  // namespace
}  // namespace distri::parallel
