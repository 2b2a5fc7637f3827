// The C++ client of a distri cluster: submit jobs to the head, follow them, fetch images,
// read the cluster's status. Used by the C ABI (capi/) and `distri-cluster` (runtime/cli).
//
//   DISTRI_ASSIGN_OR_RETURN(auto client, client::Client::Connect({.address = "tcp://10.0.0.1:7070",
//                                                                .keys_dir = "/etc/distri/keys"}));
//   wire::JobSpec spec{.prompt = "a lighthouse at dawn", .width = 1024, .height = 1024,
//                      .steps = 30, .guidance = 5, .sampler = "euler"};
//   DISTRI_ASSIGN_OR_RETURN(wire::JobAccepted accepted, client->Submit(spec));
//   DISTRI_ASSIGN_OR_RETURN(wire::JobResult result,
//       client->WaitForJob(accepted.job_id, std::chrono::minutes(10),
//                          [](const wire::JobStatus& s) { /* s.step of s.total_steps */ }));
//
// Keys (runtime/wire/curve_keys.h; `distri-cluster up` writes them): the client proves itself
// with a CURVE key pair the head's authorized_keys lists, and checks the head with the head's
// public key. With `keys_dir` set, these are <keys_dir>/client.key and <keys_dir>/head.pub;
// explicit files or keys override them. A client whose key the head does not accept cannot
// connect: every call fails with Unavailable after its timeout (the head logs the refusal).
//
// Errors of every call: Unavailable (head unreachable or our key refused), DeadlineExceeded
// (no answer in time), and the head's answer as a Status (InvalidArgument for a job the
// cluster cannot run, NotFound for an unknown job id, FailedPrecondition for the image of a
// job that has not succeeded).
//
// Thread-safety: a Client may be used from several threads at once. Calls are serialized on
// one connection (one request in flight at a time); WaitForJob holds the connection only
// during each poll, so other calls interleave with a long wait. Callbacks run on the calling
// thread with no lock held.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"
#include "runtime/wire/cluster_messages.h"
#include "runtime/wire/curve_keys.h"
#include "runtime/wire/job_messages.h"
#include "runtime/wire/types.h"

namespace distri::wire {
class DealerSocket;
class ZmqContext;
}  // namespace distri::wire

namespace distri::client {

struct ClientOptions {
  // The head's ROUTER endpoint: "tcp://host:port" (required). "host:port" is accepted too.
  std::string address;

  // Key directory of the cluster: reads client.key (our key pair) and head.pub.
  std::string keys_dir;
  // Explicit key files (override keys_dir's): a key pair file and a public key file.
  std::string client_key_file;
  std::string head_public_key_file;
  // Explicit keys (override the files).
  std::optional<wire::CurveKeyPair> client_keys;
  std::string head_public_key;  // Z85
  // No CURVE at all: only for in-process tests against a head started with allow_insecure.
  bool allow_insecure = false;

