// The record each rank publishes in the rendezvous: its UCX worker address in an envelope that
// lets a peer reject corrupt or foreign data before handing bytes to UCX (which trusts them).
//
//   "DUCX" | version:u32 = 1 | rank:u32 | world_size:u32 | len:u32 | address[len] | fnv1a64:u64
//
// (little-endian; the checksum covers every byte before it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace distri::channel::ucx {

inline constexpr size_t kMaxWorkerAddressBytes = 64 * 1024;

std::string EncodeAddressRecord(int rank, int world_size, std::string_view worker_address);

// Checks everything and returns the worker address. Errors (ParseError / InvalidArgument)
// name the rank whose record is bad and what is wrong with it.
Result<std::string> DecodeAddressRecord(std::string_view record, int expected_rank,
                                        int expected_world_size);

}  // namespace distri::channel::ucx
