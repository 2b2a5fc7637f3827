#include "runtime/channel/validate.h"

#include <cstdint>
#include <limits>
#include <string>

namespace distri::channel {
namespace {

std::string Prefix(std::string_view op) { return std::string(op) + ": "; }

std::string Describe(std::string_view name, const ConstBuffer& b) {
  return std::string(name) + " (" + std::to_string(b.count) + " x " + DTypeName(b.dtype) +
         " on " + b.device.ToString() + ")";
}

Status CheckSameKind(std::string_view op, const ConstBuffer& send, const ConstBuffer& recv) {
  if (send.dtype != recv.dtype) {
    return Status::InvalidArgument(Prefix(op) + "send is " + DTypeName(send.dtype) +
                                   " but recv is " + DTypeName(recv.dtype));
  }
  if (send.device != recv.device) {
    return Status::InvalidArgument(Prefix(op) + "send is on " + send.device.ToString() +
                                   " but recv is on " + recv.device.ToString());
  }
  return Status::Ok();
}

}  // namespace

bool Overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a);
  const auto pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

Status CheckBuffer(std::string_view op, std::string_view name, const ConstBuffer& b) {
  if (!IsValidDType(b.dtype)) {
    return Status::InvalidArgument(Prefix(op) + std::string(name) + " has unknown dtype value " +
                                   std::to_string(static_cast<int32_t>(b.dtype)) +
                                   " (expected f32, f16, bf16, i32, i64 or u8)");
  }
  if (b.device.kind != DeviceKind::kCpu && b.device.kind != DeviceKind::kCuda) {
    return Status::InvalidArgument(Prefix(op) + std::string(name) +
                                   " has unknown device kind value " +
                                   std::to_string(static_cast<int32_t>(b.device.kind)));
  }
  if (b.device.is_cuda() && b.device.index < 0) {
    return Status::InvalidArgument(Prefix(op) + std::string(name) + " is on CUDA device " +
                                   std::to_string(b.device.index) + " (must be >= 0)");
  }
  if (b.count > std::numeric_limits<size_t>::max() / DTypeSize(b.dtype)) {
    return Status::InvalidArgument(Prefix(op) + Describe(name, b) + ": size in bytes overflows");
  }
  if (b.data == nullptr && b.count > 0) {
    return Status::InvalidArgument(Prefix(op) + std::string(name) + ".data is null but " +
                                   std::string(name) + ".count is " + std::to_string(b.count));
  }
  return Status::Ok();
}

Status CheckAllGather(int rank, int world_size, const ConstBuffer& send, const Buffer& recv) {
  constexpr std::string_view op = "all_gather";
  DISTRI_RETURN_IF_ERROR(CheckBuffer(op, "send", send));
  DISTRI_RETURN_IF_ERROR(CheckBuffer(op, "recv", recv));
  DISTRI_RETURN_IF_ERROR(CheckSameKind(op, send, recv));
  const auto world = static_cast<size_t>(world_size);
  if (send.count > std::numeric_limits<size_t>::max() / world ||
      recv.count != send.count * world) {
    return Status::InvalidArgument(Prefix(op) + "recv.count must be world_size (" +
                                   std::to_string(world_size) + ") * send.count (" +
                                   std::to_string(send.count) + "), got " +
                                   std::to_string(recv.count));
  }
  const char* slot = static_cast<const char*>(recv.data) + static_cast<size_t>(rank) * send.bytes();
  if (send.data != slot && Overlaps(send.data, send.bytes(), recv.data, recv.bytes())) {
    return Status::InvalidArgument(Prefix(op) +
                                   "send overlaps recv without being this rank's slot of recv "
                                   "(in place requires send.data == recv.data + rank * count)");
  }
  return Status::Ok();
}

Status CheckAllGatherV(int rank, int world_size, const ConstBuffer& send, const Buffer& recv,
                       std::span<const size_t> counts) {
  constexpr std::string_view op = "all_gather_v";
  DISTRI_RETURN_IF_ERROR(CheckBuffer(op, "send", send));
  DISTRI_RETURN_IF_ERROR(CheckBuffer(op, "recv", recv));
  DISTRI_RETURN_IF_ERROR(CheckSameKind(op, send, recv));
  if (counts.size() != static_cast<size_t>(world_size)) {
    return Status::InvalidArgument(Prefix(op) + "counts has " + std::to_string(counts.size()) +
                                   " entries, expected one per rank (" +
                                   std::to_string(world_size) + ")");
  }
  if (counts[static_cast<size_t>(rank)] != send.count) {
    return Status::InvalidArgument(Prefix(op) + "counts[" + std::to_string(rank) + "] is " +
                                   std::to_string(counts[static_cast<size_t>(rank)]) +
                                   " but this rank's send.count is " + std::to_string(send.count));
  }
  size_t total = 0, offset = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    if (counts[r] > std::numeric_limits<size_t>::max() - total) {
      return Status::InvalidArgument(Prefix(op) + "the sum of counts overflows");
    }
    if (r == static_cast<size_t>(rank)) offset = total;
    total += counts[r];
  }
  if (recv.count != total) {
    return Status::InvalidArgument(Prefix(op) + "recv.count must be the sum of counts (" +
                                   std::to_string(total) + "), got " + std::to_string(recv.count));
  }
  if (total > std::numeric_limits<size_t>::max() / DTypeSize(send.dtype)) {
    return Status::InvalidArgument(Prefix(op) + "recv size in bytes overflows");
  }
  const char* slot = static_cast<const char*>(recv.data) + offset * DTypeSize(send.dtype);
  if (send.data != slot && Overlaps(send.data, send.bytes(), recv.data, recv.bytes())) {
    return Status::InvalidArgument(Prefix(op) +
                                   "send overlaps recv without being this rank's slot of recv");
  }
  return Status::Ok();
}

Status CheckAllReduce(const ConstBuffer& send, const Buffer& recv, ReduceOp reduce) {
  constexpr std::string_view op = "all_reduce";
  if (reduce != ReduceOp::kSum) {
    return Status::InvalidArgument(Prefix(op) + "unsupported reduction " + ReduceOpName(reduce) +
                                   " (supported: sum)");
  }
  DISTRI_RETURN_IF_ERROR(CheckBuffer(op, "send", send));
  DISTRI_RETURN_IF_ERROR(CheckBuffer(op, "recv", recv));
  DISTRI_RETURN_IF_ERROR(CheckSameKind(op, send, recv));
  if (send.count != recv.count) {
    return Status::InvalidArgument(Prefix(op) + "send.count (" + std::to_string(send.count) +
                                   ") != recv.count (" + std::to_string(recv.count) + ")");
  }
  if (send.data != recv.data && Overlaps(send.data, send.bytes(), recv.data, recv.bytes())) {
    return Status::InvalidArgument(Prefix(op) +
                                   "send and recv overlap partially (in place requires "
                                   "send.data == recv.data)");
  }
  return Status::Ok();
}

Status CheckPeer(std::string_view op, int peer, int world_size) {
  if (peer < 0 || peer >= world_size) {
    return Status::InvalidArgument(Prefix(op) + "peer " + std::to_string(peer) +
                                   " is not a rank of this gang (world_size " +
                                   std::to_string(world_size) + ")");
  }
  return Status::Ok();
}

}  // namespace distri::channel
