#include "tests/runtime/channel/conformance.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "runtime/channel/reduce.h"

namespace distri::channel::testing {
namespace {

using std::chrono::milliseconds;
constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16,
                                DType::kI32, DType::kI64, DType::kU8};

using Bytes = std::vector<uint8_t>;

Buffer Buf(Bytes& b, DType dtype) { return Buffer{b.data(), b.size() / DTypeSize(dtype), dtype}; }
ConstBuffer CBuf(const Bytes& b, DType dtype) {
  return ConstBuffer(b.data(), b.size() / DTypeSize(dtype), dtype);
}

// Bytes that differ per (rank, element, byte, salt): all-gather and p2p move bytes unchanged,
// so any bit pattern (NaNs included) must arrive exactly.
Bytes Pattern(DType dtype, int rank, size_t count, int salt = 0) {
  Bytes out(count * DTypeSize(dtype));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>((static_cast<size_t>(rank) * 131 + i * 7 + static_cast<size_t>(salt) * 29 + 1) & 0xff);
  }
  return out;
}

void Store(DType dtype, uint8_t* p, double v) {
  switch (dtype) {
    case DType::kF32: { const float f = static_cast<float>(v); std::memcpy(p, &f, 4); return; }
    case DType::kF16: { const uint16_t h = FloatToHalf(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
    case DType::kBF16: { const uint16_t h = FloatToBFloat16(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
    case DType::kI32: { const auto x = static_cast<int32_t>(v); std::memcpy(p, &x, 4); return; }
    case DType::kI64: { const auto x = static_cast<int64_t>(v); std::memcpy(p, &x, 8); return; }
    case DType::kU8: { *p = static_cast<uint8_t>(static_cast<int64_t>(v) & 0xff); return; }
  }
}

// Small integers: every partial sum is exact in every dtype (|sum| <= 4 ranks * 40).
double SmallValue(DType dtype, int rank, size_t i) {
  const double v = (rank + 1) * static_cast<double>(i % 7 + 1);
  return dtype == DType::kU8 ? v : v - 9.0;
}

Bytes SmallValues(DType dtype, int rank, size_t count) {
  Bytes out(count * DTypeSize(dtype));
  for (size_t i = 0; i < count; ++i) Store(dtype, out.data() + i * DTypeSize(dtype), SmallValue(dtype, rank, i));
  return out;
}

// Random values of one rank, reproducible on every rank (seeded by rank and salt).
Bytes RandomValues(DType dtype, int rank, size_t count, int salt) {
  std::mt19937 gen(static_cast<uint32_t>(rank * 7919 + salt));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Bytes out(count * DTypeSize(dtype));
  for (size_t i = 0; i < count; ++i) Store(dtype, out.data() + i * DTypeSize(dtype), dist(gen));
  return out;
}

// The host reference of an all-reduce: the ranks' inputs summed in rank order.
Bytes ReferenceSum(DType dtype, const std::vector<Bytes>& inputs, size_t count) {
  Bytes out(count * DTypeSize(dtype));
  std::vector<const void*> in;
  for (const Bytes& b : inputs) in.push_back(b.data());
  void* o = out.data();
  ReduceSum(dtype, in, std::span<void* const>(&o, 1), count);
  return out;
}

std::string Ctx(const Channel& ch, DType dtype, size_t count) {
  return "rank " + std::to_string(ch.rank()) + "/" + std::to_string(ch.world_size()) + " " +
         DTypeName(dtype) + " x " + std::to_string(count);
}

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // system-wide: comparable across processes
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// ---------------------------------------------------------------------------------------------
// Shared cases

void AllGatherEveryDType(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  for (DType dtype : kAllDTypes) {
    for (size_t count : {size_t{1}, size_t{5}, size_t{1000}}) {
      SCOPED_TRACE(Ctx(ch, dtype, count));
      const Bytes send = Pattern(dtype, ch.rank(), count);
      Bytes recv(send.size() * static_cast<size_t>(n), 0xEE);
      ASSERT_TRUE(ch.AllGather(CBuf(send, dtype), Buf(recv, dtype)).ok());
      for (int r = 0; r < n; ++r) {
        const Bytes expect = Pattern(dtype, r, count);
        EXPECT_EQ(0, std::memcmp(recv.data() + static_cast<size_t>(r) * send.size(), expect.data(), expect.size()))
            << "slot of rank " << r;
      }
    }
  }
}

void AllGatherInPlaceAndEmpty(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  const size_t count = 33;
  Bytes recv(count * 4 * static_cast<size_t>(n), 0);
  const Bytes mine = Pattern(DType::kF32, ch.rank(), count, 3);
  std::memcpy(recv.data() + static_cast<size_t>(ch.rank()) * mine.size(), mine.data(), mine.size());
  ConstBuffer send(recv.data() + static_cast<size_t>(ch.rank()) * mine.size(), count, DType::kF32);
  ASSERT_TRUE(ch.AllGather(send, Buf(recv, DType::kF32)).ok());
  for (int r = 0; r < n; ++r) {
    const Bytes expect = Pattern(DType::kF32, r, count, 3);
    EXPECT_EQ(0, std::memcmp(recv.data() + static_cast<size_t>(r) * mine.size(), expect.data(), expect.size()));
  }
  // Zero elements: completes, touches nothing.
  EXPECT_TRUE(ch.AllGather(ConstBuffer(nullptr, 0, DType::kI64), Buffer{nullptr, 0, DType::kI64}).ok());
}

// Uneven strips, zero-sized ones included (as when image rows do not divide by the gang).
std::vector<size_t> UnevenCounts(int n) {
  std::vector<size_t> counts;
  for (int r = 0; r < n; ++r) counts.push_back(r % 3 == 1 ? 0 : static_cast<size_t>(2 * r + 3));
  return counts;
}

void AllGatherVUneven(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  const std::vector<size_t> counts = UnevenCounts(n);
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(Ctx(ch, dtype, counts[static_cast<size_t>(ch.rank())]));
    const size_t es = DTypeSize(dtype);
    size_t total = 0;
    for (size_t c : counts) total += c;
    const Bytes send = Pattern(dtype, ch.rank(), counts[static_cast<size_t>(ch.rank())], 5);
    Bytes recv(total * es, 0xEE);
    ASSERT_TRUE(ch.AllGatherV(CBuf(send, dtype), Buf(recv, dtype), counts).ok());
    size_t offset = 0;
    for (int r = 0; r < n; ++r) {
      const Bytes expect = Pattern(dtype, r, counts[static_cast<size_t>(r)], 5);
      EXPECT_EQ(0, std::memcmp(recv.data() + offset, expect.data(), expect.size())) << "rank " << r;
      offset += expect.size();
    }
  }
  // In place, with 1-row strips plus a remainder on the last rank.
  std::vector<size_t> rows(static_cast<size_t>(n), 1);
  rows.back() += 2;
  size_t total = 0, my_offset = 0;
  for (int r = 0; r < n; ++r) {
    if (r == ch.rank()) my_offset = total;
    total += rows[static_cast<size_t>(r)];
  }
  Bytes recv(total * 8, 0);
  const Bytes mine = Pattern(DType::kI64, ch.rank(), rows[static_cast<size_t>(ch.rank())], 9);
  std::memcpy(recv.data() + my_offset * 8, mine.data(), mine.size());
  ConstBuffer send(recv.data() + my_offset * 8, rows[static_cast<size_t>(ch.rank())], DType::kI64);
  ASSERT_TRUE(ch.AllGatherV(send, Buf(recv, DType::kI64), rows).ok());
  size_t offset = 0;
  for (int r = 0; r < n; ++r) {
    const Bytes expect = Pattern(DType::kI64, r, rows[static_cast<size_t>(r)], 9);
    EXPECT_EQ(0, std::memcmp(recv.data() + offset, expect.data(), expect.size())) << "rank " << r;
    offset += expect.size();
  }
}

void AllReduceEveryDType(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  // Sizes around the chunking of a reduce-scatter: fewer elements than ranks, remainders.
  for (DType dtype : kAllDTypes) {
    for (size_t count : {size_t{1}, size_t{3}, size_t{7}, size_t{1001}, size_t{4099}}) {
      SCOPED_TRACE(Ctx(ch, dtype, count));
      const Bytes send = SmallValues(dtype, ch.rank(), count);
      Bytes recv(send.size(), 0xEE);
      ASSERT_TRUE(ch.AllReduce(CBuf(send, dtype), Buf(recv, dtype)).ok());
      Bytes expect(send.size());
      for (size_t i = 0; i < count; ++i) {
        double sum = 0;
        for (int r = 0; r < n; ++r) sum += SmallValue(dtype, r, i);
        Store(dtype, expect.data() + i * DTypeSize(dtype), sum);
      }
      EXPECT_EQ(expect, recv);
    }
  }
}

void AllReduceInPlaceAndWrap(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  Bytes data = SmallValues(DType::kF32, ch.rank(), 517);
  ASSERT_TRUE(ch.AllReduce(CBuf(data, DType::kF32), Buf(data, DType::kF32)).ok());
  for (size_t i = 0; i < 517; ++i) {
    float got;
    std::memcpy(&got, data.data() + i * 4, 4);
    double sum = 0;
    for (int r = 0; r < n; ++r) sum += SmallValue(DType::kF32, r, i);
    ASSERT_EQ(static_cast<float>(sum), got) << "element " << i;
  }
  // Integers wrap like two's complement.
  std::vector<int32_t> i32 = {std::numeric_limits<int32_t>::max(), -1, 7};
  std::vector<int32_t> i32_out(3);
  ASSERT_TRUE(ch.AllReduce(CpuBuffer<int32_t>(i32.data(), 3), CpuBuffer(i32_out.data(), 3)).ok());
  const auto wrapped = static_cast<int32_t>(static_cast<uint32_t>(std::numeric_limits<int32_t>::max()) * static_cast<uint32_t>(n));
  EXPECT_EQ(wrapped, i32_out[0]);
  EXPECT_EQ(-n, i32_out[1]);
  EXPECT_EQ(7 * n, i32_out[2]);
  std::vector<uint8_t> u8 = {200, 1};
  ASSERT_TRUE(ch.AllReduce(CpuBuffer<uint8_t>(u8.data(), 2), CpuBuffer(u8.data(), 2)).ok());
  EXPECT_EQ(static_cast<uint8_t>(200 * n), u8[0]);
  EXPECT_EQ(n, u8[1]);
}

// Random floats: the result must equal the host reference bit for bit on every rank.
void AllReduceMatchesReferenceBits(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const size_t count = 10007;
    SCOPED_TRACE(Ctx(ch, dtype, count));
    const Bytes send = RandomValues(dtype, ch.rank(), count, 11);
    Bytes recv(send.size());
    ASSERT_TRUE(ch.AllReduce(CBuf(send, dtype), Buf(recv, dtype)).ok());
    std::vector<Bytes> inputs;
    for (int r = 0; r < n; ++r) inputs.push_back(RandomValues(dtype, r, count, 11));
    const Bytes reference = ReferenceSum(dtype, inputs, count);
    if (traits.rank_order_sum) {
      EXPECT_EQ(reference, recv);
      continue;
    }
    // Another summation order: every rank holds the same bits, close to the reference.
    Bytes all(recv.size() * static_cast<size_t>(n));
    ASSERT_TRUE(ch.AllGather(CBuf(recv, DType::kU8), Buf(all, DType::kU8)).ok());
    for (int r = 0; r < n; ++r) {
      EXPECT_EQ(0, std::memcmp(all.data() + static_cast<size_t>(r) * recv.size(), recv.data(), recv.size()))
          << "rank " << r << " received other bits";
    }
    auto to_float = [&](const Bytes& b, size_t i) {
      if (dtype == DType::kF32) { float f; std::memcpy(&f, b.data() + 4 * i, 4); return f; }
      uint16_t h;
      std::memcpy(&h, b.data() + 2 * i, 2);
      return dtype == DType::kF16 ? HalfToFloat(h) : BFloat16ToFloat(h);
    };
    // |inputs| <= 1 per rank: per-add rounding of the dtype, over n - 1 adds, plus the final one.
    const double eps = dtype == DType::kF32 ? 1.2e-7 : dtype == DType::kF16 ? 9.8e-4 : 7.9e-3;
    const double tolerance = eps * n * n;
    size_t bad = 0;
    for (size_t i = 0; i < count; ++i) {
      bad += std::abs(static_cast<double>(to_float(recv, i)) - to_float(reference, i)) > tolerance;
    }
    EXPECT_EQ(0u, bad) << "elements further than " << tolerance << " from the rank-order sum";
  }
}

void SendRecvRingAndTags(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  const int next = (ch.rank() + 1) % n, prev = (ch.rank() + n - 1) % n;
  if (!traits.tag_matching) return;  // see SendRecvRingInIssueOrder
  // Three tags, received in another order than sent.
  std::vector<Bytes> out, in;
  std::vector<Handle> handles;
  for (int t = 0; t < 3; ++t) out.push_back(Pattern(DType::kBF16, ch.rank(), 100 + static_cast<size_t>(t), t));
  for (int t = 0; t < 3; ++t) in.emplace_back(out[static_cast<size_t>(t)].size(), 0);
  for (int t : {2, 0, 1}) {
    handles.push_back(ch.RecvAsync(Buf(in[static_cast<size_t>(t)], DType::kBF16), prev, 100 + static_cast<uint32_t>(t)));
  }
  for (int t = 0; t < 3; ++t) {
    handles.push_back(ch.SendAsync(CBuf(out[static_cast<size_t>(t)], DType::kBF16), next, 100 + static_cast<uint32_t>(t)));
  }
  for (Handle& h : handles) ASSERT_TRUE(h.Wait(milliseconds(20000)).ok()) << h.what();
  for (int t = 0; t < 3; ++t) {
    EXPECT_EQ(Pattern(DType::kBF16, prev, 100 + static_cast<size_t>(t), t), in[static_cast<size_t>(t)]) << "tag " << t;
  }
  // Same tag twice: matched in issue order. Tags use the full 32 bits.
  const uint32_t tag = 0xFFFFFFFFu;
  std::vector<int64_t> a = {ch.rank() * 10 + 1}, b = {ch.rank() * 10 + 2}, ra(1), rb(1);
  Handle s1 = ch.SendAsync(CpuBuffer<int64_t>(a.data(), 1), next, tag);
  Handle s2 = ch.SendAsync(CpuBuffer<int64_t>(b.data(), 1), next, tag);
  ASSERT_TRUE(ch.Recv(CpuBuffer(ra.data(), 1), prev, tag).ok());
  ASSERT_TRUE(ch.Recv(CpuBuffer(rb.data(), 1), prev, tag).ok());
  ASSERT_TRUE(s1.Wait(milliseconds(20000)).ok());
  ASSERT_TRUE(s2.Wait(milliseconds(20000)).ok());
  EXPECT_EQ(prev * 10 + 1, ra[0]);
  EXPECT_EQ(prev * 10 + 2, rb[0]);
}

// The exchange every backend supports: a ring of messages of different sizes, Recvs posted
// before the Sends, matched in issue order (the tags agree too), waited for in reverse.
void SendRecvRingInIssueOrder(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  const int next = (ch.rank() + 1) % n, prev = (ch.rank() + n - 1) % n;
  std::vector<Bytes> out, in;
  std::vector<Handle> handles;
  for (int k = 0; k < 4; ++k) {
    out.push_back(Pattern(DType::kF16, ch.rank(), 50 + 300 * static_cast<size_t>(k), 20 + k));
    in.emplace_back(out.back().size(), 0);
  }
  for (int k = 0; k < 4; ++k) {
    handles.push_back(ch.RecvAsync(Buf(in[static_cast<size_t>(k)], DType::kF16), prev, 300 + static_cast<uint32_t>(k)));
  }
  for (int k = 0; k < 4; ++k) {
    handles.push_back(ch.SendAsync(CBuf(out[static_cast<size_t>(k)], DType::kF16), next, 300 + static_cast<uint32_t>(k)));
  }
  for (auto it = handles.rbegin(); it != handles.rend(); ++it) {
    ASSERT_TRUE(it->Wait(milliseconds(20000)).ok()) << it->what();
  }
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(Pattern(DType::kF16, prev, 50 + 300 * static_cast<size_t>(k), 20 + k), in[static_cast<size_t>(k)]) << "message " << k;
  }
}

void SendRecvSelfAndEmpty(Channel& ch, const Traits& traits) {
  const Bytes out = Pattern(DType::kU8, ch.rank(), 77, 4);
  Bytes in(out.size(), 0);
  Handle r = ch.RecvAsync(Buf(in, DType::kU8), ch.rank(), 5);
  Handle s = ch.SendAsync(CBuf(out, DType::kU8), ch.rank(), 5);
  ASSERT_TRUE(s.Wait(milliseconds(20000)).ok());
  ASSERT_TRUE(r.Wait(milliseconds(20000)).ok());
  EXPECT_EQ(out, in);
  // Zero-byte messages around the ring.
  const int n = ch.world_size();
  Handle zr = ch.RecvAsync(Buffer{nullptr, 0, DType::kF32}, (ch.rank() + n - 1) % n, 6);
  Handle zs = ch.SendAsync(ConstBuffer(nullptr, 0, DType::kF32), (ch.rank() + 1) % n, 6);
  EXPECT_TRUE(zs.Wait(milliseconds(20000)).ok());
  EXPECT_TRUE(zr.Wait(milliseconds(20000)).ok());
}

// A Recv whose size differs from the Send's fails on the receiver with a message naming the
// sender; the channel stays usable.
void SendRecvSizeMismatch(Channel& ch, const Traits& traits) {
  if (!traits.p2p_size_check) return;  // undefined on such backends
  if (ch.rank() == 0) {
    std::vector<float> big(8, 1.0f), small(2, 1.0f);
    Handle a = ch.SendAsync(CpuBuffer<float>(big.data(), big.size()), 1, 9);
    Handle b = ch.SendAsync(CpuBuffer<float>(small.data(), small.size()), 1, 10);
    // The sender may or may not see the error (backends differ); it must not hang.
    (void)a.Wait(milliseconds(20000));
    (void)b.Wait(milliseconds(20000));
  } else if (ch.rank() == 1) {
    std::vector<float> four(4);
    Status too_big = ch.Recv(CpuBuffer(four.data(), 4), 0, 9);
    EXPECT_EQ(StatusCode::kInvalidArgument, too_big.code()) << too_big.ToString();
    EXPECT_NE(std::string::npos, too_big.message().find("rank 0")) << too_big.message();
    Status too_small = ch.Recv(CpuBuffer(four.data(), 4), 0, 10);
    EXPECT_EQ(StatusCode::kInvalidArgument, too_small.code()) << too_small.ToString();
  }
  EXPECT_TRUE(ch.Barrier().ok());
}

void BarrierHoldsEveryone(Channel& ch, const Traits& traits) {
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(milliseconds(25 * ch.rank()));
    const int64_t enter = MonotonicNs();
    ASSERT_TRUE(ch.Barrier().ok());
    const int64_t exit = MonotonicNs();
    std::vector<int64_t> mine = {enter, exit};
    std::vector<int64_t> all(2 * static_cast<size_t>(ch.world_size()));
    ASSERT_TRUE(ch.AllGather(CpuBuffer<int64_t>(mine.data(), 2), CpuBuffer(all.data(), all.size())).ok());
    int64_t last_enter = 0;
    for (int r = 0; r < ch.world_size(); ++r) last_enter = std::max(last_enter, all[2 * static_cast<size_t>(r)]);
    for (int r = 0; r < ch.world_size(); ++r) {
      EXPECT_GE(all[2 * static_cast<size_t>(r) + 1], last_enter) << "rank " << r << " left the barrier early";
    }
  }
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ch.Barrier().ok());
}

