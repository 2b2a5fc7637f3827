// Round trips of every control-plane message, encode-side limits, and the typed helpers.
#include "runtime/wire/messages.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/runtime/wire/sample_messages.h"

namespace distri::wire {
namespace {

using namespace distri::wire::testing;

template <typename M>
void ExpectRoundTrip(const M& original) {
  SCOPED_TRACE(std::string(MessageTypeName(M::kType)));
  Result<std::string> bytes = Seal(original, 99, "test:roundtrip");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();

  Result<Envelope> env = DecodeEnvelope(*bytes);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->type, M::kType);
  EXPECT_EQ(env->request_id, 99u);
  EXPECT_EQ(env->sender_id, "test:roundtrip");
  EXPECT_EQ(env->version_major, kProtocolVersionMajor);
  EXPECT_EQ(env->version_minor, kProtocolVersionMinor);

  Result<M> typed = Open<M>(*env);
  ASSERT_TRUE(typed.ok()) << typed.status().ToString();
  EXPECT_EQ(*typed, original);

  Result<AnyMessage> any = DecodeMessage(std::string_view(*bytes));
  ASSERT_TRUE(any.ok()) << any.status().ToString();
  EXPECT_EQ(TypeOf(*any), M::kType);
  ASSERT_TRUE(std::holds_alternative<M>(*any));
  EXPECT_EQ(std::get<M>(*any), original);

  // Re-encoding the decoded message gives the same bytes (the encoding is canonical).
  EXPECT_EQ(Seal(*typed, 99, "test:roundtrip").value(), *bytes);
}

TEST(WireMessages, EveryMessageRoundTrips) {
  ExpectRoundTrip(SampleRegisterNode());
  ExpectRoundTrip(SampleNodeRegistered());
  ExpectRoundTrip(SampleHeartbeat());
  ExpectRoundTrip(SampleSubmitJob());
  ExpectRoundTrip(SampleJobAccepted());
  ExpectRoundTrip(SampleGetJob());
  ExpectRoundTrip(SampleJobStatus());
  ExpectRoundTrip(SampleCancelJob());
  ExpectRoundTrip(SampleGetJobResult());
  ExpectRoundTrip(SampleJobResult());
  ExpectRoundTrip(SampleAssignTask());
  ExpectRoundTrip(SampleTaskProgress());
  ExpectRoundTrip(SampleTaskDone());
  ExpectRoundTrip(SampleError());
  ExpectRoundTrip(SampleRegisterActor());
  ExpectRoundTrip(SampleActorRegistered());
  ExpectRoundTrip(SampleActorExited());
  ExpectRoundTrip(SampleGetClusterStatus());
  ExpectRoundTrip(SampleClusterStatus());
  ExpectRoundTrip(SampleCancelTask());
  ExpectRoundTrip(SampleReleaseGang());
  ExpectRoundTrip(SampleSubmitJobs());
  ExpectRoundTrip(SampleJobsAccepted());
}

// SubmitJobs / JobsAccepted (minor version 5): 1..kMaxBatchJobs entries, each spec checked as
// SubmitJob's fields, errors naming the index and the field; the envelope limit applies.
TEST(WireMessages, BatchesAreBoundedAndEverySpecIsChecked) {
  SubmitJobs full;
  full.jobs.assign(kMaxBatchJobs, SampleJobSpec());
  ExpectRoundTrip(full);
  JobsAccepted accepted;
  accepted.jobs.assign(kMaxBatchJobs, SampleJobAccepted());
  ExpectRoundTrip(accepted);

  full.jobs.push_back(SampleJobSpec());
  Result<std::string> over = EncodePayload(full);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("SubmitJobs.jobs: 4097 entries, limit 4096"), std::string::npos)
      << over.status().ToString();
  accepted.jobs.push_back(SampleJobAccepted());
  EXPECT_EQ(EncodePayload(accepted).status().code(), StatusCode::kInvalidArgument);

