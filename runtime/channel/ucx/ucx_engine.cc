#include "runtime/channel/ucx/ucx_engine.h"

#include <cstdlib>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "runtime/common/logging.h"

namespace distri::channel::ucx {
namespace {

constexpr uint64_t kClassP2p = uint64_t{1} << 62;
constexpr uint64_t kClassCollective = uint64_t{2} << 62;
constexpr int kRankShift = 50;
char g_empty_message[1];  // UCX wants a valid pointer even for zero-byte messages

}  // namespace

uint64_t P2pTag(int source, uint32_t tag) {
  return kClassP2p | (static_cast<uint64_t>(source) << kRankShift) | tag;
}

uint64_t CollectiveTag(int source, uint64_t seq, uint32_t phase) {
  return kClassCollective | (static_cast<uint64_t>(source) << kRankShift) |
         ((seq & 0xffffffffull) << 18) | (phase & 0x3ffffu);
}

std::string UcsError(ucs_status_t status) { return ucs_status_string(status); }

struct UcxEngine::Request {
  UcxEngine* engine;
  UcxOp* op;
  int peer;
  bool is_recv;
  size_t expected_bytes;
  void* handle = nullptr;
  bool completed = false;
  ucs_status_t status = UCS_OK;
  size_t received_bytes = 0;
};

UcxEngine::UcxEngine(int rank, int world_size) : rank_(rank), world_size_(world_size) {}

Result<std::unique_ptr<UcxEngine>> UcxEngine::Create(int rank, int world_size,
                                                     const std::string& transports) {
  std::unique_ptr<UcxEngine> e(new UcxEngine(rank, world_size));
  ucp_config_t* config = nullptr;
  ucs_status_t st = ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK) return Status::Unavailable("UCX: reading the configuration failed: " + UcsError(st));
  if (!transports.empty()) {
    st = ucp_config_modify(config, "TLS", transports.c_str());
    if (st != UCS_OK) {
      ucp_config_release(config);
      return Status::InvalidArgument("UCX: transports '" + transports + "' rejected: " + UcsError(st));
    }
  }
  // UCX 1.13's rendezvous protocol over TCP stalls (and ends in "Endpoint timeout") when a rank
  // has several large transfers in flight to 3+ peers at once, which patch parallelism's
  // asynchronous stale all-gathers do (tests/actors/parallel/multiprocess_gang_test.sh). Eager
  // fragments have no such handshake; host buffers over TCP lose nothing by them. The
  // UCX_RNDV_THRESH environment variable still overrides this.
  if (std::getenv("UCX_RNDV_THRESH") == nullptr) {
    st = ucp_config_modify(config, "RNDV_THRESH", "inf");
    if (st != UCS_OK) {
      ucp_config_release(config);
      return Status::Unavailable("UCX: setting RNDV_THRESH failed: " + UcsError(st));
    }
  }
  // Keepalive probes end a connection with "Endpoint timeout" when a rank is starved of CPU
  // for a while (seen with 4 ranks on a loaded 2-core CI machine). A dead peer is still
  // detected at once: its TCP connection closes. UCX_KEEPALIVE_INTERVAL overrides this.
  if (std::getenv("UCX_KEEPALIVE_INTERVAL") == nullptr) {
    st = ucp_config_modify(config, "KEEPALIVE_INTERVAL", "inf");
    if (st != UCS_OK) {
      ucp_config_release(config);
      return Status::Unavailable("UCX: setting KEEPALIVE_INTERVAL failed: " + UcsError(st));
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_ESTIMATED_NUM_EPS;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  params.estimated_num_eps = static_cast<size_t>(world_size);
  st = ucp_init(&params, config, &e->context_);
  ucp_config_release(config);
  if (st != UCS_OK) {
    return Status::Unavailable("UCX: ucp_init failed: " + UcsError(st) +
                               (transports.empty() ? "" : " (transports '" + transports + "')"));
  }
  ucp_worker_params_t wparams{};
  wparams.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wparams.thread_mode = UCS_THREAD_MODE_SINGLE;
  st = ucp_worker_create(e->context_, &wparams, &e->worker_);
  if (st != UCS_OK) return Status::Unavailable("UCX: ucp_worker_create failed: " + UcsError(st));
  if (ucp_worker_get_efd(e->worker_, &e->worker_efd_) != UCS_OK) {
    // Some transports cannot wake a sleeping thread; the loop then polls every millisecond.
    e->worker_efd_ = -1;
    DISTRI_LOG(WARNING) << "UCX: the worker has no event fd; progress will poll";
  }
  e->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->wake_fd_ < 0) return Status::IoError(std::string("eventfd: ") + std::strerror(errno));
  ucp_address_t* address = nullptr;
  size_t length = 0;
  st = ucp_worker_get_address(e->worker_, &address, &length);
  if (st != UCS_OK) return Status::Unavailable("UCX: ucp_worker_get_address failed: " + UcsError(st));
  e->address_.assign(reinterpret_cast<const char*>(address), length);
  ucp_worker_release_address(e->worker_, address);
  return e;
}

Status UcxEngine::Connect(const std::vector<std::string>& addresses) {
  eps_.assign(static_cast<size_t>(world_size_), nullptr);
  for (int p = 0; p < world_size_; ++p) {
    ep_contexts_.push_back(std::make_unique<EpContext>(EpContext{this, p}));
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                        UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.address = reinterpret_cast<const ucp_address_t*>(addresses[static_cast<size_t>(p)].data());
    params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params.err_handler.cb = &UcxEngine::OnEndpointError;
    params.err_handler.arg = ep_contexts_.back().get();
    const ucs_status_t st = ucp_ep_create(worker_, &params, &eps_[static_cast<size_t>(p)]);
    if (st != UCS_OK) {
      return Status::Unavailable(
          "UCX: creating the endpoint to rank " + std::to_string(p) + " failed: " + UcsError(st) +
          " (the channel needs transports with peer failure detection, e.g. tcp or rc; UCX 1.13's "
          "shared-memory transports lack it: check UCX_TLS / ChannelOptions::ucx_transports)");
    }
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

UcxEngine::~UcxEngine() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    Wake();
    thread_.join();
  } else if (worker_ != nullptr) {
    for (ucp_ep_h& ep : eps_) {
      if (ep != nullptr) {
        ucp_request_param_t param{};
        param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        param.flags = UCP_EP_CLOSE_FLAG_FORCE;
        ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &param);
        if (UCS_PTR_IS_PTR(r) && r != nullptr) ucp_request_free(r);
        ep = nullptr;
      }
    }
  }
  if (worker_ != nullptr) ucp_worker_destroy(worker_);
  if (context_ != nullptr) ucp_cleanup(context_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void UcxEngine::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

Status UcxEngine::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void UcxEngine::Submit(std::unique_ptr<UcxOp> op, std::function<bool()> ready) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.ok() && !stop_ && thread_.joinable()) {
      submitted_.push_back({std::move(op), std::move(ready)});
    }
  }
  if (op) {  // not queued: fail fast on this thread
    Status f = failure();
    if (f.ok()) f = Status::FailedPrecondition("UCX channel is not connected");
    auto done = std::move(op->on_done);
    op.reset();
    if (done) done(f);
    return;
  }
  Wake();
}

