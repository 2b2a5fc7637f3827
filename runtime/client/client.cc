#include "runtime/client/client.h"

#include <algorithm>
#include <thread>

#include "runtime/common/logging.h"
#include "runtime/wire/dealer_socket.h"
#include "runtime/wire/field_versions.h"
#include "runtime/wire/zmq_context.h"

namespace distri::client {
namespace {

std::string NormalizeAddress(const std::string& address) {
  if (address.find("://") != std::string::npos) return address;
  return "tcp://" + address;
}

bool SameProgress(const wire::JobStatus& a, const wire::JobStatus& b) {
  return a.state == b.state && a.step == b.step && a.total_steps == b.total_steps && a.attempt == b.attempt &&
         a.queue_position == b.queue_position && a.preview_step == b.preview_step && a.preview == b.preview;
}

// The spec a head's refusal of a SubmitJobs of `count` specs names, as an index into that
// message: its checks say "jobs[i] of N: ...", its decoder "SubmitJobs.jobs[i]: ..."
// (docs/runtime-design.md, wire minor version 5; wire::Open puts "peer '...' answered with an
// error: " in front). nullopt for other errors.
std::optional<size_t> SpecNamedByRefusal(const Status& s, size_t count) {
  const std::string& m = s.message();
  // The decimal number at m[*at..], moving *at past it.
  auto number = [&](size_t* at) -> std::optional<size_t> {
    size_t n = 0, digits = 0;
    for (; *at < m.size() && m[*at] >= '0' && m[*at] <= '9' && digits < 9; ++*at, ++digits) {
      n = n * 10 + static_cast<size_t>(m[*at] - '0');
    }
    return digits == 0 ? std::nullopt : std::optional<size_t>(n);
  };
  const std::string of = " of " + std::to_string(count) + ": ";
  for (size_t p = m.find("jobs["); p != std::string::npos; p = m.find("jobs[", p + 1)) {
    size_t at = p + 5;
    std::optional<size_t> i = number(&at);
    if (!i || *i >= count || at >= m.size() || m[at] != ']') continue;
    const bool decoder = p >= 11 && m.compare(p - 11, 11, "SubmitJobs.") == 0;
    const bool check = (p == 0 || m[p - 1] == ' ') && m.compare(at + 1, of.size(), of) == 0;
    if (decoder || check) return i;
  }
  return std::nullopt;
}

}  // namespace

Status ResolveClientKeys(ClientOptions* o) {
  if (o->allow_insecure) return Status::Ok();
  if (!o->client_keys) {
    std::string file = o->client_key_file;
    if (file.empty() && !o->keys_dir.empty()) file = o->keys_dir + "/client.key";
    if (file.empty()) {
      return Status::InvalidArgument(
          "client: no CURVE keys (set keys_dir to the cluster's key directory, or the key files)");
    }
    DISTRI_ASSIGN_OR_RETURN(wire::CurveKeyPair keys, wire::ReadKeyPairFile(file));
    o->client_keys = std::move(keys);
  }
  if (o->head_public_key.empty()) {
    std::string file = o->head_public_key_file;
    if (file.empty() && !o->keys_dir.empty()) file = o->keys_dir + "/head.pub";
    if (file.empty()) {
      return Status::InvalidArgument("client: the head's public key is missing (set keys_dir or head_public_key_file)");
    }
    DISTRI_ASSIGN_OR_RETURN(o->head_public_key, wire::ReadPublicKeyFile(file));
  }
  return wire::ValidateZ85Key(o->head_public_key, "head public key");
}

Result<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.address.empty()) return Status::InvalidArgument("client: empty head address");
  options.address = NormalizeAddress(options.address);
  if (options.request_timeout.count() <= 0) {
    return Status::InvalidArgument("client: request_timeout must be positive, found " +
                                   std::to_string(options.request_timeout.count()) + " ms");
  }
  if (options.poll_interval.count() <= 0) options.poll_interval = std::chrono::milliseconds(100);
  DISTRI_RETURN_IF_ERROR(ResolveClientKeys(&options));
  DISTRI_ASSIGN_OR_RETURN(std::shared_ptr<wire::ZmqContext> ctx, wire::ZmqContext::Create());
  wire::DealerOptions d;
  d.endpoint = options.address;
  d.sender_id = "client:" + options.name;
  d.curve = options.client_keys;
  d.server_public_key = options.head_public_key;
  d.allow_insecure = options.allow_insecure;
  DISTRI_ASSIGN_OR_RETURN(std::unique_ptr<wire::DealerSocket> socket, wire::DealerSocket::Connect(ctx, d));
  std::unique_ptr<Client> client(new Client(std::move(options), std::move(ctx), std::move(socket)));
  if (client->options_.connect_timeout.count() > 0) {
    std::lock_guard<std::mutex> lock(client->mu_);
    Result<wire::ClusterStatus> probe =
        client->socket_->Call<wire::ClusterStatus>(wire::GetClusterStatus{}, client->options_.connect_timeout);
    if (!probe.ok()) {
      return Status::Unavailable("cannot reach the head at " + client->options_.address + " within " +
                                 std::to_string(client->options_.connect_timeout.count()) +
                                 " ms (not running, wrong address, or our key is not authorized): " +
                                 probe.status().message());
    }
  }
  return client;
}

