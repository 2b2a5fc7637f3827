// The fused CUDA kernels against fp32 references (label gpu).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "actors/model/blocks/attention_backend.h"
#include "actors/model/blocks/fused_ops.h"
#include "actors/kernels/fused_kernels.h"
#include "actors/kernels/peer_flags.h"

namespace distri::model {
namespace {

double RelErr(const at::Tensor& a, const at::Tensor& ref) {
  return ((a.to(at::kCPU, at::kDouble) - ref.to(at::kCPU, at::kDouble)).abs().max() /
          ref.to(at::kDouble).abs().max()).item<double>();
}

TEST(FusedOpsGpu, GroupNormMatchesFp32Reference) {
  ASSERT_TRUE(at::hasCUDA());
  ASSERT_TRUE(FusedKernelsEnabled());
  at::manual_seed(0);
  struct Shape { int64_t n, c, h, w, g; } shapes[] = {
      {2, 320, 128, 128, 32}, {2, 1280, 32, 32, 32}, {1, 64, 5, 7, 8}, {3, 96, 9, 16, 32}, {2, 32, 1, 1, 8},
      // batch 1 strips of a 4-GPU gang (few pixels: small chunks), wide concatenations (one
      // pixel row per block), 2 channels a group (the chunk count capped by the workspace)
      {1, 1280, 16, 32, 32}, {1, 2560, 8, 8, 32}, {1, 1920, 16, 16, 32}, {1, 64, 64, 64, 32}, {1, 640, 3, 5, 32}};
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (const auto& s : shapes) {
      at::Tensor x = (at::randn({s.n, s.c, s.h, s.w}) * 3 + 2);  // a mean far from 0 tests the shifted sums
      at::Tensor w = at::randn({s.c}) * 0.5 + 1, b = at::randn({s.c}) * 0.1;
      at::Tensor xd = x.cuda().to(dt), wd = w.cuda().to(dt), bd = b.cuda().to(dt);
      for (bool silu : {false, true}) {
        at::Tensor ref = at::group_norm(xd.to(at::kFloat), s.g, wd.to(at::kFloat), bd.to(at::kFloat), 1e-5);
        if (silu) ref = at::silu(ref);
        at::Tensor got = FusedGroupNorm(xd, s.g, wd, bd, 1e-5, silu);
        double err = RelErr(got, ref);
        EXPECT_LT(err, dt == at::kHalf ? 2e-3 : 1.6e-2) << c10::toString(dt) << " " << s.n << "x" << s.c << "x" << s.h
                                                         << "x" << s.w << " silu=" << silu;
        EXPECT_TRUE(got.equal(FusedGroupNorm(xd, s.g, wd, bd, 1e-5, silu))) << "not deterministic";
        at::Tensor xcl = xd.contiguous(at::MemoryFormat::ChannelsLast);
        at::Tensor got_cl = FusedGroupNorm(xcl, s.g, wd, bd, 1e-5, silu);
        EXPECT_LT(RelErr(got_cl, ref), dt == at::kHalf ? 2e-3 : 1.6e-2) << "channels_last " << s.c << "x" << s.h;
        if (s.h * s.w > 1 && s.c > 1) {
          EXPECT_TRUE(got_cl.is_contiguous(at::MemoryFormat::ChannelsLast));
        }
      }
    }
  }
}

// Patch parallelism's displaced group norm: the fused statistics + combination launch
// (LaunchGroupNormStatsCombine: finalization and combination in one kernel where the groups fit
// one block, else the two launches) gives what LaunchGroupNormStats then LaunchGroupStatsCombine
// give: the fresh own packet, (mean, rstd) and the fresh packet stored over the own stale one.
TEST(FusedOpsGpu, GroupStatsCombineFusedEqualsTwoLaunches) {
  ASSERT_TRUE(at::hasCUDA());
  at::manual_seed(1);
  struct Shape { int64_t n, c, h, w, g; } shapes[] = {
      {1, 1280, 16, 32, 32}, {1, 64, 5, 7, 8}, {1, 320, 64, 128, 32}, {2, 320, 32, 32, 32} /* 64 groups: two launches */};
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  for (const auto& s : shapes) {
    for (bool channels_last : {false, true}) {
      for (int mode : {1, 2}) {
        for (int strips : {2, 3}) {
          const int own = strips - 1;
          const int64_t ng = s.n * s.g;
          at::Tensor x = (at::randn({s.n, s.c, s.h, s.w}) * 2 + 1).cuda().to(at::kHalf);
          if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
          at::Tensor stale = at::stack({at::randn({strips, ng}), at::rand({strips, ng}) + 0.5}, 1).to(f32.device());
          auto run = [&](bool fused) {
            at::Tensor packets = stale.clone();  // [strips, 2, ng]; the own one is overwritten
            at::Tensor ws = at::empty({kernels::GroupNormWorkspaceFloats(s.n, s.g, s.c / s.g * s.h * s.w)}, f32);
            at::Tensor fresh = at::empty({2, ng}, f32), mean_rstd = at::empty({2 * ng}, f32);
            kernels::GroupStatsInputs in{};
            in.strips = strips;
            in.own = own;
            for (int k = 0; k < strips; ++k) {
              in.packets[k] = packets[k].data_ptr<float>();
              in.rows[k] = static_cast<float>(k + 3);
            }
            float* store = packets[own].data_ptr<float>();
            cudaError_t e;
            if (fused) {
              e = kernels::LaunchGroupNormStatsCombine(kernels::ElemType::kHalf, x.data_ptr(), s.n, s.c, s.h * s.w, s.g,
                                                       channels_last, ws.data_ptr<float>(), in, mode, 1e-5f,
                                                       fresh.data_ptr<float>(), mean_rstd.data_ptr<float>(), nullptr,
                                                       store);
            } else {
              e = kernels::LaunchGroupNormStats(kernels::ElemType::kHalf, x.data_ptr(), s.n, s.c, s.h * s.w, s.g,
                                                channels_last, ws.data_ptr<float>(), fresh.data_ptr<float>(), nullptr);
              if (e == cudaSuccess) {
                e = kernels::LaunchGroupStatsCombine(in, fresh.data_ptr<float>(), ng, mode, 1e-5f,
                                                     mean_rstd.data_ptr<float>(), nullptr, store);
              }
            }
            EXPECT_EQ(cudaSuccess, e) << cudaGetErrorString(e);
            return std::vector<at::Tensor>{fresh.cpu(), mean_rstd.cpu(), packets.cpu()};
          };
          const auto two = run(false), one = run(true);
          const std::string what = std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" +
                                   std::to_string(s.w) + (channels_last ? " nhwc" : " nchw") + " mode " +
                                   std::to_string(mode) + " strips " + std::to_string(strips);
          EXPECT_TRUE(at::allclose(one[0], two[0], 1e-6, 1e-7)) << "fresh packet, " << what;
          EXPECT_TRUE(at::allclose(one[1], two[1], 1e-6, 1e-7)) << "mean/rstd, " << what;
          EXPECT_TRUE(at::allclose(one[2], two[2], 1e-6, 1e-7)) << "stored packets, " << what;
          EXPECT_TRUE(at::allclose(one[2][own], one[0], 0, 0)) << "the fresh packet is stored, " << what;
        }
      }
    }
  }
  // Only the displaced modes.
  kernels::GroupStatsInputs in{};
  in.strips = 2;
  EXPECT_EQ(cudaErrorInvalidValue,
            kernels::LaunchGroupNormStatsCombine(kernels::ElemType::kHalf, nullptr, 1, 32, 4, 32, false, nullptr, in, 0,
                                                 1e-5f, nullptr, nullptr, nullptr));
}

// The displaced self-attention's K/V assembly (LaunchKeyValueAssemble) equals the context's two
// concatenations bit for bit: the fresh own K/V (views of a fused q/k/v projection) token-major
// into the own slot, and every strip in row order into the whole image's K/V.
TEST(FusedOpsGpu, KeyValueAssembleEqualsConcatenations) {
  ASSERT_TRUE(at::hasCUDA());
  at::manual_seed(2);
  struct Case { int64_t batch, inner; std::vector<int64_t> rows; int own; at::ScalarType dtype; } cases[] = {
      {1, 640, {2048, 2048}, 0, at::kHalf},    {1, 1280, {512, 512}, 1, at::kHalf},
      {2, 64, {5, 7, 6}, 1, at::kBFloat16},    {1, 8, {3, 1, 4, 2}, 3, at::kHalf},
      {3, 40, {9, 9}, 0, at::kHalf},           {1, 64, {0, 4}, 1, at::kHalf} /* an empty strip */};
  const auto gpu = at::TensorOptions().device(at::kCUDA);
  for (const auto& c : cases) {
    const int strips = static_cast<int>(c.rows.size());
    const int64_t own_rows = c.rows[c.own];
    at::Tensor qkv = at::randn({c.batch, own_rows, 3 * c.inner}, gpu).to(c.dtype);
    at::Tensor k = qkv.narrow(2, c.inner, c.inner), v = qkv.narrow(2, 2 * c.inner, c.inner);
    std::vector<at::Tensor> stale;
    kernels::KeyValueParts parts{};
    parts.strips = strips;
    parts.own = c.own;
    int64_t total = 0;
    for (int s = 0; s < strips; ++s) {
      stale.push_back(at::randn({c.rows[s], c.batch, 2 * c.inner}, gpu).to(c.dtype));
      parts.parts[s] = stale[s].data_ptr();
      parts.rows[s] = c.rows[s];
      total += c.rows[s];
    }
    at::Tensor own_out = at::full({own_rows, c.batch, 2 * c.inner}, 7, gpu.dtype(c.dtype));
    at::Tensor full = at::empty({total, c.batch, 2 * c.inner}, gpu.dtype(c.dtype));
    const cudaError_t e = kernels::LaunchKeyValueAssemble(
        c.dtype == at::kHalf ? kernels::ElemType::kHalf : kernels::ElemType::kBFloat16, k.data_ptr(), v.data_ptr(),
        k.stride(0), k.stride(1), c.batch, c.inner, parts, own_out.data_ptr(), full.data_ptr(), nullptr);
    ASSERT_EQ(cudaSuccess, e) << cudaGetErrorString(e);
    const at::Tensor payload = at::cat({k, v}, 2).transpose(0, 1).contiguous();
    std::vector<at::Tensor> in_order = stale;
    in_order[c.own] = payload;
    const at::Tensor want = at::cat(in_order, 0);
    std::string what = "batch " + std::to_string(c.batch) + " inner " + std::to_string(c.inner) + " own " +
                       std::to_string(c.own) + " of " + std::to_string(strips);
    EXPECT_TRUE(at::equal(own_out, payload)) << "own slot, " << what;
    EXPECT_TRUE(at::equal(full, want)) << "whole K/V, " << what;
  }
  // Refused, not misread: inner not a multiple of 8, an unaligned view, too many strips.
  at::Tensor qkv = at::randn({1, 4, 3 * 12}, gpu).to(at::kHalf);
  at::Tensor out = at::empty({4, 1, 24}, gpu.dtype(at::kHalf)), full = at::empty({8, 1, 24}, gpu.dtype(at::kHalf));
  kernels::KeyValueParts parts{};
  parts.strips = 2;
  parts.own = 0;
  parts.rows[0] = parts.rows[1] = 4;
  parts.parts[1] = full.data_ptr();
  EXPECT_EQ(cudaErrorInvalidValue,
            kernels::LaunchKeyValueAssemble(kernels::ElemType::kHalf, qkv.narrow(2, 12, 12).data_ptr(),
                                            qkv.narrow(2, 24, 12).data_ptr(), 36, 36, 1, 12, parts, out.data_ptr(),
                                            full.data_ptr(), nullptr));
  at::Tensor wide = at::randn({1, 4, 3 * 16 + 1}, gpu).to(at::kHalf);
  EXPECT_FALSE(kernels::KeyValueAssembleSupports(wide.narrow(2, 17, 16).data_ptr(), wide.narrow(2, 33, 16).data_ptr(),
                                                 49, 49, 1, 16, parts, out.data_ptr(), full.data_ptr()));
  parts.strips = kernels::KeyValueParts::kMaxStrips + 1;
  EXPECT_FALSE(kernels::KeyValueAssembleSupports(qkv.data_ptr(), qkv.data_ptr(), 48, 48, 1, 16, parts,
                                                 out.data_ptr(), full.data_ptr()));
}

// The peer exchange's flag kernels: a wait sees a set flag and resets it; a wait for a flag
// nobody sets gives up after its time limit with its code; a later wait gives up at once.
TEST(FusedOpsGpu, PeerFlagsWaitSetAndGiveUp) {
  ASSERT_TRUE(at::hasCUDA());
  at::Tensor flags = at::zeros({2}, at::TensorOptions().dtype(at::kInt).device(at::kCUDA));
  auto* flag = reinterpret_cast<uint32_t*>(flags.data_ptr<int>());
  uint32_t* error = nullptr;
  ASSERT_EQ(cudaSuccess, cudaHostAlloc(reinterpret_cast<void**>(&error), sizeof(uint32_t), cudaHostAllocMapped));
  *error = 0;
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaSuccess, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  ASSERT_EQ(cudaSuccess, kernels::LaunchSetFlag(flag, 1, s));
  ASSERT_EQ(cudaSuccess, kernels::LaunchWaitFlag(flag, 1, 0, 1'000'000'000, error, 7, s));
  ASSERT_EQ(cudaSuccess, cudaStreamSynchronize(s));
  EXPECT_EQ(0u, *error);
  EXPECT_EQ(0, flags.cpu()[0].item<int>()) << "the wait resets the flag";
  ASSERT_EQ(cudaSuccess, kernels::LaunchWaitFlag(flag + 1, 1, 0, 50'000'000, error, 9, s));  // 50 ms
  ASSERT_EQ(cudaSuccess, cudaStreamSynchronize(s));
  EXPECT_EQ(9u, *error) << "the wait for a flag nobody sets gives up with its code";
  ASSERT_EQ(cudaSuccess, kernels::LaunchWaitFlag(flag + 1, 1, 0, 60'000'000'000ull, error, 11, s));  // 60 s
  ASSERT_EQ(cudaSuccess, cudaStreamSynchronize(s));
  EXPECT_EQ(9u, *error) << "after a failure, waits give up at once and keep the first code";
  EXPECT_EQ(cudaErrorInvalidValue, kernels::LaunchWaitFlag(flag, 1, 0, 1, error, 0, s)) << "code 0 is no failure";
  ASSERT_EQ(cudaSuccess, cudaStreamDestroy(s));
  ASSERT_EQ(cudaSuccess, cudaFreeHost(error));
}

TEST(FusedOpsGpu, GegluMatchesFp32Reference) {
  at::manual_seed(1);
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (auto shape : {std::vector<int64_t>{2, 4096, 2 * 2560}, {2, 1024, 2 * 5120}, {3, 7, 2 * 12}, {5, 2 * 3}}) {
      at::Tensor p = at::randn(shape).cuda().to(dt);
      auto halves = p.to(at::kFloat).chunk(2, -1);
      at::Tensor ref = halves[0] * at::gelu(halves[1]);
      double err = RelErr(FusedGeglu(p), ref);
      EXPECT_LT(err, dt == at::kHalf ? 2e-3 : 1.6e-2) << c10::toString(dt) << " last dim " << shape.back();
    }
  }
}

TEST(FusedOpsGpu, AddLayerNormMatchesFp32Reference) {
  at::manual_seed(3);
  const bool was = FusedAddLayerNormEnabled();
  SetFusedAddLayerNormEnabled(true);
  ASSERT_TRUE(FusedAddLayerNormEnabled());
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    // SDXL's widths (640, 1280), SD's (320, 768), the kernel's limits (8, 2048) and a width it
    // does not take (12: the ATen path).
    for (auto shape : {std::vector<int64_t>{2, 4096, 640}, {1, 1024, 1280}, {3, 77, 320}, {5, 9, 768}, {4, 8},
                       {2, 3, 2048}, {6, 12}}) {
      at::Tensor a = (at::randn(shape) * 2 + 1).cuda().to(dt), b = at::randn(shape).cuda().to(dt);
      const int64_t c = shape.back();
      at::Tensor w = (at::randn({c}) * 0.5 + 1).cuda().to(dt), bias = (at::randn({c}) * 0.1).cuda().to(dt);
      at::Tensor ref_sum = (a.to(at::kFloat) + b.to(at::kFloat)).to(dt);  // what `a + b` stores
      at::Tensor ref = at::layer_norm(ref_sum.to(at::kFloat), {c}, w.to(at::kFloat), bias.to(at::kFloat), 1e-5);
      at::Tensor sum = a.clone();
      at::Tensor got = FusedAddLayerNorm(sum, b, w, bias, 1e-5);
      EXPECT_TRUE(sum.equal(ref_sum)) << c10::toString(dt) << " width " << c << ": the sum differs from a + b";
      EXPECT_LT(RelErr(got, ref), dt == at::kHalf ? 2e-3 : 1.6e-2) << c10::toString(dt) << " width " << c;
      EXPECT_EQ(got.sizes(), a.sizes());
    }
  }
  SetFusedAddLayerNormEnabled(was);
}

TEST(FusedOpsGpu, ConvAddMatchesFp32Reference) {
  at::manual_seed(2);
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (bool cl : {false, true}) {
      auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
      at::Tensor x = at::randn({2, 64, 16, 24}).cuda().to(dt).contiguous(fmt);
      at::Tensor w = (at::randn({32, 64, 3, 3}) * 0.05).cuda().to(dt).contiguous(fmt);
      at::Tensor b = at::randn({32}).cuda().to(dt);
      at::Tensor temb = at::randn({2, 32, 1, 1}).cuda().to(dt);
      at::Tensor res = at::randn({2, 32, 16, 24}).cuda().to(dt).contiguous(fmt);
      at::Tensor base = at::conv2d(x.to(at::kFloat), w.to(at::kFloat), b.to(at::kFloat), {1, 1}, {1, 1});
      for (const at::Tensor& extra : {at::Tensor(), temb, res}) {
        at::Tensor ref = extra.defined() ? base + extra.to(at::kFloat) : base;
        at::Tensor got = FusedConvAdd(x, w, b, 1, 1, extra);
        EXPECT_LT(RelErr(got, ref), dt == at::kHalf ? 3e-3 : 2e-2)
            << c10::toString(dt) << " cl=" << cl << " extra=" << (extra.defined() ? extra.dim() : 0);
      }
    }
  }
}

// A strip that already holds its halo rows: padding (0, 1), with and without an addend; and the
// bias alone through the bias-add kernel gives at::conv2d's bits (its bias add is a separate
// pass too), which is why Conv2dImpl::Compute may use it for every convolution.
TEST(FusedOpsGpu, ConvAddWithRowHaloAndBiasOnly) {
  at::manual_seed(3);
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (bool cl : {false, true}) {
      auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
      at::Tensor x = at::randn({1, 64, 18, 24}).cuda().to(dt).contiguous(fmt);  // 16 rows + 2 halo rows
      at::Tensor w = (at::randn({32, 64, 3, 3}) * 0.05).cuda().to(dt).contiguous(fmt);
      at::Tensor b = at::randn({32}).cuda().to(dt);
      at::Tensor temb = at::randn({1, 32, 1, 1}).cuda().to(dt);
      at::Tensor res = at::randn({1, 32, 16, 24}).cuda().to(dt).contiguous(fmt);
      at::Tensor base = at::conv2d(x.to(at::kFloat), w.to(at::kFloat), b.to(at::kFloat), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1});
      const std::string what = std::string(c10::toString(dt)) + (cl ? " nhwc" : " nchw");
      for (const at::Tensor& extra : {at::Tensor(), temb, res}) {
        at::Tensor got = FusedConvAdd(x, w, b, 1, 0, 1, extra);
        ASSERT_EQ(got.sizes(), res.sizes()) << what;
        at::Tensor ref = extra.defined() ? base + extra.to(at::kFloat) : base;
        EXPECT_LT(RelErr(got, ref), dt == at::kHalf ? 3e-3 : 2e-2) << what << " extra " << (extra.defined() ? extra.dim() : 0);
      }
      EXPECT_TRUE(at::equal(FusedConvAdd(x, w, b, 1, 0, 1, at::Tensor()), at::conv2d(x, w, b, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 1}))) << what;
      EXPECT_TRUE(at::equal(FusedConvAdd(x, w, b, 2, 1, 1, at::Tensor()), at::conv2d(x, w, b, at::IntArrayRef{2, 2}, at::IntArrayRef{1, 1}))) << what;
    }
  }
}

