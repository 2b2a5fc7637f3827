// The channel conformance suite (in the spirit of ggml's test-backend-ops): every case runs on
// every rank of a gang of every backend, and checks results against values computed on the
// host (the same arithmetic the local backend uses, so every backend is compared with it).
//
// A case is a function run concurrently by every rank with that rank's channel; it uses gtest
// assertions. Cases never leave collectives unmatched when they pass, so the "shared" cases
// can run back to back on one gang; the "destructive" ones break their gang and get a fresh one.
//
// Cases use host buffers. A backend for device memory (NCCL) runs them through
// DeviceBufferChannel (device_buffers.h), which mirrors every host buffer in CUDA memory
// around the real channel's calls; Traits says which guarantees beyond the common contract
// (channel.h) the backend gives, and cases check the weaker ones where it gives less.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/channel/channel.h"

namespace distri::channel::testing {

// Defaults: what the local and UCX backends guarantee.
struct Traits {
  bool tag_matching = true;    // a Recv matches by tag (false: by issue order per pair only)
  bool p2p_size_check = true;  // a Send/Recv size mismatch fails the Recv with InvalidArgument
  bool rank_order_sum = true;  // AllReduce equals the host's rank-order sum bit for bit (false:
                               // equal on every rank and close to it)
};

// The NCCL backend: matching by issue order, no size check, NCCL's summation order.
inline Traits NcclTraits() { return Traits{false, false, false}; }

struct SharedCase {
  const char* name;
  int min_world;  // skipped on smaller gangs
  void (*run)(Channel& channel, const Traits& traits);
};

// Destructive cases own the channel (they may destroy it) and set their own options.
struct DestructiveCase {
  const char* name;
  int min_world;
  std::chrono::milliseconds op_timeout;
  void (*run)(std::unique_ptr<Channel>& channel);
};

const std::vector<SharedCase>& SharedCases();
const std::vector<DestructiveCase>& DestructiveCases();
// Their names, for parameterised multi-process tests.
std::vector<std::string> DestructiveCaseNames();
const SharedCase* FindSharedCase(const std::string& name);
const DestructiveCase* FindDestructiveCase(const std::string& name);

// Runs every shared case on `channel`, with a barrier between cases.
void RunAllSharedCases(Channel& channel, const Traits& traits = {});

}  // namespace distri::channel::testing
