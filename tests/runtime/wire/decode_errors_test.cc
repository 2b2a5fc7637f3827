// Untrusted payloads: every kind of bad field is rejected with a Status that names the message,
// the field and what was wrong; unknown fields are tolerated.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <optional>

#include "runtime/wire/messages.h"
#include "tests/runtime/wire/sample_messages.h"
#include "tests/runtime/wire/wire_test_util.h"

namespace distri::wire {
namespace {

using namespace distri::wire::testing;

using ValueWriter = std::function<void(Packer&)>;

// `payload` (a msgpack map) with field `key` replaced by `value`, removed (nullopt), or added
// at the end when it was not there.
std::string WithField(const std::string& payload, const std::string& key, std::optional<ValueWriter> value) {
  msgpack::object_handle h = msgpack::unpack(payload.data(), payload.size());
  const msgpack::object_map& m = h.get().via.map;
  bool found = false;
  uint32_t n = 0;
  for (uint32_t i = 0; i < m.size; ++i) {
    const bool match = m.ptr[i].key.as<std::string>() == key;
    found |= match;
    n += (!match || value) ? 1 : 0;
  }
  if (!found && value) ++n;
  return Pack([&](Packer& pk) {
    pk.pack_map(n);
    for (uint32_t i = 0; i < m.size; ++i) {
      if (m.ptr[i].key.as<std::string>() == key) {
        if (!value) continue;
        pk.pack(key);
        (*value)(pk);
      } else {
        pk.pack(m.ptr[i].key);
        pk.pack(m.ptr[i].val);
      }
    }
    if (!found && value) {
      pk.pack(key);
      (*value)(pk);
    }
  });
}

template <typename M>
Status Decode(const std::string& payload) {
  M m;
  return DecodePayload(payload, &m);
}

std::string SubmitPayload() { return EncodePayload(SampleSubmitJob()).value(); }

TEST(WireDecodeErrors, MissingRequiredFieldIsNamed) {
  EXPECT_ERROR(Decode<SubmitJob>(WithField(SubmitPayload(), "width", std::nullopt)), kInvalidArgument,
               "SubmitJob: missing required field 'width'");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(SubmitPayload(), "prompt", std::nullopt)), kInvalidArgument,
               "SubmitJob: missing required field 'prompt'");
  // nil counts as absent: fine for optional fields, an error for required ones.
  EXPECT_ERROR(Decode<SubmitJob>(WithField(SubmitPayload(), "sampler", [](Packer& p) { p.pack_nil(); })),
               kInvalidArgument, "missing required field 'sampler'");
  SubmitJob m;
  ASSERT_TRUE(DecodePayload(WithField(SubmitPayload(), "seed", [](Packer& p) { p.pack_nil(); }), &m).ok());
  EXPECT_FALSE(m.spec.seed.has_value());
  // The DistriFusion options are optional (minor version 2): a peer of minor 1 omits them.
  ASSERT_TRUE(DecodePayload(WithField(WithField(SubmitPayload(), "warmup_steps", std::nullopt), "sync_mode",
                                      std::nullopt),
                            &m)
                  .ok());
  EXPECT_FALSE(m.spec.warmup_steps.has_value());
  EXPECT_EQ(m.spec.sync_mode, "");
  ASSERT_TRUE(DecodePayload(WithField(SubmitPayload(), "warmup_steps", [](Packer& p) { p.pack_nil(); }), &m).ok());
  EXPECT_FALSE(m.spec.warmup_steps.has_value());
  std::string node = EncodePayload(SampleRegisterNode()).value();
  EXPECT_ERROR(Decode<RegisterNode>(WithField(node, "resources", [](Packer& p) {
                 p.pack_map(1);
                 p.pack("hostname");
                 p.pack("h");
               })),
               kInvalidArgument, "RegisterNode.resources: missing required field 'gpus'");
}

