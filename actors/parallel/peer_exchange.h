// The stale exchange of a displaced patch context over the copy engines, between the GPUs of
// one process (DisplacedOptions::peer_exchange; experimental, off by default).
//
// Why: the stale all-gathers of a displaced step move ~0.8 GB into each rank at 2048 px and
// ~2.8 GB at 3840 px; NCCL runs them with kernels that take SMs from the UNet while they
// overlap it (docs/perf/parallel-sdxl.md, eighth session). NCCL's own copy-engine path needs
// NVLink multicast for its synchronisation where it performs, and multicast must stay off on
// our GPU machines. distri drives every GPU of a gang from one process, so the ranks can copy
// each other's chunks with cudaMemcpyAsync of peer addresses (copy engines) and order the copies with 32-bit
// flags in GPU memory, set and awaited by one-thread kernels (kernels/peer_flags.h: one thread
// of one SM while waiting, instead of NCCL's CTAs moving the data; no host thread waits). All
// of it is stream work, so it is captured into the runner's CUDA graphs like the all-gathers
// it replaces.
//
// Protocol, per chunk c, between each owner rank o and each other rank p (pull model; flags
// hold 0 or 1 only, so the same graph replays every step):
//   o, before its first write of its own slot of c in a step (BeforeWrite):
//       wait taken_o[c][p] == 1 (p copied the previous step's slot), set it to 0;
//   o, after its last write of the slot (Publish):
//       set full_p[c][o] = 1 (remote write into p's flags);
//   p, in the same Publish of its own, on a side stream after its compute reached that point
//   (its layers of c have read their stale slots of c):
//       wait full_p[c][o] == 1, set it to 0, copy o's slot of c into p's buffer, set
//       taken_o[c][p] = 1 (remote write);
//   p, at the end of the step (Join): the compute stream waits for the side stream.
// taken starts at 1, full at 0. No LibTorch here: raw device pointers and CUDA streams.
//
// Failures: every wait gives up after `timeout` (a rank that stopped in the middle of a step
// leaves its peers waiting for its flags), records which flag it waited for in host-mapped
// memory and lets the stream go on; Check() reports it, and the exchange (its flags no longer
// consistent) must be dropped with its context.
//
// Memory: the stale block and the flags come from a CUDA memory pool of this exchange whose
// allocations the peer GPUs may access (cudaMemPoolSetAccess). Create does not turn on peer
// access for the whole process (cudaDeviceEnablePeerAccess maps every later cudaMalloc into
// the peers), although NCCL does so itself for ranks of one process.
//
// Status (2026-11-28): NOT YET SHOWN TO WORK in jobs; off by default and reachable only from
// DisplacedOptions / ParallelOptions / parallel_bench --peer-exchange. On 2x H200 (ninth
// session) CUDA-graph replays gave NCCL's bits in the tiny runner test, but eager steps stalled:
// a rank's host thread blocked inside the driver while the other rank's GPU spun in a flag
// wait, and a full-size 2-strip gang at 2048 px did not finish a job. Requiring
// CUDA_MODULE_LOADING=EAGER did not help (tenth session: the first runner case still hung).
// The likeliest cause left: a driver call of one rank's thread that waits for the other GPU
// (LibTorch's caching allocator growing with cudaMalloc while NCCL has enabled peer access
// between the process's GPUs maps the memory into the peers; NCCL warns against allocating
// while its kernels wait for peers, and our flag waits are such kernels, for a whole step).
// So since the tenth session the displaced context uses the exchange only while capturing a
// CUDA graph (replays allocate nothing); eager steps keep the channel's all-gathers into the
// same block, leaving the flags in their initial state. Not yet run on a GPU.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/common/status.h"

namespace distri::parallel {

class PeerExchange {
 public:
  // Where each rank's slot of each chunk lies in the block (bytes; the same on every rank).
  struct Layout {
    std::vector<int64_t> chunk_base;                // per chunk: offset of the chunk in the block
    std::vector<std::vector<int64_t>> slot_offset;  // [chunk][rank]: offset of the slot in the chunk
    std::vector<std::vector<int64_t>> slot_bytes;   // [chunk][rank]
  };
  // Exchanges `mine` with the other ranks (one value vector per rank, in rank order): the
  // caller's channel, called twice by every rank during Create (the addresses, then a barrier).
  // It must wait for its collective without holding the driver's locks: a stream
  // synchronisation, then a copy out (see the deadlock rule in peer_exchange.cc).
  using AllGatherInts = std::function<Result<std::vector<std::vector<int64_t>>>(const std::vector<int64_t>& mine)>;

  // Collective over the `world` ranks: checks that they are GPUs of this process that can
  // reach each other, allocates this rank's stale block (`block_bytes`, zeroed, on `device`)
  // and flags where the peers can reach them, and exchanges their addresses. The block lives
  // as long as the exchange or the last holder of block() (the caller's tensors over it).
  static Result<std::unique_ptr<PeerExchange>> Create(int rank, int world, int device, int64_t block_bytes,
                                                      Layout layout, const AllGatherInts& all_gather,
                                                      std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // This rank's stale block (device memory of `device`, block_bytes long).
  std::shared_ptr<void> block() const;
  ~PeerExchange();
  PeerExchange(const PeerExchange&) = delete;
  PeerExchange& operator=(const PeerExchange&) = delete;

  // On `stream` (this rank's compute stream), see the protocol above.
  Status BeforeWrite(int chunk, void* stream);
  Status Publish(int chunk, void* stream);
  Status Join(void* stream);
  // DeadlineExceeded once a wait gave up (see above), naming the rank and chunk; Ok otherwise.
  // Reads host-mapped memory: no synchronisation, a step or so behind the GPU.
  Status Check() const;

 private:
  PeerExchange() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distri::parallel
