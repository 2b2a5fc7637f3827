#include "actors/model/clip_unicode.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

namespace distri::model::clip_unicode {
namespace {

struct Range {
  char32_t first, last;
};
// Code points first, first+stride, ..., <= last map to cp + delta.
struct LowerRun {
  char32_t first, last;
  int32_t delta;
  uint32_t stride;
};
// kCompose: (a, b) -> c, the canonical compositions, sorted by (a, b). Read backwards they are
// also the decompositions c -> (a, b).
// kDecompose: (a) -> (b, c), the other canonical decompositions (c = 0: a singleton), by a.
struct Composition {
  char32_t a, b, c;
};
struct ClassRange {
  char32_t first, last;
  uint32_t ccc;  // canonical combining class
};

#include "actors/model/clip_unicode_data.inc"

template <size_t N>
bool InRanges(const Range (&table)[N], char32_t cp) {
  // First range whose `last` is >= cp; the tables are sorted and disjoint.
  const Range* it = std::lower_bound(std::begin(table), std::end(table), cp,
                                     [](const Range& r, char32_t v) { return r.last < v; });
  return it != std::end(table) && it->first <= cp;
}

// Hangul syllables (de)compose algorithmically (Unicode 14, section 3.12), not through tables.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kSCount = kLCount * kVCount * kTCount;

std::optional<char32_t> ComposePair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const Composition* it = std::lower_bound(
      std::begin(kCompose), std::end(kCompose), Composition{a, b, 0},
      [](const Composition& x, const Composition& y) { return x.a != y.a ? x.a < y.a : x.b < y.b; });
  if (it != std::end(kCompose) && it->a == a && it->b == b) return it->c;
  return std::nullopt;
}

uint32_t CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  const ClassRange* it =
      std::lower_bound(std::begin(kCombiningClass), std::end(kCombiningClass), cp,
                       [](const ClassRange& r, char32_t v) { return r.last < v; });
  return it != std::end(kCombiningClass) && it->first <= cp ? it->ccc : 0;
}

// Full canonical decomposition of `cp`, appended to `out`.
void Decompose(char32_t cp, std::u32string* out) {
  if (cp < 0xC0) {  // nothing below U+00C0 decomposes
    out->push_back(cp);
    return;
  }
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out->push_back(kLBase + s / (kVCount * kTCount));
    out->push_back(kVBase + (s % (kVCount * kTCount)) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  // kCompose sorted by the composed character, built once.
  static const std::vector<const Composition*>* by_composed = [] {
    auto* v = new std::vector<const Composition*>();
    for (const Composition& c : kCompose) v->push_back(&c);
    std::sort(v->begin(), v->end(), [](auto* x, auto* y) { return x->c < y->c; });
    return v;
  }();
  auto inv = std::lower_bound(by_composed->begin(), by_composed->end(), cp,
                              [](const Composition* x, char32_t v) { return x->c < v; });
  if (inv != by_composed->end() && (*inv)->c == cp) {
    Decompose((*inv)->a, out);
    Decompose((*inv)->b, out);
    return;
  }
  const Composition* it =
      std::lower_bound(std::begin(kDecompose), std::end(kDecompose), cp,
                       [](const Composition& x, char32_t v) { return x.a < v; });
  if (it != std::end(kDecompose) && it->a == cp) {
    Decompose(it->b, out);
    if (it->c != 0) Decompose(it->c, out);
    return;
  }
  out->push_back(cp);
}

Status Utf8Error(size_t offset, const char* what, unsigned byte) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "invalid UTF-8 at byte %zu: %s 0x%02x", offset, what, byte);
  return Status::InvalidArgument(buf);
}

}  // namespace

Result<std::u32string> DecodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    size_t len;
    char32_t cp;
    char32_t min;  // the smallest code point that needs this length (rejects overlong forms)
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else if (b0 >= 0x80 && b0 <= 0xBF) {
      return Utf8Error(i, "unexpected continuation byte", b0);
    } else {
      return Utf8Error(i, "byte never valid in UTF-8:", b0);
    }
    if (i + len > text.size()) return Utf8Error(i, "truncated sequence starting with", b0);
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return Utf8Error(i + k, "expected a continuation byte, found", b);
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min) return Utf8Error(i, "overlong encoding starting with", b0);
    if (cp >= 0xD800 && cp <= 0xDFFF) return Utf8Error(i, "encoded surrogate starting with", b0);
    if (cp > 0x10FFFF) return Utf8Error(i, "code point above U+10FFFF starting with", b0);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) AppendUtf8(cp, &out);
  return out;
}

bool IsPrintableByte(unsigned char b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

char32_t ByteLevelSymbol(unsigned char b) {
  if (IsPrintableByte(b)) return b;
  char32_t n = 256;  // the non-printable bytes below `b`, counted from U+0100
  for (unsigned c = 0; c < b; ++c) n += IsPrintableByte(static_cast<unsigned char>(c)) ? 0 : 1;
  return n;
}

bool IsLetter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return InRanges(kLetters, cp);
}

bool IsNumber(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return InRanges(kNumbers, cp);
}

bool IsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

void AppendLowercase(char32_t cp, std::u32string* out) {
  if (cp < 0x80) {
    out->push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  if (cp == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: the only 1 -> 2 mapping
    out->push_back(U'i');
    out->push_back(0x307);
    return;
  }
  // Runs of different strides may interleave, so a plain scan (181 entries, non-ASCII only).
  for (const LowerRun& r : kLower) {
    if (cp < r.first) break;
    if (cp <= r.last && (cp - r.first) % r.stride == 0) {
      out->push_back(static_cast<char32_t>(static_cast<int64_t>(cp) + r.delta));
      return;
    }
  }
  out->push_back(cp);
}

// NFC as UAX #15 defines it: full canonical decomposition, canonical ordering of combining
// marks, then canonical composition (a mark composes with the last starter unless a mark of
// class 0 or of its own or a higher class stands between them).
std::u32string ComposeNfc(std::u32string_view text) {
  std::u32string d;
  d.reserve(text.size());
  for (char32_t cp : text) Decompose(cp, &d);
  // Canonical ordering: a stable sort by class of every run of non-zero classes.
  for (size_t i = 1; i < d.size(); ++i) {
    const uint32_t c = CombiningClass(d[i]);
    if (c == 0) continue;
    for (size_t j = i; j > 0; --j) {
      const uint32_t prev = CombiningClass(d[j - 1]);
      if (prev == 0 || prev <= c) break;
      std::swap(d[j - 1], d[j]);
    }
  }
  std::u32string out;
  out.reserve(d.size());
  size_t starter = std::u32string::npos;  // index in `out` of the last starter
  uint32_t last_class = 0;  // class of the last character kept after it (0: none yet)
  for (char32_t cp : d) {
    const uint32_t c = CombiningClass(cp);
    if (starter != std::u32string::npos &&
        (out.size() == starter + 1 || (last_class != 0 && last_class < c))) {
      if (std::optional<char32_t> composed = ComposePair(out[starter], cp)) {
        out[starter] = *composed;
        continue;
      }
    }
    if (c == 0) {
      starter = out.size();
      last_class = 0;
    } else {
      last_class = c;
    }
    out.push_back(cp);
  }
  return out;
}

}  // namespace distri::model::clip_unicode
