// The envelope: magic, version, header, payload; each way of breaking it gets a named error.
#include "runtime/wire/envelope.h"

#include <gtest/gtest.h>

#include "runtime/wire/limits.h"
#include "runtime/wire/messages.h"
#include "tests/runtime/wire/sample_messages.h"
#include "tests/runtime/wire/wire_test_util.h"

namespace distri::wire {
namespace {

using namespace distri::wire::testing;

// "DSTW" + version + a hand-written header + payload.
std::string RawEnvelope(uint8_t major, uint8_t minor, const std::function<void(Packer&)>& header,
                        const std::string& payload) {
  std::string out = "DSTW";
  out.push_back(static_cast<char>(major));
  out.push_back(static_cast<char>(minor));
  return out + Pack(header) + payload;
}

std::string HeartbeatPayload() { return EncodePayload(SampleHeartbeat()).value(); }

TEST(WireEnvelope, LayoutIsMagicVersionHeaderPayload) {
  Envelope e;
  e.type = MessageType::kHeartbeat;
  e.request_id = 0x1122334455667788ull;
  e.sender_id = "node:ab";
  e.payload = HeartbeatPayload();
  const std::string bytes = EncodeEnvelope(e).value();
  EXPECT_EQ(bytes.substr(0, 4), "DSTW");
  EXPECT_EQ(bytes[4], kProtocolVersionMajor);
  EXPECT_EQ(bytes[5], kProtocolVersionMinor);
  EXPECT_EQ(bytes.substr(bytes.size() - e.payload.size()), e.payload);
  Result<Envelope> back = DecodeEnvelope(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);
}

TEST(WireEnvelope, NewerMinorVersionAndExtraHeaderElementsAreAccepted) {
  const std::string bytes = RawEnvelope(kProtocolVersionMajor, 9, [](auto& p) {
    p.pack_array(5);
    p.pack(3);  // Heartbeat
    p.pack(7);
    p.pack("node:x");
    p.pack("trace-id-added-in-1.9");
    p.pack_map(0);
  }, HeartbeatPayload());
  Result<Envelope> e = DecodeEnvelope(bytes);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->version_minor, 9);
  EXPECT_EQ(e->request_id, 7u);
  EXPECT_EQ(Open<Heartbeat>(*e).value(), SampleHeartbeat());
}

TEST(WireEnvelope, UnknownMajorVersionIsRejectedClearly) {
  std::string bytes = SampleEnvelopes()[0];
  bytes[4] = 2;
  bytes[5] = 3;
  EXPECT_ERROR(DecodeEnvelope(bytes).status(), kFailedPrecondition,
               "unsupported protocol version 2.3: this build speaks 1.x");
  bytes[4] = 0;
  EXPECT_ERROR(DecodeEnvelope(bytes).status(), kFailedPrecondition, "unsupported protocol version 0.3");
}

TEST(WireEnvelope, BrokenPrefixIsRejected) {
  EXPECT_ERROR(DecodeEnvelope("").status(), kParseError, "envelope of 0 bytes is shorter than its 6-byte prefix");
  EXPECT_ERROR(DecodeEnvelope("DSTW\x01").status(), kParseError, "shorter than its 6-byte prefix");
  EXPECT_ERROR(DecodeEnvelope("GET / HTTP/1.1\r\n").status(), kParseError,
               "not a distri envelope: magic bytes are 0x47455420, expected 0x44535457");
  const std::string prefix_only("DSTW\x01\x00", 6);
  EXPECT_ERROR(DecodeEnvelope(prefix_only).status(), kParseError, "envelope header: empty");
}

TEST(WireEnvelope, BrokenHeadersAreRejected) {
  const std::string payload = HeartbeatPayload();
  auto decode = [&](const std::function<void(Packer&)>& header) {
    return DecodeEnvelope(RawEnvelope(1, 0, header, payload)).status();
  };
  EXPECT_ERROR(decode([](auto& p) { p.pack_map(0); }), kParseError,
               "envelope header: expected an array of at least 3 elements, found a map");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(2);
    p.pack(3);
    p.pack(1);
  }), kParseError, "found an array of 2");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(3);
    p.pack(999);
    p.pack(1);
    p.pack("s");
  }), kInvalidArgument, "envelope header: unknown message type 999");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(3);
    p.pack(0);
    p.pack(1);
    p.pack("s");
  }), kInvalidArgument, "unknown message type 0");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(3);
    p.pack("Heartbeat");
    p.pack(1);
    p.pack("s");
  }), kInvalidArgument, "message type: expected an unsigned integer, found str");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(3);
    p.pack(3);
    p.pack(-1);
    p.pack("s");
  }), kInvalidArgument, "request id: expected an unsigned integer, found negative integer");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(3);
    p.pack(3);
    p.pack(1);
    p.pack(42);
  }), kInvalidArgument, "sender id: expected str, found positive integer");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(3);
    p.pack(3);
    p.pack(1);
    p.pack(std::string(kMaxSenderIdBytes + 1, 's'));
  }), kInvalidArgument, "str of 257 bytes exceeds the limit of 256");
  EXPECT_ERROR(decode([](auto& p) {
    p.pack_array(100);
  }), kInvalidArgument, "array of 100 elements exceeds the limit of 16");
  // A valid header with nothing after it.
  EXPECT_ERROR(DecodeEnvelope(RawEnvelope(1, 0, [](auto& p) {
                 p.pack_array(3);
                 p.pack(3);
                 p.pack(1);
                 p.pack("s");
               }, "")).status(),
               kParseError, "envelope (Heartbeat) has no payload");
}

TEST(WireEnvelope, OversizedEnvelopeIsRejectedBeforeParsing) {
  std::string big = SampleEnvelopes()[2];
  big.resize(kMaxEnvelopeBytes + 1, '\0');
  EXPECT_ERROR(DecodeEnvelope(big).status(), kInvalidArgument,
               "envelope of 67108865 bytes exceeds the limit of 67108864");
}

TEST(WireEnvelope, PayloadOfAnotherTypeIsRejectedByDecodeMessage) {
  // A Heartbeat header around a SubmitJob payload.
  Envelope e = MakeEnvelope(SampleSubmitJob(), 4, "client").value();
  e.type = MessageType::kHeartbeat;
  Result<AnyMessage> m = DecodeMessage(e);
  EXPECT_ERROR(m.status(), kInvalidArgument, "Heartbeat: missing required field 'sequence'");
}

}  // namespace
}  // namespace distri::wire
