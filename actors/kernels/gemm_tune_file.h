// The GEMM tuning cache file (DISTRI_GEMM_TUNE_CACHE, format in gemm_lt.h): parsing, formatting
// and the locked read-or-append that makes every process sharing the file use one algorithm per
// key. Plain C++ and POSIX, no CUDA: the algorithm is 8 opaque words here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "actors/kernels/fused_kernels.h"

namespace distri::kernels {

struct GemmTuneKey {
  std::string gpu;  // "sm90:132:NVIDIA_H100_80GB_HBM3" (no whitespace)
  ElemType type = ElemType::kHalf;
  int64_t m = 0, n = 0, k = 0;
  bool bias = false, residual = false;
  int64_t align = 0;  // bytes, a power of two in [16, 256]

  auto Tie() const { return std::tie(gpu, type, m, n, k, bias, residual, align); }
  bool operator==(const GemmTuneKey& o) const { return Tie() == o.Tie(); }
  bool operator<(const GemmTuneKey& o) const { return Tie() < o.Tie(); }
};

struct GemmTuneEntry {
  GemmTuneKey key;
  std::array<uint64_t, 8> algo{};
};

// The entries of `text` (a cache file's contents) for cuBLASLt `version`, in file order. Lines
// of another version are skipped silently; malformed lines are skipped, with a warning on
// stderr ("distri: <path>:<line>: ...") when `warn`.
std::vector<GemmTuneEntry> ParseGemmTuneFile(const std::string& text, const std::string& path, size_t version,
                                             bool warn);

// One line (with '\n') for `e`; `comment` (no newline) goes after '#' when not empty.
std::string FormatGemmTuneLine(const GemmTuneEntry& e, size_t version, const std::string& comment);

// Reads and parses `path` (shared lock). A missing file is empty; other read errors warn and
// return false.
bool ReadGemmTuneFile(const std::string& path, size_t version, bool warn, std::vector<GemmTuneEntry>* entries);

// Under an exclusive flock of `path` (created if missing): re-reads it; if it already has a line
// for `entry.key`, returns that entry (the earlier writer wins), else appends `entry` (with
// `comment`) and returns it. `all` receives every entry of the file as re-read (plus `entry` if
// appended). On an I/O error warns and returns `entry` (nothing shared).
GemmTuneEntry AppendGemmTuneEntry(const std::string& path, size_t version, const GemmTuneEntry& entry,
                                  const std::string& comment, std::vector<GemmTuneEntry>* all);

}  // namespace distri::kernels
