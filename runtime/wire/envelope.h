// The versioned envelope around every control-plane message.
//
// Layout of one envelope (one ZeroMQ frame):
//
//   offset 0  4 bytes   magic "DSTW"
//   offset 4  1 byte    protocol major version (kProtocolVersionMajor)
//   offset 5  1 byte    protocol minor version
//   offset 6  msgpack   header array [type (uint), request id (uint64), sender id (str), ...]
//             ...       payload: one msgpack map, the message (see messages.h), to the end
//
// The version bytes sit before any msgpack so that a receiver can reject another major
// version even if a later major changes everything after them. Header elements after the
// third are reserved for later minor versions and ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/common/status.h"
#include "runtime/wire/message_type.h"

namespace distri::wire {

inline constexpr char kEnvelopeMagic[4] = {'D', 'S', 'T', 'W'};
inline constexpr size_t kEnvelopePrefixBytes = 6;  // magic + major + minor

struct Envelope {
  // Version of the peer that encoded it (DecodeEnvelope fills both in: receivers learn the
  // peer's minor version here, docs/runtime-design.md "Peers of older minor versions").
  // EncodeEnvelope writes this build's major version and `version_minor` (see there).
  uint8_t version_major = kProtocolVersionMajor;
  uint8_t version_minor = kProtocolVersionMinor;
  MessageType type = MessageType::kError;
  // Chosen by the requester; a reply carries the id of its request. 0 means "not a reply to
  // anything" (events such as Heartbeat, TaskProgress).
  uint64_t request_id = 0;
  // Who sent it, for logs and replies ("node:3fa2...", "client:cli"). Not authenticated by
  // itself: the transport's authenticated peer key (RouterSocket::Received::peer_key) is.
  std::string sender_id;
  // The message, msgpack-encoded (EncodePayload in messages.h). Opaque at this layer.
  std::string payload;

  bool operator==(const Envelope&) const = default;
};

// Serializes `envelope`. Fails (InvalidArgument) when the sender id or the whole envelope is
// over its limit (limits.h). The version bytes written are this build's major version and
// `envelope.version_minor`, which is this build's minor version unless the caller lowered it
// (MakeEnvelope and the sockets' Send never do): a lower one is how tests act as a peer of an
// older build. A minor version above this build's is refused (InvalidArgument): a build
// cannot speak what it does not know.
Result<std::string> EncodeEnvelope(const Envelope& envelope);

// Parses untrusted bytes. Never throws, never allocates more than a small multiple of
// `bytes.size()`. Errors (ParseError unless noted) name what was wrong:
//   envelope larger than kMaxEnvelopeBytes (InvalidArgument), shorter than the prefix,
//   wrong magic, unsupported major version (FailedPrecondition), header not a msgpack array
//   of at least 3 elements, a header element of the wrong type, unknown message type
//   (InvalidArgument), sender id too long, empty payload.
// The payload is not decoded here (DecodeMessage / Open<M> do it).
Result<Envelope> DecodeEnvelope(std::string_view bytes);

}  // namespace distri::wire