  // Envelope sender id is "client:<name>" (the head's logs show it).
  std::string name = "cpp";
  // Connect checks that the head answers (GetClusterStatus) within this time; 0 skips the
  // check (then the first call reports an unreachable head, and the first Submit/SubmitBatch
  // of a spec using a versioned field asks for the status first, to learn the head's
  // protocol version: see Submit).
  std::chrono::milliseconds connect_timeout{5000};
  // Limit of one request/reply (send + answer).
  std::chrono::milliseconds request_timeout{10000};
  // WaitForJob's polling period.
  std::chrono::milliseconds poll_interval{100};
  // WaitForJob asks for the job's latest latent preview with every poll (GetJob with_preview)
  // and calls its progress callback when a new one arrives (JobStatus.preview, preview_step).
  // Off by default: a preview is a few KiB to a few hundred KiB per poll. Previews exist only
  // for jobs submitted with JobSpec.preview_every.
  bool previews = false;
};

// Called by WaitForJob with each status it observed that differs from the previous one
// (state, step, attempt or, with ClientOptions::previews, the preview changed).
using ProgressFn = std::function<void(const wire::JobStatus& status)>;

class Client {
 public:
  // Reads the keys and connects. Errors: InvalidArgument (options, bad address), IoError /
  // ParseError / PermissionDenied (key files, naming the file), Unavailable (the head did not
  // answer within connect_timeout: not running, wrong address, or our key refused).
  static Result<std::unique_ptr<Client>> Connect(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Submits one image. JobAccepted arrives once the job is durable on the head (a head
  // restart does not lose it). spec.seed unset: the head draws one (JobAccepted.seed).
  // Protocol versions (runtime/wire/field_versions.h): a spec using a field the head's protocol
  // minor version does not know (guidance_rescale for a head of 1.3, ...) is refused with
  // FailedPrecondition naming the field and the head's version, since that head would drop it
  // and render another image. The head's version is the one its last answer announced (Connect
  // asks for the cluster status); before any answer, a spec using versioned fields first costs
  // one GetClusterStatus. Should the answer to the submit itself come from an older head (the
  // head was replaced meanwhile), the job is cancelled and the same error returned.
  Result<wire::JobAccepted> Submit(const wire::JobSpec& spec);
  // Submits a batch of images, one JobAccepted per spec in the same order. The head queues a
  // whole SubmitJobs message before it schedules, so its "auto" gang sizes see the batch (a
  // long batch of small images runs one image per GPU, not the first ones on 2-GPU gangs).
  // Sends messages of at most wire::kMaxBatchJobs specs (fewer where long prompts would pass
  // the envelope limit); the head records each message's jobs all or none. A head older than
  // wire minor version 5 does not know SubmitJobs: then one SubmitJob per spec goes out (and
  // this client remembers it for later batches). All or nothing for the caller: on an error
  // the jobs this call got accepted are cancelled (best effort: a message whose answer was
  // lost, DeadlineExceeded, may have been accepted), and the error names the spec ("jobs[i]"
  // and the field). An empty batch returns an empty vector without contacting the head.
  // Specs using fields the head does not know are refused before anything is sent, as in
  // Submit (FailedPrecondition, "jobs[i]: ..."; also checked against each answer's version).
  // `refused_spec` (optional): on an error about one spec (refused by the head, by this
  // client's encoder or for the head's version), its index in `specs`; nullopt otherwise
  // (e.g. the head unreachable).
  Result<std::vector<wire::JobAccepted>> SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                     std::optional<size_t>* refused_spec = nullptr);
  // State, progress (step of total_steps), attempt and queue position of a job; with
  // `with_preview`, also the latest latent preview of a running job (JobStatus.preview).
  Result<wire::JobStatus> GetJob(const JobId& job_id, bool with_preview = false);
  // Cancels a job that has not finished; returns its state afterwards (CANCELLED, or the
  // terminal state it had already reached).
  Result<wire::JobStatus> Cancel(const JobId& job_id);
  // The image of a SUCCEEDED job (FailedPrecondition otherwise).
  Result<wire::JobResult> GetResult(const JobId& job_id);
  // Polls until the job is terminal or `timeout` passes, calling `progress` on changes; then
  // returns the result of a SUCCEEDED job. A FAILED job returns Aborted with the head's error
  // ("job 3fa2...: failed after 3 attempts: ..."), a CANCELLED job Cancelled, a timeout
  // DeadlineExceeded (the job keeps running). `progress` may be empty.
  Result<wire::JobResult> WaitForJob(const JobId& job_id, std::chrono::milliseconds timeout,
                                     const ProgressFn& progress = nullptr);
  // Nodes, actors, jobs by state, queue length, running jobs.
  Result<wire::ClusterStatus> GetClusterStatus();

  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options, std::shared_ptr<wire::ZmqContext> context,
         std::unique_ptr<wire::DealerSocket> socket);
  template <typename Resp, typename Req>
  Result<Resp> Call(const Req& request);
  // The head's protocol minor version: the one its last answer announced or, before any
  // answer, the one its answer to a GetClusterStatus announces. Caller holds mu_.
  Result<uint8_t> HeadMinorLocked();
  // Ok, or FailedPrecondition when a head of protocol minor version `head_minor` would drop a
  // field `spec` uses (wire::CheckPeerKnowsFields).
  Status CheckHeadKnows(const wire::JobSpec& spec, uint8_t head_minor) const;
  // One SubmitJobs round trip; nullopt when the head does not know the message type.
  // *head_minor: the version its answer announced.
  Result<std::optional<wire::JobsAccepted>> CallSubmitJobs(const wire::SubmitJobs& request, uint8_t* head_minor);
  // SubmitBatch without the cancellation: appends what the head accepted to *accepted and
  // sets *refused_spec (never null here) as SubmitBatch does.
  Status SubmitBatchInto(const std::vector<wire::JobSpec>& specs, std::vector<wire::JobAccepted>* accepted,
                         std::optional<size_t>* refused_spec);
  // WaitForJob's pause before the next poll: an eighth of the time waited so far, between 5 ms
  // and poll_interval, shortened as a running job nears its last step (half the predicted rest of the loop, from the step rate seen so far; 5 ms
  // once every step is done), so a result is seen within a few ms of the head having it.
  struct StepPace {
    std::chrono::steady_clock::time_point wait_start;
    uint32_t first_step = 0;
    std::chrono::steady_clock::time_point first_seen;
  };
  std::chrono::steady_clock::duration NextPoll(const std::optional<wire::JobStatus>& last,
                                               std::chrono::steady_clock::time_point now, StepPace* pace) const;

  ClientOptions options_;
  std::shared_ptr<wire::ZmqContext> context_;
  std::mutex mu_;  // serializes use of socket_
  std::unique_ptr<wire::DealerSocket> socket_;
  // Set once the head answered that it does not know SubmitJobs (an older head).
  std::atomic<bool> batch_unsupported_{false};
};

// Fills in client keys from options (keys_dir, files, explicit keys) as Connect does; exposed
// for the CLI's error messages and tests.
Status ResolveClientKeys(ClientOptions* options);

}  // namespace distri::client
