#include "runtime/wire/envelope.h"

#include <cstdio>
#include <cstring>

#include "runtime/wire/limits.h"
#include "runtime/wire/msgpack_io.h"

namespace distri::wire {
namespace {

// The header is three scalars; the room beyond them is for elements later minor versions
// may append (which this version ignores), not for anything large.
const internal::ParseLimits& HeaderLimits() {
  static const internal::ParseLimits limits{
      /*max_array=*/16, /*max_map=*/16, /*max_str=*/kMaxSenderIdBytes, /*max_bin=*/256,
      /*max_ext=*/256, /*max_depth=*/4, /*max_objects=*/256};
  return limits;
}

std::string HexBytes(std::string_view b) {
  std::string out;
  char buf[4];
  for (unsigned char c : b) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

}  // namespace

Result<std::string> EncodeEnvelope(const Envelope& e) {
  if (e.sender_id.size() > kMaxSenderIdBytes) {
    return Status::InvalidArgument("envelope sender id of " + std::to_string(e.sender_id.size()) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxSenderIdBytes));
  }
  if (!internal::IsValidUtf8(e.sender_id)) return Status::InvalidArgument("envelope sender id is not valid UTF-8");
  if (!MessageTypeFromValue(static_cast<uint16_t>(e.type))) {
    return Status::InvalidArgument("envelope of unknown message type " +
                                   std::to_string(static_cast<uint16_t>(e.type)));
  }
  if (e.payload.empty()) return Status::InvalidArgument("envelope without payload");
  if (e.version_minor > kProtocolVersionMinor) {
    return Status::InvalidArgument("envelope announcing protocol minor version " + std::to_string(e.version_minor) +
                                   ": this build speaks " + std::to_string(kProtocolVersionMajor) + "." +
                                   std::to_string(kProtocolVersionMinor));
  }
  std::string out;
  out.reserve(kEnvelopePrefixBytes + 32 + e.sender_id.size() + e.payload.size());
  out.append(kEnvelopeMagic, sizeof(kEnvelopeMagic));
  out.push_back(static_cast<char>(kProtocolVersionMajor));
  out.push_back(static_cast<char>(e.version_minor));
  internal::StringSink sink{&out};
  msgpack::packer<internal::StringSink> pk(sink);
  pk.pack_array(3);
  pk.pack_uint16(static_cast<uint16_t>(e.type));
  pk.pack_uint64(e.request_id);
  pk.pack_str(static_cast<uint32_t>(e.sender_id.size()));
  pk.pack_str_body(e.sender_id.data(), static_cast<uint32_t>(e.sender_id.size()));
  out += e.payload;
  if (out.size() > kMaxEnvelopeBytes) {
    return Status::InvalidArgument("envelope of " + std::to_string(out.size()) + " bytes (" +
                                   std::string(MessageTypeName(e.type)) + ") exceeds the limit of " +
                                   std::to_string(kMaxEnvelopeBytes));
  }
  return out;
}

Result<Envelope> DecodeEnvelope(std::string_view bytes) {
  if (bytes.size() > kMaxEnvelopeBytes) {
    return Status::InvalidArgument("envelope of " + std::to_string(bytes.size()) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxEnvelopeBytes));
  }
  if (bytes.size() < kEnvelopePrefixBytes) {
    return Status::ParseError("envelope of " + std::to_string(bytes.size()) + " bytes is shorter than its " +
                              std::to_string(kEnvelopePrefixBytes) + "-byte prefix");
  }
  if (std::memcmp(bytes.data(), kEnvelopeMagic, sizeof(kEnvelopeMagic)) != 0) {
    return Status::ParseError("not a distri envelope: magic bytes are 0x" + HexBytes(bytes.substr(0, 4)) +
                              ", expected 0x" + HexBytes(std::string_view(kEnvelopeMagic, 4)) + " (\"DSTW\")");
  }
  Envelope e;
  e.version_major = static_cast<uint8_t>(bytes[4]);
  e.version_minor = static_cast<uint8_t>(bytes[5]);
  if (e.version_major != kProtocolVersionMajor) {
    return Status::FailedPrecondition(
        "unsupported protocol version " + std::to_string(e.version_major) + "." +
        std::to_string(e.version_minor) + ": this build speaks " + std::to_string(kProtocolVersionMajor) +
        ".x (upgrade the older side)");
  }

  std::string_view rest = bytes.substr(kEnvelopePrefixBytes);
  msgpack::object_handle handle;
  size_t header_bytes = 0;
  DISTRI_RETURN_IF_ERROR(internal::ParseUntrusted(rest, HeaderLimits(), "envelope header", &handle, &header_bytes));
  const msgpack::object& h = handle.get();
  if (h.type != msgpack::type::ARRAY || h.via.array.size < 3) {
    return Status::ParseError("envelope header: expected an array of at least 3 elements, found " +
                              (h.type == msgpack::type::ARRAY
                                   ? "an array of " + std::to_string(h.via.array.size)
                                   : std::string("a ") + std::string(internal::ObjectTypeName(h.type))));
  }
  const msgpack::object* f = h.via.array.ptr;
  if (f[0].type != msgpack::type::POSITIVE_INTEGER) {
    return Status::InvalidArgument("envelope header: message type: expected an unsigned integer, found " +
                                   std::string(internal::ObjectTypeName(f[0].type)));
  }
  const auto type = MessageTypeFromValue(f[0].via.u64);
  if (!type) return Status::InvalidArgument("envelope header: unknown message type " + std::to_string(f[0].via.u64));
  e.type = *type;
  if (f[1].type != msgpack::type::POSITIVE_INTEGER) {
    return Status::InvalidArgument("envelope header: request id: expected an unsigned integer, found " +
                                   std::string(internal::ObjectTypeName(f[1].type)));
  }
  e.request_id = f[1].via.u64;
  if (f[2].type != msgpack::type::STR) {
    return Status::InvalidArgument("envelope header: sender id: expected str, found " +
                                   std::string(internal::ObjectTypeName(f[2].type)));
  }
  std::string_view sender(f[2].via.str.ptr, f[2].via.str.size);
  if (!internal::IsValidUtf8(sender)) return Status::InvalidArgument("envelope header: sender id is not valid UTF-8");
  e.sender_id.assign(sender);

  std::string_view payload = rest.substr(header_bytes);
  if (payload.empty()) {
    return Status::ParseError("envelope (" + std::string(MessageTypeName(e.type)) + ") has no payload");
  }
  e.payload.assign(payload);
  return e;
}

}  // namespace distri::wire