TEST(WireDecodeErrors, WrongTypesAreNamed) {
  const std::string sj = SubmitPayload();
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "width", [](Packer& p) { p.pack("512"); })), kInvalidArgument,
               "SubmitJob.width: expected an integer, found str");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "width", [](Packer& p) { p.pack(512.5); })), kInvalidArgument,
               "SubmitJob.width: expected an integer, found float64");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "prompt", [](Packer& p) { p.pack_bin(3); p.pack_bin_body("abc", 3); })),
               kInvalidArgument, "SubmitJob.prompt: expected str, found bin");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "guidance", [](Packer& p) { p.pack(true); })), kInvalidArgument,
               "SubmitJob.guidance: expected a number, found bool");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "seed", [](Packer& p) { p.pack(int64_t{-1}); })), kInvalidArgument,
               "SubmitJob.seed: expected an unsigned integer, found negative integer");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "warmup_steps", [](Packer& p) { p.pack("4"); })), kInvalidArgument,
               "SubmitJob.warmup_steps: expected an integer, found str");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "sync_mode", [](Packer& p) { p.pack(3); })), kInvalidArgument,
               "SubmitJob.sync_mode: expected str");
  const std::string jr = EncodePayload(SampleJobResult()).value();
  EXPECT_ERROR(Decode<JobResult>(WithField(jr, "image", [](Packer& p) { p.pack("png as str"); })), kInvalidArgument,
               "JobResult.image: expected bin, found str");
  EXPECT_ERROR(Decode<JobResult>(WithField(jr, "gang", [](Packer& p) { p.pack_map(0); })), kInvalidArgument,
               "JobResult.gang: expected an array, found map");
  EXPECT_ERROR(Decode<JobResult>(WithField(jr, "timings", [](Packer& p) { p.pack_array(0); })), kInvalidArgument,
               "JobResult.timings: expected a map, found array");
  const std::string rn = EncodePayload(SampleRegisterNode()).value();
  EXPECT_ERROR(Decode<RegisterNode>(WithField(rn, "node_id", [](Packer& p) { p.pack("node-1"); })),
               kInvalidArgument, "RegisterNode.node_id: expected bin (16 bytes), found str");
  // Integers are accepted where a number is expected (dynamic-language encoders write 7.0 as 7).
  SubmitJob m;
  ASSERT_TRUE(DecodePayload(WithField(sj, "guidance", [](Packer& p) { p.pack(7); }), &m).ok());
  EXPECT_EQ(m.spec.guidance, 7.0);
}

TEST(WireDecodeErrors, OutOfRangeValuesAreNamed) {
  const std::string sj = SubmitPayload();
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "width", [](Packer& p) { p.pack(0); })), kInvalidArgument,
               "SubmitJob.width: value 0 outside [1, 16384]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "height", [](Packer& p) { p.pack(uint64_t{1} << 40); })),
               kInvalidArgument, "SubmitJob.height: value 1099511627776 outside [1, 16384]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "steps", [](Packer& p) { p.pack(-5); })), kInvalidArgument,
               "SubmitJob.steps: value -5 outside [1, 10000]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "warmup_steps", [](Packer& p) { p.pack(-1); })), kInvalidArgument,
               "SubmitJob.warmup_steps: value -1 outside [0, 10000]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "priority", [](Packer& p) { p.pack(int64_t{1} << 31); })),
               kInvalidArgument, "SubmitJob.priority: value 2147483648 outside");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "guidance", [](Packer& p) { p.pack(std::numeric_limits<double>::infinity()); })),
               kInvalidArgument, "SubmitJob.guidance: expected a finite number");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "output_format", [](Packer& p) { p.pack(2); })), kInvalidArgument,
               "SubmitJob.output_format: value 2 outside [0, 1]");
  const std::string js = EncodePayload(SampleJobStatus()).value();
  EXPECT_ERROR(Decode<JobStatus>(WithField(js, "state", [](Packer& p) { p.pack(6); })), kInvalidArgument,
               "JobStatus.state: value 6 outside [0, 5]");
  EXPECT_ERROR(Decode<JobStatus>(WithField(js, "step", [](Packer& p) { p.pack(51); })), kInvalidArgument,
               "JobStatus: step 51 is past total_steps 50");
  EXPECT_ERROR(Decode<Error>(WithField(EncodePayload(SampleError()).value(), "code", [](Packer& p) { p.pack(0); })),
               kInvalidArgument, "Error.code: value 0 outside");
}

