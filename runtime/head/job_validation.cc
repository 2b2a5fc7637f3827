#include "runtime/head/job_validation.h"

#include <string>

namespace distri::head {

Status ValidateJobSpec(const wire::JobSpec& spec) {
  if (spec.width % 8 != 0 || spec.height % 8 != 0) {
    return Status::InvalidArgument("job: width and height must be multiples of 8, found " + std::to_string(spec.width) +
                                   "x" + std::to_string(spec.height));
  }
  bool known = false;
  std::string names;
  for (const char* s : kSamplers) {
    known = known || spec.sampler == s;
    names += names.empty() ? s : std::string(", ") + s;
  }
  if (!known) return Status::InvalidArgument("job: sampler '" + spec.sampler + "' is not one of " + names);
  if (!(spec.guidance >= 0 && spec.guidance <= 100)) {
    return Status::InvalidArgument("job: guidance must be in [0, 100], found " + std::to_string(spec.guidance));
  }
  if (!spec.sync_mode.empty()) {
    known = false;
    names.clear();
    for (const char* s : kSyncModes) {
      known = known || spec.sync_mode == s;
      names += names.empty() ? s : std::string(", ") + s;
    }
    if (!known) return Status::InvalidArgument("job: sync_mode '" + spec.sync_mode + "' is not one of " + names);
  }
  return Status::Ok();
}

}  // namespace distri::head
