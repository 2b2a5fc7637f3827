// The tuned cuBLASLt linear layer (actors/kernels/gemm_lt.h) and its LibTorch wrapper
// TunedLinear (fused_ops.h) against float64 CPU references of the same fp16/bf16 inputs
// (label gpu). Also: the tuning cache file round trip, malformed lines, CUDA graph capture of
// an untuned key, concurrent first calls.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "actors/kernels/gemm_lt.h"
#include "actors/model/blocks/fused_ops.h"

namespace distri::kernels {
namespace {

struct Shape {
  int64_t m, n, k;
};

ElemType Elem(at::ScalarType dt) { return dt == at::kHalf ? ElemType::kHalf : ElemType::kBFloat16; }

double Tolerance(at::ScalarType dt) { return dt == at::kHalf ? 2e-3 : 1.5e-2; }

double RelErr(const at::Tensor& got, const at::Tensor& ref) {
  const at::Tensor g = got.to(at::kCPU, at::kDouble);
  return ((g - ref).abs().max() / ref.abs().max()).item<double>();
}

// The inputs of one problem on the GPU (fp16/bf16), their float64 copies on the CPU, an output
// and a workspace.
struct Problem {
  at::Tensor x, w, bias, residual, y, ws;
  at::Tensor product;  // float64 x w^T on the CPU

  Problem(Shape s, at::ScalarType dt) {
    auto cuda = at::TensorOptions().device(at::kCUDA).dtype(dt);
    x = at::randn({s.m, s.k}).to(cuda);
    w = (at::randn({s.n, s.k}) / std::sqrt(double(s.k))).to(cuda);
    bias = at::randn({s.n}).to(cuda);
    residual = at::randn({s.m, s.n}).to(cuda);
    y = at::empty({s.m, s.n}, cuda);
    ws = at::empty({static_cast<int64_t>(kTunedLinearWorkspaceBytes)}, cuda.dtype(at::kByte));
    product = x.to(at::kCPU, at::kDouble).matmul(w.to(at::kCPU, at::kDouble).t());
  }

  at::Tensor Reference(bool with_bias, bool with_residual) const {
    at::Tensor r = product.clone();
    if (with_bias) r += bias.to(at::kCPU, at::kDouble);
    if (with_residual) r += residual.to(at::kCPU, at::kDouble);
    return r;
  }

  cudaError_t Run(bool with_bias, bool with_residual, cudaStream_t stream) {
    return LaunchTunedLinear(Elem(x.scalar_type()), x.data_ptr(), w.data_ptr(), with_bias ? bias.data_ptr() : nullptr,
                             with_residual ? residual.data_ptr() : nullptr, y.data_ptr(), x.size(0), w.size(0),
                             x.size(1), ws.data_ptr(), static_cast<size_t>(ws.numel()), stream);
  }
};

cudaStream_t CurrentStream() { return c10::cuda::getCurrentCUDAStream().stream(); }

std::string TempPath(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()) + ".txt");
  std::filesystem::remove(p);
  return p.string();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::vector<uint64_t> AlgoOf(const TunedLinearChoice& c) { return {c.algo, c.algo + 8}; }

// Every test starts from an empty in-memory cache and no cache file (whatever the environment).
class GemmLtGpu : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(at::hasCUDA());
    SetTunedLinearCacheFile("");
    ClearTunedLinearCache();
  }
  void TearDown() override {
    SetTunedLinearCacheFile(nullptr);
    ClearTunedLinearCache();
  }
};