TEST(WireDecodeErrors, SizeLimitsAreEnforced) {
  const std::string sj = SubmitPayload();
  const std::string huge(kMaxPromptBytes + 1, 'a');
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "prompt", [&](Packer& p) { p.pack(huge); })), kInvalidArgument,
               "str of 1048577 bytes exceeds the limit of 1048576");
  const std::string long_name(kMaxNameBytes + 1, 's');
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "sampler", [&](Packer& p) { p.pack(long_name); })),
               kInvalidArgument, "SubmitJob.sampler: 257 bytes, expected 1..256");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "sampler", [&](Packer& p) { p.pack(""); })), kInvalidArgument,
               "SubmitJob.sampler: 0 bytes, expected 1..256");
  const std::string at = EncodePayload(SampleAssignTask()).value();
  const std::string blob(kMaxRendezvousBytes + 1, 'r');
  EXPECT_ERROR(Decode<AssignTask>(WithField(at, "rendezvous", [&](Packer& p) {
                 p.pack_bin(static_cast<uint32_t>(blob.size()));
                 p.pack_bin_body(blob.data(), static_cast<uint32_t>(blob.size()));
               })),
               kInvalidArgument, "AssignTask.rendezvous: 1048577 bytes, limit 1048576");
  const std::string rn = EncodePayload(SampleRegisterNode()).value();
  EXPECT_ERROR(Decode<RegisterNode>(WithField(rn, "resources", [](Packer& p) {
                 p.pack_map(2);
                 p.pack("hostname");
                 p.pack("h");
                 p.pack("gpus");
                 p.pack_array(257);
                 for (int i = 0; i < 257; ++i) p.pack_nil();
               })),
               kInvalidArgument, "RegisterNode.resources.gpus: 257 entries, limit 256");
  // An array larger than any field may be, even inside an unknown field: refused by the parser.
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "future", [](Packer& p) {
                 p.pack_array(1025);
                 for (int i = 0; i < 1025; ++i) p.pack(i);
               })),
               kInvalidArgument, "array of 1025 elements exceeds the limit of 1024");
}

TEST(WireDecodeErrors, NestedErrorsNameThePath) {
  AssignTask a = SampleAssignTask();
  std::string at = EncodePayload(a).value();
  // gang[2].node_id of 15 bytes.
  std::vector<GangMember> gang = a.gang;
  std::string bad = WithField(at, "gang", [&](Packer& p) {
    p.pack_array(static_cast<uint32_t>(gang.size()));
    for (size_t i = 0; i < gang.size(); ++i) {
      p.pack_map(4);
      p.pack("rank");
      p.pack(static_cast<uint32_t>(i));
      p.pack("node_id");
      const uint32_t n = i == 2 ? 15 : 16;
      p.pack_bin(n);
      p.pack_bin_body(reinterpret_cast<const char*>(gang[i].node_id.bytes().data()), n);
      p.pack("actor_id");
      p.pack_bin(16);
      p.pack_bin_body(reinterpret_cast<const char*>(gang[i].actor_id.bytes().data()), 16);
      p.pack("gpu_index");
      p.pack(gang[i].gpu_index);
    }
  });
  EXPECT_ERROR(Decode<AssignTask>(bad), kInvalidArgument,
               "AssignTask.gang[2].node_id: expected a 16-byte node id, found 15 bytes");
  EXPECT_ERROR(Decode<AssignTask>(WithField(at, "job", [](Packer& p) {
                 p.pack_map(1);
                 p.pack("prompt");
                 p.pack(1);
               })),
               kInvalidArgument, "AssignTask.job.prompt: expected str, found positive integer");
}

