#include "runtime/channel/ucx/ucx_address.h"

namespace distri::channel::ucx {
namespace {

constexpr char kMagic[4] = {'D', 'U', 'C', 'X'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 20;
constexpr size_t kChecksumBytes = 8;

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t Get(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}
uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

std::string EncodeAddressRecord(int rank, int world_size, std::string_view worker_address) {
  std::string out(kMagic, 4);
  PutU32(out, kVersion);
  PutU32(out, static_cast<uint32_t>(rank));
  PutU32(out, static_cast<uint32_t>(world_size));
  PutU32(out, static_cast<uint32_t>(worker_address.size()));
  out.append(worker_address);
  const uint64_t sum = Fnv1a64(out);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((sum >> (8 * i)) & 0xff));
  return out;
}

Result<std::string> DecodeAddressRecord(std::string_view record, int expected_rank,
                                        int expected_world_size) {
  const std::string who = "UCX address record of rank " + std::to_string(expected_rank);
  if (record.size() < kHeaderBytes + kChecksumBytes) {
    return Status::ParseError(who + ": " + std::to_string(record.size()) +
                              " bytes is shorter than the minimum of " +
                              std::to_string(kHeaderBytes + kChecksumBytes));
  }
  if (record.substr(0, 4) != std::string_view(kMagic, 4)) {
    return Status::ParseError(who + ": bad magic (expected \"DUCX\"; is every rank using the ucx "
                              "backend?)");
  }
  const uint64_t version = Get(record, 4, 4);
  if (version != kVersion) {
    return Status::ParseError(who + ": version " + std::to_string(version) + ", expected " +
                              std::to_string(kVersion));
  }
  const uint64_t len = Get(record, 16, 4);
  if (len == 0 || len > kMaxWorkerAddressBytes) {
    return Status::ParseError(who + ": address length " + std::to_string(len) +
                              " is outside 1.." + std::to_string(kMaxWorkerAddressBytes));
  }
  if (record.size() != kHeaderBytes + len + kChecksumBytes) {
    return Status::ParseError(who + ": " + std::to_string(record.size()) +
                              " bytes, but the header announces " +
                              std::to_string(kHeaderBytes + len + kChecksumBytes));
  }
  const size_t body = kHeaderBytes + static_cast<size_t>(len);
  if (Get(record, body, 8) != Fnv1a64(record.substr(0, body))) {
    return Status::ParseError(who + ": checksum mismatch (corrupt record)");
  }
  const uint64_t rank = Get(record, 8, 4);
  const uint64_t world = Get(record, 12, 4);
  if (rank != static_cast<uint64_t>(expected_rank)) {
    return Status::InvalidArgument(who + ": the record says rank " + std::to_string(rank));
  }
  if (world != static_cast<uint64_t>(expected_world_size)) {
    return Status::InvalidArgument(who + ": that rank has world_size " + std::to_string(world) +
                                   ", this rank has " + std::to_string(expected_world_size));
  }
  return std::string(record.substr(kHeaderBytes, static_cast<size_t>(len)));
}

}  // namespace distri::channel::ucx
