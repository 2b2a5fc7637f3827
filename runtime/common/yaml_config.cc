#include "runtime/common/yaml_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace distri {

struct ConfigNode::Doc {
  std::string name;
};

namespace {

// Edit distance for "did you mean" hints on unknown keys.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Quote(std::string_view s) {
  std::string q = "'";
  for (char c : s.substr(0, 80)) q += (static_cast<unsigned char>(c) < 32 ? '?' : c);
  if (s.size() > 80) q += "...";
  return q + "'";
}

}  // namespace

// yaml-cpp nodes have reference semantics: assigning to a YAML::Node writes through to the
// node it refers to (and throws for "invalid" nodes from missing keys), so children are only
// ever copy-constructed here, never assigned.
static YAML::Node MapChild(const YAML::Node& map, const std::string& key) {
  if (!map.IsMap()) return YAML::Node();
  YAML::Node child = map[key];  // const lookup: never inserts
  return child.IsDefined() ? child : YAML::Node();
}

static YAML::Node SeqChild(const YAML::Node& seq, size_t index) {
  if (!seq.IsSequence() || index >= seq.size()) return YAML::Node();
  return seq[index];
}

ConfigNode::ConfigNode(std::shared_ptr<const Doc> doc, std::shared_ptr<const YAML::Node> node,
                       std::string path, std::shared_ptr<const YAML::Node> parent)
    : doc_(std::move(doc)), node_(std::move(node)), path_(std::move(path)), parent_(std::move(parent)) {}

bool ConfigNode::IsNull() const { return !node_->IsDefined() || node_->IsNull(); }
bool ConfigNode::IsMap() const { return node_->IsMap(); }
bool ConfigNode::IsSequence() const { return node_->IsSequence(); }
size_t ConfigNode::size() const { return (IsMap() || IsSequence()) ? node_->size() : 0; }

bool ConfigNode::Has(std::string_view key) const {
  return !MapChild(*node_, std::string(key)).IsNull();
}

std::string ConfigNode::ChildPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

ConfigNode ConfigNode::operator[](std::string_view key) const {
  YAML::Node child = MapChild(*node_, std::string(key));
  auto parent = child.IsNull() ? node_ : nullptr;
  return ConfigNode(doc_, std::make_shared<const YAML::Node>(child), ChildPath(key), parent);
}

ConfigNode ConfigNode::operator[](size_t index) const {
  YAML::Node child = SeqChild(*node_, index);
  auto parent = child.IsNull() ? node_ : nullptr;
  return ConfigNode(doc_, std::make_shared<const YAML::Node>(child),
                    path_ + "[" + std::to_string(index) + "]", parent);
}

std::vector<std::string> ConfigNode::Keys() const {
  std::vector<std::string> keys;
  if (!IsMap()) return keys;
  for (const auto& kv : *node_) keys.push_back(kv.first.Scalar());
  return keys;
}

std::string ConfigNode::Location() const {
  YAML::Mark mark;
  if (node_->IsDefined() && !node_->IsNull()) mark = node_->Mark();
  else if (parent_) mark = parent_->Mark();
  else if (node_->IsDefined()) mark = node_->Mark();
  std::string loc = doc_->name;
  if (!mark.is_null()) loc += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  return loc;
}

Status ConfigNode::Error(std::string_view what) const {
  std::string m = Location() + ": ";
  if (!path_.empty()) m += path_ + ": ";
  m += what;
  return Status::InvalidArgument(std::move(m));
}

Status ConfigNode::Error(std::string_view key, std::string_view what) const {
  return (*this)[key].Error(what);
}

Status ConfigNode::ExpectMap(bool optional) const {
  if (IsNull()) return optional ? Status::Ok() : Error("is required (a mapping of keys)");
  if (!IsMap()) return Error("expected a mapping of keys, found " + Quote(node_->IsScalar() ? node_->Scalar() : "a list"));
  return Status::Ok();
}

Status ConfigNode::ExpectSequence(bool optional) const {
  if (IsNull()) return optional ? Status::Ok() : Error("is required (a list)");
  if (!IsSequence()) return Error("expected a list, found " + Quote(node_->IsScalar() ? node_->Scalar() : "a mapping"));
  return Status::Ok();
}

Result<std::string> ConfigNode::Scalar(std::string_view key) const {
  ConfigNode c = (*this)[key];
  if (c.IsNull()) return c.Error("is required");
  if (!c.node_->IsScalar()) return c.Error(std::string("expected a single value, found a ") + (c.IsMap() ? "mapping" : "list"));
  return c.node_->Scalar();
}

