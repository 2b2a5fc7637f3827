// Used when libdistri is built before runtime/client, runtime/head and runtime/node exist
// (capi/CMakeLists.txt picks these or the real ones).
#include "capi/src/backend.h"

namespace distri::capi {

#ifndef DISTRI_CAPI_HAVE_CLIENT
Result<std::unique_ptr<Backend>> ConnectRemoteBackend(const ConnectConfig&) {
  return Status::Unimplemented("this libdistri was built without runtime/client; only \"fake://\" can be reached");
}
#endif

#ifndef DISTRI_CAPI_HAVE_EMBEDDED
Result<std::unique_ptr<Backend>> StartEmbeddedBackend(const LocalConfig&) {
  return Status::Unimplemented("this libdistri was built without runtime/head and runtime/node: no embedded cluster");
}
#endif

}  // namespace distri::capi