TEST(WireDecodeErrors, GangInvariantsAreChecked) {
  AssignTask a = SampleAssignTask();
  const std::string at = EncodePayload(a).value();
  EXPECT_ERROR(Decode<AssignTask>(WithField(at, "rank", [](Packer& p) { p.pack(4); })), kInvalidArgument,
               "AssignTask.rank: 4 is not in a gang of 4");
  EXPECT_ERROR(Decode<AssignTask>(WithField(at, "gang", [](Packer& p) { p.pack_array(0); })), kInvalidArgument,
               "AssignTask.gang: empty");
  a.gang[1].rank = 3;
  a.gang[3].rank = 1;
  // The encoder refuses it too; craft the payload through a valid AssignTask's gang field.
  EXPECT_ERROR(EncodePayload(a).status(), kInvalidArgument, "AssignTask.gang[1].rank: expected 1");
}

TEST(WireDecodeErrors, MalformedReleaseGangIsRejected) {
  const std::string rg = EncodePayload(SampleReleaseGang()).value();
  ReleaseGang ok;
  ASSERT_TRUE(DecodePayload(rg, &ok).ok());
  EXPECT_EQ(ok, SampleReleaseGang());
  EXPECT_ERROR(Decode<ReleaseGang>(WithField(rg, "gang_id", std::nullopt)), kInvalidArgument,
               "ReleaseGang: missing required field 'gang_id'");
  EXPECT_ERROR(Decode<ReleaseGang>(WithField(rg, "gang_id", [](Packer& p) { p.pack(7); })), kInvalidArgument,
               "ReleaseGang.gang_id");
  EXPECT_ERROR(Decode<ReleaseGang>(WithField(rg, "gang_id", [](Packer& p) { p.pack("abc"); })), kInvalidArgument,
               "ReleaseGang.gang_id");
  // The nil gang id names no gang: refused by the decoder and by the encoder.
  EXPECT_ERROR(Decode<ReleaseGang>(WithField(rg, "gang_id", [](Packer& p) {
                 const std::string zeros(16, '\0');
                 p.pack_bin(16);
                 p.pack_bin_body(zeros.data(), 16);
               })),
               kInvalidArgument, "ReleaseGang.gang_id");
  EXPECT_ERROR(EncodePayload(ReleaseGang{}).status(), kInvalidArgument, "ReleaseGang.gang_id");
  EXPECT_ERROR(Decode<ReleaseGang>(Pack([](Packer& p) { p.pack(1); })), kInvalidArgument, "ReleaseGang");
  // Behind a valid envelope header, a broken payload is an error, never a crash.
  Envelope e = MakeEnvelope(SampleReleaseGang(), 9, "head").value();
  e.payload = e.payload.substr(0, e.payload.size() / 2);
  EXPECT_FALSE(DecodeMessage(e).ok());
}