Client::Client(ClientOptions options, std::shared_ptr<wire::ZmqContext> context,
               std::unique_ptr<wire::DealerSocket> socket)
    : options_(std::move(options)), context_(std::move(context)), socket_(std::move(socket)) {}

Client::~Client() {
  socket_.reset();  // before the context
}

template <typename Resp, typename Req>
Result<Resp> Client::Call(const Req& request) {
  std::lock_guard<std::mutex> lock(mu_);
  return socket_->Call<Resp>(request, options_.request_timeout);
}

Result<uint8_t> Client::HeadMinorLocked() {
  if (std::optional<uint8_t> minor = socket_->server_minor()) return *minor;
  // No answer yet (Connect with connect_timeout 0): any answer tells, an Error too.
  Result<wire::ClusterStatus> probe =
      socket_->Call<wire::ClusterStatus>(wire::GetClusterStatus{}, options_.request_timeout);
  if (std::optional<uint8_t> minor = socket_->server_minor()) return *minor;
  const Status why = probe.ok() ? Status::Internal("answered without an envelope version") : probe.status();
  return why.WithContext("asking the head at " + options_.address + " for its protocol version");
}

Status Client::CheckHeadKnows(const wire::JobSpec& spec, uint8_t head_minor) const {
  return wire::CheckPeerKnowsFields(spec, head_minor, "the head at " + options_.address);
}

// Why versions matter: a head of an older minor version decodes a SubmitJob without the fields
// it does not know and runs the job without them (runtime/wire/field_versions.h).
Result<wire::JobAccepted> Client::Submit(const wire::JobSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (wire::MinorVersionNeeded(spec) > 0) {
    DISTRI_ASSIGN_OR_RETURN(uint8_t head_minor, HeadMinorLocked());
    DISTRI_RETURN_IF_ERROR(CheckHeadKnows(spec, head_minor));
  }
  DISTRI_ASSIGN_OR_RETURN(wire::JobAccepted accepted,
                          socket_->Call<wire::JobAccepted>(wire::SubmitJob{spec}, options_.request_timeout));
  // The answer's own version: a head replaced by an older one since its last answer has just
  // accepted the job without the fields it does not know.
  if (Status s = CheckHeadKnows(spec, socket_->server_minor().value_or(0)); !s.ok()) {
    const bool cancelled =
        socket_->Call<wire::JobStatus>(wire::CancelJob{accepted.job_id}, options_.request_timeout).ok();
    return Status(s.code(), s.message() + " (it accepted the job as " + accepted.job_id.Hex() + ": " +
                                (cancelled ? "cancelled" : "could not cancel it") + ")");
  }
  return accepted;
}

Result<std::optional<wire::JobsAccepted>> Client::CallSubmitJobs(const wire::SubmitJobs& request,
                                                                 uint8_t* head_minor) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + options_.request_timeout;
  DISTRI_ASSIGN_OR_RETURN(uint64_t id, socket_->Send(request, options_.request_timeout));
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    DISTRI_ASSIGN_OR_RETURN(wire::Envelope reply, socket_->Receive(std::max(left, std::chrono::milliseconds(0))));
    *head_minor = reply.version_minor;
    if (reply.request_id == id) {
      Result<wire::JobsAccepted> r = wire::Open<wire::JobsAccepted>(reply);
      if (r.ok()) return std::optional<wire::JobsAccepted>(std::move(*r));
      if (wire::IsUnknownMessageTypeError(r.status(), wire::MessageType::kSubmitJobs)) {
        return std::optional<wire::JobsAccepted>();
      }
      return r.status();
    }
    // A head that does not know the type cannot read the envelope's header, so its answer
    // carries request id 0 (runtime/wire/messages.h, IsUnknownMessageTypeError).
    if (reply.request_id == 0 && reply.type == wire::MessageType::kError) {
      wire::Error err;
      if (wire::DecodePayload(reply.payload, &err).ok() &&
          wire::IsUnknownMessageTypeError(err.ToStatus(), wire::MessageType::kSubmitJobs)) {
        return std::optional<wire::JobsAccepted>();
      }
    }
    DISTRI_LOG(DEBUG) << options_.address << ": skipping a stale " << wire::MessageTypeName(reply.type)
                      << " (request id " << reply.request_id << ", waiting for " << id << ")";
  }
}

