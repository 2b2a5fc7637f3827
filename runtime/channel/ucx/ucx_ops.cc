#include "runtime/channel/ucx/ucx_ops.h"

#include <cstring>

#include "runtime/channel/reduce.h"

namespace distri::channel::ucx {
namespace {

constexpr uint32_t kPhaseGather = 1;
constexpr uint32_t kPhaseBarrier = 2;
constexpr uint32_t kPhaseReduceScatter = 3;
constexpr uint32_t kPhaseReduceGather = 4;

class AllGatherVOp final : public UcxOp {
 public:
  AllGatherVOp(std::string what, CollectiveContext ctx, DType dtype, const void* send, void* recv,
               std::vector<size_t> counts)
      : UcxOp(std::move(what)), ctx_(ctx), es_(DTypeSize(dtype)), send_(send),
        recv_(static_cast<char*>(recv)), counts_(std::move(counts)) {}

  bool Step(UcxEngine& engine) override {
    if (done_) return false;
    done_ = true;
    std::vector<size_t> offset(counts_.size(), 0);
    for (size_t r = 1; r < counts_.size(); ++r) offset[r] = offset[r - 1] + counts_[r - 1] * es_;
    const auto me = static_cast<size_t>(ctx_.rank);
    const size_t my_bytes = counts_[me] * es_;
    if (my_bytes > 0 && recv_ + offset[me] != send_) std::memcpy(recv_ + offset[me], send_, my_bytes);
    for (int p = 0; p < ctx_.world_size; ++p) {
      if (p == ctx_.rank) continue;
      const auto pi = static_cast<size_t>(p);
      if (my_bytes > 0) {
        engine.PostSend(*this, p, CollectiveTag(ctx_.rank, ctx_.seq, kPhaseGather), send_, my_bytes);
      }
      if (counts_[pi] > 0) {
        engine.PostRecv(*this, p, CollectiveTag(p, ctx_.seq, kPhaseGather), recv_ + offset[pi],
                        counts_[pi] * es_);
      }
    }
    return true;
  }

 private:
  const CollectiveContext ctx_;
  const size_t es_;
  const void* send_;
  char* recv_;
  const std::vector<size_t> counts_;
  bool done_ = false;
};

class AllReduceOp final : public UcxOp {
 public:
  AllReduceOp(std::string what, CollectiveContext ctx, DType dtype, const void* send, void* recv,
              size_t count)
      : UcxOp(std::move(what)), ctx_(ctx), dtype_(dtype), es_(DTypeSize(dtype)),
        send_(static_cast<const char*>(send)), recv_(static_cast<char*>(recv)) {
    // Chunk r (elements) = count / n, plus one for the first count % n ranks.
    const auto n = static_cast<size_t>(ctx.world_size);
    offset_.resize(n);
    len_.resize(n);
    size_t at = 0;
    for (size_t r = 0; r < n; ++r) {
      len_[r] = count / n + (r < count % n ? 1 : 0);
      offset_[r] = at;
      at += len_[r];
    }
  }

  bool Step(UcxEngine& engine) override {
    const auto me = static_cast<size_t>(ctx_.rank);
    switch (step_++) {
      case 0: {  // reduce-scatter: my chunk of every rank comes to me
        if (ctx_.world_size == 1) {
          if (len_[0] > 0 && send_ != recv_) std::memcpy(recv_, send_, len_[0] * es_);
          step_ = 2;
          return true;
        }
        scratch_.resize((static_cast<size_t>(ctx_.world_size)) * len_[me] * es_);
        for (int p = 0; p < ctx_.world_size; ++p) {
          if (p == ctx_.rank) continue;
          const auto pi = static_cast<size_t>(p);
          if (len_[pi] > 0) {
            engine.PostSend(*this, p, CollectiveTag(ctx_.rank, ctx_.seq, kPhaseReduceScatter),
                            send_ + offset_[pi] * es_, len_[pi] * es_);
          }
          if (len_[me] > 0) {
            engine.PostRecv(*this, p, CollectiveTag(p, ctx_.seq, kPhaseReduceScatter),
                            scratch_.data() + pi * len_[me] * es_, len_[me] * es_);
          }
        }
        return true;
      }
      case 1: {  // reduce my chunk in rank order, then all-gather the reduced chunks
        if (len_[me] > 0) {
          std::vector<const void*> inputs;
          for (size_t q = 0; q < static_cast<size_t>(ctx_.world_size); ++q) {
            inputs.push_back(q == me ? static_cast<const void*>(send_ + offset_[me] * es_)
                                     : static_cast<const void*>(scratch_.data() + q * len_[me] * es_));
          }
          void* out = recv_ + offset_[me] * es_;
          ReduceSum(dtype_, inputs, std::span<void* const>(&out, 1), len_[me]);
        }
        std::vector<char>().swap(scratch_);
        // Phase-2 receives overwrite recv chunks that, in place, were phase-1 send sources:
        // every phase-1 send has completed by now.
        for (int p = 0; p < ctx_.world_size; ++p) {
          if (p == ctx_.rank) continue;
          const auto pi = static_cast<size_t>(p);
          if (len_[me] > 0) {
            engine.PostSend(*this, p, CollectiveTag(ctx_.rank, ctx_.seq, kPhaseReduceGather),
                            recv_ + offset_[me] * es_, len_[me] * es_);
          }
          if (len_[pi] > 0) {
            engine.PostRecv(*this, p, CollectiveTag(p, ctx_.seq, kPhaseReduceGather),
                            recv_ + offset_[pi] * es_, len_[pi] * es_);
          }
        }
        return true;
      }
      default:
        return false;
    }
  }

