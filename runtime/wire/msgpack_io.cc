#include "runtime/wire/msgpack_io.h"

#include <charconv>
#include <exception>

namespace distri::wire::internal {
namespace {

// The shortest text that reads back as `d` ("1.5", "0.7"), for error messages.
std::string FormatDouble(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(d);
}

// First pass over untrusted bytes: allocates nothing, stops at the first declared length that
// breaks a limit. msgpack::unpack allocates `n * sizeof(object)` as soon as it reads an array
// header of n elements, before the elements are there; bounding the sum of declared elements
// by max_objects and by the input size keeps the second pass proportional to the input.
class LimitVisitor : public msgpack::null_visitor {
 public:
  LimitVisitor(const ParseLimits& limits, size_t input_bytes) : l_(limits), input_bytes_(input_bytes) {}

  bool visit_str(const char*, uint32_t n) { return Length("str", n, l_.max_str); }
  bool visit_bin(const char*, uint32_t n) { return Length("bin", n, l_.max_bin); }
  bool visit_ext(const char*, uint32_t n) { return Length("ext", n, l_.max_ext); }
  bool start_array(uint32_t n) { return Aggregate("array of " + std::to_string(n) + " elements", n, n, l_.max_array); }
  bool end_array() { --depth_; return true; }
  bool start_map(uint32_t n) {
    return Aggregate("map of " + std::to_string(n) + " entries", n, uint64_t{2} * n, l_.max_map);
  }
  bool end_map() { --depth_; return true; }
  void parse_error(size_t, size_t error_offset) {
    error_ = Status::ParseError("malformed msgpack at byte " + std::to_string(error_offset));
  }
  void insufficient_bytes(size_t, size_t error_offset) {
    error_ = Status::ParseError("truncated msgpack: data ends at byte " + std::to_string(input_bytes_) +
                                " inside an object");
  }
  const Status& error() const { return error_; }

 private:
  bool Length(const char* kind, uint32_t n, size_t max) {
    if (n <= max) return true;
    error_ = Status::InvalidArgument(std::string(kind) + " of " + std::to_string(n) +
                                     " bytes exceeds the limit of " + std::to_string(max));
    return false;
  }
  bool Aggregate(const std::string& what, uint32_t n, uint64_t children, size_t max) {
    if (++depth_ > l_.max_depth) {
      error_ = Status::InvalidArgument("nesting deeper than " + std::to_string(l_.max_depth) + " levels");
      return false;
    }
    if (n > max) {
      error_ = Status::InvalidArgument(what + " exceeds the limit of " + std::to_string(max));
      return false;
    }
    objects_ += children;
    // Every object takes at least one byte, so more declared objects than bytes is a lie.
    if (objects_ > l_.max_objects || objects_ > input_bytes_) {
      error_ = Status::InvalidArgument(what + " declares more objects (" + std::to_string(objects_) +
                                       " in total) than " +
                                       (objects_ > input_bytes_ ? "the input has bytes"
                                                                : "the limit of " + std::to_string(l_.max_objects)));
      return false;
    }
    return true;
  }

