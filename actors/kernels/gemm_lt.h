// Linear layers (y = x W^T + b [+ residual]) through cuBLASLt, with the algorithm chosen by
// measurement instead of cuBLAS's heuristic pick (no LibTorch here: raw pointers and a stream).
// Called through actors/model/blocks/fused_ops.h (TunedLinear), which checks shapes and falls
// back to at::linear where this does not apply.
//
// Why: at small batch the heuristic picks small tiles (nvjet 80x64) for the UNet's GEMMs
// (M = 512..4096 tokens, N, K in 640..10240), ~3x slower than the arithmetic allows on H100,
// most likely from wave quantisation on 132 SMs. Timing the heuristic's top candidates once per
// shape finds the better tile/split for that shape on that device. (On H100 with cuBLASLt 13.1
// the heuristic offers 8 candidates for these shapes; the pick saves 0.3-1 us on GEMMs of 5-30 us.)
//
// Algorithm choice, per key (device, element type, m, n, k, bias?, residual?, pointer alignment):
//   1. a choice already made in this process (the in-memory cache);
//   2. else a line of the tuning cache file (DISTRI_GEMM_TUNE_CACHE, below) for this GPU model
//      and cuBLASLt version, if cublasLtMatmulAlgoCheck accepts it;
//   3. else, when `stream` is capturing a CUDA graph: the heuristic's first candidate, NOT
//      cached (timing needs synchronisation, which capture forbids) - the next eager call of
//      the key tunes it;
//   4. else: cublasLtMatmulAlgoGetHeuristic's first kTunedLinearCandidates candidates (those
//      needing at most `workspace_bytes`, split-K reductions only in fp32), each run once to warm
//      up, then kTunedLinearTimedReps launches of it captured in a CUDA graph and timed with
//      CUDA events (two replays, the better counts: GPU time without the host's launch cost) on
//      a private stream ordered after `stream`; the fastest wins, the heuristic's own first
//      choice keeps the place unless beaten by more than 3%. The first call of a key therefore
//      synchronises `stream` and takes up to a few tens of milliseconds.
//
// Determinism: a given cuBLASLt algorithm gives bit-identical results run to run, but the pick
// depends on timings, so two processes may pick different algorithms for one shape and then
// differ in the last bits. Where that matters (the ranks of a gang, standalone vs cluster runs
// that are compared bit for bit) point every process at one cache file:
//
//   DISTRI_GEMM_TUNE_CACHE=FILE
//     Text file, one line per key:
//       distri-gemm-v1 <cublasLt version> <gpu> <f16|bf16> <m> <n> <k> <bias 0|1> <residual 0|1>
//           <alignment bytes> <algo word 0> ... <algo word 7> [# comment]
//     <gpu> is sm<major><minor>:<SM count>:<device name, spaces as _>; the algo words are the
//     8 uint64 of cublasLtMatmulAlgo_t in hex. Lines are read on the first call (and after
//     ClearTunedLinearCache); each newly tuned key is appended under an exclusive flock(2), after
//     re-reading the file: if another process wrote that key first, its line wins and this
//     process switches to it. So the first line of a key in the file is the choice of every
//     process that reads it. Empty lines and lines starting with '#' are skipped; a malformed
//     line is skipped with a warning on stderr naming the file and line; lines of another
//     cuBLASLt version or GPU are ignored. An unreadable/unwritable file only warns.
//
// Threading: every function here is thread-safe. One cuBLASLt handle per device, created on
// first use and kept for the process. Choices are process-wide, guarded by a mutex (not held
// while timing). Timing creates a stream, events and graphs and synchronises: no thread of the
// process may be capturing in cudaStreamCaptureModeGlobal meanwhile (distri's own captures use
// thread-local mode and follow an eager warm-up forward, which makes every choice first).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "actors/kernels/fused_kernels.h"

namespace distri::kernels {

inline constexpr int kTunedLinearCandidates = 16;
inline constexpr int kTunedLinearTimedReps = 10;
// The workspace TunedLinear (fused_ops.h) passes; cuBLASLt's split-K algorithms use it.
inline constexpr size_t kTunedLinearWorkspaceBytes = size_t{32} << 20;

// y[m, n] = x[m, k] . w[n, k]^T (+ bias[n]) (+ residual[m, n]), all row-major and contiguous
// (leading dimensions k, k, n, n), element type `t`, fp32 accumulation (CUBLAS_COMPUTE_32F,
// alpha = 1; beta = 1 with C = residual, else 0). bias and residual may be null.
// y must not overlap x, w, bias or residual (in particular y == residual is rejected): a
// fresh output keeps the timing runs of a first call harmless.
// Requirements: m, n, k >= 1; every pointer 16-byte aligned (the alignment class, the largest
// power of two <= 256 dividing the addresses of x, w, y and residual, is part of the key);
// `workspace` device memory of `workspace_bytes` (256-byte aligned; null/0 allowed, fewer
// algorithms then), used in stream order on `stream` only. Runs on the current device.
// Returns cudaSuccess; cudaErrorInvalidValue for a broken requirement; cudaErrorNotSupported
// when cuBLASLt has no algorithm for this problem (the caller should fall back); another code
// for a CUDA/cuBLAS failure. On failure TunedLinearLastError() says what went wrong.
cudaError_t LaunchTunedLinear(ElemType t, const void* x, const void* w, const void* bias, const void* residual,
                              void* y, int64_t m, int64_t n, int64_t k, void* workspace, size_t workspace_bytes,
                              cudaStream_t stream);

// The message of this thread's last failed LaunchTunedLinear ("" if none).
const char* TunedLinearLastError();

// How the algorithm of this thread's last successful LaunchTunedLinear was chosen.
enum class TunedLinearSource { kNone = 0, kCache = 1, kTuned = 2, kFile = 3, kHeuristicUncached = 4 };
struct TunedLinearChoice {
  TunedLinearSource source = TunedLinearSource::kNone;
  uint64_t algo[8] = {};       // cublasLtMatmulAlgo_t::data
  float time_us = -1;          // measured time of the chosen algorithm (-1: not timed here)
  float heuristic_us = -1;     // measured time of the heuristic's first candidate (-1: not timed)
  int candidates = 0;          // candidates timed (0: not timed)
};
TunedLinearChoice LastTunedLinearChoice();

// Number of keys with a cached choice (all devices).
size_t TunedLinearCacheSize();
// One line per cached key: shape, source, algorithm's time vs the heuristic's (for benchmark logs).
std::string TunedLinearReport();

// Drops every in-memory choice and the contents read from the cache file (re-read on the next
// call). For tests and benchmarks; calls in flight on other threads are not disturbed.
void ClearTunedLinearCache();
// Overrides DISTRI_GEMM_TUNE_CACHE for this process: path of the cache file, "" for none,
// nullptr to go back to the environment variable. Takes effect at the next ClearTunedLinearCache
// or first call.
void SetTunedLinearCacheFile(const char* path);

}  // namespace distri::kernels