void UcxEngine::Abort(Status status, std::chrono::milliseconds quiesce_timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (failure_.ok()) {
    failure_ = std::move(status);
    teardown_pending_ = true;
  }
  if (!thread_.joinable()) return;  // never connected: nothing in flight
  lock.unlock();
  Wake();
  lock.lock();
  if (!cv_.wait_until(lock, DeadlineAfter(quiesce_timeout), [&] { return quiescent_ || stop_; })) {
    DISTRI_LOG(ERROR) << "UCX: requests still in flight " << quiesce_timeout.count()
                      << " ms after abort on rank " << rank_;
  }
}

void UcxEngine::SetFailure(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failure_.ok()) {
    failure_ = std::move(status);
    teardown_pending_ = true;
  }
}

void UcxEngine::OnEndpointError(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
  auto* ctx = static_cast<EpContext*>(arg);
  ctx->engine->SetFailure(Status::Unavailable("UCX: the connection to rank " +
                                              std::to_string(ctx->peer) + " failed: " +
                                              UcsError(status)));
}

void UcxEngine::OnSendDone(void* request, ucs_status_t status, void* user_data) {
  auto* req = static_cast<Request*>(user_data);
  req->handle = request;
  req->status = status;
  req->completed = true;
  req->engine->completed_.push_back(req);
}

void UcxEngine::OnRecvDone(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                           void* user_data) {
  auto* req = static_cast<Request*>(user_data);
  req->handle = request;
  req->status = status;
  req->received_bytes = (status == UCS_OK && info != nullptr) ? info->length : 0;
  req->completed = true;
  req->engine->completed_.push_back(req);
}