// 64 MiB gathered and 64 MiB reduced.
void LargeBuffers(Channel& ch, const Traits& traits) {
  const auto n = static_cast<size_t>(ch.world_size());
  const size_t total = (size_t{64} << 20) / 4;  // f32 elements in 64 MiB
  const size_t part = total / n;
  std::vector<float> send(part), recv(part * n);
  for (size_t i = 0; i < part; ++i) send[i] = static_cast<float>(ch.rank()) * 1e6f + static_cast<float>(i % 100000);
  ASSERT_TRUE(ch.AllGather(CpuBuffer<float>(send.data(), part), CpuBuffer(recv.data(), recv.size())).ok());
  for (size_t r = 0; r < n; ++r) {
    for (size_t i = 0; i < part; i += 997) {
      ASSERT_EQ(static_cast<float>(r) * 1e6f + static_cast<float>(i % 100000), recv[r * part + i]) << r << " " << i;
    }
    ASSERT_EQ(static_cast<float>(r) * 1e6f + static_cast<float>((part - 1) % 100000), recv[r * part + part - 1]);
  }
  std::vector<float>().swap(recv);
  std::vector<float> data(total);
  for (size_t i = 0; i < total; ++i) data[i] = static_cast<float>((i + static_cast<size_t>(ch.rank())) % 1024);
  ASSERT_TRUE(ch.AllReduce(CpuBuffer<float>(data.data(), total), CpuBuffer(data.data(), total)).ok());
  size_t bad = 0;
  for (size_t i = 0; i < total; ++i) {
    float expect = 0;
    for (size_t r = 0; r < n; ++r) expect += static_cast<float>((i + r) % 1024);
    bad += data[i] != expect;
  }
  EXPECT_EQ(0u, bad);
}

