// Cases only a CUDA-buffer backend (NCCL) has: stream ordering without host waits, CUDA graph
// capture and replay, the device checks. Each runs concurrently on every rank of a gang (like
// the conformance cases) with the rank's CUDA device current; gtest assertions.
#pragma once

#include "runtime/channel/channel.h"

namespace distri::channel::testing {

// Ten in-place all-reduces chained on one stream with StreamWait only (no host wait between
// them), then one download: every step must read the previous result.
void StreamOrderedChain(Channel& ch);

// Captures an AllGather and an AllReduce into a CUDA graph (StreamWait joins them), replays
// it 3 times with new input data, checks each result; the Handles of the captured operations
// are Done, and Wait says FailedPrecondition. Eager operations still work afterwards.
void GraphCaptureReplay(Channel& ch);

// Collective memory (AllocateCollectiveMemory; the channel made with nccl_zero_sm): in-place
// all-gathers into it, eager and inside a replayed CUDA graph, give every rank's slot; then
// the memory is dropped (deregistered) and the channel still works. Prints whether the
// communicator had symmetric memory (else the pointer is null and cudaMalloc'd memory is used).
void CollectiveMemoryAllGather(Channel& ch);

// Host buffers and buffers on another device are refused with InvalidArgument, nothing sent.
void RejectsForeignBuffers(Channel& ch);

}  // namespace distri::channel::testing
