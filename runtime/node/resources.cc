#include "runtime/node/resources.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "runtime/common/device_info.h"

#ifdef DISTRI_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace distri::node {

Result<std::vector<int>> SelectGpus(std::string_view spec) {
  const DeviceInfo info = QueryDeviceInfo();
  const int count = info.cuda_device_count;
  std::vector<int> out;
  if (spec == "all") {
    for (int i = 0; i < count; ++i) out.push_back(i);
    return out;
  }
  if (spec == "none" || spec.empty()) return out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string_view item = spec.substr(start, comma == std::string_view::npos ? spec.npos : comma - start);
    int index = -1;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), index);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || index < 0) {
      return Status::InvalidArgument("--gpus: '" + std::string(item) +
                                     "' is not a CUDA device index (expected all, none or a list like 0,1)");
    }
    if (info.built_with_cuda && index >= count) {
      return Status::InvalidArgument("--gpus: '" + std::string(item) + "' is not a CUDA device of this machine (" +
                                     std::to_string(count) + " found: " + info.ToString() + ")");
    }
    if (std::find(out.begin(), out.end(), index) != out.end()) {
      return Status::InvalidArgument("--gpus: device " + std::to_string(index) + " is listed twice");
    }
    out.push_back(index);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<wire::GpuInfo> DescribeGpus(const std::vector<int>& gpus) {
  std::vector<wire::GpuInfo> out;
  for (int i : gpus) {
    wire::GpuInfo g;
    g.index = static_cast<uint32_t>(i);
    g.name = "cuda:" + std::to_string(i);
#ifdef DISTRI_HAVE_CUDA
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess) {
      g.name = prop.name;
      g.memory_bytes = prop.totalGlobalMem;
    } else {
      cudaGetLastError();
    }
#endif
    out.push_back(std::move(g));
  }
  return out;
}

std::string LocalHostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string ModelName(const std::string& model_dir) {
  std::string d = model_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  size_t slash = d.rfind('/');
  std::string name = slash == std::string::npos ? d : d.substr(slash + 1);
  return name.empty() ? "model" : name;
}

Result<wire::NodeResources> DescribeNode(const std::vector<int>& gpus, int cpu_actors,
                                         const std::string& model_dir, const std::string& hostname) {
  if (cpu_actors < 0) return Status::InvalidArgument("--cpu-actors: must be >= 0, got " + std::to_string(cpu_actors));
  if (gpus.empty() && cpu_actors == 0) {
    return Status::InvalidArgument("the node has nothing to run: no GPU selected (--gpus; " +
                                   QueryDeviceInfo().ToString() + ") and --cpu-actors is 0");
  }
  wire::NodeResources r;
  r.hostname = hostname.empty() ? LocalHostname() : hostname;
  r.gpus = DescribeGpus(gpus);
  r.cpu_actors = static_cast<uint32_t>(cpu_actors);
  if (!model_dir.empty()) r.models.push_back(ModelName(model_dir));
  return r;
}

}  // namespace distri::node
