// DeviceBufferChannel: lets the conformance cases (written with host buffers) run on a backend
// that takes CUDA buffers. Every host buffer of a call is mirrored in device memory of the
// current CUDA device: uploaded on a test-owned stream, which is also the `stream` of the real
// call (so the backend must order itself after the upload), and the received data is copied
// back when the operation is waited for. A send that lies inside recv (in place) maps to the
// same place of recv's mirror. CUDA buffers are passed through untouched. Built with CUDA only.
#pragma once

#include <memory>

#include "runtime/channel/channel.h"

namespace distri::channel::testing {

// Takes the real channel (the wrapper owns it: destroying the wrapper destroys it). Uses the
// CUDA device current on the calling thread.
std::unique_ptr<Channel> WithDeviceBuffers(std::unique_ptr<Channel> inner);

}  // namespace distri::channel::testing