// The latent preview fields (JobSpec.preview_every, GetJob.with_preview, JobStatus.preview
// and preview_step): optional, defaulted when absent (old peers), checked when present.
TEST(WireDecodeErrors, PreviewFieldsAreOptionalAndChecked) {
  const std::string sj = SubmitPayload();
  SubmitJob submit;
  ASSERT_TRUE(DecodePayload(WithField(sj, "preview_every", std::nullopt), &submit).ok());
  EXPECT_EQ(submit.spec.preview_every, 0u);
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "preview_every", [](Packer& p) { p.pack(10001); })),
               kInvalidArgument, "SubmitJob.preview_every: value 10001 outside [0, 10000]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "preview_every", [](Packer& p) { p.pack(true); })),
               kInvalidArgument, "SubmitJob.preview_every: expected an integer");

  const std::string gj = EncodePayload(SampleGetJob()).value();
  GetJob get;
  ASSERT_TRUE(DecodePayload(WithField(gj, "with_preview", std::nullopt), &get).ok());
  EXPECT_FALSE(get.with_preview);
  EXPECT_ERROR(Decode<GetJob>(WithField(gj, "with_preview", [](Packer& p) { p.pack(1); })), kInvalidArgument,
               "GetJob.with_preview: expected bool");

  const std::string js = EncodePayload(SampleJobStatus()).value();
  JobStatus st;
  ASSERT_TRUE(DecodePayload(WithField(WithField(js, "preview", std::nullopt), "preview_step", std::nullopt), &st).ok());
  EXPECT_TRUE(st.preview.empty());
  EXPECT_EQ(st.preview_step, 0u);
  EXPECT_ERROR(Decode<JobStatus>(WithField(js, "preview", [](Packer& p) { p.pack("png"); })), kInvalidArgument,
               "JobStatus.preview: expected bin");
  const std::string big(kMaxPreviewBytes + 1, 'p');
  EXPECT_ERROR(Decode<JobStatus>(WithField(js, "preview", [&](Packer& p) {
                 p.pack_bin(static_cast<uint32_t>(big.size()));
                 p.pack_bin_body(big.data(), static_cast<uint32_t>(big.size()));
               })),
               kInvalidArgument, "JobStatus.preview: 8388609 bytes, limit 8388608");
  EXPECT_ERROR(Decode<JobStatus>(WithField(js, "preview_step", [](Packer& p) { p.pack(51); })), kInvalidArgument,
               "JobStatus: preview_step 51 is past total_steps 50");
  JobStatus too_late = SampleJobStatus();
  too_late.preview_step = too_late.total_steps + 1;
  EXPECT_FALSE(EncodePayload(too_late).ok());
}

// JobSpec.guidance_rescale (minor version 4): round trip, 0 when absent (an older peer's
// message), a finite number in [0, 1] when present; the encoder refuses what the decoder would.
TEST(WireDecodeErrors, GuidanceRescaleIsOptionalAndChecked) {
  const std::string sj = SubmitPayload();
  SubmitJob submit;
  ASSERT_TRUE(DecodePayload(sj, &submit).ok());
  EXPECT_EQ(submit.spec.guidance_rescale, 0.7);
  ASSERT_TRUE(DecodePayload(WithField(sj, "guidance_rescale", std::nullopt), &submit).ok());
  EXPECT_EQ(submit.spec.guidance_rescale, 0.0);
  // Whole numbers may come as integers (encoders of dynamic languages).
  ASSERT_TRUE(DecodePayload(WithField(sj, "guidance_rescale", [](Packer& p) { p.pack(1); }), &submit).ok());
  EXPECT_EQ(submit.spec.guidance_rescale, 1.0);

  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "guidance_rescale", [](Packer& p) { p.pack(1.5); })),
               kInvalidArgument, "SubmitJob.guidance_rescale: value 1.5 outside [0, 1]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "guidance_rescale", [](Packer& p) { p.pack(-0.25); })),
               kInvalidArgument, "SubmitJob.guidance_rescale: value -0.25 outside [0, 1]");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "guidance_rescale",
                                           [](Packer& p) { p.pack(std::numeric_limits<double>::quiet_NaN()); })),
               kInvalidArgument, "SubmitJob.guidance_rescale: expected a finite number, found nan");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(sj, "guidance_rescale", [](Packer& p) { p.pack("0.5"); })),
               kInvalidArgument, "SubmitJob.guidance_rescale: expected a number, found str");

  SubmitJob bad = SampleSubmitJob();
  bad.spec.guidance_rescale = 1.5;
  EXPECT_ERROR(EncodePayload(bad).status(), kInvalidArgument, "SubmitJob.guidance_rescale: value 1.5 outside [0, 1]");
  bad.spec.guidance_rescale = std::numeric_limits<double>::quiet_NaN();
  EXPECT_ERROR(EncodePayload(bad).status(), kInvalidArgument, "SubmitJob.guidance_rescale: not a finite number");
  AssignTask task = SampleAssignTask();
  task.job.guidance_rescale = 1.5;
  EXPECT_ERROR(EncodePayload(task).status(), kInvalidArgument, "AssignTask.job.guidance_rescale: value 1.5 outside");
}