Result<std::string> ConfigNode::GetString(std::string_view key) const { return Scalar(key); }

Result<int64_t> ConfigNode::GetInt(std::string_view key, int64_t min, int64_t max) const {
  DISTRI_ASSIGN_OR_RETURN(std::string s, Scalar(key));
  std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE) {
    return (*this)[key].Error("expected an integer in " + range + ", found " + Quote(s));
  }
  if (v < min || v > max) {
    return (*this)[key].Error("expected an integer in " + range + ", found " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

Result<double> ConfigNode::GetDouble(std::string_view key, double min, double max) const {
  DISTRI_ASSIGN_OR_RETURN(std::string s, Scalar(key));
  std::ostringstream range;
  range << "[" << min << ", " << max << "]";
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
    return (*this)[key].Error("expected a number in " + range.str() + ", found " + Quote(s));
  }
  if (v < min || v > max) {
    std::ostringstream found;
    found << v;
    return (*this)[key].Error("expected a number in " + range.str() + ", found " + found.str());
  }
  return v;
}

Result<bool> ConfigNode::GetBool(std::string_view key) const {
  DISTRI_ASSIGN_OR_RETURN(std::string s, Scalar(key));
  if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "False" || s == "no" || s == "off") return false;
  return (*this)[key].Error("expected true or false, found " + Quote(s));
}

Result<std::vector<std::string>> ConfigNode::GetStringList(std::string_view key) const {
  ConfigNode c = (*this)[key];
  DISTRI_RETURN_IF_ERROR(c.ExpectSequence());
  std::vector<std::string> out;
  for (size_t i = 0; i < c.size(); ++i) {
    ConfigNode item = c[i];
    if (!item.node_->IsScalar()) return item.Error("expected a single value");
    out.push_back(item.node_->Scalar());
  }
  return out;
}

Result<std::string> ConfigNode::GetString(std::string_view key, std::string fallback) const {
  if (!Has(key)) return fallback;
  return GetString(key);
}
Result<int64_t> ConfigNode::GetInt(std::string_view key, int64_t min, int64_t max, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return GetInt(key, min, max);
}
Result<double> ConfigNode::GetDouble(std::string_view key, double min, double max, double fallback) const {
  if (!Has(key)) return fallback;
  return GetDouble(key, min, max);
}
Result<bool> ConfigNode::GetBool(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  return GetBool(key);
}

Result<std::string> ConfigNode::GetEnum(std::string_view key, std::initializer_list<std::string_view> choices,
                                        std::string fallback) const {
  DISTRI_ASSIGN_OR_RETURN(std::string v, GetString(key, fallback));
  for (auto c : choices) if (c == v) return v;
  std::string list;
  for (auto c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
  return (*this)[key].Error("expected one of " + list + ", found " + Quote(v));
}

Status ConfigNode::CheckKeys(std::initializer_list<std::string_view> allowed) const {
  if (!IsMap()) return Status::Ok();
  for (const auto& kv : *node_) {
    std::string k = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string best;
    size_t best_d = 3;  // suggest only close matches
    for (auto a : allowed) {
      size_t d = EditDistance(k, a);
      if (d < best_d) best_d = d, best = std::string(a);
    }
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    ConfigNode at(doc_, std::make_shared<const YAML::Node>(kv.first), ChildPath(k), nullptr);
    return at.Error("unknown key" + (best.empty() ? "" : " (did you mean '" + best + "'?)") +
                    "; allowed keys here: " + list);
  }
  return Status::Ok();
}

Result<YamlDoc> YamlDoc::LoadString(std::string_view text, std::string name) {
  YamlDoc d;
  auto doc = std::make_shared<ConfigNode::Doc>();
  doc->name = std::move(name);
  try {
    d.root_ = std::make_shared<const YAML::Node>(YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    std::string where = doc->name;
    if (!e.mark.is_null()) where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    return Status::ParseError(where + ": invalid YAML: " + e.msg);
  }
  d.doc_ = std::move(doc);
  return d;
}

Result<YamlDoc> YamlDoc::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read config file " + path);
  return LoadString(ss.str(), path);
}

ConfigNode YamlDoc::root() const { return ConfigNode(doc_, root_, "", nullptr); }
const std::string& YamlDoc::name() const { return doc_->name; }

}  // namespace distri