  EXPECT_NE(EncodePayload(SubmitJobs{}).status().message().find("SubmitJobs.jobs: empty"), std::string::npos);
  EXPECT_EQ(EncodePayload(JobsAccepted{}).status().code(), StatusCode::kInvalidArgument);

  SubmitJobs bad = SampleSubmitJobs();
  bad.jobs[2].width = 0;
  EXPECT_NE(EncodePayload(bad).status().message().find("SubmitJobs.jobs[2].width: value 0 outside [1, 16384]"),
            std::string::npos)
      << EncodePayload(bad).status().ToString();
  bad = SampleSubmitJobs();
  bad.jobs[1].guidance_rescale = 2;
  EXPECT_NE(EncodePayload(bad).status().message().find("SubmitJobs.jobs[1].guidance_rescale"), std::string::npos);

  // 80 prompts of 1 MiB each pass the 64 MiB envelope: refused when encoding, not sent.
  SubmitJobs big;
  big.jobs.assign(80, SampleJobSpec());
  for (JobSpec& j : big.jobs) j.prompt = std::string(kMaxPromptBytes, 'p');
  Result<std::string> huge = Seal(big, 1, "client:test");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("does not fit in an envelope"), std::string::npos)
      << huge.status().ToString();
}

TEST(WireMessages, UnknownMessageTypeErrorsAreRecognised) {
  // What a peer of an older minor version answers (DecodeEnvelope's error, seen through Open).
  const std::string unknown17 = "envelope header: unknown message type 17";
  const Error old_head = Error::FromStatus(Status::InvalidArgument(unknown17));
  Envelope reply = MakeEnvelope(old_head, 0, "head").value();
  const Status seen = Open<JobsAccepted>(reply).status();
  EXPECT_TRUE(IsUnknownMessageTypeError(seen, MessageType::kSubmitJobs)) << seen.ToString();
  EXPECT_FALSE(IsUnknownMessageTypeError(seen, MessageType::kJobsAccepted));
  EXPECT_FALSE(IsUnknownMessageTypeError(Status::InvalidArgument("envelope header: unknown message type 170"),
                                         MessageType::kSubmitJobs));
  EXPECT_FALSE(IsUnknownMessageTypeError(Status::Internal(unknown17), MessageType::kSubmitJobs));
  EXPECT_FALSE(IsUnknownMessageTypeError(Status::InvalidArgument("jobs[0]: sampler 'x'"), MessageType::kSubmitJobs));
  // This build's own decoder says it the same way for a type it does not know.
  Envelope future = MakeEnvelope(SampleHeartbeat(), 3, "node:x").value();
  std::string bytes = EncodeEnvelope(future).value();
  bytes[kEnvelopePrefixBytes + 1] = 99;  // the header's first element: the type (a fixint)
  const Status decoded = DecodeEnvelope(bytes).status();
  EXPECT_TRUE(IsUnknownMessageTypeError(decoded, static_cast<MessageType>(99))) << decoded.ToString();
}

TEST(WireMessages, ActorAndClusterMessagesAreValidated) {
  RegisterActor ra = SampleRegisterActor();
  ra.model = "";
  EXPECT_EQ(EncodePayload(ra).status().code(), StatusCode::kInvalidArgument);
  ra = SampleRegisterActor();
  ra.gpu_index = -2;
  EXPECT_EQ(EncodePayload(ra).status().code(), StatusCode::kInvalidArgument);
  ra = SampleRegisterActor();
  ra.actor_id = ActorId();
  Result<std::string> nil = EncodePayload(ra);
  ASSERT_FALSE(nil.ok());
  EXPECT_NE(nil.status().message().find("RegisterActor.actor_id"), std::string::npos) << nil.status().ToString();
  ra = SampleRegisterActor();
  ra.pid = 0;
  EXPECT_FALSE(EncodePayload(ra).ok());

  ClusterStatus cs = SampleClusterStatus();
  cs.running[0].step = 51;
  EXPECT_EQ(EncodePayload(cs).status().code(), StatusCode::kInvalidArgument);
  cs = SampleClusterStatus();
  cs.actors.resize(kMaxStatusEntries + 1, cs.actors[0]);
  EXPECT_EQ(EncodePayload(cs).status().code(), StatusCode::kInvalidArgument);
  cs.actors.resize(kMaxStatusEntries);
  Result<std::string> big = EncodePayload(cs);
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  ClusterStatus back;
  ASSERT_TRUE(DecodePayload(*big, &back).ok());
  EXPECT_EQ(back, cs);

  ActorExited ex = SampleActorExited();
  ex.signal = 300;
  EXPECT_FALSE(EncodePayload(ex).ok());
  EXPECT_EQ(ActorStateName(ActorState::kBusy), "busy");
}