Status Client::SubmitBatchInto(const std::vector<wire::JobSpec>& specs, std::vector<wire::JobAccepted>* accepted,
                               std::optional<size_t>* refused_spec) {
  // Room for the envelope's header and the batch's own map around the specs' maps.
  constexpr size_t kPayloadBudget = wire::kMaxEnvelopeBytes - 64 * 1024;
  auto spec_error = [&](size_t i, const Status& s) {
    // No answer in time is not about the spec (fallback path).
    if (s.code() != StatusCode::kUnavailable && s.code() != StatusCode::kDeadlineExceeded) *refused_spec = i;
    return Status(s.code(), "jobs[" + std::to_string(i) + "]: " + s.message());
  };
  // Nothing goes out when the head would drop a field of any spec (field_versions.h).
  const bool versioned = std::any_of(specs.begin(), specs.end(),
                                     [](const wire::JobSpec& s) { return wire::MinorVersionNeeded(s) > 0; });
  if (versioned) {
    std::lock_guard<std::mutex> lock(mu_);
    DISTRI_ASSIGN_OR_RETURN(uint8_t head_minor, HeadMinorLocked());
    for (size_t i = 0; i < specs.size(); ++i) {
      if (Status s = CheckHeadKnows(specs[i], head_minor); !s.ok()) return spec_error(i, s);
    }
  }
  size_t begin = 0;
  while (begin < specs.size()) {
    // The next message: up to kMaxBatchJobs specs whose encodings fit in one envelope.
    size_t end = begin, bytes = 0;
    while (end < specs.size() && end - begin < wire::kMaxBatchJobs) {
      Result<std::string> one = wire::EncodePayload(wire::SubmitJob{specs[end]});
      if (!one.ok()) return spec_error(end, one.status());
      if (end > begin && bytes + one->size() > kPayloadBudget) break;
      bytes += one->size();
      ++end;
    }
    if (!batch_unsupported_) {
      wire::SubmitJobs request;
      request.jobs.assign(specs.begin() + static_cast<std::ptrdiff_t>(begin),
                          specs.begin() + static_cast<std::ptrdiff_t>(end));
      uint8_t head_minor = 0;
      Result<std::optional<wire::JobsAccepted>> r = CallSubmitJobs(request, &head_minor);
      if (!r.ok()) {
        if (std::optional<size_t> i = SpecNamedByRefusal(r.status(), end - begin)) *refused_spec = begin + *i;
        if (begin == 0 && end == specs.size()) return r.status();
        return r.status().WithContext("the message of specs [" + std::to_string(begin) + ", " + std::to_string(end) +
                                      ")");
      }
      if (r->has_value()) {
        std::vector<wire::JobAccepted>& jobs = (*r)->jobs;
        if (jobs.size() != end - begin) {
          // Recorded all the same: the caller cancels what it can name.
          accepted->insert(accepted->end(), jobs.begin(), jobs.end());
          return Status::Internal("the head answered a SubmitJobs of " + std::to_string(end - begin) + " jobs with " +
                                  std::to_string(jobs.size()) + " accepted jobs");
        }
        accepted->insert(accepted->end(), jobs.begin(), jobs.end());
        // As in Submit: the head that accepted them may be older than the one asked before.
        for (size_t i = begin; i < end; ++i) {
          if (Status s = CheckHeadKnows(specs[i], head_minor); !s.ok()) return spec_error(i, s);
        }
        begin = end;
        continue;
      }
      batch_unsupported_ = true;
      DISTRI_LOG(INFO) << "the head at " << options_.address << " does not know SubmitJobs (wire minor version < 5):"
                       << " submitting batches one SubmitJob per job";
    }
    for (size_t i = begin; i < end; ++i) {
      Result<wire::JobAccepted> a = Submit(specs[i]);
      if (!a.ok()) return spec_error(i, a.status());
      accepted->push_back(*a);
    }
    begin = end;
  }
  return Status::Ok();
}

