#include "actors/parallel/peer_exchange.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#ifdef DISTRI_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "actors/kernels/peer_flags.h"
#endif

namespace distri::parallel {

namespace {

// DISTRI_PEER_TRACE=1: each rank's thread prints where it is in the exchange's setup and steps
// (to stderr): the first thing to look at when a gang waits. The per-step calls check
// TraceEnabled() first, so their messages are not built when tracing is off.
[[maybe_unused]] bool TraceEnabled() {
  static const bool on = [] {
    const char* e = std::getenv("DISTRI_PEER_TRACE");
    return e != nullptr && std::string(e) == "1";
  }();
  return on;
}
[[maybe_unused]] void Trace(int rank, const std::string& what) {
  if (!TraceEnabled()) return;
  std::fprintf(stderr, "[peer exchange] rank %d: %s\n", rank, what.c_str());
  std::fflush(stderr);
}

// Bad arguments are named before anything is allocated (the same in builds without CUDA).
Status CheckArguments(int rank, int world, int64_t block_bytes, const PeerExchange::Layout& layout) {
  const std::string who = "peer exchange: rank " + std::to_string(rank) + " of " + std::to_string(world);
  if (world < 2) return Status::InvalidArgument(who + ": needs 2 or more ranks");
  if (rank < 0 || rank >= world) return Status::InvalidArgument(who + ": the rank is out of range");
  if (block_bytes <= 0) {
    return Status::InvalidArgument(who + ": a stale block of " + std::to_string(block_bytes) + " bytes");
  }
  if (layout.chunk_base.empty()) return Status::InvalidArgument(who + ": no chunks to exchange");
  if (layout.slot_offset.size() != layout.chunk_base.size() || layout.slot_bytes.size() != layout.chunk_base.size()) {
    return Status::InvalidArgument(who + ": " + std::to_string(layout.chunk_base.size()) + " chunks but " +
                                   std::to_string(layout.slot_offset.size()) + " slot offset and " +
                                   std::to_string(layout.slot_bytes.size()) + " slot size lists");
  }
  for (size_t c = 0; c < layout.chunk_base.size(); ++c) {
    if (layout.slot_offset[c].size() != static_cast<size_t>(world) ||
        layout.slot_bytes[c].size() != static_cast<size_t>(world)) {
      return Status::InvalidArgument(who + ": chunk " + std::to_string(c) + " has no slot for every rank");
    }
    for (int r = 0; r < world; ++r) {
      const int64_t begin = layout.chunk_base[c] + layout.slot_offset[c][static_cast<size_t>(r)];
      const int64_t end = begin + layout.slot_bytes[c][static_cast<size_t>(r)];
      if (layout.chunk_base[c] < 0 || begin < 0 || layout.slot_bytes[c][static_cast<size_t>(r)] < 0 ||
          end > block_bytes) {
        return Status::InvalidArgument(who + ": chunk " + std::to_string(c) + "'s slot of rank " + std::to_string(r) +
                                       " (bytes " + std::to_string(begin) + ".." + std::to_string(end) +
                                       ") is not inside the block of " + std::to_string(block_bytes) + " bytes");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

#ifdef DISTRI_HAVE_CUDA
namespace {

Status Cuda(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return Status::Ok();
  return Status::Internal("peer exchange: " + what + ": " + cudaGetErrorString(e));
}

// Makes a device current for the scope; the caller's device again afterwards. (The NCCL
// backend has its own; this file stays free of NCCL and LibTorch.)
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    (void)cudaGetDevice(&previous_);
    err_ = cudaSetDevice(device);
  }
  ~DeviceScope() { (void)cudaSetDevice(previous_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  cudaError_t error() const { return err_; }

 private:
  int previous_ = 0;
  cudaError_t err_ = cudaSuccess;
};

}  // namespace

// The block and the flags: one allocation from a memory pool of this exchange, which the
// peers' GPUs are given access to (the pool's, not every allocation's of the process). Freed
// once the exchange and every holder of block() are gone.
struct PeerMemory {
  int device = 0;
  cudaMemPool_t pool = nullptr;
  void* base = nullptr;

  ~PeerMemory() {
    if (pool == nullptr) return;
    DeviceScope scope(device);
    // Peers copy from the block until their last step's copies end; a job ends after the last
    // step's output all-gather, which every rank reaches only after its copies were joined.
    (void)cudaDeviceSynchronize();
    if (base != nullptr) {
      (void)cudaFreeAsync(base, nullptr);
      (void)cudaStreamSynchronize(nullptr);
    }
    (void)cudaMemPoolDestroy(pool);
  }
};

struct PeerExchange::Impl {
  int rank = 0, world = 0, device = 0;
  std::shared_ptr<PeerMemory> memory;
  char* block = nullptr;
  Layout layout;
  uint64_t timeout_ns = 0;
  uint32_t* flags = nullptr;                // own, in `memory`: full[chunks][world], then taken[chunks][world]
  uint32_t* error = nullptr;                // host-mapped: the first wait that gave up (0: none)
  std::vector<int> devices;                 // every rank's CUDA device
  std::vector<char*> blocks;                // every rank's block
  std::vector<uint32_t*> peer_flags;        // every rank's flags
  cudaStream_t side = nullptr;              // the copies and their flags
  std::vector<cudaEvent_t> published;       // per chunk: the compute stream reached Publish
  cudaEvent_t copied = nullptr;             // the side stream's work so far
  bool pending = false;
  int64_t joins = 0;                        // steps joined (DISTRI_PEER_TRACE)

  ~Impl() {
    if (side == nullptr && error == nullptr && published.empty()) return;
    DeviceScope scope(device);
    (void)cudaDeviceSynchronize();
    for (cudaEvent_t e : published) {
      if (e) (void)cudaEventDestroy(e);
    }
    if (copied) (void)cudaEventDestroy(copied);
    if (side) (void)cudaStreamDestroy(side);
    if (error) (void)cudaFreeHost(error);
  }
  int64_t chunks() const { return static_cast<int64_t>(layout.chunk_base.size()); }
  // full[c][from] and taken[c][by] in the flags at `base` (this rank's or a peer's).
  uint32_t* Full(uint32_t* base, int64_t chunk, int from) const { return base + chunk * world + from; }
  uint32_t* Taken(uint32_t* base, int64_t chunk, int by) const { return base + chunks() * world + chunk * world + by; }
  // What a wait that gave up writes into `error`: which flag, of which chunk and peer.
  uint32_t ErrorCode(bool taken, int64_t chunk, int peer) const {
    return 1 + static_cast<uint32_t>(2 * (chunk * world + peer) + (taken ? 1 : 0));
  }
  Status CheckChunk(int chunk) const {
    if (chunk >= 0 && chunk < chunks()) return Status::Ok();
    return Status::InvalidArgument("peer exchange: no chunk " + std::to_string(chunk));
  }
  Status Wait(uint32_t* flag, bool taken, int64_t chunk, int peer, cudaStream_t stream) const {
    return Cuda(kernels::LaunchWaitFlag(flag, 1, 0, timeout_ns, error, ErrorCode(taken, chunk, peer), stream),
                "flag wait");
  }
};

Result<std::unique_ptr<PeerExchange>> PeerExchange::Create(int rank, int world, int device, int64_t block_bytes,
                                                           Layout layout, const AllGatherInts& all_gather,
                                                           std::chrono::milliseconds timeout) {
  DISTRI_RETURN_IF_ERROR(CheckArguments(rank, world, block_bytes, layout));
  if (timeout.count() <= 0) {
    return Status::InvalidArgument("peer exchange: the wait timeout must be positive, got " +
                                   std::to_string(timeout.count()) + " ms");
  }
  // CUDA loads a kernel lazily at its first launch, and that load may wait for the whole GPU to
  // be idle (the CUDA programming guide, "Lazy Loading", concurrent execution): a first-time
  // kernel of a displaced step launched while this exchange's wait spins for a peer - whose
  // thread is doing the same - deadlocks both until a wait gives up. Eager loading alone did not
  // end the ninth session's stalls (tenth session; see peer_exchange.h, "Status"), but this
  // deadlock stays possible, so the exchange still needs it.
  if (const char* loading = std::getenv("CUDA_MODULE_LOADING");
      loading == nullptr || std::string(loading) != "EAGER") {
    return Status::FailedPrecondition(
        "peer exchange: needs CUDA_MODULE_LOADING=EAGER in the environment before CUDA starts (got " +
        std::string(loading == nullptr ? "unset: lazy loading" : loading) +
        "): a kernel loaded lazily while the exchange's GPU wait spins for a peer deadlocks the gang");
  }
  auto impl = std::make_unique<Impl>();
  impl->rank = rank;
  impl->world = world;
  impl->device = device;
  impl->layout = std::move(layout);
  impl->timeout_ns = static_cast<uint64_t>(timeout.count()) * 1000000u;
  // `device` is current while Create runs; the caller's device again afterwards.
  Trace(rank, "create on cuda:" + std::to_string(device));
  DeviceScope scope(device);
  DISTRI_RETURN_IF_ERROR(Cuda(scope.error(), "making cuda:" + std::to_string(device) + " current"));
  // Deadlock rule (every rank is a thread of one process): a call that takes the driver's
  // memory locks (an allocation, access for a peer, a pageable copy that waits for its stream)
  // must never run while another rank's thread waits inside the driver for GPU work that needs
  // this thread's next launch (a collective it has not issued yet). So every allocation
  // happens before the address exchange, the exchange waits with a stream synchronisation (no
  // lock held), the peers' access is granted between it and a second exchange (a barrier),
  // and no rank leaves Create before every rank has granted it.
  DISTRI_RETURN_IF_ERROR(Cuda(cudaStreamCreateWithFlags(&impl->side, cudaStreamNonBlocking), "side stream"));
  impl->published.resize(static_cast<size_t>(impl->chunks()), nullptr);
  for (auto& e : impl->published) {
    DISTRI_RETURN_IF_ERROR(Cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "event"));
  }
  DISTRI_RETURN_IF_ERROR(Cuda(cudaEventCreateWithFlags(&impl->copied, cudaEventDisableTiming), "event"));
  // The block, then the flags (full = 0, taken = 1: the first write of a slot waits for
  // nobody), in one allocation of the exchange's own pool.
  auto memory = std::make_shared<PeerMemory>();
  memory->device = device;
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  DISTRI_RETURN_IF_ERROR(Cuda(cudaMemPoolCreate(&memory->pool, &props), "memory pool on cuda:" + std::to_string(device)));
  const int64_t n = impl->chunks() * world;
  const int64_t flags_offset = (block_bytes + 255) / 256 * 256;
  const int64_t total = flags_offset + 2 * n * static_cast<int64_t>(sizeof(uint32_t));
  DISTRI_RETURN_IF_ERROR(Cuda(cudaMallocFromPoolAsync(&memory->base, static_cast<size_t>(total), memory->pool,
                                                      impl->side),
                              std::to_string(total) + " bytes of stale block and flags on cuda:" + std::to_string(device)));
  impl->memory = memory;
  impl->block = static_cast<char*>(memory->base);
  impl->flags = reinterpret_cast<uint32_t*>(impl->block + flags_offset);
  DISTRI_RETURN_IF_ERROR(Cuda(cudaMemsetAsync(impl->block, 0, static_cast<size_t>(block_bytes), impl->side), "block"));
  DISTRI_RETURN_IF_ERROR(Cuda(kernels::LaunchFillFlags(impl->flags, n, 0, impl->side), "flags"));
  DISTRI_RETURN_IF_ERROR(Cuda(kernels::LaunchFillFlags(impl->flags + n, n, 1, impl->side), "flags"));
  DISTRI_RETURN_IF_ERROR(Cuda(cudaHostAlloc(reinterpret_cast<void**>(&impl->error), sizeof(uint32_t),
                                            cudaHostAllocMapped | cudaHostAllocPortable),
                              "error word"));
  *impl->error = 0;
  DISTRI_RETURN_IF_ERROR(Cuda(cudaStreamSynchronize(impl->side), "block and flags"));
  Trace(rank, "allocated; exchanging addresses");
  // Addresses only mean something inside one process: every rank sends its process id too.
  DISTRI_ASSIGN_OR_RETURN(
      auto all, all_gather({static_cast<int64_t>(getpid()), device, reinterpret_cast<int64_t>(impl->block),
                            reinterpret_cast<int64_t>(impl->flags)}));
  if (all.size() != static_cast<size_t>(world)) {
    return Status::Internal("peer exchange: the address exchange returned " + std::to_string(all.size()) +
                            " ranks, expected " + std::to_string(world));
  }
  Status usable = Status::Ok();  // checked after the barrier: no rank leaves it alone
  std::vector<cudaMemAccessDesc> access;
  for (int r = 0; r < world && usable.ok(); ++r) {
    const auto& v = all[static_cast<size_t>(r)];
    if (v.size() != 4 || v[0] != static_cast<int64_t>(getpid())) {
      usable = Status::FailedPrecondition("peer exchange: rank " + std::to_string(r) +
                                          " runs in another process; the copy-engine exchange needs every rank of "
                                          "a patch group in one process (distri generate --gpus N): use the NCCL "
                                          "all-gathers");
      break;
    }
    const int peer_device = static_cast<int>(v[1]);
    if (r != rank && peer_device != device) {
      int can = 0;
      usable = Cuda(cudaDeviceCanAccessPeer(&can, device, peer_device), "cudaDeviceCanAccessPeer");
      if (usable.ok() && !can) {
        usable = Status::FailedPrecondition("peer exchange: cuda:" + std::to_string(device) + " cannot access cuda:" +
                                            std::to_string(peer_device) + " directly; use the NCCL all-gathers");
      }
      cudaMemAccessDesc d{};
      d.location.type = cudaMemLocationTypeDevice;
      d.location.id = peer_device;
      d.flags = cudaMemAccessFlagsProtReadWrite;
      access.push_back(d);
    }
    impl->devices.push_back(peer_device);
    impl->blocks.push_back(reinterpret_cast<char*>(v[2]));
    impl->peer_flags.push_back(reinterpret_cast<uint32_t*>(v[3]));
  }
  if (usable.ok() && !access.empty()) {
    usable = Cuda(cudaMemPoolSetAccess(memory->pool, access.data(), access.size()),
                  "giving the peers' GPUs access to the stale block");
  }
  Trace(rank, usable.ok() ? "peers given access; barrier" : "unusable: " + usable.ToString());
  // The barrier: every rank's verdict, so that all of them fail together or none does.
  DISTRI_ASSIGN_OR_RETURN(auto verdicts, all_gather({usable.ok() ? 1 : 0, 0, 0, 0}));
  DISTRI_RETURN_IF_ERROR(usable);
  for (size_t r = 0; r < verdicts.size(); ++r) {
    if (verdicts[r].empty() || verdicts[r][0] != 1) {
      return Status::FailedPrecondition("peer exchange: rank " + std::to_string(r) +
                                        " cannot take part (its error names why); use the NCCL all-gathers");
    }
  }
  Trace(rank, "ready");
  std::unique_ptr<PeerExchange> exchange(new PeerExchange());
  exchange->impl_ = std::move(impl);
  return exchange;
}

std::shared_ptr<void> PeerExchange::block() const { return std::shared_ptr<void>(impl_->memory, impl_->block); }

PeerExchange::~PeerExchange() = default;

Status PeerExchange::BeforeWrite(int chunk, void* stream) {
  Impl& m = *impl_;
  DISTRI_RETURN_IF_ERROR(m.CheckChunk(chunk));
  auto s = static_cast<cudaStream_t>(stream);
  if (TraceEnabled()) Trace(m.rank, "before writing chunk " + std::to_string(chunk));
  for (int p = 0; p < m.world; ++p) {
    if (p == m.rank) continue;
    DISTRI_RETURN_IF_ERROR(m.Wait(m.Taken(m.flags, chunk, p), /*taken=*/true, chunk, p, s));
  }
  return Status::Ok();
}

Status PeerExchange::Publish(int chunk, void* stream) {
  Impl& m = *impl_;
  DISTRI_RETURN_IF_ERROR(m.CheckChunk(chunk));
  auto s = static_cast<cudaStream_t>(stream);
  if (TraceEnabled()) Trace(m.rank, "publishing chunk " + std::to_string(chunk));
  // Tell every peer that this rank's slot of the chunk is ready.
  for (int p = 0; p < m.world; ++p) {
    if (p == m.rank) continue;
    DISTRI_RETURN_IF_ERROR(Cuda(kernels::LaunchSetFlag(m.Full(m.peer_flags[static_cast<size_t>(p)], chunk, m.rank),
                                                       1, s),
                                "signalling rank " + std::to_string(p)));
  }
  // Copy every peer's slot once it is ready, after this rank's layers read their stale copies.
  cudaEvent_t reached = m.published[static_cast<size_t>(chunk)];
  DISTRI_RETURN_IF_ERROR(Cuda(cudaEventRecord(reached, s), "event record"));
  DISTRI_RETURN_IF_ERROR(Cuda(cudaStreamWaitEvent(m.side, reached, 0), "stream wait"));
  const int64_t base = m.layout.chunk_base[static_cast<size_t>(chunk)];
  for (int p = 0; p < m.world; ++p) {
    if (p == m.rank) continue;
    const auto pi = static_cast<size_t>(p);
    DISTRI_RETURN_IF_ERROR(m.Wait(m.Full(m.flags, chunk, p), /*taken=*/false, chunk, p, m.side));
    const int64_t offset = base + m.layout.slot_offset[static_cast<size_t>(chunk)][pi];
    const int64_t bytes = m.layout.slot_bytes[static_cast<size_t>(chunk)][pi];
    if (bytes > 0) {
      // A plain device-to-device copy of a peer's address (unified addressing; the peer's pool
      // gave this GPU access). cudaMemcpyPeerAsync was used first; a thread stopped in Publish
      // with it and with this copy alike (ninth session), so the choice is not what stalled.
      DISTRI_RETURN_IF_ERROR(Cuda(cudaMemcpyAsync(m.block + offset, m.blocks[pi] + offset, static_cast<size_t>(bytes),
                                                  cudaMemcpyDeviceToDevice, m.side),
                                  "copying rank " + std::to_string(p) + "'s chunk " + std::to_string(chunk)));
    }
    DISTRI_RETURN_IF_ERROR(Cuda(kernels::LaunchSetFlag(m.Taken(m.peer_flags[pi], chunk, m.rank), 1, m.side),
                                "acknowledging rank " + std::to_string(p)));
  }
  m.pending = true;
  if (TraceEnabled()) Trace(m.rank, "published chunk " + std::to_string(chunk));
  return Status::Ok();
}

Status PeerExchange::Join(void* stream) {
  Impl& m = *impl_;
  if (!m.pending) return Status::Ok();
  m.pending = false;
  ++m.joins;
  if (TraceEnabled()) Trace(m.rank, "step " + std::to_string(m.joins) + " joined");
  DISTRI_RETURN_IF_ERROR(Cuda(cudaEventRecord(m.copied, m.side), "event record"));
  return Cuda(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), m.copied, 0), "stream wait");
}

Status PeerExchange::Check() const {
  const Impl& m = *impl_;
  const uint32_t code = *static_cast<volatile uint32_t*>(m.error);
  if (code == 0) return Status::Ok();
  const uint32_t index = code - 1;
  const bool taken = index % 2 == 1;
  const int64_t chunk = static_cast<int64_t>(index / 2) / m.world;
  const int peer = static_cast<int>(static_cast<int64_t>(index / 2) % m.world);
  return Status::DeadlineExceeded(
      "peer exchange: rank " + std::to_string(m.rank) + " waited more than " +
      std::to_string(m.timeout_ns / 1000000u) + " ms for rank " + std::to_string(peer) +
      (taken ? " to copy its stale chunk " : " to publish its chunk ") + std::to_string(chunk) +
      " (did that rank stop?); the exchange's flags are no longer consistent");
}

#else  // no CUDA

struct PeerExchange::Impl {};

Result<std::unique_ptr<PeerExchange>> PeerExchange::Create(int rank, int world, int, int64_t block_bytes,
                                                           Layout layout, const AllGatherInts&,
                                                           std::chrono::milliseconds) {
  DISTRI_RETURN_IF_ERROR(CheckArguments(rank, world, block_bytes, layout));
  return Status::Unimplemented("peer exchange: this build has no CUDA");
}
std::shared_ptr<void> PeerExchange::block() const { return nullptr; }
PeerExchange::~PeerExchange() = default;
Status PeerExchange::BeforeWrite(int, void*) { return Status::Unimplemented("peer exchange: no CUDA"); }
Status PeerExchange::Publish(int, void*) { return Status::Unimplemented("peer exchange: no CUDA"); }
Status PeerExchange::Join(void*) { return Status::Unimplemented("peer exchange: no CUDA"); }
Status PeerExchange::Check() const { return Status::Ok(); }

#endif

}  // namespace distri::parallel
