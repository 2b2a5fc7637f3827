#include "runtime/common/ids.h"

#include <mutex>
#include <random>

namespace distri::internal {

std::array<uint8_t, 16> RandomIdBytes() {
  // One generator per thread, seeded from the OS: ids must differ across processes and hosts.
  thread_local std::mt19937_64 gen([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  std::array<uint8_t, 16> out{};
  uint64_t a = gen(), b = gen();
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<uint8_t>(a >> (8 * i));
    out[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  return out;
}

std::string IdToHex(const std::array<uint8_t, 16>& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string s(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return s;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status IdFromHex(std::string_view kind, std::string_view hex, std::array<uint8_t, 16>* out) {
  if (hex.size() != 32) {
    return Status::InvalidArgument(std::string(kind) + " must be 32 hex digits, got " +
                                   std::to_string(hex.size()) + " characters");
  }
  for (size_t i = 0; i < 16; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument(std::string(kind) + " has a non-hex character at position " +
                                     std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return Status::Ok();
}

}  // namespace distri::internal