// SubmitJobs from the network: the count bounded before anything is allocated, every spec
// checked as SubmitJob's fields, the error naming the index and the field.
TEST(WireDecodeErrors, MalformedBatchesAreRejected) {
  const std::string one = SubmitPayload();
  auto batch = [&](uint32_t n, const std::function<void(Packer&, uint32_t)>& entry) {
    return Pack([&](Packer& p) {
      p.pack_map(1);
      p.pack("jobs");
      p.pack_array(n);
      for (uint32_t i = 0; i < n; ++i) entry(p, i);
    });
  };
  auto spec = [&](const std::string& payload) {
    return [payload](Packer& p, uint32_t) { p.pack(msgpack::unpack(payload.data(), payload.size()).get()); };
  };
  SubmitJobs ok;
  ASSERT_TRUE(DecodePayload(batch(3, spec(one)), &ok).ok());
  ASSERT_EQ(ok.jobs.size(), 3u);
  EXPECT_EQ(ok.jobs[2], SampleJobSpec());

  const uint32_t too_many = static_cast<uint32_t>(kMaxBatchJobs) + 1;
  EXPECT_ERROR(Decode<SubmitJobs>(batch(too_many, [](Packer& p, uint32_t) { p.pack_nil(); })), kInvalidArgument,
               "array of 4097 elements exceeds the limit of 4096");
  EXPECT_ERROR(Decode<SubmitJobs>(batch(0, spec(one))), kInvalidArgument, "SubmitJobs.jobs: empty");
  EXPECT_ERROR(Decode<SubmitJobs>(Pack([](Packer& p) { p.pack_map(0); })), kInvalidArgument,
               "SubmitJobs: missing required field 'jobs'");
  EXPECT_ERROR(Decode<SubmitJobs>(WithField(one, "jobs", [](Packer& p) { p.pack_map(0); })), kInvalidArgument,
               "SubmitJobs.jobs: expected an array, found map");
  const std::string zero_width = WithField(one, "width", [](Packer& p) { p.pack(0); });
  EXPECT_ERROR(Decode<SubmitJobs>(batch(5, [&](Packer& p, uint32_t i) {
                 const std::string& s = i == 3 ? zero_width : one;
                 p.pack(msgpack::unpack(s.data(), s.size()).get());
               })),
               kInvalidArgument, "SubmitJobs.jobs[3].width: value 0 outside [1, 16384]");
  const std::string no_prompt = WithField(one, "prompt", std::nullopt);
  EXPECT_ERROR(Decode<SubmitJobs>(batch(2, [&](Packer& p, uint32_t i) {
                 const std::string& s = i == 1 ? no_prompt : one;
                 p.pack(msgpack::unpack(s.data(), s.size()).get());
               })),
               kInvalidArgument, "SubmitJobs.jobs[1]: missing required field 'prompt'");
  EXPECT_ERROR(Decode<SubmitJobs>(batch(2, [](Packer& p, uint32_t) { p.pack("a prompt"); })), kInvalidArgument,
               "SubmitJobs.jobs[0]: expected a map, found str");
  // Only a batch's own list may be that long: the single SubmitJob keeps the gang-sized bound.
  EXPECT_ERROR(Decode<SubmitJob>(WithField(one, "future", [](Packer& p) {
                 p.pack_array(2000);
                 for (int i = 0; i < 2000; ++i) p.pack(i);
               })),
               kInvalidArgument, "array of 2000 elements exceeds the limit of 1024");

  const std::string acc = EncodePayload(SampleJobsAccepted()).value();
  JobsAccepted back;
  ASSERT_TRUE(DecodePayload(acc, &back).ok());
  EXPECT_EQ(back, SampleJobsAccepted());
  EXPECT_ERROR(Decode<JobsAccepted>(WithField(acc, "jobs", [](Packer& p) {
                 p.pack_array(1);
                 p.pack_map(1);
                 p.pack("job_id");
                 p.pack_bin(3);
                 p.pack_bin_body("abc", 3);
               })),
               kInvalidArgument, "JobsAccepted.jobs[0].job_id: expected a 16-byte job id, found 3 bytes");
}

