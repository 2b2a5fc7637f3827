// The attention backend preference (DISTRI_SDPA_BACKEND / SetSdpaBackend) on the CPU: names are
// checked, and every preference computes the same attention as at::scaled_dot_product_attention.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"

namespace distri::model {
namespace {

TEST(AttentionBackend, UnknownNamesAreRefusedAndChangeNothing) {
  const std::string before = SdpaBackend();
  EXPECT_FALSE(SetSdpaBackend("fa3"));
  EXPECT_FALSE(SetSdpaBackend(""));
  EXPECT_FALSE(SetSdpaBackend("CUDNN"));
  EXPECT_FALSE(SetSdpaBackend("math"));
  EXPECT_FALSE(SetSdpaBackend("cudnn,"));
  EXPECT_FALSE(SetSdpaBackend("cudnn,flash,flash"));
  EXPECT_EQ(SdpaBackend(), before);
}

TEST(AttentionBackend, EveryPreferenceComputesTheSameAttentionOnCpu) {
  const std::string before = SdpaBackend();
  at::manual_seed(3);
  // [B, N, 3 h d] projection viewed as q, k, v (the model's strided views), 2 heads of 8.
  at::Tensor qkv = at::randn({2, 12, 3 * 16});
  auto view = [&](int i) { return qkv.narrow(2, i * 16, 16).view({2, 12, 2, 8}).transpose(1, 2); };
  at::Tensor ref = at::scaled_dot_product_attention(view(0), view(1), view(2));
  // Longer keys than queries, as a patch's displaced self-attention has.
  at::Tensor kv = at::randn({2, 2, 30, 8});
  at::Tensor ref_long = at::scaled_dot_product_attention(view(0), kv, kv * 0.5);
  ASSERT_TRUE(SetSdpaBackend("default"));
  const std::string dispatcher_pick = SdpaChoice(view(0), view(1), view(2));
  // CPU inputs always go through LibTorch's dispatcher, whatever the preference.
  for (const char* name : {"default", "cudnn", "flash", "efficient", "cudnn,flash", "flash,default"}) {
    ASSERT_TRUE(SetSdpaBackend(name)) << name;
    EXPECT_EQ(SdpaBackend(), name);
    at::Tensor got = ScaledDotProductAttention(view(0), view(1), view(2));
    EXPECT_TRUE(at::allclose(got, ref, 1e-5, 1e-6)) << name;
    EXPECT_TRUE(at::allclose(ScaledDotProductAttention(view(0), kv, kv * 0.5, /*cross=*/true), ref_long, 1e-5, 1e-6))
        << name;
    EXPECT_EQ(SdpaChoice(view(0), view(1), view(2)), dispatcher_pick) << name;
  }
  ASSERT_TRUE(SetSdpaBackend(before));
}

}  // namespace
}  // namespace distri::model