  const ParseLimits& l_;
  size_t input_bytes_;
  size_t depth_ = 0;
  uint64_t objects_ = 0;
  Status error_;
};

bool ReferenceInput(msgpack::type::object_type, size_t, void*) { return true; }

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

Status ParseUntrusted(std::string_view bytes, const ParseLimits& limits, std::string_view what,
                      msgpack::object_handle* out, size_t* consumed) {
  const std::string prefix(what);
  if (bytes.empty()) return Status::ParseError(prefix + ": empty");
  LimitVisitor visitor(limits, bytes.size());
  size_t off = 0;
  bool parsed = false;
  try {
    parsed = msgpack::parse(bytes.data(), bytes.size(), off, visitor);
  } catch (const std::exception& e) {
    return Status::ParseError(prefix + ": " + e.what());
  }
  if (!parsed) {
    if (!visitor.error().ok()) return visitor.error().WithContext(prefix);
    return Status::ParseError(prefix + ": malformed msgpack");
  }
  if (consumed == nullptr && off != bytes.size()) {
    return Status::ParseError(prefix + ": " + std::to_string(bytes.size() - off) +
                              " unexpected bytes after the end of the message (at byte " +
                              std::to_string(off) + ")");
  }
  size_t off2 = 0;
  try {
    // The limits again: msgpack enforces them too, so a disagreement with the first pass
    // cannot turn into a large allocation.
    msgpack::unpack_limit ul(limits.max_array, limits.max_map, limits.max_str, limits.max_bin,
                             limits.max_ext, limits.max_depth);
    *out = msgpack::unpack(bytes.data(), off, off2, &ReferenceInput, nullptr, ul);
  } catch (const std::exception& e) {
    return Status::ParseError(prefix + ": " + e.what());
  }
  if (off2 != off) return Status::Internal(prefix + ": msgpack passes disagree on the object's length");
  if (consumed != nullptr) *consumed = off;
  return Status::Ok();
}

std::string_view ObjectTypeName(msgpack::type::object_type type) {
  switch (type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER: return "positive integer";
    case msgpack::type::NEGATIVE_INTEGER: return "negative integer";
    case msgpack::type::FLOAT32: return "float32";
    case msgpack::type::FLOAT64: return "float64";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
  }
  return "unknown";
}

// ---- FieldWriter ------------------------------------------------------------------------

std::string FieldWriter::Finish() const {
  std::string out;
  out.reserve(body_.size() + 5);
  StringSink sink{&out};
  msgpack::packer<StringSink> header(sink);
  header.pack_map(count_);
  out += body_;
  return out;
}

bool FieldWriter::Start(std::string_view key) {
  if (!status_.ok()) return false;
  pk_.pack_str(static_cast<uint32_t>(key.size()));
  pk_.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
  return true;
}

void FieldWriter::Fail(std::string_view key, const std::string& what) {
  if (status_.ok()) status_ = Status::InvalidArgument(context_ + "." + std::string(key) + ": " + what);
}

std::string FieldWriter::TooMany(size_t n, size_t max) {
  return std::to_string(n) + " entries, limit " + std::to_string(max);
}

void FieldWriter::Str(std::string_view key, const std::string& v, Presence, size_t max_bytes, size_t min_bytes) {
  if (!Start(key)) return;
  if (v.size() > max_bytes || v.size() < min_bytes)
    return Fail(key, std::to_string(v.size()) + " bytes, expected " + std::to_string(min_bytes) + ".." +
                         std::to_string(max_bytes));
  if (!IsValidUtf8(v)) return Fail(key, "not valid UTF-8");
  pk_.pack_str(static_cast<uint32_t>(v.size()));
  pk_.pack_str_body(v.data(), static_cast<uint32_t>(v.size()));
  ++count_;
}

void FieldWriter::Bytes(std::string_view key, const std::string& v, Presence, size_t max_bytes) {
  if (!Start(key)) return;
  if (v.size() > max_bytes)
    return Fail(key, std::to_string(v.size()) + " bytes, limit " + std::to_string(max_bytes));
  pk_.pack_bin(static_cast<uint32_t>(v.size()));
  pk_.pack_bin_body(v.data(), static_cast<uint32_t>(v.size()));
  ++count_;
}

void FieldWriter::Double(std::string_view key, double v, Presence) {
  if (!Start(key)) return;
  if (!std::isfinite(v)) return Fail(key, "not a finite number");
  pk_.pack_double(v);
  ++count_;
}

void FieldWriter::Double(std::string_view key, double v, Presence, double lo, double hi) {
  if (!Start(key)) return;
  if (!std::isfinite(v)) return Fail(key, "not a finite number");
  if (v < lo || v > hi) {
    return Fail(key, "value " + FormatDouble(v) + " outside [" + FormatDouble(lo) + ", " + FormatDouble(hi) + "]");
  }
  pk_.pack_double(v);
  ++count_;
}

void FieldWriter::Bool(std::string_view key, bool v, Presence) {
  if (!Start(key)) return;
  pk_.pack(v);
  ++count_;
}

void FieldWriter::OptUint(std::string_view key, const std::optional<uint64_t>& v) {
  if (!v.has_value() || !Start(key)) return;
  pk_.pack_uint64(*v);
  ++count_;
}

void FieldWriter::StrList(std::string_view key, const std::vector<std::string>& v, Presence,
                          size_t max_entries, size_t max_bytes) {
  if (!Start(key)) return;
  if (v.size() > max_entries) return Fail(key, TooMany(v.size(), max_entries));
  pk_.pack_array(static_cast<uint32_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
    if (v[i].size() > max_bytes)
      return Fail(item, std::to_string(v[i].size()) + " bytes, limit " + std::to_string(max_bytes));
    if (!IsValidUtf8(v[i])) return Fail(item, "not valid UTF-8");
    pk_.pack_str(static_cast<uint32_t>(v[i].size()));
    pk_.pack_str_body(v[i].data(), static_cast<uint32_t>(v[i].size()));
  }
  ++count_;
}

// ---- FieldReader ------------------------------------------------------------------------

FieldReader::FieldReader(const msgpack::object& object, std::string context) : context_(std::move(context)) {
  if (object.type != msgpack::type::MAP) {
    status_ = Status::InvalidArgument(context_ + ": expected a map, found " +
                                      std::string(ObjectTypeName(object.type)));
    return;
  }
  const msgpack::object_map& m = object.via.map;
  fields_.reserve(m.size);
  for (uint32_t i = 0; i < m.size; ++i) {
    const msgpack::object& k = m.ptr[i].key;
    if (k.type != msgpack::type::STR) {
      status_ = Status::InvalidArgument(context_ + ": map key #" + std::to_string(i) + " is a " +
                                        std::string(ObjectTypeName(k.type)) + ", keys must be str");
      return;
    }
    std::string_view name(k.via.str.ptr, k.via.str.size);
    for (const auto& f : fields_) {
      if (f.first == name) {
        // Two values for one field: which one a peer honours would be an accident.
        status_ = Status::InvalidArgument(context_ + ": duplicate field '" + std::string(name) + "'");
        return;
      }
    }
    fields_.emplace_back(name, &m.ptr[i].val);
  }
}

const msgpack::object* FieldReader::Get(std::string_view key, Presence p) {
  if (!status_.ok()) return nullptr;
  for (const auto& f : fields_) {
    if (f.first == key) {
      if (f.second->type != msgpack::type::NIL) return f.second;
      break;
    }
  }
  if (p == Presence::kRequired)
    status_ = Status::InvalidArgument(context_ + ": missing required field '" + std::string(key) + "'");
  return nullptr;
}

const msgpack::object_array* FieldReader::GetArray(std::string_view key, Presence p, size_t max_entries) {
  const msgpack::object* o = Get(key, p);
  if (o == nullptr) return nullptr;
  if (o->type != msgpack::type::ARRAY) {
    WrongType(key, "an array", *o);
    return nullptr;
  }
  if (o->via.array.size > max_entries) {
    Fail(key, std::to_string(o->via.array.size) + " entries, limit " + std::to_string(max_entries));
    return nullptr;
  }
  return &o->via.array;
}

void FieldReader::Fail(std::string_view key, const std::string& what) {
  if (status_.ok()) status_ = Status::InvalidArgument(context_ + "." + std::string(key) + ": " + what);
}

void FieldReader::WrongType(std::string_view key, std::string_view expected, const msgpack::object& found) {
  Fail(key, "expected " + std::string(expected) + ", found " + std::string(ObjectTypeName(found.type)));
}

void FieldReader::Str(std::string_view key, std::string& v, Presence p, size_t max_bytes, size_t min_bytes) {
  const msgpack::object* o = Get(key, p);
  if (o == nullptr) return;
  if (o->type != msgpack::type::STR) return WrongType(key, "str", *o);
  const size_t n = o->via.str.size;
  if (n > max_bytes || n < min_bytes)
    return Fail(key, std::to_string(n) + " bytes, expected " + std::to_string(min_bytes) + ".." +
                         std::to_string(max_bytes));
  std::string_view s(o->via.str.ptr, n);
  if (!IsValidUtf8(s)) return Fail(key, "not valid UTF-8");
  v.assign(s);
}

void FieldReader::Bytes(std::string_view key, std::string& v, Presence p, size_t max_bytes) {
  const msgpack::object* o = Get(key, p);
  if (o == nullptr) return;
  if (o->type != msgpack::type::BIN) return WrongType(key, "bin", *o);
  if (o->via.bin.size > max_bytes)
    return Fail(key, std::to_string(o->via.bin.size) + " bytes, limit " + std::to_string(max_bytes));
  v.assign(o->via.bin.ptr, o->via.bin.size);
}

void FieldReader::Double(std::string_view key, double& v, Presence p) {
  const msgpack::object* o = Get(key, p);
  if (o == nullptr) return;
  double d;
  switch (o->type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: d = o->via.f64; break;
    // Encoders of dynamic languages write 7.0 as an integer; accept whole numbers.
    case msgpack::type::POSITIVE_INTEGER: d = static_cast<double>(o->via.u64); break;
    case msgpack::type::NEGATIVE_INTEGER: d = static_cast<double>(o->via.i64); break;
    default: return WrongType(key, "a number", *o);
  }
  if (!std::isfinite(d)) return Fail(key, "expected a finite number, found " + std::to_string(d));
  v = d;
}

void FieldReader::Double(std::string_view key, double& v, Presence p, double lo, double hi) {
  double d = v;
  Double(key, d, p);
  if (!status_.ok()) return;
  if (d < lo || d > hi) {
    return Fail(key, "value " + FormatDouble(d) + " outside [" + FormatDouble(lo) + ", " + FormatDouble(hi) + "]");
  }
  v = d;
}

void FieldReader::Bool(std::string_view key, bool& v, Presence p) {
  const msgpack::object* o = Get(key, p);
  if (o == nullptr) return;
  if (o->type != msgpack::type::BOOLEAN) return WrongType(key, "bool", *o);
  v = o->via.boolean;
}

void FieldReader::OptUint(std::string_view key, std::optional<uint64_t>& v) {
  const msgpack::object* o = Get(key, Presence::kOptional);
  if (o == nullptr) {
    if (status_.ok()) v.reset();
    return;
  }
  if (o->type != msgpack::type::POSITIVE_INTEGER) return WrongType(key, "an unsigned integer", *o);
  v = o->via.u64;
}

void FieldReader::StrList(std::string_view key, std::vector<std::string>& v, Presence p,
                          size_t max_entries, size_t max_bytes) {
  const msgpack::object_array* a = GetArray(key, p, max_entries);
  if (a == nullptr) return;
  std::vector<std::string> out;
  out.reserve(a->size);
  for (uint32_t i = 0; i < a->size; ++i) {
    const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
    const msgpack::object& o = a->ptr[i];
    if (o.type != msgpack::type::STR) return WrongType(item, "str", o);
    if (o.via.str.size > max_bytes)
      return Fail(item, std::to_string(o.via.str.size) + " bytes, limit " + std::to_string(max_bytes));
    std::string_view s(o.via.str.ptr, o.via.str.size);
    if (!IsValidUtf8(s)) return Fail(item, "not valid UTF-8");
    out.emplace_back(s);
  }
  v = std::move(out);
}

}  // namespace distri::wire::internal