// The seam and wide forms of a strip's halo convolution (SeamConvAdd, WideConvAdd) on the GPU:
// the values of the one convolution over halo + strip + halo, bias and addends through the bias-add kernel; kAuto
// times a shape once outside a capture (then keeps its choice, also inside one) and does not
// time inside a CUDA graph capture (kHalo for a shape it has not seen).
TEST(FusedOpsGpu, SeamConvolutionEqualsHaloConvolution) {
  at::manual_seed(4);
  const auto cl = at::MemoryFormat::ChannelsLast;
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (int64_t rows : {2, 16, 32}) {
      auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
      at::Tensor x = at::randn({1, 64, rows + 2, 24}, opts).contiguous(cl);
      at::Tensor w = (at::randn({32, 64, 3, 3}, opts) * 0.05).contiguous(cl);
      at::Tensor b = at::randn({32}, opts);
      at::Tensor temb = at::randn({1, 32, 1, 1}, opts);
      at::Tensor res = at::randn({1, 32, rows, 24}, opts).contiguous(cl);
      at::Tensor base = at::conv2d(x.to(at::kFloat), w.to(at::kFloat), b.to(at::kFloat), at::IntArrayRef{1, 1},
                                   at::IntArrayRef{0, 1});
      for (const at::Tensor& extra : {at::Tensor(), temb, res}) {
        at::Tensor got = SeamConvAdd(x, w, b, extra);
        ASSERT_EQ(got.sizes(), base.sizes());
        at::Tensor ref = extra.defined() ? base + extra.to(at::kFloat) : base;
        EXPECT_LT(RelErr(got, ref), dt == at::kHalf ? 3e-3 : 2e-2)
            << c10::toString(dt) << " rows " << rows << " extra " << (extra.defined() ? extra.dim() : 0);
        at::Tensor wide = WideConvAdd(x, w, b, extra);
        ASSERT_EQ(wide.sizes(), base.sizes());
        EXPECT_TRUE(wide.is_contiguous(at::MemoryFormat::ChannelsLast));
        EXPECT_LT(RelErr(wide, ref), dt == at::kHalf ? 3e-3 : 2e-2) << "wide " << c10::toString(dt) << " rows " << rows;
        // The seam rows alone: the halo's contribution is there.
        EXPECT_LT(RelErr(got.narrow(2, 0, 1), ref.narrow(2, 0, 1)), dt == at::kHalf ? 3e-3 : 2e-2);
        EXPECT_LT(RelErr(got.narrow(2, rows - 1, 1), ref.narrow(2, rows - 1, 1)), dt == at::kHalf ? 3e-3 : 2e-2);
      }
    }
  }
  // A shape first seen inside a capture: one convolution, nothing timed or kept.
  auto half = at::TensorOptions().device(at::kCUDA).dtype(at::kHalf);
  at::Tensor x = at::randn({1, 48, 13, 20}, half).contiguous(cl);
  at::Tensor w = at::randn({40, 48, 3, 3}, half).contiguous(cl);
  const size_t before = StripConvChoices().size();
  {
    c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
    c10::cuda::CUDAStreamGuard guard(stream);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream.stream(), cudaStreamCaptureModeThreadLocal), cudaSuccess);
    const StripConvForm during = ResolveStripConvForm(StripConvForm::kAuto, x, w, 1);
    ASSERT_EQ(cudaStreamEndCapture(stream.stream(), &graph), cudaSuccess);
    if (graph != nullptr) cudaGraphDestroy(graph);
    EXPECT_EQ(during, StripConvForm::kHalo);
  }
  EXPECT_EQ(StripConvChoices().size(), before) << "a shape was timed during a capture";
  // Outside: timed once and kept (the second call finds it).
  const StripConvForm chosen = ResolveStripConvForm(StripConvForm::kAuto, x, w, 1);
  ASSERT_EQ(StripConvChoices().size(), before + 1);
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kAuto, x, w, 1), chosen);
  EXPECT_EQ(StripConvChoices().size(), before + 1);
  bool found = false;
  for (const std::string& line : StripConvChoices()) {
    if (line.find("48->40 11x20") != std::string::npos) {
      found = true;
      std::printf("[ metric ] strip conv %s\n", line.c_str());
    }
  }
  EXPECT_TRUE(found) << "no timing line for 48->40 11x20";
  // Batch 2 and stride 2 never take the seam form.
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kSeam, at::randn({2, 48, 13, 20}, half).contiguous(cl), w, 1),
            StripConvForm::kHalo);
  EXPECT_EQ(ResolveStripConvForm(StripConvForm::kAuto, x, w, 2), StripConvForm::kHalo);
}

