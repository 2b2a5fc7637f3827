// Internal to runtime/wire: bounded msgpack parsing of untrusted bytes, and the two field
// visitors (FieldWriter, FieldReader) through which every message's schema is written once
// (schema.h) and used for both encoding and decoding. Not installed; includes msgpack.hpp.
#pragma once

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST 1
#endif
#include <msgpack.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/common/ids.h"
#include "runtime/common/status.h"

namespace distri::wire::internal {

// Bounds for one parse. Parsing happens in two passes: a visitor pass that allocates nothing
// and checks every declared length against these bounds and against the bytes actually
// present, then msgpack::unpack (which pre-allocates arrays from their declared sizes: the
// first pass is what makes that safe).
struct ParseLimits {
  size_t max_array = 0;    // elements of one array
  size_t max_map = 0;      // key/value pairs of one map
  size_t max_str = 0;      // bytes of one str
  size_t max_bin = 0;      // bytes of one bin
  size_t max_ext = 0;      // bytes of one ext
  size_t max_depth = 0;    // nesting of arrays/maps (the top level is depth 1)
  size_t max_objects = 0;  // msgpack objects in total (each costs ~24 bytes once unpacked)
};

// Parses one msgpack object from the start of `bytes`. `what` names the thing parsed in
// errors ("SubmitJob payload"). With `consumed` null, bytes after the object are an error;
// otherwise *consumed receives the object's length. Never throws.
Status ParseUntrusted(std::string_view bytes, const ParseLimits& limits, std::string_view what,
                      msgpack::object_handle* out, size_t* consumed = nullptr);

// Strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF): every str field.
bool IsValidUtf8(std::string_view s);

// "positive integer", "str", "map", ...
std::string_view ObjectTypeName(msgpack::type::object_type type);

enum class Presence { kRequired, kOptional };

template <typename T>
concept Integer = std::integral<std::remove_const_t<T>> && !std::same_as<std::remove_const_t<T>, bool>;

// Appends msgpack to a std::string (msgpack::packer's Stream concept).
struct StringSink {
  std::string* out;
  void write(const char* data, size_t n) { out->append(data, n); }
};

// Encodes a struct as a msgpack map, one Visit* call per field. Checks the same limits as
// FieldReader so that a message that encodes also decodes; the first violation is kept in
// status() and later calls do nothing.
class FieldWriter {
 public:
  explicit FieldWriter(std::string context) : context_(std::move(context)), sink_{&body_}, pk_(sink_) {}
  FieldWriter(const FieldWriter&) = delete;  // pk_ points into body_
  FieldWriter& operator=(const FieldWriter&) = delete;

  const Status& status() const { return status_; }
  // The map: header with the number of fields written, then the fields.
  std::string Finish() const;

  void Str(std::string_view key, const std::string& v, Presence, size_t max_bytes, size_t min_bytes = 0);
  void Bytes(std::string_view key, const std::string& v, Presence, size_t max_bytes);
  void Double(std::string_view key, double v, Presence);
  // A finite number in [lo, hi].
  void Double(std::string_view key, double v, Presence, double lo, double hi);
  void Bool(std::string_view key, bool v, Presence);
  template <Integer T, typename L>
  void Int(std::string_view key, T v, Presence, L lo, L hi) {
    if (!Start(key)) return;
    if (std::cmp_less(v, lo) || std::cmp_greater(v, hi)) {
      return Fail(key, "value " + std::to_string(v) + " outside [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
    }
    pk_.pack(v);
    ++count_;
  }
  void OptUint(std::string_view key, const std::optional<uint64_t>& v);
  // An optional integer: written only when set, with Int's range check.
  template <Integer T, typename L>
  void OptInt(std::string_view key, const std::optional<T>& v, L lo, L hi) {
    if (v.has_value()) Int(key, *v, Presence::kOptional, lo, hi);
  }
  template <typename E>
  void Enum(std::string_view key, E v, Presence p, E max) {
    using U = std::underlying_type_t<E>;
    Int(key, static_cast<U>(v), p, U{0}, static_cast<U>(max));
  }
  template <typename Tag>
  void Id(std::string_view key, const distri::Id<Tag>& v, Presence) {
    if (!Start(key)) return;
    pk_.pack_bin(distri::Id<Tag>::kSize);
    pk_.pack_bin_body(reinterpret_cast<const char*>(v.bytes().data()), distri::Id<Tag>::kSize);
    ++count_;
  }
  template <typename S>
  void Struct(std::string_view key, const S& v, Presence) {
    if (!Start(key)) return;
    FieldWriter sub(context_ + "." + std::string(key));
    Fields(sub, v);
    if (!sub.status().ok()) { status_ = sub.status(); return; }
    body_ += sub.Finish();
    ++count_;
  }
  template <typename S>
  void StructList(std::string_view key, const std::vector<S>& v, Presence, size_t max_entries) {
    if (!Start(key)) return;
    if (v.size() > max_entries) return Fail(key, TooMany(v.size(), max_entries));
    pk_.pack_array(static_cast<uint32_t>(v.size()));
    for (size_t i = 0; i < v.size(); ++i) {
      FieldWriter sub(context_ + "." + std::string(key) + "[" + std::to_string(i) + "]");
      Fields(sub, v[i]);
      if (!sub.status().ok()) { status_ = sub.status(); return; }
      body_ += sub.Finish();
    }
    ++count_;
  }
  void StrList(std::string_view key, const std::vector<std::string>& v, Presence,
               size_t max_entries, size_t max_bytes);

 private:
  bool Start(std::string_view key);
  void Fail(std::string_view key, const std::string& what);
  static std::string TooMany(size_t n, size_t max);

  std::string context_;
  std::string body_;
  StringSink sink_;
  msgpack::packer<StringSink> pk_;
  uint32_t count_ = 0;
  Status status_;
};

// Decodes a msgpack map into a struct, one Visit* call per field (the same calls as
// FieldWriter). Keys must be str and unique; unknown keys are ignored; nil counts as absent.
// Every error names the field path ("AssignTask.gang[2].node_id") and what was expected and
// found. The first error is kept in status() and later calls do nothing.
class FieldReader {
 public:
  // `object` must outlive the reader.
  FieldReader(const msgpack::object& object, std::string context);