TEST_F(GemmLtGpu, MatchesFloat64Reference) {
  at::manual_seed(0);
  const Shape shapes[] = {{512, 1280, 1280}, {2048, 640, 640}, {4096, 10240, 1280},
                          {77, 1280, 2048},  {1, 1280, 320},   {513, 1280, 1280}};
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    for (const Shape& s : shapes) {
      Problem p(s, dt);
      for (bool with_bias : {false, true}) {
        for (bool with_residual : {false, true}) {
          const std::string what = std::string(c10::toString(dt)) + " " + std::to_string(s.m) + "x" +
                                   std::to_string(s.n) + "x" + std::to_string(s.k) + " bias=" +
                                   std::to_string(with_bias) + " residual=" + std::to_string(with_residual);
          const size_t keys = TunedLinearCacheSize();
          ASSERT_EQ(p.Run(with_bias, with_residual, CurrentStream()), cudaSuccess)
              << what << ": " << TunedLinearLastError();
          const TunedLinearChoice first = LastTunedLinearChoice();
          EXPECT_EQ(first.source, TunedLinearSource::kTuned) << what;
          EXPECT_GE(first.candidates, 1) << what;
          EXPECT_EQ(TunedLinearCacheSize(), keys + 1) << what;
          const at::Tensor ref = p.Reference(with_bias, with_residual);
          EXPECT_LT(RelErr(p.y, ref), Tolerance(dt)) << what;
          // The cached choice: same algorithm, bit-identical result.
          const at::Tensor y1 = p.y.clone();
          p.y.fill_(0);
          ASSERT_EQ(p.Run(with_bias, with_residual, CurrentStream()), cudaSuccess) << what;
          EXPECT_EQ(LastTunedLinearChoice().source, TunedLinearSource::kCache) << what;
          EXPECT_EQ(AlgoOf(LastTunedLinearChoice()), AlgoOf(first)) << what;
          EXPECT_TRUE(p.y.equal(y1)) << what << ": the cached algorithm gave other bits";
        }
      }
    }
  }
  std::printf("%s", TunedLinearReport().c_str());
}

TEST_F(GemmLtGpu, RejectsBrokenRequirements) {
  Problem p({64, 64, 64}, at::kHalf);
  const auto s = CurrentStream();
  auto* x = static_cast<char*>(p.x.data_ptr());
  EXPECT_EQ(LaunchTunedLinear(ElemType::kHalf, x + 2, p.w.data_ptr(), nullptr, nullptr, p.y.data_ptr(), 32, 64, 64,
                              p.ws.data_ptr(), p.ws.numel(), s),
            cudaErrorInvalidValue);  // 2-byte aligned x
  EXPECT_NE(std::strlen(TunedLinearLastError()), 0u);
  EXPECT_EQ(LaunchTunedLinear(ElemType::kHalf, p.x.data_ptr(), p.w.data_ptr(), nullptr, p.y.data_ptr(),
                              p.y.data_ptr(), 64, 64, 64, p.ws.data_ptr(), p.ws.numel(), s),
            cudaErrorInvalidValue);  // y == residual
  EXPECT_EQ(LaunchTunedLinear(ElemType::kHalf, p.x.data_ptr(), p.w.data_ptr(), nullptr, nullptr, p.y.data_ptr(), 0,
                              64, 64, p.ws.data_ptr(), p.ws.numel(), s),
            cudaErrorInvalidValue);  // m = 0
  // No workspace: allowed (fewer candidates), still correct.
  ASSERT_EQ(LaunchTunedLinear(ElemType::kHalf, p.x.data_ptr(), p.w.data_ptr(), nullptr, nullptr, p.y.data_ptr(), 64,
                              64, 64, nullptr, 0, s),
            cudaSuccess)
      << TunedLinearLastError();
  EXPECT_LT(RelErr(p.y, p.Reference(false, false)), Tolerance(at::kHalf));
}