TEST(FusedOpsGpu, PreAddGroupNormEqualsBiasAddThenGroupNorm) {
  // A ResNet block's conv1 output, its bias and time embedding read by norm2 without storing the
  // sum: the same bits as FusedConvAdd's stored sum followed by FusedGroupNorm (+ SiLU).
  at::manual_seed(5);
  struct Shape { int64_t n, c, h, w, g; } shapes[] = {
      {2, 320, 32, 32, 32}, {2, 640, 16, 16, 32}, {1, 1280, 8, 16, 32}, {2, 64, 5, 7, 8}, {3, 2560, 4, 4, 32}};
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (const auto& s : shapes) {
      auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
      at::Tensor y = (at::randn({s.n, s.c, s.h, s.w}, opts) * 3 + 1).contiguous(at::MemoryFormat::ChannelsLast);
      at::Tensor cb = at::randn({s.c}, opts), temb = at::randn({s.n, s.c, 1, 1}, opts) * 4;
      at::Tensor w = at::randn({s.c}, opts), b = at::randn({s.c}, opts);
      ASSERT_TRUE(PreAddGroupNormEligible(y, s.c));
      for (bool silu : {false, true}) {
        at::Tensor got = FusedPreAddGroupNorm(y, cb, temb, s.g, w, b, 1e-5, silu);
        ASSERT_TRUE(got.defined()) << s.c;
        // The reference: the sum as LaunchBiasAdd stores it (a 1x1 identity "convolution" would
        // change bits; the stored sum is what FusedConvAdd writes), then the fused GroupNorm.
        at::Tensor sum = (y.to(at::kFloat) + cb.to(at::kFloat).view({1, -1, 1, 1}) + temb.to(at::kFloat))
                             .to(dt)
                             .contiguous(at::MemoryFormat::ChannelsLast);
        at::Tensor ref = FusedGroupNorm(sum, s.g, w, b, 1e-5, silu);
        EXPECT_TRUE(got.equal(ref)) << c10::toString(dt) << " c=" << s.c << " silu=" << silu
                                    << " max diff " << (got.to(at::kFloat) - ref.to(at::kFloat)).abs().max().item<float>();
        EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
      }
      // Only the time embedding (no conv bias), and only the bias.
      at::Tensor only_t = FusedPreAddGroupNorm(y, {}, temb, s.g, w, b, 1e-5, true);
      at::Tensor ref_t = FusedGroupNorm((y.to(at::kFloat) + temb.to(at::kFloat)).to(dt).contiguous(at::MemoryFormat::ChannelsLast),
                                        s.g, w, b, 1e-5, true);
      EXPECT_TRUE(only_t.equal(ref_t)) << "temb only, c=" << s.c;
    }
  }
  // Where it does not apply: an undefined result, the caller adds itself.
  auto half = at::TensorOptions().device(at::kCUDA).dtype(at::kHalf);
  at::Tensor nchw = at::randn({2, 64, 8, 8}, half);
  EXPECT_FALSE(PreAddGroupNormEligible(nchw, 64));
  EXPECT_FALSE(FusedPreAddGroupNorm(nchw, at::randn({64}, half), {}, 8, at::ones({64}, half), at::zeros({64}, half),
                                    1e-5, true)
                   .defined());
  at::Tensor odd = at::randn({2, 12, 8, 8}, half).contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_FALSE(PreAddGroupNormEligible(odd, 12));
  SetPreAddGroupNormEnabled(false);
  EXPECT_FALSE(PreAddGroupNormEligible(at::randn({2, 64, 8, 8}, half).contiguous(at::MemoryFormat::ChannelsLast), 64));
  SetPreAddGroupNormEnabled(true);
}