void UcxEngine::PostSend(UcxOp& op, int peer, uint64_t tag, const void* data, size_t bytes) {
  if (!op.error_.ok()) return;
  ucp_ep_h ep = eps_[static_cast<size_t>(peer)];
  if (ep == nullptr) {
    op.error_ = Status::Unavailable(op.what() + ": the endpoint to rank " + std::to_string(peer) +
                                    " is closed");
    return;
  }
  auto* req = new Request{this, &op, peer, false, bytes};
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  param.cb.send = &UcxEngine::OnSendDone;
  param.user_data = req;
  ucs_status_ptr_t r = ucp_tag_send_nbx(ep, bytes > 0 ? data : g_empty_message, bytes, tag, &param);
  if (UCS_PTR_IS_ERR(r)) {
    op.error_ = Status::Unavailable(op.what() + ": sending to rank " + std::to_string(peer) +
                                    " failed: " + UcsError(UCS_PTR_STATUS(r)));
    delete req;
    return;
  }
  if (r == nullptr) {  // completed at once despite NO_IMM_CMPL
    delete req;
    return;
  }
  if (!req->completed) req->handle = r;
  requests_.insert(req);
  ++op.outstanding_;
}

void UcxEngine::PostRecv(UcxOp& op, int peer, uint64_t tag, void* data, size_t bytes) {
  if (!op.error_.ok()) return;
  auto* req = new Request{this, &op, peer, true, bytes};
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  param.cb.recv = &UcxEngine::OnRecvDone;
  param.user_data = req;
  ucs_status_ptr_t r = ucp_tag_recv_nbx(worker_, bytes > 0 ? data : g_empty_message, bytes, tag,
                                        ~uint64_t{0}, &param);
  if (UCS_PTR_IS_ERR(r)) {
    op.error_ = Status::Unavailable(op.what() + ": receiving from rank " + std::to_string(peer) +
                                    " failed: " + UcsError(UCS_PTR_STATUS(r)));
    delete req;
    return;
  }
  if (r == nullptr) {
    delete req;
    return;
  }
  if (!req->completed) req->handle = r;
  requests_.insert(req);
  ++op.outstanding_;
}

void UcxEngine::ProcessCompletions() {
  while (!completed_.empty()) {
    std::vector<Request*> batch;
    batch.swap(completed_);
    for (Request* req : batch) {
      UcxOp* op = req->op;
      Status s;
      const std::string from = " rank " + std::to_string(req->peer);
      if (req->status == UCS_ERR_MESSAGE_TRUNCATED) {
        s = Status::InvalidArgument(op->what() + ":" + from + " sent more than the " +
                                    std::to_string(req->expected_bytes) + " bytes expected");
      } else if (req->status != UCS_OK) {
        s = Status::Unavailable(op->what() + ": " + (req->is_recv ? "receiving from" : "sending to") +
                                from + " failed: " + UcsError(req->status));
      } else if (req->is_recv && req->received_bytes != req->expected_bytes) {
        s = Status::InvalidArgument(op->what() + ":" + from + " sent " +
                                    std::to_string(req->received_bytes) + " bytes, expected " +
                                    std::to_string(req->expected_bytes));
      }
      if (req->handle != nullptr) ucp_request_free(req->handle);
      requests_.erase(req);
      delete req;
      if (!s.ok() && op->error_.ok()) op->error_ = std::move(s);
      if (--op->outstanding_ == 0) to_advance_.push_back(op);
    }
    std::vector<UcxOp*> advance;
    advance.swap(to_advance_);
    for (UcxOp* op : advance) Advance(op);
  }
}

void UcxEngine::Start(std::unique_ptr<UcxOp> op) {
  UcxOp* raw = op.release();
  ops_.insert(raw);
  Advance(raw);
}

void UcxEngine::Advance(UcxOp* op) {
  while (op->outstanding_ == 0) {
    Status f = failure();
    if (!f.ok()) return Finish(op, f);
    if (!op->error_.ok()) return Finish(op, op->error_);
    if (!op->Step(*this)) return Finish(op, op->error_);
  }
}

void UcxEngine::Finish(UcxOp* op, Status status) {
  ops_.erase(op);
  auto done = std::move(op->on_done);
  delete op;
  if (done) done(std::move(status));
}

