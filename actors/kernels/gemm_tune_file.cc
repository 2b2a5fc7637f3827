#include "actors/kernels/gemm_tune_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace distri::kernels {
namespace {

constexpr const char* kMagic = "distri-gemm-v1";
constexpr size_t kFields = 18;  // magic, version, gpu, type, m, n, k, bias, residual, align, 8 words
constexpr int64_t kMaxDim = int64_t{1} << 40;

bool ParseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])))) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool ParseHex64(std::string s, uint64_t* out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s = s.substr(2);
  if (s.empty() || s.size() > 16) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = std::strtoull(s.c_str(), nullptr, 16);
  return true;
}

// Parses one line. Returns 1 for an entry, 0 for a line to skip quietly (blank, comment,
// another version), -1 for a malformed line (`why` says what).
int ParseLine(const std::string& raw, size_t version, GemmTuneEntry* e, std::string* why) {
  std::string line = raw.substr(0, raw.find('#'));
  std::istringstream in(line);
  std::vector<std::string> tok;
  for (std::string t; in >> t;) tok.push_back(t);
  if (tok.empty()) return 0;
  if (tok[0] != kMagic) return *why = "does not start with " + std::string(kMagic), -1;
  if (tok.size() != kFields) {
    return *why = "has " + std::to_string(tok.size()) + " fields, expected " + std::to_string(kFields), -1;
  }
  int64_t v = 0;
  if (!ParseInt(tok[1], 0, INT64_MAX, &v)) return *why = "bad cuBLASLt version '" + tok[1] + "'", -1;
  if (static_cast<size_t>(v) != version) return 0;
  e->key.gpu = tok[2];
  if (tok[3] == "f16") e->key.type = ElemType::kHalf;
  else if (tok[3] == "bf16") e->key.type = ElemType::kBFloat16;
  else return *why = "bad element type '" + tok[3] + "' (f16 or bf16)", -1;
  int64_t* dims[3] = {&e->key.m, &e->key.n, &e->key.k};
  for (int i = 0; i < 3; ++i) {
    if (!ParseInt(tok[4 + i], 1, kMaxDim, dims[i])) return *why = "bad size '" + tok[4 + i] + "'", -1;
  }
  int64_t b = 0, r = 0, a = 0;
  if (!ParseInt(tok[7], 0, 1, &b) || !ParseInt(tok[8], 0, 1, &r)) {
    return *why = "bias/residual flags must be 0 or 1", -1;
  }
  if (!ParseInt(tok[9], 16, 256, &a) || (a & (a - 1)) != 0) return *why = "bad alignment '" + tok[9] + "'", -1;
  e->key.bias = b != 0;
  e->key.residual = r != 0;
  e->key.align = a;
  for (int i = 0; i < 8; ++i) {
    if (!ParseHex64(tok[10 + i], &e->algo[i])) return *why = "bad algorithm word '" + tok[10 + i] + "'", -1;
  }
  return 1;
}

bool ReadAll(int fd, std::string* text) {
  text->clear();
  char buf[1 << 14];
  for (off_t off = 0;;) {
    ssize_t got = pread(fd, buf, sizeof buf, off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    if (got == 0) return true;
    text->append(buf, static_cast<size_t>(got));
    off += got;
  }
}

bool WriteAll(int fd, const std::string& s) {
  // One write(2) per line with O_APPEND: the line lands whole at the end of the file.
  size_t done = 0;
  while (done < s.size()) {
    ssize_t put = write(fd, s.data() + done, s.size() - done);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    done += static_cast<size_t>(put);
  }
  return true;
}

}  // namespace

std::vector<GemmTuneEntry> ParseGemmTuneFile(const std::string& text, const std::string& path, size_t version,
                                             bool warn) {
  std::vector<GemmTuneEntry> out;
  std::istringstream in(text);
  size_t lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    GemmTuneEntry e;
    std::string why;
    const int r = ParseLine(line, version, &e, &why);
    if (r == 1) out.push_back(std::move(e));
    if (r < 0 && warn) {
      std::fprintf(stderr, "distri: %s:%zu: malformed GEMM tuning line ignored: %s\n", path.c_str(), lineno,
                   why.c_str());
    }
  }
  return out;
}

std::string FormatGemmTuneLine(const GemmTuneEntry& e, size_t version, const std::string& comment) {
  std::string s = std::string(kMagic) + " " + std::to_string(version) + " " + e.key.gpu + " " +
                  (e.key.type == ElemType::kHalf ? "f16" : "bf16") + " " + std::to_string(e.key.m) + " " +
                  std::to_string(e.key.n) + " " + std::to_string(e.key.k) + " " + (e.key.bias ? "1" : "0") + " " +
                  (e.key.residual ? "1" : "0") + " " + std::to_string(e.key.align);
  for (uint64_t w : e.algo) {
    char hex[24];
    std::snprintf(hex, sizeof hex, " %016" PRIx64, w);
    s += hex;
  }
  if (!comment.empty()) s += " # " + comment;
  return s + "\n";
}

bool ReadGemmTuneFile(const std::string& path, size_t version, bool warn, std::vector<GemmTuneEntry>* entries) {
  entries->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    std::fprintf(stderr, "distri: GEMM tuning cache %s: cannot open: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  flock(fd, LOCK_SH);  // best effort: a writer appends whole lines anyway
  std::string text;
  const bool ok = ReadAll(fd, &text);
  const int read_errno = errno;
  close(fd);
  if (!ok) {
    std::fprintf(stderr, "distri: GEMM tuning cache %s: read failed: %s\n", path.c_str(), std::strerror(read_errno));
    return false;
  }
  *entries = ParseGemmTuneFile(text, path, version, warn);
  return true;
}

GemmTuneEntry AppendGemmTuneEntry(const std::string& path, size_t version, const GemmTuneEntry& entry,
                                  const std::string& comment, std::vector<GemmTuneEntry>* all) {
  all->clear();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "distri: GEMM tuning cache %s: cannot open for writing: %s\n", path.c_str(),
                 std::strerror(errno));
    return entry;
  }
  if (flock(fd, LOCK_EX) != 0) {
    std::fprintf(stderr, "distri: GEMM tuning cache %s: flock failed: %s (writing unlocked)\n", path.c_str(),
                 std::strerror(errno));
  }
  std::string text;
  if (!ReadAll(fd, &text)) {
    std::fprintf(stderr, "distri: GEMM tuning cache %s: read failed: %s\n", path.c_str(), std::strerror(errno));
    close(fd);
    return entry;
  }
  *all = ParseGemmTuneFile(text, path, version, /*warn=*/false);
  for (const GemmTuneEntry& e : *all) {
    if (e.key == entry.key) {
      close(fd);
      return e;
    }
  }
  // A line cut short (a writer that died mid-write) must not swallow ours.
  std::string line = FormatGemmTuneLine(entry, version, comment);
  if (!text.empty() && text.back() != '\n') line = "\n" + line;
  if (!WriteAll(fd, line)) {
    std::fprintf(stderr, "distri: GEMM tuning cache %s: write failed: %s\n", path.c_str(), std::strerror(errno));
  } else {
    all->push_back(entry);
  }
  close(fd);  // releases the lock
  return entry;
}

}  // namespace distri::kernels