TEST(WireDecodeErrors, UnknownFieldsAreTolerated) {
  std::string sj = SubmitPayload();
  sj = WithField(sj, "added_in_v1_7", [](Packer& p) {
    p.pack_map(2);
    p.pack("nested");
    p.pack_array(2);
    p.pack(1);
    p.pack("two");
    p.pack("bin");
    p.pack_bin(2);
    p.pack_bin_body("\x00\x01", 2);
  });
  sj = WithField(sj, "ext_field", [](Packer& p) {
    p.pack_ext(4, 7);
    p.pack_ext_body("abcd", 4);
  });
  SubmitJob m;
  Status s = DecodePayload(sj, &m);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(m, SampleSubmitJob());
}

TEST(WireDecodeErrors, MalformedMapsAreRejected) {
  const std::string dup = Pack([](Packer& p) {
    p.pack_map(2);
    p.pack("job_id");
    p.pack_bin(16);
    p.pack_bin_body("0123456789abcdef", 16);
    p.pack("job_id");
    p.pack_bin(16);
    p.pack_bin_body("fedcba9876543210", 16);
  });
  EXPECT_ERROR(Decode<GetJob>(dup), kInvalidArgument, "GetJob: duplicate field 'job_id'");
  const std::string int_key = Pack([](Packer& p) {
    p.pack_map(1);
    p.pack(1);
    p.pack(2);
  });
  EXPECT_ERROR(Decode<GetJob>(int_key), kInvalidArgument, "GetJob: map key #0 is a positive integer, keys must be str");
  EXPECT_ERROR(Decode<GetJob>(Pack([](Packer& p) { p.pack_array(0); })), kInvalidArgument,
               "GetJob: expected a map, found array");
  EXPECT_ERROR(Decode<SubmitJob>(WithField(SubmitPayload(), "prompt", [](Packer& p) { p.pack(std::string("\xc3\x28")); })),
               kInvalidArgument, "SubmitJob.prompt: not valid UTF-8");
}

TEST(WireDecodeErrors, BrokenMsgpackIsRejected) {
  const std::string sj = SubmitPayload();
  EXPECT_ERROR(Decode<SubmitJob>(""), kParseError, "SubmitJob payload: empty");
  EXPECT_ERROR(Decode<SubmitJob>(sj.substr(0, sj.size() - 3)), kParseError, "SubmitJob payload: truncated msgpack");
  EXPECT_ERROR(Decode<SubmitJob>(sj + "\x01"), kParseError, "1 unexpected bytes after the end of the message");
  EXPECT_ERROR(Decode<SubmitJob>("\xc1"), kParseError, "malformed msgpack at byte");
  // A map declaring 2^32-1 entries in 5 bytes: refused before anything is allocated.
  EXPECT_ERROR(Decode<SubmitJob>(std::string("\xdf\xff\xff\xff\xff", 5)), kInvalidArgument,
               "map of 4294967295 entries exceeds the limit of 256");
  // Nested arrays that declare far more elements than there are bytes.
  std::string liar = Pack([](Packer& p) {
    p.pack_map(1);
    p.pack("x");
    p.pack_array(1000);
    for (int i = 0; i < 100; ++i) p.pack_array(1000);
  });
  EXPECT_ERROR(Decode<SubmitJob>(liar), kInvalidArgument, "than the input has bytes");
  std::string deep = Pack([](Packer& p) {
    p.pack_map(1);
    p.pack("x");
    for (int i = 0; i < 20; ++i) p.pack_array(1);
    p.pack(1);
  });
  EXPECT_ERROR(Decode<SubmitJob>(deep), kInvalidArgument, "nesting deeper than 8 levels");
}

}  // namespace
}  // namespace distri::wire
