// Wire format of the standalone TCP rendezvous (little-endian; one request at a time per
// connection, each answered by one response).
//
//   request  = magic:u32 "DRV1" | op:u8 | zero:u8[3] | key_len:u32 | value_len:u32 | key | value
//              op 1 = PUT (value = the value), op 2 = GET (value = timeout in ms as u64)
//   response = magic:u32 "DRV1" | code:u8 (StatusCode) | zero:u8[3] | len:u32 | payload
//              payload = the value (GET, OK) or an error message (code != OK)
//
// Both sides treat the other as untrusted: every length is checked against the limits below
// before anything is allocated, and a malformed frame ends the connection with an error.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "runtime/channel/rendezvous.h"

namespace distri::channel::tcp_wire {

inline constexpr uint32_t kMagic = 0x31565244;  // "DRV1" in memory order
inline constexpr uint8_t kOpPut = 1;
inline constexpr uint8_t kOpGet = 2;
inline constexpr size_t kRequestHeaderBytes = 16;
inline constexpr size_t kResponseHeaderBytes = 12;
inline constexpr size_t kMaxErrorBytes = 4096;
inline constexpr size_t kMaxPayloadBytes = kMaxRendezvousValueBytes + kMaxErrorBytes;

inline void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

inline std::string EncodeRequest(uint8_t op, const std::string& key, const std::string& value) {
  std::string out(kRequestHeaderBytes, '\0');
  PutU32(out.data(), kMagic);
  out[4] = static_cast<char>(op);
  PutU32(out.data() + 8, static_cast<uint32_t>(key.size()));
  PutU32(out.data() + 12, static_cast<uint32_t>(value.size()));
  out += key;
  out += value;
  return out;
}

inline std::string EncodeResponse(uint8_t code, const std::string& payload) {
  std::string out(kResponseHeaderBytes, '\0');
  PutU32(out.data(), kMagic);
  out[4] = static_cast<char>(code);
  PutU32(out.data() + 8, static_cast<uint32_t>(payload.size()));
  out += payload;
  return out;
}

}  // namespace distri::channel::tcp_wire