 private:
  const CollectiveContext ctx_;
  const DType dtype_;
  const size_t es_;
  const char* send_;
  char* recv_;
  std::vector<size_t> offset_, len_;
  std::vector<char> scratch_;  // world_size slots of my chunk (my own slot unused)
  int step_ = 0;
};

class BarrierOp final : public UcxOp {
 public:
  BarrierOp(std::string what, CollectiveContext ctx) : UcxOp(std::move(what)), ctx_(ctx) {}
  bool Step(UcxEngine& engine) override {
    if (done_) return false;
    done_ = true;
    for (int p = 0; p < ctx_.world_size; ++p) {
      if (p == ctx_.rank) continue;
      engine.PostSend(*this, p, CollectiveTag(ctx_.rank, ctx_.seq, kPhaseBarrier), nullptr, 0);
      engine.PostRecv(*this, p, CollectiveTag(p, ctx_.seq, kPhaseBarrier), nullptr, 0);
    }
    return true;
  }

 private:
  const CollectiveContext ctx_;
  bool done_ = false;
};

class P2pOp final : public UcxOp {
 public:
  P2pOp(std::string what, bool is_send, int peer, uint64_t tag, const void* send_data,
        void* recv_data, size_t bytes)
      : UcxOp(std::move(what)), is_send_(is_send), peer_(peer), tag_(tag), send_(send_data),
        recv_(recv_data), bytes_(bytes) {}
  bool Step(UcxEngine& engine) override {
    if (done_) return false;
    done_ = true;
    if (is_send_) {
      engine.PostSend(*this, peer_, tag_, send_, bytes_);
    } else {
      engine.PostRecv(*this, peer_, tag_, recv_, bytes_);
    }
    return true;
  }

 private:
  const bool is_send_;
  const int peer_;
  const uint64_t tag_;
  const void* send_;
  void* recv_;
  const size_t bytes_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<UcxOp> MakeAllGatherVOp(std::string what, CollectiveContext ctx, DType dtype,
                                        const void* send, void* recv, std::vector<size_t> counts) {
  return std::make_unique<AllGatherVOp>(std::move(what), ctx, dtype, send, recv, std::move(counts));
}

std::unique_ptr<UcxOp> MakeAllReduceOp(std::string what, CollectiveContext ctx, DType dtype,
                                       const void* send, void* recv, size_t count) {
  return std::make_unique<AllReduceOp>(std::move(what), ctx, dtype, send, recv, count);
}

std::unique_ptr<UcxOp> MakeBarrierOp(std::string what, CollectiveContext ctx) {
  return std::make_unique<BarrierOp>(std::move(what), ctx);
}

std::unique_ptr<UcxOp> MakeSendOp(std::string what, int rank, int peer, uint32_t tag,
                                  const void* data, size_t bytes) {
  return std::make_unique<P2pOp>(std::move(what), true, peer, P2pTag(rank, tag), data, nullptr, bytes);
}

std::unique_ptr<UcxOp> MakeRecvOp(std::string what, int peer, uint32_t tag, void* data,
                                  size_t bytes) {
  return std::make_unique<P2pOp>(std::move(what), false, peer, P2pTag(peer, tag), nullptr, data, bytes);
}

}  // namespace distri::channel::ucx