void UcxEngine::CloseEndpoints(bool force, Clock::time_point deadline) {
  std::vector<void*> closing;
  for (ucp_ep_h& ep : eps_) {
    if (ep == nullptr) continue;
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &param);
    ep = nullptr;
    if (UCS_PTR_IS_PTR(r) && r != nullptr) closing.push_back(r);
  }
  while (!closing.empty()) {
    ucp_worker_progress(worker_);
    ProcessCompletions();
    for (size_t i = 0; i < closing.size();) {
      if (ucp_request_check_status(closing[i]) != UCS_INPROGRESS) {
        ucp_request_free(closing[i]);
        closing[i] = closing.back();
        closing.pop_back();
      } else {
        ++i;
      }
    }
    if (Clock::now() >= deadline) {
      DISTRI_LOG(WARNING) << "UCX: " << closing.size() << " endpoints of rank " << rank_
                          << " did not close in time";
      break;  // ucp_worker_destroy releases them
    }
  }
}

void UcxEngine::Teardown() {
  torn_down_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    teardown_pending_ = false;
  }
  const Status f = failure();
  // Operations still waiting for their input never started: fail them now.
  std::vector<Pending> gated;
  gated.swap(gated_);
  for (Pending& p : gated) {
    auto done = std::move(p.op->on_done);
    p.op.reset();
    if (done) done(f);
  }
  // Cancel receives (callbacks only queue), then force-close every endpoint, which completes
  // the sends. ProcessCompletions then fails the operations with the failure status.
  for (Request* req : requests_) {
    if (req->is_recv && !req->completed && req->handle != nullptr) {
      ucp_request_cancel(worker_, req->handle);
    }
  }
  CloseEndpoints(/*force=*/true, DeadlineAfter(std::chrono::seconds(5)));
  ProcessCompletions();
}

void UcxEngine::Run() {
  bool closing = false;
  Clock::time_point closing_deadline;
  while (true) {
    std::deque<Pending> batch;
    bool stop, teardown;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(submitted_);
      stop = stop_;
      teardown = teardown_pending_;
    }
    const bool failed = !failure().ok();
    for (Pending& p : batch) {
      if (p.ready && !failed) {
        gated_.push_back(std::move(p));
      } else {
        Start(std::move(p.op));
      }
    }
    for (size_t i = 0; i < gated_.size();) {
      if (gated_[i].ready()) {
        std::unique_ptr<UcxOp> op = std::move(gated_[i].op);
        gated_.erase(gated_.begin() + static_cast<std::ptrdiff_t>(i));
        Start(std::move(op));
      } else {
        ++i;
      }
    }
    while (ucp_worker_progress(worker_) != 0) {
    }
    ProcessCompletions();

    if (teardown && !torn_down_) {
      Teardown();
      continue;
    }
    if (failed && requests_.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!quiescent_) {
        quiescent_ = true;
        cv_.notify_all();
      }
    }
    if (stop && !closing) {
      closing = true;
      closing_deadline = DeadlineAfter(std::chrono::seconds(10));
      if (!ops_.empty() || !gated_.empty()) {
        SetFailure(Status::Aborted("UCX channel of rank " + std::to_string(rank_) +
                                   " destroyed with " + std::to_string(ops_.size() + gated_.size()) +
                                   " operations pending"));
        continue;  // tear down first
      }
    }
    if (closing && ((ops_.empty() && gated_.empty()) || Clock::now() >= closing_deadline)) {
      if (!torn_down_) CloseEndpoints(/*force=*/false, DeadlineAfter(std::chrono::seconds(2)));
      ProcessCompletions();
      // Requests UCX never completed: their operations must still finish for their waiters.
      Status f = failure();
      if (f.ok()) f = Status::Aborted("UCX channel destroyed");
      while (!ops_.empty()) Finish(*ops_.begin(), f);
      break;
    }

    if (worker_efd_ >= 0 && gated_.empty()) {
      const ucs_status_t st = ucp_worker_arm(worker_);
      if (st == UCS_ERR_BUSY) continue;
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {worker_efd_, POLLIN, 0}};
    const int nfds = worker_efd_ >= 0 ? 2 : 1;
    const int timeout_ms = (gated_.empty() && worker_efd_ >= 0) ? 100 : 1;
    ::poll(fds, nfds, timeout_ms);
    uint64_t drained;
    [[maybe_unused]] ssize_t n = ::read(wake_fd_, &drained, sizeof(drained));
  }
  std::lock_guard<std::mutex> lock(mu_);
  quiescent_ = true;
  cv_.notify_all();
}

}  // namespace distri::channel::ucx
