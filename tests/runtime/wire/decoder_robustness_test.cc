// Deterministic fuzzing for CI (gcc has no libFuzzer): thousands of mutated and random buffers
// through the whole receive path. Every buffer must either decode into a message that
// re-encodes and decodes to itself, or fail with a parse/validation Status that says
// something; never crash, throw or hang. (ASan/UBSan builds make this stricter.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

#include "runtime/wire/messages.h"
#include "tests/runtime/wire/sample_messages.h"

namespace distri::wire {
namespace {

using namespace distri::wire::testing;

// Bytes that steer msgpack parsers into interesting states: container and length headers
// (fix and 8/16/32-bit), the reserved 0xc1, nil/bool, ext and float markers, extremes.
constexpr uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                    0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4,
                                    0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};

std::string Mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 8) {
      case 0:  // flip a bit
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // overwrite a byte with an interesting one
        if (!s.empty()) s[pick(s.size())] = static_cast<char>(kInteresting[pick(sizeof(kInteresting))]);
        break;
      case 2:  // truncate
        s.resize(pick(s.size() + 1));
        break;
      case 3:  // insert random bytes
        s.insert(pick(s.size() + 1), std::string(1 + pick(8), static_cast<char>(rng())));
        break;
      case 4:  // delete a range
        if (!s.empty()) {
          const size_t at = pick(s.size());
          s.erase(at, 1 + pick(16));
        }
        break;
      case 5: {  // duplicate a range (repeats fields and containers)
        if (s.empty()) break;
        const size_t at = pick(s.size());
        const size_t len = 1 + pick(std::min<size_t>(64, s.size() - at));
        s.insert(pick(s.size() + 1), s.substr(at, len));
        break;
      }
      case 6: {  // splice the tail of another sample (other types' fields)
        const std::string& other = corpus[pick(corpus.size())];
        s = s.substr(0, pick(s.size() + 1)) + other.substr(pick(other.size() + 1));
        break;
      }
      case 7:  // overwrite 4 bytes with a big-endian length-like value
        if (s.size() >= 4) {
          const size_t at = pick(s.size() - 3);
          const uint32_t v = (rng() % 2) ? 0xFFFFFFFFu : static_cast<uint32_t>(rng() % 70000);
          for (int k = 0; k < 4; ++k) s[at + k] = static_cast<char>(v >> (24 - 8 * k));
        }
        break;
    }
  }
  return s;
}

struct Tally {
  int ok = 0;
  int rejected = 0;
  std::map<std::string, int> reasons;  // first words of each rejection, for the summary
  ~Tally() {
    std::printf("decoded %d, rejected %d; most frequent rejections:\n", ok, rejected);
    std::vector<std::pair<int, std::string>> top;
    for (const auto& [k, v] : reasons) top.emplace_back(v, k);
    std::sort(top.rbegin(), top.rend());
    for (size_t i = 0; i < top.size() && i < 8; ++i) std::printf("  %5d  %s\n", top[i].first, top[i].second.c_str());
  }
};

void Check(const std::string& bytes, Tally* tally) {
  Result<AnyMessage> m = DecodeMessage(std::string_view(bytes));
  if (!m.ok()) {
    const StatusCode c = m.status().code();
    ASSERT_TRUE(c == StatusCode::kParseError || c == StatusCode::kInvalidArgument ||
                c == StatusCode::kFailedPrecondition)
        << m.status().ToString();
    ASSERT_FALSE(m.status().message().empty());
    ++tally->rejected;
    ++tally->reasons[m.status().message().substr(0, 48)];
    return;
  }
  ++tally->ok;
  // What decodes must re-encode (the decoder accepts nothing the encoder refuses) and decode
  // to the same message.
  std::visit(
      [&](const auto& msg) {
        using M = std::decay_t<decltype(msg)>;
        Result<std::string> again = Seal(msg, 1, "fuzz");
        ASSERT_TRUE(again.ok()) << MessageTypeName(M::kType) << ": " << again.status().ToString();
        Result<Envelope> e = DecodeEnvelope(*again);
        ASSERT_TRUE(e.ok());
        Result<M> back = Open<M>(*e);
        ASSERT_TRUE(back.ok()) << back.status().ToString();
        ASSERT_TRUE(*back == msg);
      },
      *m);
}

TEST(WireDecoderRobustness, MutatedEnvelopesNeverCrash) {
  const std::vector<std::string> corpus = SampleEnvelopes();
  std::mt19937_64 rng(20240601);  // fixed: the same buffers on every run
  Tally tally;
  for (int i = 0; i < 6000; ++i) {
    const std::string input = Mutate(corpus[i % corpus.size()], corpus, rng);
    ASSERT_NO_FATAL_FAILURE(Check(input, &tally)) << "iteration " << i;
  }
  // Both outcomes must be exercised, or the mutator is not reaching the field decoders.
  EXPECT_GT(tally.ok, 100);
  EXPECT_GT(tally.rejected, 3000);
}

TEST(WireDecoderRobustness, MutatedPayloadsBehindAValidHeaderNeverCrash) {
  // Keep the envelope header intact so every mutation lands in the payload decoder.
  const std::vector<std::string> corpus = SampleEnvelopes();
  std::mt19937_64 rng(7);
  Tally tally;
  for (int i = 0; i < 3000; ++i) {
    const Envelope e = DecodeEnvelope(corpus[i % corpus.size()]).value();
    Envelope m = e;
    m.payload = Mutate(e.payload, corpus, rng);
    if (m.payload.empty()) m.payload.push_back(static_cast<char>(0x80));  // an empty map
    Result<std::string> bytes = EncodeEnvelope(m);
    ASSERT_TRUE(bytes.ok());
    ASSERT_NO_FATAL_FAILURE(Check(*bytes, &tally)) << "iteration " << i;
  }
  EXPECT_GT(tally.ok, 50);
  EXPECT_GT(tally.rejected, 1500);
}

TEST(WireDecoderRobustness, RandomBuffersNeverCrash) {
  std::mt19937_64 rng(99);
  Tally tally;
  for (int i = 0; i < 3000; ++i) {
    std::string s(static_cast<size_t>(rng() % 300), '\0');
    for (char& c : s) c = static_cast<char>(rng());
    // Half get a valid prefix and a plausible header so the random bytes reach msgpack.
    if (i % 2 == 0) {
      std::string head("DSTW\x01\x00\x93", 7);
      head += static_cast<char>(1 + rng() % 22);  // a fixint type (often a valid one)
      head += '\x00';
      head += "\xa0";  // empty sender
      s = head + s;
    }
    ASSERT_NO_FATAL_FAILURE(Check(s, &tally)) << "iteration " << i;
  }
  EXPECT_GT(tally.rejected, 2900);
}

}  // namespace
}  // namespace distri::wire
