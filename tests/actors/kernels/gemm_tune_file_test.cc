// The GEMM tuning cache file (actors/kernels/gemm_tune_file.h): format round trip, malformed
// lines, the locked read-or-append (label unit: no GPU, no LibTorch).
#include "actors/kernels/gemm_tune_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace distri::kernels {
namespace {

constexpr size_t kVersion = 130100;

GemmTuneEntry Sample() {
  GemmTuneEntry e;
  e.key = {"sm90:132:NVIDIA_H100_80GB_HBM3", ElemType::kHalf, 512, 1280, 1280, true, false, 256};
  for (int i = 0; i < 8; ++i) e.algo[i] = 0x0123456789abcdefULL * static_cast<uint64_t>(i + 1);
  return e;
}

std::string TempPath(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()) + ".txt");
  std::filesystem::remove(p);
  return p.string();
}

TEST(GemmTuneFile, FormatParseRoundTrip) {
  GemmTuneEntry e = Sample();
  GemmTuneEntry b = e;
  b.key.type = ElemType::kBFloat16;
  b.key.residual = true;
  b.key.align = 16;
  std::string text = FormatGemmTuneLine(e, kVersion, "us=6.10") + FormatGemmTuneLine(b, kVersion, "");
  auto got = ParseGemmTuneFile(text, "mem", kVersion, /*warn=*/true);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].key, e.key);
  EXPECT_EQ(got[0].algo, e.algo);
  EXPECT_EQ(got[1].key, b.key);
  EXPECT_EQ(got[1].algo, b.algo);
  EXPECT_NE(text.find("# us=6.10"), std::string::npos);
}

TEST(GemmTuneFile, MalformedLinesAreSkippedWithAWarning) {
  const std::string good = FormatGemmTuneLine(Sample(), kVersion, "");
  std::string other_version = FormatGemmTuneLine(Sample(), kVersion + 1, "");
  auto replace_field = [&](int field, const std::string& value) {
    std::istringstream in(good);
    std::vector<std::string> tok;
    for (std::string t; in >> t;) tok.push_back(t);
    tok[static_cast<size_t>(field)] = value;
    std::string s;
    for (const auto& t : tok) s += t + " ";
    return s + "\n";
  };
  const std::string text = "garbage line\n" +                     // 1
                           std::string("distri-gemm-v1 1 2 3\n") +  // 2: too few fields
                           replace_field(3, "f32") +              // 3
                           replace_field(4, "-5") +               // 4
                           replace_field(6, "12x") +              // 5
                           replace_field(7, "2") +                // 6
                           replace_field(9, "24") +               // 7: not a power of two
                           replace_field(12, "zz") +              // 8
                           replace_field(17, "12345678901234567") +  // 9: 17 hex digits
                           replace_field(1, "v13") +              // 10
                           "\n# a comment\n" +                    // 11, 12: skipped quietly
                           other_version +                        // 13: skipped quietly
                           good;                                  // 14
  testing::internal::CaptureStderr();
  auto got = ParseGemmTuneFile(text, "/tmp/cache.txt", kVersion, /*warn=*/true);
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key, Sample().key);
  for (int line = 1; line <= 10; ++line) {
    EXPECT_NE(err.find("/tmp/cache.txt:" + std::to_string(line) + ":"), std::string::npos) << err;
  }
  for (int line = 11; line <= 14; ++line) {
    EXPECT_EQ(err.find("/tmp/cache.txt:" + std::to_string(line) + ":"), std::string::npos) << err;
  }
  testing::internal::CaptureStderr();
  ParseGemmTuneFile(text, "/tmp/cache.txt", kVersion, /*warn=*/false);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(GemmTuneFile, FirstWriterWins) {
  const std::string path = TempPath("distri-gemm-tune-first");
  GemmTuneEntry a = Sample(), b = Sample();
  b.algo[0] ^= 1;
  std::vector<GemmTuneEntry> all;
  GemmTuneEntry w = AppendGemmTuneEntry(path, kVersion, a, "first", &all);
  EXPECT_EQ(w.algo, a.algo);
  ASSERT_EQ(all.size(), 1u);
  w = AppendGemmTuneEntry(path, kVersion, b, "second", &all);  // same key: the file's line wins
  EXPECT_EQ(w.algo, a.algo);
  GemmTuneEntry c = Sample();
  c.key.m = 77;
  w = AppendGemmTuneEntry(path, kVersion, c, "", &all);
  EXPECT_EQ(w.algo, c.algo);
  EXPECT_EQ(all.size(), 2u);
  std::vector<GemmTuneEntry> read;
  ASSERT_TRUE(ReadGemmTuneFile(path, kVersion, true, &read));
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].algo, a.algo);
  EXPECT_EQ(read[1].key, c.key);
  std::filesystem::remove(path);
}

TEST(GemmTuneFile, TruncatedLastLineDoesNotSwallowTheNext) {
  const std::string path = TempPath("distri-gemm-tune-trunc");
  {
    std::ofstream out(path);
    out << "distri-gemm-v1 130100 sm90";  // a writer died here
  }
  std::vector<GemmTuneEntry> all;
  AppendGemmTuneEntry(path, kVersion, Sample(), "", &all);
  std::vector<GemmTuneEntry> read;
  testing::internal::CaptureStderr();
  ASSERT_TRUE(ReadGemmTuneFile(path, kVersion, true, &read));
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].key, Sample().key);
  EXPECT_NE(err.find(path + ":1:"), std::string::npos) << err;
  std::filesystem::remove(path);
}

TEST(GemmTuneFile, MissingFileIsEmpty) {
  std::vector<GemmTuneEntry> read{Sample()};
  EXPECT_TRUE(ReadGemmTuneFile(TempPath("distri-gemm-tune-missing"), kVersion, true, &read));
  EXPECT_TRUE(read.empty());
}

}  // namespace
}  // namespace distri::kernels
