// Typed identifiers for jobs, nodes, actors and gangs.
//
// An id is 16 random bytes, printed as 32 lowercase hex digits. Types differ per kind (JobId,
// NodeId, ...) so that a NodeId cannot be passed where a JobId is expected. Ids parsed from the
// network or the command line are validated (ParseHex returns an error naming the bad input).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "runtime/common/status.h"

namespace distri {

namespace internal {
std::array<uint8_t, 16> RandomIdBytes();
std::string IdToHex(const std::array<uint8_t, 16>& bytes);
Status IdFromHex(std::string_view kind, std::string_view hex, std::array<uint8_t, 16>* out);
}  // namespace internal

template <typename Tag>
class Id {
 public:
  static constexpr size_t kSize = 16;
  Id() = default;  // the nil id (all zero)

  static Id Random() {
    Id id;
    id.bytes_ = internal::RandomIdBytes();
    return id;
  }
  static Result<Id> ParseHex(std::string_view hex) {
    Id id;
    DISTRI_RETURN_IF_ERROR(internal::IdFromHex(Tag::kName, hex, &id.bytes_));
    return id;
  }
  static Id FromBytes(const std::array<uint8_t, 16>& b) {
    Id id;
    id.bytes_ = b;
    return id;
  }

  bool IsNil() const {
    for (uint8_t b : bytes_) if (b != 0) return false;
    return true;
  }
  std::string Hex() const { return internal::IdToHex(bytes_); }
  // The first 8 hex digits: enough for logs and tables.
  std::string Short() const { return Hex().substr(0, 8); }
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  auto operator<=>(const Id&) const = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

struct JobIdTag { static constexpr const char* kName = "job id"; };
struct NodeIdTag { static constexpr const char* kName = "node id"; };
struct ActorIdTag { static constexpr const char* kName = "actor id"; };
struct GangIdTag { static constexpr const char* kName = "gang id"; };

using JobId = Id<JobIdTag>;
using NodeId = Id<NodeIdTag>;
using ActorId = Id<ActorIdTag>;
using GangId = Id<GangIdTag>;

}  // namespace distri

template <typename Tag>
struct std::hash<distri::Id<Tag>> {
  size_t operator()(const distri::Id<Tag>& id) const noexcept {
    size_t h = 0;
    for (uint8_t b : id.bytes()) h = h * 131 + b;
    return h;
  }
};
