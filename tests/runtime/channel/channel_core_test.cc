// Buffers, dtypes, argument checks, host reductions and handles: the parts every backend shares.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

#include "runtime/channel/deadline.h"
#include "runtime/channel/handle.h"
#include "runtime/channel/reduce.h"
#include "runtime/channel/validate.h"

namespace distri::channel {
namespace {

using std::chrono::milliseconds;

TEST(ChannelTypes, DTypeNamesSizesAndParsing) {
  EXPECT_EQ(4u, DTypeSize(DType::kF32));
  EXPECT_EQ(2u, DTypeSize(DType::kBF16));
  EXPECT_EQ(8u, DTypeSize(DType::kI64));
  EXPECT_EQ(0u, DTypeSize(static_cast<DType>(99)));
  EXPECT_EQ("dtype(99)", DTypeName(static_cast<DType>(99)));
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto dtype = static_cast<DType>(i);
    EXPECT_EQ(dtype, ParseDType(DTypeName(dtype)).value());
  }
  const auto bad = ParseDType("float32");
  EXPECT_EQ(StatusCode::kInvalidArgument, bad.status().code());
  EXPECT_NE(std::string::npos, bad.status().message().find("'float32'"));
  EXPECT_EQ("cuda:3", Device::Cuda(3).ToString());
  EXPECT_EQ("cpu", Device::Cpu().ToString());
}

TEST(ChannelReduce, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(0x3c00, FloatToHalf(1.0f));
  EXPECT_EQ(0xc000, FloatToHalf(-2.0f));
  EXPECT_EQ(0x7bff, FloatToHalf(65504.0f));
  EXPECT_EQ(0x7bff, FloatToHalf(65519.0f));
  EXPECT_EQ(0x7c00, FloatToHalf(65520.0f));  // ties to even: rounds up to inf
  EXPECT_EQ(0x7c00, FloatToHalf(1e10f));
  EXPECT_EQ(0x0001, FloatToHalf(std::ldexp(1.0f, -24)));  // smallest subnormal
  EXPECT_EQ(0x0000, FloatToHalf(std::ldexp(1.0f, -25)));  // tie to even (0)
  EXPECT_EQ(0x0002, FloatToHalf(3 * std::ldexp(1.0f, -25)));  // tie to even (2)
  EXPECT_EQ(0x3c00, FloatToHalf(1.0f + std::ldexp(1.0f, -11)));  // tie, even stays
  EXPECT_EQ(0x3c02, FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)));  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive half survives the round trip
    ASSERT_EQ(h, FloatToHalf(HalfToFloat(static_cast<uint16_t>(h)))) << h;
  }
  EXPECT_EQ(0x3f80, FloatToBFloat16(1.0f));
  EXPECT_EQ(0x3f80, FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)));      // tie, even
  EXPECT_EQ(0x3f82, FloatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)));  // tie, odd up
  EXPECT_EQ(1.0f, BFloat16ToFloat(0x3f80));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(ChannelReduce, SumsInRankOrderInPlaceAndWraps) {
  // f32 addition is not associative: the order (a + b) + c is the contract.
  std::vector<float> a = {1e8f}, b = {-1e8f}, c = {1.0f};
  std::vector<float> out(1);
  const void* in[] = {a.data(), b.data(), c.data()};
  void* o[] = {out.data()};
  ReduceSum(DType::kF32, in, o, 1);
  EXPECT_EQ(1.0f, out[0]);
  // In place over more than one block, f16 accumulated in f32 and rounded once.
  std::vector<uint16_t> x(5000), y(5000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = FloatToHalf(2048.0f);
    y[i] = FloatToHalf(1.0f);
  }
  const void* hin[] = {x.data(), y.data(), y.data()};
  void* hout[] = {x.data()};
  ReduceSum(DType::kF16, hin, hout, x.size());
  // 2048 + 1 + 1 = 2050 exactly (pairwise f16 rounding would give 2048 + 1 -> 2048, then 2048).
  EXPECT_EQ(2050.0f, HalfToFloat(x[0]));
  EXPECT_EQ(2050.0f, HalfToFloat(x[4999]));
  std::vector<int64_t> big = {std::numeric_limits<int64_t>::max()}, one = {1}, r(1);
  const void* iin[] = {big.data(), one.data()};
  void* iout[] = {r.data()};
  ReduceSum(DType::kI64, iin, iout, 1);
  EXPECT_EQ(std::numeric_limits<int64_t>::min(), r[0]);
}

