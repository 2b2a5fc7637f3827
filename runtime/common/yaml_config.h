// YAML configuration loading with validation that names file, line and key.
//
//   DISTRI_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::LoadFile("cluster.yaml"));
//   ConfigNode root = doc.root();
//   DISTRI_RETURN_IF_ERROR(root.CheckKeys({"head", "nodes"}));
//   DISTRI_ASSIGN_OR_RETURN(int64_t port, root["head"].GetInt("port", 1, 65535, 6380));
//
// Errors read "cluster.yaml:12:7: nodes[1].gpus: expected an integer in [0, 64], found 'four'".
// Unknown keys are errors (a typo must not be silently ignored), with a "did you mean" hint.
// A ConfigNode is a cheap view; it keeps its document alive. Not thread-safe for writing,
// safe to read from several threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace YAML { class Node; }

namespace distri {

class ConfigNode {
 public:
  // Whether the key is present (and not null) in this mapping.
  bool Has(std::string_view key) const;
  bool IsMap() const;
  bool IsSequence() const;
  bool IsNull() const;  // absent or explicit null
  size_t size() const;  // sequence length or number of keys

  // Child by key (mapping) or index (sequence). A missing child is a null node whose errors
  // still name the full key path.
  ConfigNode operator[](std::string_view key) const;
  ConfigNode operator[](size_t index) const;
  std::vector<std::string> Keys() const;

  // Required values: an error names the key when it is missing or of the wrong type.
  Result<std::string> GetString(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key, int64_t min, int64_t max) const;
  Result<double> GetDouble(std::string_view key, double min, double max) const;
  Result<bool> GetBool(std::string_view key) const;
  Result<std::vector<std::string>> GetStringList(std::string_view key) const;

  // Optional values: the fallback when the key is absent; an error when present but bad.
  Result<std::string> GetString(std::string_view key, std::string fallback) const;
  Result<int64_t> GetInt(std::string_view key, int64_t min, int64_t max, int64_t fallback) const;
  Result<double> GetDouble(std::string_view key, double min, double max, double fallback) const;
  Result<bool> GetBool(std::string_view key, bool fallback) const;
  // One of `choices`; the error lists them.
  Result<std::string> GetEnum(std::string_view key, std::initializer_list<std::string_view> choices,
                              std::string fallback) const;

  // Fails on the first key of this mapping not in `allowed`.
  Status CheckKeys(std::initializer_list<std::string_view> allowed) const;
  // Fails unless this node is a mapping (or absent, when `optional`).
  Status ExpectMap(bool optional = false) const;
  Status ExpectSequence(bool optional = false) const;

  // "nodes[1].gpus" (empty for the root).
  const std::string& path() const { return path_; }
  // "cluster.yaml:12:7: nodes[1].gpus: <what>" for errors found by the caller.
  Status Error(std::string_view what) const;
  Status Error(std::string_view key, std::string_view what) const;

 private:
  friend class YamlDoc;
  struct Doc;
  ConfigNode(std::shared_ptr<const Doc> doc, std::shared_ptr<const YAML::Node> node,
             std::string path, std::shared_ptr<const YAML::Node> parent);
  std::string Location() const;
  std::string ChildPath(std::string_view key) const;
  Result<std::string> Scalar(std::string_view key) const;

  std::shared_ptr<const Doc> doc_;
  std::shared_ptr<const YAML::Node> node_;
  std::string path_;
  // For a missing child: its parent, so errors point at the line of the enclosing mapping.
  std::shared_ptr<const YAML::Node> parent_;
};

class YamlDoc {
 public:
  // Parse errors name the file and the line and column where parsing stopped.
  static Result<YamlDoc> LoadFile(const std::string& path);
  // `name` stands for the file name in error messages.
  static Result<YamlDoc> LoadString(std::string_view text, std::string name);

  ConfigNode root() const;
  const std::string& name() const;

 private:
  std::shared_ptr<const ConfigNode::Doc> doc_;
  std::shared_ptr<const YAML::Node> root_;
};

}  // namespace distri
