#include "actors/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <torch/csrc/autograd/grad_mode.h>

namespace distri::model {
namespace {

// A header larger than this is not a weight file (the biggest real ones are a few MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat},  {"F16", at::kHalf},    {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},    {"I16", at::kShort},   {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},  {"F8_E4M3", at::kFloat8_e4m3fn},
    {"F8_E5M2", at::kFloat8_e5m2},
};

bool DtypeFromName(const std::string& s, at::ScalarType* out) {
  for (const auto& d : kDtypes) {
    if (s == d.name) return *out = d.type, true;
  }
  return false;
}

const char* DtypeToName(at::ScalarType t) {
  for (const auto& d : kDtypes) {
    if (t == d.type) return d.name;
  }
  return nullptr;
}

std::string ShapeString(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::IoError("cannot stat " + path);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Status::ParseError(path + ": not a safetensors file (" + std::to_string(size) + " bytes, need at least 8)");
  }
  // MAP_PRIVATE + PROT_WRITE: an accidental in-place write to a tensor view copies the page
  // instead of crashing or changing the file.
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return Status::IoError("cannot map " + path + ": " + std::strerror(errno));

  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = map;
  f->map_size_ = size;
  f->self_ = f;

  uint64_t header_len = 0;
  std::memcpy(&header_len, map, 8);  // little-endian on every platform we build for
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return Status::ParseError(path + ": header length " + std::to_string(header_len) +
                              " does not fit the file (" + std::to_string(size) + " bytes)");
  }
  f->data_start_ = 8 + header_len;
  const uint64_t data_size = size - f->data_start_;
  const char* hdr = static_cast<const char*>(map) + 8;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(hdr, hdr + header_len);
  } catch (const nlohmann::json::parse_error& e) {
    return Status::ParseError(path + ": header is not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Status::ParseError(path + ": header is not a JSON object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return Status::ParseError(path + ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (m.value().is_string()) f->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      return Status::ParseError(path + ": tensor '" + name + "': " + what);
    };
    if (!v.is_object()) return bad("entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) return bad("missing dtype");
    Entry e;
    e.name = name;
    if (!DtypeFromName(v["dtype"].get<std::string>(), &e.dtype)) return bad("unsupported dtype " + v["dtype"].dump());
    if (!v.contains("shape") || !v["shape"].is_array()) return bad("missing shape");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) return bad("shape has a non-integer or negative dimension " + d.dump());
      uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 40) || (dim != 0 && numel > (1ull << 50) / dim)) return bad("shape is too large");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
        !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned()) {
      return bad("data_offsets must be two non-negative integers");
    }
    uint64_t begin = v["data_offsets"][0].get<uint64_t>(), end = v["data_offsets"][1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] outside the data section of " + std::to_string(data_size) + " bytes");
    }
    uint64_t expect = numel * at::elementSize(e.dtype);
    if (end - begin != expect) {
      return bad("shape " + ShapeString(e.shape) + " needs " + std::to_string(expect) + " bytes, data_offsets give " +
                 std::to_string(end - begin));
    }
    e.offset = begin;
    e.nbytes = end - begin;
    f->index_[name] = f->entries_.size();
    f->entries_.push_back(std::move(e));
  }
  return f;
}

bool SafetensorsFile::Has(std::string_view name) const { return index_.count(std::string(name)) > 0; }

Result<at::Tensor> SafetensorsFile::Get(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return Status::NotFound(path_ + ": no tensor '" + std::string(name) + "'");
  const Entry& e = entries_[it->second];
  char* ptr = static_cast<char*>(map_) + data_start_ + e.offset;
  auto opts = at::TensorOptions().dtype(e.dtype).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(ptr) % at::elementSize(e.dtype) != 0) {
    // Misaligned data (legal in the format, rare in practice): copy into an aligned tensor.
    at::Tensor t = at::empty(e.shape, opts);
    std::memcpy(t.data_ptr(), ptr, e.nbytes);
    return t;
  }
  std::shared_ptr<SafetensorsFile> keep = self_.lock();
  return at::from_blob(ptr, e.shape, [keep](void*) mutable { keep.reset(); }, opts);
}

Result<TensorMap> SafetensorsFile::GetAll(std::optional<at::ScalarType> dtype) const {
  TensorMap out;
  for (const Entry& e : entries_) {
    DISTRI_ASSIGN_OR_RETURN(at::Tensor t, Get(e.name));
    if (dtype && t.is_floating_point() && t.scalar_type() != *dtype) t = t.to(*dtype);
    out.emplace(e.name, std::move(t));
  }
  return out;
}

