#include "actors/common/torch_util.h"

#include <gtest/gtest.h>

namespace distri {
namespace {

TEST(TorchUtil, ParseDevice) {
  EXPECT_EQ(ParseDevice("cpu")->type(), c10::kCPU);
  auto bad = ParseDevice("tpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown device 'tpu' (expected cpu, cuda, cuda:N or auto)");
  EXPECT_FALSE(ParseDevice("cuda:x").ok());
  EXPECT_FALSE(ParseDevice("cuda:").ok());
  EXPECT_FALSE(ParseDevice("cuda:999").ok());  // no machine has 1000 GPUs
  auto autodev = ParseDevice("auto");
  ASSERT_TRUE(autodev.ok());
  EXPECT_EQ(autodev->type(), at::hasCUDA() ? c10::kCUDA : c10::kCPU);
}

TEST(TorchUtil, ParseDtype) {
  EXPECT_EQ(*ParseDtype("fp16"), c10::kHalf);
  EXPECT_EQ(*ParseDtype("bfloat16"), c10::kBFloat16);
  EXPECT_EQ(*ParseDtype("float32"), c10::kFloat);
  EXPECT_EQ(ParseDtype("int8").status().message(), "unknown dtype 'int8' (expected fp32, fp16 or bf16)");
  EXPECT_EQ(DtypeName(c10::kBFloat16), "bf16");
}

}  // namespace
}  // namespace distri