// cuDNN's fused attention (DISTRI_SDPA_BACKEND=cudnn) and LibTorch's default (flash) against
// an fp32 reference on SDXL's attention shapes: a 1024 px image's first level (strided q/k/v views
// of one projection), a 4-GPU rank's displaced self-attention (keys of the whole image) and
// cross-attention over 77 text tokens.
TEST(FusedOpsGpu, AttentionBackendsMatchFp32Reference) {
  const std::string before = SdpaBackend();
  at::manual_seed(7);
  struct Case { int64_t b, heads, nq, nk; bool strided, cross; } cases[] = {
      {2, 10, 4096, 4096, true, false}, {1, 20, 256, 1024, false, false}, {2, 10, 4096, 77, false, true},
      {1, 10, 1024, 4096, false, false}, {1, 20, 1024, 77, false, true}, {1, 10, 3, 5, false, false}};
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (const auto& c : cases) {
      const int64_t d = 64;
      at::Tensor q, k, v;
      if (c.strided) {
        at::Tensor qkv = at::randn({c.b, c.nq, 3 * c.heads * d}).cuda().to(dt);
        auto view = [&](int i) {
          return qkv.narrow(2, i * c.heads * d, c.heads * d).view({c.b, c.nq, c.heads, d}).transpose(1, 2);
        };
        q = view(0), k = view(1), v = view(2);
      } else {
        q = at::randn({c.b, c.heads, c.nq, d}).cuda().to(dt);
        k = at::randn({c.b, c.heads, c.nk, d}).cuda().to(dt);
        v = at::randn({c.b, c.heads, c.nk, d}).cuda().to(dt);
      }
      at::Tensor ref = at::softmax(at::matmul(q.to(at::kFloat), k.to(at::kFloat).transpose(-1, -2)) / 8.0, -1)
                           .matmul(v.to(at::kFloat));
      for (const char* name : {"default", "cudnn", "flash", "efficient", "cudnn,flash"}) {
        ASSERT_TRUE(SetSdpaBackend(name));
        at::Tensor got = ScaledDotProductAttention(q, k, v, c.cross);
        EXPECT_LT(RelErr(got, ref), dt == at::kHalf ? 2e-3 : 1.6e-2)
            << name << " (" << SdpaChoice(q, k, v, c.cross) << ") " << c10::toString(dt) << " " << c.nq << "x" << c.nk;
        EXPECT_TRUE(got.equal(ScaledDotProductAttention(q, k, v, c.cross))) << name << " not deterministic";
      }
    }
  }
  // The model's own self-attention views go to the backend asked for.
  at::Tensor qkv = at::randn({2, 4096, 3 * 640}).cuda().to(at::kHalf);
  auto view = [&](int i) { return qkv.narrow(2, i * 640, 640).view({2, 4096, 10, 64}).transpose(1, 2); };
  ASSERT_TRUE(SetSdpaBackend("default"));
  std::printf("SDXL self-attention, no preference: LibTorch's dispatcher picks %s\n",
              SdpaChoice(view(0), view(1), view(2)).c_str());
  ASSERT_TRUE(SetSdpaBackend("cudnn,flash"));
  EXPECT_EQ(SdpaChoice(view(0), view(1), view(2)), "cudnn_attention");
  EXPECT_EQ(SdpaChoice(view(0), view(1), view(2), /*cross=*/true), "flash_attention");
  ASSERT_TRUE(SetSdpaBackend(before));
}

TEST(FusedOpsGpu, FallbacksForOtherInputs) {
  // fp32 and non-contiguous inputs take ATen's path: bit-equal to the plain ops.
  at::Tensor x = at::randn({2, 16, 4, 4}).cuda();
  at::Tensor w = at::ones({16}).cuda(), b = at::zeros({16}).cuda();
  EXPECT_TRUE(FusedGroupNorm(x, 4, w, b, 1e-5, false).equal(at::group_norm(x, 4, w, b, 1e-5)));
  at::Tensor p = at::randn({8, 6}).cuda().to(at::kHalf).t();  // non-contiguous
  auto h = p.chunk(2, -1);
  EXPECT_TRUE(FusedGeglu(p).equal(at::gelu(h[1]).mul_(h[0])));
}

}  // namespace
}  // namespace distri::model
