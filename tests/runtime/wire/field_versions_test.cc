// The minor versions of JobSpec's fields (runtime/wire/field_versions.h) and envelopes that
// announce an older minor version (how tests act as peers of older builds).
#include "runtime/wire/field_versions.h"

#include <gtest/gtest.h>

#include <set>

#include "runtime/wire/messages.h"
#include "tests/runtime/wire/sample_messages.h"
#include "tests/runtime/wire/wire_test_util.h"

namespace distri::wire {
namespace {

using namespace distri::wire::testing;

TEST(WireFieldVersions, EachVersionedFieldIsNamedWithItsMinorVersion) {
  EXPECT_TRUE(VersionedFieldsUsed(MinimalJobSpec()).empty());
  EXPECT_EQ(MinorVersionNeeded(MinimalJobSpec()), 0);
  const std::vector<VersionedField> all = {
      {"sync_mode", 2}, {"warmup_steps", 2}, {"preview_every", 3}, {"guidance_rescale", 4}};
  EXPECT_EQ(VersionedFieldsUsed(SampleJobSpec()), all);
  EXPECT_EQ(MinorVersionNeeded(SampleJobSpec()), 4);
  JobSpec s = MinimalJobSpec();
  s.warmup_steps = 0;  // set, even to 0: an older peer would use its own default
  EXPECT_EQ(MinorVersionNeeded(s), 2);
  s.preview_every = 1;
  EXPECT_EQ(MinorVersionNeeded(s), 3);
  EXPECT_EQ(FieldsNewerThan(SampleJobSpec(), 2), "preview_every (since 1.3), guidance_rescale (since 1.4)");
  EXPECT_EQ(FieldsNewerThan(SampleJobSpec(), 4), "");
  EXPECT_EQ(FieldsNewerThan(SampleJobSpec(), kProtocolVersionMinor), "");
}

TEST(WireFieldVersions, EveryJobSpecFieldAfterMinorOneIsListed) {
  // The keys of a spec with every field set, less the fields of minor version 1, are exactly
  // the versioned ones: a field added to JobSpec (and to SampleJobSpec) without a minor
  // version in field_versions.cc fails here.
  const std::string payload = EncodePayload(SubmitJob{SampleJobSpec()}).value();
  msgpack::object_handle h = msgpack::unpack(payload.data(), payload.size());
  ASSERT_EQ(h.get().type, msgpack::type::MAP);
  const std::set<std::string> minor1 = {"prompt", "negative_prompt", "width", "height", "steps",  "guidance",
                                        "sampler", "seed",           "gpus",  "priority", "output_format",
                                        "model"};
  std::set<std::string> newer;
  for (const msgpack::object_kv& kv : h.get().via.map) {
    std::string key = kv.key.as<std::string>();
    if (!minor1.contains(key)) newer.insert(key);
  }
  std::set<std::string> listed;
  for (const VersionedField& f : VersionedFieldsUsed(SampleJobSpec())) {
    listed.insert(std::string(f.name));
    EXPECT_GE(f.minor, 2);
    EXPECT_LE(f.minor, kProtocolVersionMinor);
  }
  EXPECT_EQ(newer, listed);
}

TEST(WireFieldVersions, APeerTooOldIsNamedWithItsVersion) {
  EXPECT_TRUE(CheckPeerKnowsFields(MinimalJobSpec(), 0, "the head").ok());
  JobSpec s = MinimalJobSpec();
  s.guidance_rescale = 0.7;
  EXPECT_TRUE(CheckPeerKnowsFields(s, 4, "the head").ok());
  EXPECT_ERROR(CheckPeerKnowsFields(s, 3, "the head at tcp://h:1"), kFailedPrecondition,
               "guidance_rescale (since 1.4) is unknown to the head at tcp://h:1, which speaks protocol 1.3: it "
               "would drop it and render another image; upgrade it");
  s.sync_mode = "no_sync";
  EXPECT_ERROR(CheckPeerKnowsFields(s, 1, "the head"), kFailedPrecondition,
               "sync_mode (since 1.2), guidance_rescale (since 1.4) are unknown to the head, which speaks protocol "
               "1.1: it would drop them");
}

TEST(WireFieldVersions, AnEnvelopeMayAnnounceAnOlderMinorVersionNeverANewerOne) {
  Envelope e = MakeEnvelope(SampleHeartbeat(), 1, "actor:old").value();
  EXPECT_EQ(e.version_minor, kProtocolVersionMinor);  // what every Send announces
  e.version_minor = 3;
  const std::string bytes = EncodeEnvelope(e).value();
  EXPECT_EQ(bytes[5], 3);
  Result<Envelope> back = DecodeEnvelope(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->version_minor, 3);
  EXPECT_EQ(back->version_major, kProtocolVersionMajor);
  e.version_minor = kProtocolVersionMinor + 1;
  EXPECT_ERROR(EncodeEnvelope(e).status(), kInvalidArgument, "announcing protocol minor version");
}

}  // namespace
}  // namespace distri::wire