// Many operations in flight at once, waited for in reverse order.
void ManyAsyncInFlight(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  const int next = (ch.rank() + 1) % n, prev = (ch.rank() + n - 1) % n;
  constexpr int kOps = 48;
  std::vector<std::vector<int32_t>> sends(kOps), recvs(kOps);
  std::vector<Handle> handles;
  for (int k = 0; k < kOps; ++k) {
    auto& s = sends[static_cast<size_t>(k)];
    auto& r = recvs[static_cast<size_t>(k)];
    const size_t count = 64 + static_cast<size_t>(k) * 37;
    s.assign(count, ch.rank() * 1000 + k);
    switch (k % 4) {
      case 0:
        r.assign(count * static_cast<size_t>(n), -1);
        handles.push_back(ch.AllGatherAsync(CpuBuffer<int32_t>(s.data(), count), CpuBuffer(r.data(), r.size())));
        break;
      case 1:
        r.assign(count, -1);
        handles.push_back(ch.AllReduceAsync(CpuBuffer<int32_t>(s.data(), count), CpuBuffer(r.data(), count)));
        break;
      case 2:
        r.assign(count, -1);
        handles.push_back(ch.RecvAsync(CpuBuffer(r.data(), count), prev, 1000 + static_cast<uint32_t>(k)));
        handles.push_back(ch.SendAsync(CpuBuffer<int32_t>(s.data(), count), next, 1000 + static_cast<uint32_t>(k)));
        break;
      case 3:
        handles.push_back(ch.BarrierAsync());
        break;
    }
  }
  for (auto it = handles.rbegin(); it != handles.rend(); ++it) {
    ASSERT_TRUE(it->Wait(milliseconds(30000)).ok()) << it->what();
  }
  for (int k = 0; k < kOps; ++k) {
    const auto& r = recvs[static_cast<size_t>(k)];
    const size_t count = 64 + static_cast<size_t>(k) * 37;
    switch (k % 4) {
      case 0:
        for (int q = 0; q < n; ++q) EXPECT_EQ(q * 1000 + k, r[static_cast<size_t>(q) * count + count - 1]) << k;
        break;
      case 1: {
        int32_t sum = 0;
        for (int q = 0; q < n; ++q) sum += q * 1000 + k;
        EXPECT_EQ(sum, r[0]) << k;
        EXPECT_EQ(sum, r[count - 1]) << k;
        break;
      }
      case 2:
        EXPECT_EQ(prev * 1000 + k, r[0]) << k;
        EXPECT_EQ(prev * 1000 + k, r[count - 1]) << k;
        break;
    }
  }
}

