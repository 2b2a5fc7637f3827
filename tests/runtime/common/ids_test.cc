#include "runtime/common/ids.h"

#include <gtest/gtest.h>

#include <set>
#include <type_traits>

namespace distri {
namespace {

TEST(Ids, RandomIdsDifferAndRoundTrip) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    JobId id = JobId::Random();
    EXPECT_FALSE(id.IsNil());
    std::string hex = id.Hex();
    ASSERT_EQ(hex.size(), 32u);
    EXPECT_TRUE(seen.insert(hex).second);
    auto parsed = JobId::ParseHex(hex);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, id);
  }
  EXPECT_TRUE(JobId().IsNil());
}

TEST(Ids, ParseRejectsBadInput) {
  auto short_id = NodeId::ParseHex("abc");
  ASSERT_FALSE(short_id.ok());
  EXPECT_EQ(short_id.status().message(), "node id must be 32 hex digits, got 3 characters");
  auto bad_char = ActorId::ParseHex("0123456789abcdef0123456789abcdeg");
  ASSERT_FALSE(bad_char.ok());
  EXPECT_EQ(bad_char.status().message(), "actor id has a non-hex character at position 31");
  EXPECT_TRUE(JobId::ParseHex("0123456789ABCDEF0123456789abcdef").ok());
}

TEST(Ids, KindsAreDistinctTypes) {
  static_assert(!std::is_convertible_v<NodeId, JobId>);
  JobId id = JobId::Random();
  EXPECT_EQ(id.Short(), id.Hex().substr(0, 8));
  std::hash<JobId> h;
  EXPECT_EQ(h(id), h(JobId::FromBytes(id.bytes())));
}

}  // namespace
}  // namespace distri
