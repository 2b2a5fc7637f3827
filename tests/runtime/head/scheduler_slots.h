// Actor slots and job specs for the scheduler tests (gang_scheduler_test.cc,
// version_gate_test.cc): stable ids from (node, GPU), so a test can name the actors it expects
// in a gang.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "runtime/head/gang_scheduler.h"

namespace distri::head::testing {

inline NodeId Node(uint8_t i) {
  std::array<uint8_t, 16> b{};
  b[0] = i;
  return NodeId::FromBytes(b);
}

inline ActorSlot Slot(uint8_t node, int gpu, bool idle = true, std::string model = "sdxl") {
  std::array<uint8_t, 16> b{};
  b[0] = node;
  b[1] = static_cast<uint8_t>(gpu + 1);
  return {ActorId::FromBytes(b), Node(node), gpu, "host" + std::to_string(node), std::move(model), idle,
          std::nullopt};
}

// The same actor announcing protocol 1.<minor>.
inline ActorSlot SlotOfMinor(uint8_t node, int gpu, uint8_t minor, std::string model = "sdxl", bool idle = true) {
  ActorSlot s = Slot(node, gpu, idle, std::move(model));
  s.wire_minor = minor;
  return s;
}

// A job of `gpus` GPUs (0: auto) at side x side px, 10 Euler steps.
inline wire::JobSpec Spec(uint32_t gpus, uint32_t side = 1024, std::string model = "") {
  wire::JobSpec s;
  s.prompt = std::string("p");  // (a const char* assignment trips a GCC 12 -Wrestrict false positive)
  s.width = side;
  s.height = side;
  s.steps = 10;
  s.guidance = 5;
  s.sampler = "euler";
  s.gpus = gpus;
  s.model = std::move(model);
  return s;
}

}  // namespace distri::head::testing