// Wait with a short timeout returns DeadlineExceeded while a peer is late; the operation stays
// pending and completes once the peer arrives.
void WaitTimeoutThenComplete(Channel& ch, const Traits& traits) {
  std::vector<int64_t> v = {ch.rank() + 1}, out(1);
  if (ch.rank() == 0) {
    Handle h = ch.AllReduceAsync(CpuBuffer<int64_t>(v.data(), 1), CpuBuffer(out.data(), 1));
    if (ch.world_size() > 1) {
      const Status early = h.Wait(milliseconds(30));
      EXPECT_EQ(StatusCode::kDeadlineExceeded, early.code()) << early.ToString();
      EXPECT_NE(std::string::npos, early.message().find("all_reduce")) << early.message();
      EXPECT_FALSE(h.Done());
    }
    ASSERT_TRUE(h.Wait(milliseconds(20000)).ok());
  } else {
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_TRUE(ch.AllReduce(CpuBuffer<int64_t>(v.data(), 1), CpuBuffer(out.data(), 1)).ok());
  }
  const int64_t n = ch.world_size();
  EXPECT_EQ(n * (n + 1) / 2, out[0]);
}

void ExpectInvalid(const Status& s, const std::string& needle) {
  EXPECT_EQ(StatusCode::kInvalidArgument, s.code()) << s.ToString();
  EXPECT_NE(std::string::npos, s.message().find(needle)) << "message: " << s.message()
                                                          << "\nexpected to contain: " << needle;
}