TEST(WireMessages, EveryJobStateAndFormatRoundTrips) {
  for (JobState s : {JobState::kPending, JobState::kScheduled, JobState::kRunning, JobState::kSucceeded,
                     JobState::kFailed, JobState::kCancelled}) {
    JobStatus m = SampleJobStatus();
    m.state = s;
    ExpectRoundTrip(m);
  }
  JobResult r = SampleJobResult();
  r.format = OutputFormat::kRgb8;
  r.width = 4;
  r.height = 2;
  r.image = std::string(4 * 2 * 3, '\x7f');
  ExpectRoundTrip(r);
}

TEST(WireMessages, ExtremeValuesRoundTrip) {
  SubmitJob m = SampleSubmitJob();
  m.spec.seed = std::numeric_limits<uint64_t>::max();
  m.spec.priority = std::numeric_limits<int32_t>::min();
  m.spec.width = kMaxImageSide;
  m.spec.height = 1;
  m.spec.steps = kMaxSteps;
  m.spec.guidance = -0.0;
  m.spec.gpus = static_cast<uint32_t>(kMaxGangSize);
  m.spec.prompt = std::string(kMaxPromptBytes, 'p');
  m.spec.negative_prompt = std::string(kMaxPromptBytes, 'n');
  ExpectRoundTrip(m);

  Heartbeat h{std::numeric_limits<uint64_t>::max(), 0, 0};
  ExpectRoundTrip(h);

  AssignTask a = SampleAssignTask();
  a.gang = SampleGang(static_cast<uint32_t>(kMaxGangSize));
  a.rank = static_cast<uint32_t>(kMaxGangSize - 1);
  a.rendezvous = std::string(kMaxRendezvousBytes, '\x01');
  ExpectRoundTrip(a);

  JobResult big = SampleJobResult();
  big.image = std::string(32 * kMiB, '\x42');
  ExpectRoundTrip(big);
}

TEST(WireMessages, OptionalFieldsDefaultWhenAbsent) {
  SubmitJob m;
  m.spec.prompt = "a cat";
  m.spec.width = 512;
  m.spec.height = 512;
  m.spec.steps = 20;
  m.spec.guidance = 5;
  m.spec.sampler = "euler";
  ExpectRoundTrip(m);  // seed absent stays absent (nullopt), not 0
  EXPECT_EQ(EncodePayload(m).value().find("warmup_steps"), std::string::npos);  // absent: not written
  m.spec.warmup_steps = 0;  // present 0 (no warm-up) is not absent
  ExpectRoundTrip(m);

  TaskDone failed;
  failed.job_id = TestJobId();
  failed.rank = 3;
  failed.error_code = static_cast<int32_t>(StatusCode::kAborted);
  failed.error_message = "channel aborted: rank 1 died";
  ExpectRoundTrip(failed);
}