Result<std::vector<wire::JobAccepted>> Client::SubmitBatch(const std::vector<wire::JobSpec>& specs,
                                                           std::optional<size_t>* refused_spec) {
  std::vector<wire::JobAccepted> accepted;
  accepted.reserve(specs.size());
  std::optional<size_t> refused;
  Status s = SubmitBatchInto(specs, &accepted, &refused);
  if (refused_spec != nullptr) *refused_spec = refused;
  if (s.ok()) return accepted;
  size_t cancelled = 0;
  for (const wire::JobAccepted& a : accepted) cancelled += Cancel(a.job_id).ok() ? 1 : 0;
  if (!accepted.empty()) {
    s = Status(s.code(), s.message() + " (cancelled " + std::to_string(cancelled) + " of the " +
                             std::to_string(accepted.size()) + " job(s) of the batch accepted before)");
  }
  return s;
}

Result<wire::JobStatus> Client::GetJob(const JobId& job_id, bool with_preview) {
  return Call<wire::JobStatus>(wire::GetJob{job_id, with_preview});
}

Result<wire::JobStatus> Client::Cancel(const JobId& job_id) { return Call<wire::JobStatus>(wire::CancelJob{job_id}); }

Result<wire::JobResult> Client::GetResult(const JobId& job_id) {
  return Call<wire::JobResult>(wire::GetJobResult{job_id});
}

Result<wire::ClusterStatus> Client::GetClusterStatus() { return Call<wire::ClusterStatus>(wire::GetClusterStatus{}); }

std::chrono::steady_clock::duration Client::NextPoll(const std::optional<wire::JobStatus>& last,
                                                    std::chrono::steady_clock::time_point now, StepPace* pace) const {
  using std::chrono::milliseconds;
  const std::chrono::steady_clock::duration slowest = options_.poll_interval;
  const std::chrono::steady_clock::duration fastest = std::min<std::chrono::steady_clock::duration>(milliseconds(5), slowest);
  // Without a step rate yet: back off from 5 ms, an eighth of the time waited so far, so a
  // short job is seen done within a few ms and a long one costs few polls.
  const auto backoff = std::clamp<std::chrono::steady_clock::duration>((now - pace->wait_start) / 8, fastest, slowest);
  if (!last || last->state != wire::JobState::kRunning || last->total_steps == 0) return backoff;
  // The last step is done: only the decode and the image encoding remain.
  if (last->step >= last->total_steps) return fastest;
  if (last->step == 0) return backoff;
  if (pace->first_step == 0 || last->step < pace->first_step) {
    pace->first_step = last->step;
    pace->first_seen = now;
    return backoff;
  }
  if (last->step == pace->first_step) return backoff;
  // Sleep half the predicted rest of the loop, so the end is seen within a few ms of it.
  const auto per_step = (now - pace->first_seen) / (last->step - pace->first_step);
  const auto rest = per_step * (last->total_steps - last->step);
  return std::clamp<std::chrono::steady_clock::duration>(rest / 2, fastest, slowest);
}

Result<wire::JobResult> Client::WaitForJob(const JobId& job_id, std::chrono::milliseconds timeout,
                                           const ProgressFn& progress) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<wire::JobStatus> last;
  StepPace pace;
  pace.wait_start = std::chrono::steady_clock::now();
  while (true) {
    Result<wire::JobStatus> st = GetJob(job_id, options_.previews);
    if (!st.ok()) {
      // A head restart makes polls fail for a moment; keep trying until the deadline.
      if (st.status().code() != StatusCode::kUnavailable && st.status().code() != StatusCode::kDeadlineExceeded) {
        return st.status();
      }
      DISTRI_LOG(DEBUG) << "job " << job_id.Short() << ": poll failed, retrying: " << st.status().ToString();
    } else {
      if (progress && (!last || !SameProgress(*last, *st))) progress(*st);
      last = *st;
      switch (st->state) {
        case wire::JobState::kSucceeded: return GetResult(job_id);
        case wire::JobState::kFailed:
          return Status::Aborted("job " + job_id.Hex() + " failed (attempt " + std::to_string(st->attempt) +
                                 "): " + st->error);
        case wire::JobState::kCancelled: return Status::Cancelled("job " + job_id.Hex() + " was cancelled");
        default: break;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return Status::DeadlineExceeded("job " + job_id.Hex() + " not finished after " +
                                      std::to_string(timeout.count()) + " ms (state " +
                                      (last ? std::string(wire::JobStateName(last->state)) : "unknown") + ")");
    }
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(NextPoll(last, now, &pace), deadline - now));
  }
}

}  // namespace distri::client
