#include "actors/common/step_pacer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace distri {
namespace {

TEST(StepPacer, CpuStepsAreDoneWhenQueued) {
  StepPacer pacer(c10::Device(c10::kCPU));
  for (int i = 1; i <= 3; ++i) {
    Result<int> done = pacer.Queued();
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_EQ(*done, i);
  }
  EXPECT_EQ(*pacer.Finish(), 3);
}


}  // namespace
}  // namespace distri
