// Reading diffusers/transformers config.json files with errors that name file and key.
//
//   DISTRI_ASSIGN_OR_RETURN(JsonConfig cfg, JsonConfig::Load(dir + "/config.json"));
//   DISTRI_ASSIGN_OR_RETURN(int64_t ch, cfg.GetInt("in_channels", 4));          // optional
//   DISTRI_ASSIGN_OR_RETURN(auto blocks, cfg.GetIntList("block_out_channels"));  // required
//
// Errors read "unet/config.json: block_out_channels: expected a list of integers, found \"x\"".
// A JSON null counts as absent (diffusers writes null for unset options).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace distri::model {

class JsonConfig {
 public:
  static Result<JsonConfig> Load(const std::string& path);
  // `name` stands for the file in error messages.
  static Result<JsonConfig> Parse(std::string_view text, std::string name);
  ~JsonConfig();
  JsonConfig(JsonConfig&&) noexcept;
  JsonConfig& operator=(JsonConfig&&) noexcept;
  JsonConfig(const JsonConfig&);

  const std::string& name() const { return name_; }
  bool Has(std::string_view key) const;  // present and not null

  Result<int64_t> GetInt(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key, int64_t fallback) const;
  Result<double> GetDouble(std::string_view key) const;
  Result<double> GetDouble(std::string_view key, double fallback) const;
  Result<bool> GetBool(std::string_view key, bool fallback) const;
  Result<std::string> GetString(std::string_view key) const;
  Result<std::string> GetString(std::string_view key, std::string fallback) const;
  Result<std::vector<int64_t>> GetIntList(std::string_view key) const;
  Result<std::vector<double>> GetDoubleList(std::string_view key) const;
  Result<std::vector<std::string>> GetStringList(std::string_view key) const;
  // An int or a list of ints (diffusers allows both for e.g. attention_head_dim,
  // transformer_layers_per_block): a single int is repeated `n` times; a list must have n entries.
  Result<std::vector<int64_t>> GetIntOrList(std::string_view key, size_t n) const;
  Result<std::vector<int64_t>> GetIntOrList(std::string_view key, size_t n, int64_t fallback) const;
  // A nested object, e.g. scheduler configs are flat but model_index.json holds lists.
  Result<JsonConfig> GetObject(std::string_view key) const;

  Status Error(std::string_view key, std::string_view what) const;
  std::string Dump() const;

 private:
  struct Impl;
  JsonConfig();
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

}  // namespace distri::model