Status SaveSafetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const char* dt = DtypeToName(t.scalar_type());
    if (dt == nullptr) return Status::InvalidArgument(path + ": tensor '" + name + "' has unsupported dtype");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    uint64_t n = c.numel() * c.element_size();
    header[name] = {{"dtype", dt}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(std::move(c));
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError("cannot create " + path);
  uint64_t len = h.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& c : data) out.write(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  out.close();
  if (!out) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

namespace {

Result<TensorMap> LoadSharded(const std::string& dir, const std::string& index_path,
                              std::optional<at::ScalarType> dtype) {
  std::ifstream in(index_path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    return Status::ParseError(index_path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return Status::ParseError(index_path + ": expected an object with a \"weight_map\" object");
  }
  std::map<std::string, std::vector<std::string>> by_file;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) return Status::ParseError(index_path + ": weight_map['" + it.key() + "'] is not a file name");
    std::string file = it.value().get<std::string>();
    if (file.find('/') != std::string::npos || file.find("..") != std::string::npos || file.empty()) {
      return Status::ParseError(index_path + ": weight_map['" + it.key() + "'] names '" + file +
                                "', which is not a file in the same folder");
    }
    by_file[file].push_back(it.key());
  }
  TensorMap out;
  for (const auto& [file, names] : by_file) {
    DISTRI_ASSIGN_OR_RETURN(auto shard, SafetensorsFile::Open(dir + "/" + file));
    for (const auto& name : names) {
      if (!shard->Has(name)) {
        return Status::ParseError(index_path + ": tensor '" + name + "' is listed in " + file + " but not stored there");
      }
      DISTRI_ASSIGN_OR_RETURN(at::Tensor t, shard->Get(name));
      if (dtype && t.is_floating_point() && t.scalar_type() != *dtype) t = t.to(*dtype);
      out.emplace(name, std::move(t));
    }
  }
  return out;
}

}  // namespace

Result<TensorMap> LoadComponentWeights(const std::string& dir, const std::string& basename,
                                       const std::string& variant, std::optional<at::ScalarType> dtype) {
  namespace fs = std::filesystem;
  std::vector<std::string> stems;
  if (!variant.empty()) stems.push_back(basename + "." + variant);
  stems.push_back(basename);
  for (const auto& stem : stems) {
    std::string single = dir + "/" + stem + ".safetensors";
    if (fs::exists(single)) {
      DISTRI_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(single));
      return f->GetAll(dtype);
    }
    std::string index = single + ".index.json";
    if (fs::exists(index)) return LoadSharded(dir, index, dtype);
  }
  std::string tried;
  for (const auto& stem : stems) tried += (tried.empty() ? "" : ", ") + stem + ".safetensors[.index.json]";
  if (variant.empty()) {
    // No variant asked and no plain weights: a folder holding only one variant (say only
    // model.fp16.safetensors, as `save_pretrained(variant="fp16")` writes) loads that one;
    // with several variants the caller must choose.
    std::set<std::string> variants;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      for (const std::string suffix : {".safetensors", ".safetensors.index.json"}) {
        if (name.size() > basename.size() + 1 + suffix.size() && name.rfind(basename + ".", 0) == 0 &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
          const std::string v = name.substr(basename.size() + 1, name.size() - suffix.size() - basename.size() - 1);
          if (!v.empty() && v.find('.') == std::string::npos) variants.insert(v);
        }
      }
    }
    if (variants.size() == 1) return LoadComponentWeights(dir, basename, *variants.begin(), dtype);
    if (variants.size() > 1) {
      std::string list;
      for (const auto& v : variants) list += (list.empty() ? "" : ", ") + v;
      return Status::NotFound(dir + ": no " + basename + ".safetensors, but the variants " + list +
                              ": choose one (--variant)");
    }
  }
  return Status::NotFound(dir + ": no weights found (looked for " + tried + ")");
}

Status LoadStateDict(torch::nn::Module& module, const TensorMap& weights, const std::string& component,
                     bool allow_unexpected) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing;
  std::set<std::string> used;
  auto assign = [&](const std::string& name, at::Tensor& dst) -> Status {
    auto it = weights.find(name);
    if (it == weights.end()) {
      missing.push_back(name);
      return Status::Ok();
    }
    used.insert(name);
    if (!it->second.sizes().equals(dst.sizes())) {
      return Status::InvalidArgument(component + ": " + name + ": expected shape " + ShapeString(dst.sizes()) +
                                     ", file has " + ShapeString(it->second.sizes()));
    }
    try {
      dst.copy_(it->second);
    } catch (const c10::Error& e) {
      return Status::Internal(component + ": " + name + ": cannot copy weights: " + e.what_without_backtrace());
    }
    return Status::Ok();
  };
  for (auto& p : module.named_parameters(/*recurse=*/true)) DISTRI_RETURN_IF_ERROR(assign(p.key(), p.value()));
  for (auto& b : module.named_buffers(/*recurse=*/true)) DISTRI_RETURN_IF_ERROR(assign(b.key(), b.value()));
  auto list = [](const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size() && i < 5; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > 5) s += ", ... (" + std::to_string(names.size()) + " in all)";
    return s;
  };
  if (!missing.empty()) return Status::InvalidArgument(component + ": weights missing from the files: " + list(missing));
  if (!allow_unexpected && used.size() != weights.size()) {
    std::vector<std::string> extra;
    for (const auto& [name, t] : weights) if (!used.count(name)) extra.push_back(name);
    return Status::InvalidArgument(component + ": unexpected tensors in the files (not in the model built from its config): " +
                                   list(extra));
  }
  return Status::Ok();
}

}  // namespace distri::model
