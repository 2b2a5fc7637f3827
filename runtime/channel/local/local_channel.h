// The local backend: the ranks of a gang are threads of one process sharing memory. For tests
// (the reference every other backend is compared with) and single-process multi-rank runs.
// CPU buffers only. Matching and error semantics are the strictest of all backends: sends are
// never buffered, and collectives whose dtype/counts differ across ranks fail with
// InvalidArgument on every rank.
#pragma once

#include <memory>
#include <vector>

#include "runtime/channel/channel.h"
#include "runtime/channel/rendezvous.h"

namespace distri::channel::local {

class LocalGang;

class LocalChannel final : public Channel {
 public:
  LocalChannel(std::shared_ptr<LocalGang> gang, int rank, const ChannelOptions& options);
  ~LocalChannel() override;

  int rank() const override { return rank_; }
  int world_size() const override;
  std::string_view backend() const override { return "local"; }
  bool SupportsDevice(Device device) const override { return device.is_cpu(); }
  Status status() const override;

 protected:
  Handle DoAllGather(ConstBuffer send, Buffer recv, void* stream) override;
  Handle DoAllGatherV(ConstBuffer send, Buffer recv, std::span<const size_t> counts,
                      void* stream) override;
  Handle DoAllReduce(ConstBuffer send, Buffer recv, ReduceOp op, void* stream) override;
  Handle DoSend(ConstBuffer data, int peer, uint32_t tag, void* stream) override;
  Handle DoRecv(Buffer data, int peer, uint32_t tag, void* stream) override;
  Handle DoBarrier() override;
  void DoAbort(std::string_view reason) override;

 private:
  Handle Collective(int kind, ConstBuffer send, Buffer recv, std::vector<size_t> counts);
  std::string Where() const;

  std::shared_ptr<LocalGang> gang_;
  const int rank_;
  std::mutex mu_;
  uint64_t next_seq_ = 0;
};

// A whole gang in one call: world_size channels, index = rank.
Result<std::vector<std::unique_ptr<Channel>>> MakeLocalGang(int world_size,
                                                            const ChannelOptions& options = {});

// Joins the in-process gang named in `rendezvous` (rank 0 creates it and puts its id under
// "<prefix>/local_gang"); returns once every rank has joined or connect_timeout passed. Ranks
// in another process get FailedPrecondition (the local backend cannot cross processes).
Result<std::unique_ptr<Channel>> MakeLocalChannel(int rank, int world_size, Rendezvous& rendezvous,
                                                  const ChannelOptions& options);

}  // namespace distri::channel::local