TEST(WireMessages, EncodeRefusesWhatDecodeWouldReject) {
  SubmitJob m = SampleSubmitJob();
  m.spec.prompt = std::string(kMaxPromptBytes + 1, 'x');
  Result<std::string> r = EncodePayload(m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("SubmitJob.prompt: 1048577 bytes"), std::string::npos) << r.status().ToString();

  m = SampleSubmitJob();
  m.spec.guidance = std::nan("");
  EXPECT_NE(EncodePayload(m).status().message().find("SubmitJob.guidance: not a finite number"), std::string::npos);

  m = SampleSubmitJob();
  m.spec.sampler = "\xff\xfe";
  EXPECT_NE(EncodePayload(m).status().message().find("SubmitJob.sampler: not valid UTF-8"), std::string::npos);

  m = SampleSubmitJob();
  m.spec.warmup_steps = kMaxSteps + 1;
  EXPECT_NE(EncodePayload(m).status().message().find("SubmitJob.warmup_steps: value 10001 outside [0, 10000]"),
            std::string::npos)
      << EncodePayload(m).status().ToString();

  m = SampleSubmitJob();
  m.spec.width = 0;
  EXPECT_NE(EncodePayload(m).status().message().find("SubmitJob.width: value 0 outside [1, 16384]"),
            std::string::npos);

  RegisterNode n = SampleRegisterNode();
  n.resources.gpus[1].name = std::string(kMaxNameBytes + 1, 'g');
  EXPECT_NE(EncodePayload(n).status().message().find("RegisterNode.resources.gpus[1].name"), std::string::npos)
      << EncodePayload(n).status().ToString();

  AssignTask a = SampleAssignTask();
  a.job.seed.reset();
  EXPECT_NE(EncodePayload(a).status().message().find("AssignTask.job.seed: missing"), std::string::npos);

  Envelope e;
  e.type = MessageType::kHeartbeat;
  e.payload = EncodePayload(SampleHeartbeat()).value();
  e.sender_id = std::string(kMaxSenderIdBytes + 1, 's');
  EXPECT_EQ(EncodeEnvelope(e).status().code(), StatusCode::kInvalidArgument);
  e.sender_id = "ok";
  e.payload = std::string(kMaxEnvelopeBytes, 'x');
  EXPECT_NE(EncodeEnvelope(e).status().message().find("exceeds the limit"), std::string::npos);
}

TEST(WireMessages, ErrorCarriesStatus) {
  Error e = Error::FromStatus(Status::NotFound("job 1234 not found"));
  EXPECT_EQ(e.code, static_cast<int32_t>(StatusCode::kNotFound));
  EXPECT_EQ(e.ToStatus(), Status::NotFound("job 1234 not found"));

  Error unknown{57, "from a newer peer"};
  EXPECT_EQ(unknown.ToStatus().code(), StatusCode::kInternal);
  EXPECT_EQ(unknown.ToStatus().message(), "unknown status code 57: from a newer peer");

  // Long messages and non-UTF-8 bytes are made sendable rather than failing the error path.
  Error big = Error::FromStatus(Status::Internal(std::string(kMaxErrorMessageBytes + 10, 'e') + "\xff"));
  EXPECT_EQ(big.message.size(), kMaxErrorMessageBytes);
  EXPECT_TRUE(EncodePayload(big).ok());
  Error bad_utf8 = Error::FromStatus(Status::IoError("file \xff\xfe"));
  EXPECT_EQ(bad_utf8.message, "file ??");
  EXPECT_TRUE(EncodePayload(bad_utf8).ok());
}

TEST(WireMessages, OpenReturnsThePeersErrorOrNamesTheWrongType) {
  Envelope err = MakeEnvelope(SampleError(), 5, "head").value();
  Result<JobStatus> r = Open<JobStatus>(err);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "peer 'head' answered with an error: job a0a1a2a3 not found");

  Envelope hb = MakeEnvelope(SampleHeartbeat(), 0, "node:1").value();
  Result<JobStatus> wrong = Open<JobStatus>(hb);
  EXPECT_EQ(wrong.status(), Status::InvalidArgument("expected JobStatus, received Heartbeat"));
}