TEST_F(GemmLtGpu, CacheFileRoundTrip) {
  const std::string path = TempPath("distri-gemm-tune-roundtrip");
  SetTunedLinearCacheFile(path.c_str());
  ClearTunedLinearCache();
  at::manual_seed(1);
  Problem p({512, 1280, 1280}, at::kHalf);
  ASSERT_EQ(p.Run(true, false, CurrentStream()), cudaSuccess) << TunedLinearLastError();
  const TunedLinearChoice tuned = LastTunedLinearChoice();
  ASSERT_EQ(tuned.source, TunedLinearSource::kTuned);
  const at::Tensor y1 = p.y.clone();
  auto lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("distri-gemm-v1 ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" f16 512 1280 1280 1 0 "), std::string::npos) << lines[0];

  // A fresh process (simulated): the in-memory choices are gone, the file gives the same algorithm.
  ClearTunedLinearCache();
  EXPECT_EQ(TunedLinearCacheSize(), 0u);
  p.y.fill_(0);
  ASSERT_EQ(p.Run(true, false, CurrentStream()), cudaSuccess) << TunedLinearLastError();
  EXPECT_EQ(LastTunedLinearChoice().source, TunedLinearSource::kFile);
  EXPECT_EQ(AlgoOf(LastTunedLinearChoice()), AlgoOf(tuned));
  EXPECT_TRUE(p.y.equal(y1));
  EXPECT_EQ(ReadLines(path).size(), 1u) << "a key read from the file must not be appended again";

  std::vector<std::string> tok;  // the line's fields: magic, cuBLASLt version, gpu, ...
  {
    std::istringstream in(lines[0]);
    for (std::string t; in >> t;) tok.push_back(t);
  }
  ASSERT_GE(tok.size(), 18u);

  // Malformed lines around the good one are skipped with a warning naming file and line.
  {
    std::ofstream out(path, std::ios::trunc);
    out << "not a tuning line\n"
        << "distri-gemm-v1 1 2 3\n"
        << lines[0] << "\n"
        << "distri-gemm-v1 " << tok[1] << " " << tok[2] << " f16 512 1280 1280 1 0 256 zz 0 0 0 0 0 0 0\n";
  }
  ClearTunedLinearCache();
  testing::internal::CaptureStderr();
  ASSERT_EQ(p.Run(true, false, CurrentStream()), cudaSuccess) << TunedLinearLastError();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(LastTunedLinearChoice().source, TunedLinearSource::kFile);
  EXPECT_EQ(AlgoOf(LastTunedLinearChoice()), AlgoOf(tuned));
  EXPECT_NE(err.find(path + ":1:"), std::string::npos) << err;
  EXPECT_NE(err.find(path + ":2:"), std::string::npos) << err;
  EXPECT_EQ(err.find(path + ":3:"), std::string::npos) << err;
  EXPECT_NE(err.find(path + ":4:"), std::string::npos) << err;

  // A line cuBLASLt rejects (garbage algorithm words for a valid key) is not used: tuned again.
  {
    std::string bad;
    for (size_t i = 0; i < 18; ++i) bad += (i >= 10 ? std::string("ffffffffffffffff") : tok[i]) + " ";
    std::ofstream out(path, std::ios::trunc);
    out << bad << "\n";
  }
  ClearTunedLinearCache();
  testing::internal::CaptureStderr();
  ASSERT_EQ(p.Run(true, false, CurrentStream()), cudaSuccess) << TunedLinearLastError();
  testing::internal::GetCapturedStderr();
  const TunedLinearSource src = LastTunedLinearChoice().source;
  EXPECT_TRUE(src == TunedLinearSource::kTuned || src == TunedLinearSource::kFile);
  EXPECT_LT(RelErr(p.y, p.Reference(true, false)), Tolerance(at::kHalf));
  std::filesystem::remove(path);
}

TEST_F(GemmLtGpu, CaptureOfAnUntunedKeyUsesTheHeuristicAndReplaysCorrectly) {
  at::manual_seed(2);
  // A first eager call (another key), as callers warm up before capturing: it creates the
  // cuBLASLt handle outside the capture.
  {
    Problem warm({64, 128, 128}, at::kHalf);
    ASSERT_EQ(warm.Run(false, false, CurrentStream()), cudaSuccess) << TunedLinearLastError();
  }
  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard guard(stream);
  Problem p({96, 640, 1280}, at::kHalf);
  p.y.fill_(0);
  stream.synchronize();
  const size_t keys = TunedLinearCacheSize();
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  const cudaError_t err = p.Run(true, true, stream.stream());
  graph.capture_end();
  ASSERT_EQ(err, cudaSuccess) << TunedLinearLastError();
  EXPECT_EQ(LastTunedLinearChoice().source, TunedLinearSource::kHeuristicUncached);
  EXPECT_EQ(TunedLinearCacheSize(), keys) << "a choice made during capture must not be cached";

  graph.replay();
  stream.synchronize();
  EXPECT_LT(RelErr(p.y, p.Reference(true, true)), Tolerance(at::kHalf));
  // New inputs in the same buffers: the replay reads them.
  p.x.copy_(at::randn(p.x.sizes()).to(p.x.options()));
  p.product = p.x.to(at::kCPU, at::kDouble).matmul(p.w.to(at::kCPU, at::kDouble).t());
  graph.replay();
  stream.synchronize();
  EXPECT_LT(RelErr(p.y, p.Reference(true, true)), Tolerance(at::kHalf));
  // Outside capture the key is tuned now.
  ASSERT_EQ(p.Run(true, true, stream.stream()), cudaSuccess) << TunedLinearLastError();
  EXPECT_EQ(LastTunedLinearChoice().source, TunedLinearSource::kTuned);
  EXPECT_EQ(TunedLinearCacheSize(), keys + 1);
}

TEST_F(GemmLtGpu, ConcurrentFirstCallsAgree) {
  at::manual_seed(3);
  Problem a({1024, 1280, 640}, at::kHalf), b({1024, 1280, 640}, at::kHalf);
  b.x.copy_(a.x);
  b.w.copy_(a.w);
  b.bias.copy_(a.bias);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the threads' streams do not wait for this one
  cudaError_t ea = cudaErrorUnknown, eb = cudaErrorUnknown;
  auto run = [](Problem* p, cudaError_t* e) {
    c10::cuda::CUDAStream s = c10::cuda::getStreamFromPool();
    c10::cuda::CUDAStreamGuard guard(s);
    *e = p->Run(true, false, s.stream());
    s.synchronize();
  };
  std::thread ta(run, &a, &ea), tb(run, &b, &eb);
  ta.join();
  tb.join();
  ASSERT_EQ(ea, cudaSuccess);
  ASSERT_EQ(eb, cudaSuccess);
  EXPECT_EQ(TunedLinearCacheSize(), 1u);
  EXPECT_LT(RelErr(a.y, a.Reference(true, false)), Tolerance(at::kHalf));
  // Both now run the one cached algorithm: equal bits.
  ASSERT_EQ(a.Run(true, false, CurrentStream()), cudaSuccess);
  ASSERT_EQ(b.Run(true, false, CurrentStream()), cudaSuccess);
  EXPECT_TRUE(a.y.equal(b.y));
}

// ---- TunedLinear (the LibTorch wrapper used by the model).
TEST_F(GemmLtGpu, TunedLinearMatchesReferenceAndFallsBack) {
  at::manual_seed(4);
  const bool was = model::TunedGemmEnabled();
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    auto cuda = at::TensorOptions().device(at::kCUDA).dtype(dt);
    at::Tensor x = at::randn({2, 300, 1280}).to(cuda), w = (at::randn({640, 1280}) / 36.0).to(cuda);
    at::Tensor b = at::randn({640}).to(cuda), r = at::randn({2, 300, 640}).to(cuda);
    at::Tensor ref = at::linear(x.to(at::kCPU, at::kDouble), w.to(at::kCPU, at::kDouble), b.to(at::kCPU, at::kDouble)) +
                     r.to(at::kCPU, at::kDouble);

    model::SetTunedGemmEnabled(false);
    at::Tensor off = model::TunedLinear(x, w, b, r);
    EXPECT_TRUE(off.equal(at::linear(x, w, b).add_(r))) << "disabled: exactly at::linear + add_";

    model::SetTunedGemmEnabled(true);
    ASSERT_TRUE(model::TunedGemmEnabled());
    const size_t keys = TunedLinearCacheSize();
    at::Tensor on = model::TunedLinear(x, w, b, r);
    EXPECT_EQ(TunedLinearCacheSize(), keys + 1) << "the cuBLASLt path did not run";
    EXPECT_EQ(on.sizes(), r.sizes());
    EXPECT_LT(RelErr(on, ref), Tolerance(dt)) << c10::toString(dt);
    at::Tensor no_res = model::TunedLinear(x, w, b);
    EXPECT_LT(RelErr(no_res, ref - r.to(at::kCPU, at::kDouble)), Tolerance(dt)) << c10::toString(dt);

    // Shapes/layouts the kernel does not take: the ATen path, same numbers as at::linear.
    at::Tensor xt = x.transpose(0, 1);  // not contiguous
    EXPECT_TRUE(model::TunedLinear(xt, w, b).equal(at::linear(xt, w, b)));
    at::Tensor x12 = at::randn({5, 12}).to(cuda), w12 = at::randn({16, 12}).to(cuda);  // K % 8 != 0
    EXPECT_TRUE(model::TunedLinear(x12, w12, {}).equal(at::linear(x12, w12)));
    at::Tensor rt = r.transpose(0, 1).contiguous().transpose(0, 1);  // residual not contiguous
    EXPECT_LT(RelErr(model::TunedLinear(x, w, b, rt), ref), Tolerance(dt));
  }
  model::SetTunedGemmEnabled(was);
}

}  // namespace
}  // namespace distri::kernels
