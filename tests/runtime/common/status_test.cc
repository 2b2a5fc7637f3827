#include "runtime/common/status.h"

#include <gtest/gtest.h>

namespace distri {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return Status::InvalidArgument("expected a positive value, got " + std::to_string(v));
  return v;
}

Result<int> Doubled(int v) {
  DISTRI_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status CheckBoth(int a, int b) {
  DISTRI_RETURN_IF_ERROR(ParsePositive(a));
  DISTRI_RETURN_IF_ERROR(ParsePositive(b).status().WithContext("second"));
  return Status::Ok();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::NotFound("unet/config.json");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NotFound: unet/config.json");
  EXPECT_EQ(s.WithContext("loading model").message(), "loading model: unet/config.json");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(Status, ResultPropagation) {
  EXPECT_EQ(*Doubled(4), 8);
  Result<int> bad = Doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "expected a positive value, got -1");
  EXPECT_EQ(bad.value_or(7), 7);
}

TEST(Status, ReturnIfError) {
  EXPECT_TRUE(CheckBoth(1, 2).ok());
  EXPECT_EQ(CheckBoth(0, 2).message(), "expected a positive value, got 0");
  EXPECT_EQ(CheckBoth(1, -3).message(), "second: expected a positive value, got -3");
}

TEST(Status, ResultFromOkStatusIsAnInternalError) {
  Result<int> r = Status::Ok();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(Status, CodesAreStable) {
  // The C ABI exposes these numbers: they must never change.
  EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), 1);
  EXPECT_EQ(static_cast<int>(StatusCode::kCancelled), 7);
  EXPECT_EQ(static_cast<int>(StatusCode::kFailedPrecondition), 14);
  EXPECT_EQ(StatusCodeName(StatusCode::kDeadlineExceeded), "DeadlineExceeded");
}

TEST(StatusDeathTest, CheckAbortsWithLocation) {
  EXPECT_DEATH(DISTRI_CHECK(1 == 2, "broken invariant"), "status_test.cc.*1 == 2.*broken invariant");
}

}  // namespace
}  // namespace distri