TEST(WireMessages, TypeValuesAreFrozen) {
  // These numbers are on the wire; changing one breaks every deployed peer.
  EXPECT_EQ(static_cast<int>(MessageType::kRegisterNode), 1);
  EXPECT_EQ(static_cast<int>(MessageType::kNodeRegistered), 2);
  EXPECT_EQ(static_cast<int>(MessageType::kHeartbeat), 3);
  EXPECT_EQ(static_cast<int>(MessageType::kRegisterActor), 4);
  EXPECT_EQ(static_cast<int>(MessageType::kActorRegistered), 5);
  EXPECT_EQ(static_cast<int>(MessageType::kActorExited), 6);
  EXPECT_EQ(static_cast<int>(MessageType::kGetClusterStatus), 7);
  EXPECT_EQ(static_cast<int>(MessageType::kClusterStatus), 8);
  EXPECT_EQ(static_cast<int>(MessageType::kSubmitJob), 10);
  EXPECT_EQ(static_cast<int>(MessageType::kJobAccepted), 11);
  EXPECT_EQ(static_cast<int>(MessageType::kGetJob), 12);
  EXPECT_EQ(static_cast<int>(MessageType::kJobStatus), 13);
  EXPECT_EQ(static_cast<int>(MessageType::kCancelJob), 14);
  EXPECT_EQ(static_cast<int>(MessageType::kGetJobResult), 15);
  EXPECT_EQ(static_cast<int>(MessageType::kJobResult), 16);
  EXPECT_EQ(static_cast<int>(MessageType::kSubmitJobs), 17);
  EXPECT_EQ(static_cast<int>(MessageType::kJobsAccepted), 18);
  EXPECT_EQ(static_cast<int>(MessageType::kAssignTask), 20);
  EXPECT_EQ(static_cast<int>(MessageType::kTaskProgress), 21);
  EXPECT_EQ(static_cast<int>(MessageType::kTaskDone), 22);
  EXPECT_EQ(static_cast<int>(MessageType::kCancelTask), 23);
  EXPECT_EQ(static_cast<int>(MessageType::kReleaseGang), 24);
  EXPECT_EQ(static_cast<int>(MessageType::kError), 30);
  EXPECT_EQ(static_cast<int>(JobState::kPending), 0);
  EXPECT_EQ(static_cast<int>(JobState::kCancelled), 5);
  EXPECT_EQ(static_cast<int>(OutputFormat::kPng), 0);
  EXPECT_EQ(JobStateName(JobState::kScheduled), "SCHEDULED");
  EXPECT_TRUE(IsTerminal(JobState::kCancelled));
  EXPECT_FALSE(IsTerminal(JobState::kRunning));
  EXPECT_FALSE(MessageTypeFromValue(0).has_value());
  EXPECT_FALSE(MessageTypeFromValue(9).has_value());
  EXPECT_EQ(MessageTypeFromValue(4), MessageType::kRegisterActor);
  EXPECT_EQ(MessageTypeFromValue(23), MessageType::kCancelTask);
  EXPECT_EQ(MessageTypeFromValue(24), MessageType::kReleaseGang);
  EXPECT_EQ(MessageTypeName(MessageType::kReleaseGang), "ReleaseGang");
  EXPECT_EQ(static_cast<int>(ActorState::kIdle), 0);
  EXPECT_EQ(static_cast<int>(ActorState::kDead), 2);
  EXPECT_EQ(MessageTypeFromValue(17), MessageType::kSubmitJobs);
  EXPECT_EQ(MessageTypeFromValue(18), MessageType::kJobsAccepted);
  EXPECT_FALSE(MessageTypeFromValue(19).has_value());
  EXPECT_EQ(MessageTypeName(MessageType::kSubmitJobs), "SubmitJobs");
  EXPECT_EQ(kProtocolVersionMinor, 5);
  EXPECT_FALSE(MessageTypeFromValue(0x10000 + 1).has_value());
  EXPECT_EQ(MessageTypeFromValue(13), MessageType::kJobStatus);
}

}  // namespace
}  // namespace distri::wire