// Bad calls fail at once with a message naming the problem, and send nothing (so the gang
// stays in step: the barrier at the end must still match).
void InvalidArguments(Channel& ch, const Traits& traits) {
  const int n = ch.world_size();
  std::vector<float> a(8), b(8 * static_cast<size_t>(n) + 1);
  ExpectInvalid(ch.AllGather(CpuBuffer<float>(a.data(), 8), CpuBuffer(b.data(), b.size())),
                "recv.count must be world_size");
  ExpectInvalid(ch.AllGather(ConstBuffer(nullptr, 4, DType::kF32), CpuBuffer(b.data(), 4 * static_cast<size_t>(n))),
                "send.data is null");
  ExpectInvalid(ch.AllReduce(CpuBuffer<float>(a.data(), 8), Buffer{b.data(), 8, DType::kF16}),
                "send is f32 but recv is f16");
  ExpectInvalid(ch.AllReduce(CpuBuffer<float>(a.data(), 4), CpuBuffer(a.data() + 2, 4)), "overlap");
  ExpectInvalid(ch.AllReduce(ConstBuffer(a.data(), 8, static_cast<DType>(42)), Buffer{a.data(), 8, static_cast<DType>(42)}),
                "unknown dtype value 42");
  std::vector<size_t> counts(static_cast<size_t>(n) + 1, 1);
  ExpectInvalid(ch.AllGatherV(CpuBuffer<float>(a.data(), 1), CpuBuffer(b.data(), counts.size()), counts),
                "counts has " + std::to_string(n + 1) + " entries");
  counts.assign(static_cast<size_t>(n), 2);
  ExpectInvalid(ch.AllGatherV(CpuBuffer<float>(a.data(), 1), CpuBuffer(b.data(), 2 * static_cast<size_t>(n)), counts),
                "counts[" + std::to_string(ch.rank()) + "] is 2");
  ExpectInvalid(ch.Send(CpuBuffer<float>(a.data(), 1), n, 0), "peer " + std::to_string(n) + " is not a rank");
  ExpectInvalid(ch.Recv(CpuBuffer(a.data(), 1), -1, 0), "peer -1 is not a rank");
  if (!ch.SupportsDevice(Device::Cuda(0))) {
    ExpectInvalid(ch.Send(ConstBuffer(a.data(), 1, DType::kF32, Device::Cuda(0)), 0, 0),
                  "does not accept buffers on cuda:0");
  }
  Handle empty;
  EXPECT_EQ(StatusCode::kFailedPrecondition, empty.Wait().code());
  EXPECT_TRUE(ch.status().ok());
  EXPECT_TRUE(ch.Barrier().ok());
}