TEST(ChannelValidate, MessagesNameTheProblem) {
  std::vector<float> a(8), b(16);
  Status s = CheckAllGather(0, 2, CpuBuffer<float>(a.data(), 8), CpuBuffer(b.data(), 15));
  EXPECT_EQ("all_gather: recv.count must be world_size (2) * send.count (8), got 15", s.message());
  s = CheckAllGather(1, 2, CpuBuffer<float>(b.data() + 8, 8), CpuBuffer(b.data(), 16));
  EXPECT_TRUE(s.ok()) << "in place: " << s.ToString();
  s = CheckAllGather(0, 2, CpuBuffer<float>(b.data() + 8, 8), CpuBuffer(b.data(), 16));
  EXPECT_NE(std::string::npos, s.message().find("without being this rank's slot")) << s.message();
  s = CheckAllReduce(CpuBuffer<float>(a.data(), 8), CpuBuffer(a.data(), 8), ReduceOp::kSum);
  EXPECT_TRUE(s.ok());
  s = CheckAllReduce(CpuBuffer<float>(a.data(), 8), CpuBuffer(a.data(), 8), static_cast<ReduceOp>(3));
  EXPECT_NE(std::string::npos, s.message().find("reduce_op(3)")) << s.message();
  s = CheckAllReduce(ConstBuffer(a.data(), 8, DType::kF32, Device::Cuda(0)), CpuBuffer(b.data(), 8), ReduceOp::kSum);
  EXPECT_EQ("all_reduce: send is on cuda:0 but recv is on cpu", s.message());
  s = CheckBuffer("send", "data", ConstBuffer(a.data(), std::numeric_limits<size_t>::max() / 2, DType::kF32));
  EXPECT_NE(std::string::npos, s.message().find("overflows")) << s.message();
  s = CheckBuffer("send", "data", ConstBuffer(a.data(), 1, DType::kF32, Device::Cuda(-1)));
  EXPECT_NE(std::string::npos, s.message().find("must be >= 0")) << s.message();
  const std::vector<size_t> counts = {3, std::numeric_limits<size_t>::max()};
  s = CheckAllGatherV(0, 2, CpuBuffer<float>(a.data(), 3), CpuBuffer(b.data(), 3), counts);
  EXPECT_NE(std::string::npos, s.message().find("sum of counts overflows")) << s.message();
  EXPECT_EQ("send: peer 5 is not a rank of this gang (world_size 4)", CheckPeer("send", 5, 4).message());
  EXPECT_FALSE(Overlaps(a.data(), 0, a.data(), 4));
  EXPECT_TRUE(Overlaps(a.data(), 8, a.data() + 1, 4));
}

TEST(ChannelHandle, WaitTimeoutCompleteAndEmpty) {
  auto state = std::make_shared<OpState>("test op #1");
  Handle h(state);
  Handle copy = h;
  EXPECT_FALSE(h.Done());
  const Status early = h.Wait(milliseconds(10));
  EXPECT_EQ(StatusCode::kDeadlineExceeded, early.code());
  EXPECT_EQ("test op #1 did not complete within 10 ms", early.message());
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(20));
    state->Complete(Status::Unavailable("peer gone"));
    state->Complete(Status::Ok());  // ignored: first completion wins
  });
  EXPECT_EQ(StatusCode::kUnavailable, copy.Wait().code());
  t.join();
  EXPECT_TRUE(h.Done());
  EXPECT_EQ(StatusCode::kUnavailable, h.StreamWait(nullptr).code());
  EXPECT_EQ(StatusCode::kUnavailable, h.Wait(milliseconds(-5)).code());
  EXPECT_EQ(StatusCode::kFailedPrecondition, Handle().StreamWait(nullptr).code());
  EXPECT_TRUE(Handle::Completed(Status::Ok(), "x").Wait(milliseconds(0)).ok());
}

TEST(ChannelDeadline, Saturates) {
  EXPECT_EQ(Clock::time_point::max(), DeadlineAfter(milliseconds::max()));
  EXPECT_EQ(milliseconds::max(), TimeLeft(Clock::time_point::max()));
  EXPECT_EQ(milliseconds(0), TimeLeft(DeadlineAfter(milliseconds(-3))));
}

}  // namespace
}  // namespace distri::channel
