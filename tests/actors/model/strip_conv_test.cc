// The seam and wide forms of a strip's halo convolution (model::SeamConvAdd, WideConvAdd)
// against the one convolution over halo + strip + halo, on the CPU (fp32): same values, bias
// and addends included; where they do not apply, and how kAuto resolves off the GPU.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "actors/model/blocks/fused_ops.h"

namespace distri::model {
namespace {

double RelErr(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kFloat) - b.to(at::kFloat)).norm() / b.to(at::kFloat).norm()).item<double>();
}

TEST(StripConv, SeamAndWideFormsEqualHaloConvolution) {
  at::manual_seed(11);
  for (int64_t rows : {2, 3, 7, 16}) {
    for (int64_t width : {1, 5, 12}) {
      const auto cl = at::MemoryFormat::ChannelsLast;
      at::Tensor padded = at::randn({1, 8, rows + 2, width}).contiguous(cl);
      at::Tensor w = at::randn({6, 8, 3, 3}) * 0.2;
      at::Tensor b = at::randn({6});
      at::Tensor temb = at::randn({1, 6, 1, 1});
      at::Tensor res = at::randn({1, 6, rows, width}).contiguous(cl);
      ASSERT_TRUE(StripFormEligible(padded, w, 1));
      for (const at::Tensor& bias : {at::Tensor(), b}) {
        for (const at::Tensor& extra : {at::Tensor(), temb, res}) {
          at::Tensor ref = at::conv2d(padded, w, bias, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1});
          if (extra.defined()) ref = ref + extra;
          at::Tensor got = SeamConvAdd(padded, w, bias, extra);
          ASSERT_EQ(got.sizes(), ref.sizes()) << rows << "x" << width;
          EXPECT_LT(RelErr(got, ref), 1e-6) << rows << "x" << width << " bias " << bias.defined() << " extra "
                                            << (extra.defined() ? extra.size(2) : 0);
          // The wide form: a channels-last view the next layers can take as it is.
          at::Tensor wide = WideConvAdd(padded, w, bias, extra);
          ASSERT_EQ(wide.sizes(), ref.sizes()) << "wide " << rows << "x" << width;
          EXPECT_TRUE(wide.is_contiguous(at::MemoryFormat::ChannelsLast)) << "wide " << rows << "x" << width;
          EXPECT_LT(RelErr(wide, ref), 1e-6) << "wide " << rows << "x" << width << " bias " << bias.defined();
        }
      }
      // The seam rows really come from the halo: with other halo rows, the first and last
      // output rows change and the rest do not.
      at::Tensor other = padded.clone();
      other.narrow(2, 0, 1).add_(1.0);
      other.narrow(2, rows + 1, 1).add_(1.0);
      at::Tensor a = SeamConvAdd(padded, w, b, {}), c = SeamConvAdd(other, w, b, {});
      EXPECT_FALSE(at::allclose(a.narrow(2, 0, 1), c.narrow(2, 0, 1)));
      EXPECT_FALSE(at::allclose(a.narrow(2, rows - 1, 1), c.narrow(2, rows - 1, 1)));
      if (rows > 2) EXPECT_TRUE(at::equal(a.narrow(2, 1, rows - 2), c.narrow(2, 1, rows - 2)));
    }
  }
}

TEST(StripConv, WhereTheSeamFormDoesNotApply) {
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor w = at::randn({4, 8, 3, 3});
  EXPECT_FALSE(StripFormEligible(at::randn({2, 8, 10, 6}).contiguous(cl), w, 1)) << "batch 2";
  EXPECT_FALSE(StripFormEligible(at::randn({1, 8, 10, 6}), w, 1)) << "contiguous NCHW";
  EXPECT_FALSE(StripFormEligible(at::randn({1, 8, 3, 6}).contiguous(cl), w, 1)) << "one strip row";
  EXPECT_FALSE(StripFormEligible(at::randn({1, 8, 10, 6}).contiguous(cl), w, 2)) << "stride 2";
  EXPECT_FALSE(StripFormEligible(at::randn({1, 8, 10, 6}).contiguous(cl), at::randn({4, 8, 1, 1}), 1)) << "1x1";
  EXPECT_TRUE(StripFormEligible(at::randn({1, 8, 4, 6}).contiguous(cl), w, 1));
  // SeamConvAdd refuses what it cannot do, naming the shapes.
  try {
    SeamConvAdd(at::randn({2, 8, 10, 6}).contiguous(cl), w, {}, {});
    FAIL() << "batch 2 accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 8, 10, 6]"), std::string::npos) << e.what();
  }
}

TEST(StripConv, FormsResolveAndParse) {
  const auto cl = at::MemoryFormat::ChannelsLast;
  at::Tensor w = at::randn({4, 8, 3, 3});
  at::Tensor ok = at::randn({1, 8, 10, 6}).contiguous(cl), batch2 = at::randn({2, 8, 10, 6}).contiguous(cl);
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kSeam, ok, w, 1), StripConvForm::kSeam);
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kSeam, batch2, w, 1), StripConvForm::kHalo);
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kHalo, ok, w, 1), StripConvForm::kHalo);
  // Off the GPU, kAuto does not time: one convolution.
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kAuto, ok, w, 1), StripConvForm::kHalo);
  StripConvForm f = StripConvForm::kHalo;
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kWide, ok, w, 1), StripConvForm::kWide);
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kWide, batch2, w, 1), StripConvForm::kHalo);
  for (const char* name : {"auto", "halo", "seam", "wide"}) {
    ASSERT_TRUE(ParseStripConvForm(name, &f)) << name;
    EXPECT_STREQ(StripConvFormName(f), name);
  }
  EXPECT_FALSE(ParseStripConvForm("Seam", &f));
  EXPECT_FALSE(ParseStripConvForm("", &f));
}

}  // namespace
}  // namespace distri::model
