#include "actors/model/json_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

namespace distri::model {

struct JsonConfig::Impl {
  nlohmann::json j;
};

namespace {

std::string Describe(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool IsInt(const nlohmann::json& v) {
  if (v.is_number_integer()) return true;
  // diffusers sometimes writes 1.0 for integer options; accept exact integral floats.
  return v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>();
}

int64_t AsInt(const nlohmann::json& v) {
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
}

}  // namespace

JsonConfig::JsonConfig() : impl_(std::make_unique<Impl>()) {}
JsonConfig::~JsonConfig() = default;
JsonConfig::JsonConfig(JsonConfig&&) noexcept = default;
JsonConfig& JsonConfig::operator=(JsonConfig&&) noexcept = default;
JsonConfig::JsonConfig(const JsonConfig& o) : impl_(std::make_unique<Impl>(*o.impl_)), name_(o.name_) {}

Result<JsonConfig> JsonConfig::Parse(std::string_view text, std::string name) {
  JsonConfig c;
  c.name_ = std::move(name);
  try {
    c.impl_->j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    return Status::ParseError(c.name_ + ": invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
  if (!c.impl_->j.is_object()) return Status::ParseError(c.name_ + ": expected a JSON object at the top level");
  return c;
}

Result<JsonConfig> JsonConfig::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

bool JsonConfig::Has(std::string_view key) const {
  auto it = impl_->j.find(std::string(key));
  return it != impl_->j.end() && !it->is_null();
}

Status JsonConfig::Error(std::string_view key, std::string_view what) const {
  return Status::InvalidArgument(name_ + ": " + std::string(key) + ": " + std::string(what));
}

#define DISTRI_JSON_GET_(key)                                  \
  if (!Has(key)) return Error(key, "is required but missing"); \
  const nlohmann::json& v = impl_->j.at(std::string(key))

Result<int64_t> JsonConfig::GetInt(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!IsInt(v)) return Error(key, "expected an integer, found " + Describe(v));
  return AsInt(v);
}

Result<int64_t> JsonConfig::GetInt(std::string_view key, int64_t fallback) const {
  return Has(key) ? GetInt(key) : Result<int64_t>(fallback);
}

Result<double> JsonConfig::GetDouble(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!v.is_number()) return Error(key, "expected a number, found " + Describe(v));
  return v.get<double>();
}

Result<double> JsonConfig::GetDouble(std::string_view key, double fallback) const {
  return Has(key) ? GetDouble(key) : Result<double>(fallback);
}

Result<bool> JsonConfig::GetBool(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  const nlohmann::json& v = impl_->j.at(std::string(key));
  if (!v.is_boolean()) return Error(key, "expected true or false, found " + Describe(v));
  return v.get<bool>();
}

Result<std::string> JsonConfig::GetString(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!v.is_string()) return Error(key, "expected a string, found " + Describe(v));
  return v.get<std::string>();
}

Result<std::string> JsonConfig::GetString(std::string_view key, std::string fallback) const {
  return Has(key) ? GetString(key) : Result<std::string>(std::move(fallback));
}

Result<std::vector<int64_t>> JsonConfig::GetIntList(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!v.is_array()) return Error(key, "expected a list of integers, found " + Describe(v));
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!IsInt(e)) return Error(key, "expected a list of integers, found element " + Describe(e));
    out.push_back(AsInt(e));
  }
  return out;
}

Result<std::vector<double>> JsonConfig::GetDoubleList(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!v.is_array()) return Error(key, "expected a list of numbers, found " + Describe(v));
  std::vector<double> out;
  for (const auto& e : v) {
    if (!e.is_number()) return Error(key, "expected a list of numbers, found element " + Describe(e));
    out.push_back(e.get<double>());
  }
  return out;
}

Result<std::vector<std::string>> JsonConfig::GetStringList(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!v.is_array()) return Error(key, "expected a list of strings, found " + Describe(v));
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) return Error(key, "expected a list of strings, found element " + Describe(e));
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::vector<int64_t>> JsonConfig::GetIntOrList(std::string_view key, size_t n) const {
  DISTRI_JSON_GET_(key);
  if (IsInt(v)) return std::vector<int64_t>(n, AsInt(v));
  DISTRI_ASSIGN_OR_RETURN(std::vector<int64_t> list, GetIntList(key));
  if (list.size() != n) {
    return Error(key, "expected " + std::to_string(n) + " entries (one per block), found " +
                          std::to_string(list.size()));
  }
  return list;
}

Result<std::vector<int64_t>> JsonConfig::GetIntOrList(std::string_view key, size_t n, int64_t fallback) const {
  if (!Has(key)) return std::vector<int64_t>(n, fallback);
  return GetIntOrList(key, n);
}

Result<JsonConfig> JsonConfig::GetObject(std::string_view key) const {
  DISTRI_JSON_GET_(key);
  if (!v.is_object()) return Error(key, "expected an object, found " + Describe(v));
  JsonConfig c;
  c.impl_->j = v;
  c.name_ = name_ + ":" + std::string(key);
  return c;
}

#undef DISTRI_JSON_GET_

std::string JsonConfig::Dump() const { return impl_->j.dump(2); }

}  // namespace distri::model
