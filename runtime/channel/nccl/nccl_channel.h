// The NCCL backend: CUDA buffers on one GPU per rank, one NCCL communicator per channel. Built
// with DISTRI_HAVE_NCCL only. No CUDA or NCCL types in this header.
//
// Device: the channel belongs to the CUDA device that is current on the calling thread when
// MakeChannel runs (cudaSetDevice first). It accepts buffers on that device only
// (SupportsDevice: cuda:<that device> true, every other device and host memory false). Its
// internal thread and every call make that device current themselves.
//
// Streams: the channel owns a communication stream (non-blocking, highest priority). Each
// operation records an event on the caller's `stream`, makes the communication stream wait
// for it, enqueues the NCCL call there and records a completion event. Handle::StreamWait is
// cudaStreamWaitEvent (the host does not block); Handle::Wait polls the completion event and
// NCCL's asynchronous error (a broken peer or an Abort ends the wait; the timeout is honoured).
// The synchronous forms (Channel::AllGather, ...) wait on the host.
//
// CUDA graphs: when the caller's stream is being captured, the same event fork/join is
// captured (event record and stream wait are legal in a capture; nothing queries captured
// work). The operation is then part of the graph: its Handle is Done at once, StreamWait on a
// capturing stream joins it (required before cudaStreamEndCapture, on the capture's origin
// stream or one joined to it), and Wait returns FailedPrecondition (it also joins the fork
// back into the issuing stream, so that the capture stays valid). The synchronous forms
// therefore fail under capture: use the Async forms and StreamWait. While a capture holds the
// communication stream, operations must be issued on capturing streams (others give
// FailedPrecondition). Buffers must outlive the graph; a graph must not be launched after
// the channel was aborted or destroyed.
//
// Operations and NCCL:
//   AllGather    ncclAllGather (in place when send is this rank's slot).
//   AllGatherV   equal counts: ncclAllGather; uneven: one group of one ncclBroadcast per rank
//                with a non-empty strip, into its slot.
//   AllReduce    ncclAllReduce(sum). Every rank receives the same bits (each element is
//                reduced once and the result sent to every rank by NCCL's ring and tree
//                algorithms; NVLink SHARP, which would differ, must stay off: NCCL_NVLS_ENABLE=0
//                is required on our machines anyway). Unlike the local and UCX backends the
//                summation order is NCCL's, not rank order, and f16/bf16 are summed in their
//                own precision: results may differ from theirs in the last bits. Integers wrap.
//   Send/Recv    ncclSend/ncclRecv. NCCL has no tags: between a pair of ranks, the k-th Send
//                from A to B matches the k-th Recv on B from A, whatever the tags (they name
//                the operation in messages and are not checked). Sizes must agree; a
//                mismatch is not detected (NCCL's behaviour is undefined). A zero-element
//                Send/Recv completes at once and sends nothing (on both sides). Sends and
//                Recvs are deferred and launched together as one NCCL group when the channel
//                next issues a collective or any operation is waited on (Wait, StreamWait,
//                Done), so that a rank can post the Recvs and Sends of an exchange (a ring, a
//                self-send) in any order before waiting on one of them: two ranks whose
//                sends each wait behind a receive never deadlock on the stream.
//   Barrier      a 1-element all-reduce; Wait returns once every rank has entered it.
// Zero-element collectives complete at once on every rank (the counts agree by contract).
//
// Issuing takes the channel's lock and waits for NCCL to enqueue (the communicator is
// non-blocking, so NCCL may finish an enqueue in the background); that takes microseconds
// once connections exist. MakeChannel connects every pair for Send/Recv; NCCL connects the
// collective algorithms on their first use unless NCCL_RUNTIME_CONNECT=0 (then at creation),
// during which the first collective of a kind blocks its issuing thread until the peers
// issue theirs. An enqueue that does not finish within op_timeout aborts the channel.
//
// Failures: Abort(reason) calls ncclCommAbort (safe while another thread waits: waiters poll
// the sticky failure), fails pending and future operations with Aborted(reason), waits (at
// most 10 s) for the communication stream to drain, and tells every peer through the peer
// monitor (peer_monitor.h: a TCP connection per pair, on ChannelOptions::nccl_monitor_host).
// A peer's abort, its channel's destruction, its process' death, or an NCCL asynchronous
// error (ncclCommGetAsyncError: network failures, ...) fail the channel with Unavailable,
// and the local communicator is aborted so that kernels waiting for that peer end. Destroying
// the channel finalizes and destroys the communicator when nothing is pending, else aborts it
// (pending operations fail with Aborted "... destroyed ...").
#pragma once

#include <memory>

#include "runtime/channel/channel.h"
#include "runtime/channel/rendezvous.h"

namespace distri::channel::nccl {

// Rank 0 creates the NCCL unique id and puts it (hex) under "<prefix>/nccl_id"; the others
// get it. The peer monitors meet under "<prefix>/nccl_monitor/<rank>". Then the non-blocking
// communicator is created and polled until ready, every pair is connected and a barrier runs,
// all within options.connect_timeout.
// Errors: FailedPrecondition (no CUDA device), ParseError (a malformed unique id: is every
// rank using the nccl backend?), DeadlineExceeded (a rank did not show up), Unavailable (NCCL
// or the monitor connections failed).
Result<std::unique_ptr<Channel>> MakeNcclChannel(int rank, int world_size, Rendezvous& rendezvous,
                                                 const ChannelOptions& options);

}  // namespace distri::channel::nccl