  const Status& status() const { return status_; }

  void Str(std::string_view key, std::string& v, Presence, size_t max_bytes, size_t min_bytes = 0);
  void Bytes(std::string_view key, std::string& v, Presence, size_t max_bytes);
  void Double(std::string_view key, double& v, Presence);
  // A finite number in [lo, hi].
  void Double(std::string_view key, double& v, Presence, double lo, double hi);
  void Bool(std::string_view key, bool& v, Presence);
  template <Integer T, typename L>
  void Int(std::string_view key, T& v, Presence p, L lo, L hi) {
    const msgpack::object* o = Get(key, p);
    if (o == nullptr) return;
    if (o->type == msgpack::type::POSITIVE_INTEGER) {
      if (std::cmp_less(o->via.u64, lo) || std::cmp_greater(o->via.u64, hi))
        return Fail(key, OutOfRange(std::to_string(o->via.u64), lo, hi));
      v = static_cast<T>(o->via.u64);
    } else if (o->type == msgpack::type::NEGATIVE_INTEGER) {
      if (std::cmp_less(o->via.i64, lo) || std::cmp_greater(o->via.i64, hi))
        return Fail(key, OutOfRange(std::to_string(o->via.i64), lo, hi));
      v = static_cast<T>(o->via.i64);
    } else {
      return WrongType(key, "an integer", *o);
    }
  }
  void OptUint(std::string_view key, std::optional<uint64_t>& v);
  // An optional integer: absent (or nil) leaves it unset; present is checked like Int.
  template <Integer T, typename L>
  void OptInt(std::string_view key, std::optional<T>& v, L lo, L hi) {
    if (!status_.ok()) return;
    if (Get(key, Presence::kOptional) == nullptr) {
      if (status_.ok()) v.reset();
      return;
    }
    T value{};
    Int(key, value, Presence::kOptional, lo, hi);
    if (status_.ok()) v = value;
  }
  template <typename E>
  void Enum(std::string_view key, E& v, Presence p, E max) {
    using U = std::underlying_type_t<E>;
    U raw = static_cast<U>(v);
    Int(key, raw, p, U{0}, static_cast<U>(max));
    if (status_.ok()) v = static_cast<E>(raw);
  }
  template <typename Tag>
  void Id(std::string_view key, distri::Id<Tag>& v, Presence p) {
    const msgpack::object* o = Get(key, p);
    if (o == nullptr) return;
    if (o->type != msgpack::type::BIN) return WrongType(key, "bin (16 bytes)", *o);
    if (o->via.bin.size != distri::Id<Tag>::kSize)
      return Fail(key, "expected a 16-byte " + std::string(Tag::kName) + ", found " +
                           std::to_string(o->via.bin.size) + " bytes");
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), o->via.bin.ptr, b.size());
    v = distri::Id<Tag>::FromBytes(b);
  }
  template <typename S>
  void Struct(std::string_view key, S& v, Presence p) {
    const msgpack::object* o = Get(key, p);
    if (o == nullptr) return;
    FieldReader sub(*o, context_ + "." + std::string(key));
    if (sub.status().ok()) Fields(sub, v);
    if (!sub.status().ok()) status_ = sub.status();
  }
  template <typename S>
  void StructList(std::string_view key, std::vector<S>& v, Presence p, size_t max_entries) {
    const msgpack::object_array* a = GetArray(key, p, max_entries);
    if (a == nullptr) return;
    std::vector<S> out(a->size);
    for (uint32_t i = 0; i < a->size; ++i) {
      FieldReader sub(a->ptr[i], context_ + "." + std::string(key) + "[" + std::to_string(i) + "]");
      if (sub.status().ok()) Fields(sub, out[i]);
      if (!sub.status().ok()) { status_ = sub.status(); return; }
    }
    v = std::move(out);
  }
  void StrList(std::string_view key, std::vector<std::string>& v, Presence,
               size_t max_entries, size_t max_bytes);

 private:
  // The value of `key`, or null when absent/nil (an error if required) or after an error.
  const msgpack::object* Get(std::string_view key, Presence p);
  const msgpack::object_array* GetArray(std::string_view key, Presence p, size_t max_entries);
  void Fail(std::string_view key, const std::string& what);
  void WrongType(std::string_view key, std::string_view expected, const msgpack::object& found);
  template <typename L>
  static std::string OutOfRange(const std::string& found, L lo, L hi) {
    return "value " + found + " outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }

  std::string context_;
  std::vector<std::pair<std::string_view, const msgpack::object*>> fields_;
  Status status_;
};

}  // namespace distri::wire::internal
