// The displaced self-attention's K/V assembly: the own strip's fresh keys and values (strided
// views of the q/k/v projection) token-major into the own slot of the stale buffers and into
// the whole image's K/V, the other strips' stale K/V around them: one pass, one kernel, instead
// of a strided concatenation into the slot (ATen's generic, unvectorized kernel) plus a second
// concatenation of all strips.
#include <algorithm>
#include <cstdint>

#include "actors/kernels/fused_kernels.h"

namespace distri::kernels {
namespace {

struct KvArgs {
  const uint4* parts[KeyValueParts::kMaxStrips];
  uint32_t row_start[KeyValueParts::kMaxStrips + 1];  // first image row of each strip, then the total
  int strips, own;
  const char* k;
  const char* v;
  int64_t batch_stride, row_stride;  // of k and v, bytes
  uint32_t batch, half_vectors;      // batch; 16-byte vectors in `inner` elements
  uint4* own_out;
  uint4* full;
};

__global__ void KeyValueAssemble(const KvArgs a) {
  const uint32_t row_vectors = 2 * a.half_vectors;  // one (token, image): keys then values
  const uint32_t total = a.row_start[a.strips] * a.batch * row_vectors;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const uint32_t col = i % row_vectors, token_image = i / row_vectors;
    const uint32_t b = token_image % a.batch, t = token_image / a.batch;
    int s = 0;
    while (s + 1 < a.strips && t >= a.row_start[s + 1]) ++s;
    const uint32_t local = t - a.row_start[s];
    uint4 value;
    if (s == a.own) {
      const bool key = col < a.half_vectors;
      const char* src = (key ? a.k : a.v) + b * a.batch_stride + local * a.row_stride +
                        int64_t(key ? col : col - a.half_vectors) * 16;
      value = *reinterpret_cast<const uint4*>(src);
      a.own_out[(local * a.batch + b) * row_vectors + col] = value;
    } else {
      value = a.parts[s][(local * a.batch + b) * row_vectors + col];
    }
    a.full[i] = value;
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool KeyValueAssembleSupports(const void* k, const void* v, int64_t batch_stride, int64_t row_stride, int64_t batch,
                              int64_t inner, const KeyValueParts& parts, const void* own_out, const void* full) {
  if (parts.strips < 1 || parts.strips > KeyValueParts::kMaxStrips || parts.own < 0 || parts.own >= parts.strips) {
    return false;
  }
  if (batch < 1 || inner < 8 || inner % 8 != 0 || batch_stride % 8 != 0 || row_stride % 8 != 0) return false;
  if (!Aligned16(k) || !Aligned16(v) || !Aligned16(own_out) || !Aligned16(full)) return false;
  int64_t total = 0;
  for (int s = 0; s < parts.strips; ++s) {
    if (parts.rows[s] < 0 || (s != parts.own && (parts.rows[s] > 0 && !Aligned16(parts.parts[s])))) return false;
    total += parts.rows[s];
  }
  // 32-bit indices: vectors of the whole K/V.
  return total * batch * (2 * inner / 8) < (int64_t{1} << 31);
}

cudaError_t LaunchKeyValueAssemble(ElemType, const void* k, const void* v, int64_t batch_stride, int64_t row_stride,
                                   int64_t batch, int64_t inner, const KeyValueParts& parts, void* own_out, void* full,
                                   cudaStream_t stream) {
  if (!KeyValueAssembleSupports(k, v, batch_stride, row_stride, batch, inner, parts, own_out, full)) {
    return cudaErrorInvalidValue;
  }
  KvArgs a{};
  a.strips = parts.strips;
  a.own = parts.own;
  uint32_t start = 0;
  for (int s = 0; s < parts.strips; ++s) {
    a.parts[s] = static_cast<const uint4*>(parts.parts[s]);
    a.row_start[s] = start;
    start += static_cast<uint32_t>(parts.rows[s]);
  }
  a.row_start[parts.strips] = start;
  a.k = static_cast<const char*>(k);
  a.v = static_cast<const char*>(v);
  a.batch_stride = batch_stride * 2;  // 2-byte elements (fp16, bf16)
  a.row_stride = row_stride * 2;
  a.batch = static_cast<uint32_t>(batch);
  a.half_vectors = static_cast<uint32_t>(inner / 8);
  a.own_out = static_cast<uint4*>(own_out);
  a.full = static_cast<uint4*>(full);
  const int64_t total = int64_t{start} * batch * (inner / 4);
  if (total == 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + threads - 1) / threads, 132 * 16));
  KeyValueAssemble<<<blocks, threads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace distri::kernels
