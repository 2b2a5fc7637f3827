// The objects behind the opaque handles, and the table of live handles that lets every entry
// point reject NULL and destroyed handles with an error instead of touching freed memory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "capi/include/distri/distri.h"
#include "capi/src/backend.h"
#include "runtime/common/ids.h"
#include "runtime/common/status.h"

namespace distri::capi {

// The client's connection, shared by the client handle and its jobs: a job outlives its
// client handle and then fails with FailedPrecondition instead of dangling.
class ClientState {
 public:
  explicit ClientState(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

  // Runs `fn(Backend&)` under the connection mutex; FailedPrecondition once closed.
  template <typename Fn>
  auto With(Fn&& fn) -> decltype(fn(std::declval<Backend&>())) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!backend_) return Status::FailedPrecondition("the client was destroyed");
    return fn(*backend_);
  }
  // Destroys the backend (stops an embedded cluster). Later calls fail.
  void Close();

 private:
  std::mutex mu_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace distri::capi

struct distri_client {
  std::shared_ptr<distri::capi::ClientState> state;
};

struct distri_job {
  std::shared_ptr<distri::capi::ClientState> client;
  distri::JobId id;
  std::string id_hex;
  // The format the caller asked for (enum distri_output_format), or -1 for "as the cluster
  // stored it" (jobs from distri_job_open). The cluster is always asked for PNG.
  int32_t want_format = -1;
  distri_progress_fn progress = nullptr;
  void* progress_user_data = nullptr;
  // JobSpec.preview_every of a job submitted through this handle; -1 for jobs from
  // distri_job_open (unknown: the cluster is asked).
  int64_t preview_every = -1;
  bool wait_fetches_previews = false;  // distri_job_wait asks for previews (previews.h)

  std::mutex mu;                      // guards the fields below
  std::condition_variable cancelled;  // wakes a distri_job_wait when cancel is called
  uint64_t cancel_requests = 0;
  uint64_t seed = 0;
  bool terminal = false;              // once true, `error` never changes again
  std::string error;                  // JobStatus.error of a FAILED job
  // The newest latent preview received for the job's latest attempt seen (previews.h).
  std::string preview;
  uint32_t preview_step = 0;          // 0: none
  uint32_t preview_attempt = 0;
};

struct distri_buffer {
  std::string bytes;
};

namespace distri::capi {

// A set of live objects of one kind. Registration happens on create, removal on destroy;
// Contains() is what lets a call on a destroyed handle fail cleanly.
template <typename T>
class HandleTable {
 public:
  void Add(T* p) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(p);
  }
  // True when `p` was live and is now removed (the caller then deletes it).
  bool Remove(T* p) {
    std::lock_guard<std::mutex> lock(mu_);
    return live_.erase(p) == 1;
  }
  bool Contains(const T* p) {
    std::lock_guard<std::mutex> lock(mu_);
    return live_.count(const_cast<T*>(p)) == 1;
  }

 private:
  std::mutex mu_;
  std::unordered_set<T*> live_;
};

HandleTable<distri_client>& Clients();
HandleTable<distri_job>& Jobs();
HandleTable<distri_buffer>& Buffers();

// InvalidArgument naming the argument when `p` is NULL or not a live object of its kind.
Status CheckHandle(const distri_client* p, const char* arg);
Status CheckHandle(const distri_job* p, const char* arg);
Status CheckHandle(const distri_buffer* p, const char* arg);

// A new buffer holding `bytes`, registered as live.
distri_buffer_t* NewBuffer(std::string bytes);

}  // namespace distri::capi