const std::vector<SharedCase> kShared = {
    {"AllGatherEveryDType", 1, AllGatherEveryDType},
    {"AllGatherInPlaceAndEmpty", 1, AllGatherInPlaceAndEmpty},
    {"AllGatherVUneven", 1, AllGatherVUneven},
    {"AllReduceEveryDType", 1, AllReduceEveryDType},
    {"AllReduceInPlaceAndWrap", 1, AllReduceInPlaceAndWrap},
    {"AllReduceMatchesReferenceBits", 1, AllReduceMatchesReferenceBits},
    {"SendRecvRingAndTags", 1, SendRecvRingAndTags},
    {"SendRecvRingInIssueOrder", 1, SendRecvRingInIssueOrder},
    {"SendRecvSelfAndEmpty", 1, SendRecvSelfAndEmpty},
    {"SendRecvSizeMismatch", 2, SendRecvSizeMismatch},
    {"BarrierHoldsEveryone", 1, BarrierHoldsEveryone},
    {"LargeBuffers", 1, LargeBuffers},
    {"ManyAsyncInFlight", 1, ManyAsyncInFlight},
    {"WaitTimeoutThenComplete", 1, WaitTimeoutThenComplete},
    {"InvalidArguments", 1, InvalidArguments},
};


}  // namespace

const std::vector<SharedCase>& SharedCases() { return kShared; }

const SharedCase* FindSharedCase(const std::string& name) {
  for (const SharedCase& c : kShared) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

void RunAllSharedCases(Channel& channel, const Traits& traits) {
  for (const SharedCase& c : kShared) {
    if (channel.world_size() < c.min_world) continue;
    SCOPED_TRACE(std::string("case ") + c.name);
    c.run(channel, traits);
    ASSERT_TRUE(channel.Barrier().ok()) << "after case " << c.name;
  }
}

}  // namespace distri::channel::testing
