#include "runtime/common/logging.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace distri {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](std::string_view line) { lines_.emplace_back(line); });
    SetLogLevel(LogLevel::kInfo);
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogRole("distri");
    SetLogRank(-1);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines_;
};

TEST_F(LoggingTest, PrefixHasLevelTimeRoleRankPidAndLocation) {
  SetLogRole("actor");
  SetLogRank(3);
  DISTRI_LOG(WARNING) << "step " << 7 << " slow";
  ASSERT_EQ(lines_.size(), 1u);
  std::regex re(R"(^W \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z actor r3 pid=(\d+) logging_test\.cc:\d+\] step 7 slow\n$)");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines_[0], m, re)) << lines_[0];
  EXPECT_EQ(std::stoi(m[1]), ::getpid());
}

TEST_F(LoggingTest, NoRankWhenUnset) {
  SetLogRole("head");
  DISTRI_LOG(INFO) << "up";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NE(lines_[0].find(" head pid="), std::string::npos) << lines_[0];
}

TEST_F(LoggingTest, LevelFilters) {
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  DISTRI_LOG(DEBUG) << "hidden " << count();
  EXPECT_TRUE(lines_.empty());
  EXPECT_EQ(evaluated, 0) << "arguments of a disabled level must not be evaluated";
  SetLogLevel(LogLevel::kDebug);
  DISTRI_LOG(DEBUG) << "shown " << count();
  EXPECT_EQ(lines_.size(), 1u);
  SetLogLevel(LogLevel::kError);
  DISTRI_LOG(WARNING) << "hidden";
  DISTRI_LOG(ERROR) << "shown";
  EXPECT_EQ(lines_.size(), 2u);
}

TEST_F(LoggingTest, ParseLevel) {
  EXPECT_EQ(ParseLogLevel("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("loud").has_value());
}

TEST_F(LoggingTest, LogLevelFlag) {
  SetLogLevel(LogLevel::kInfo);
  EXPECT_TRUE(ApplyLogLevelFlag("").ok());
  EXPECT_EQ(GetLogLevel(), LogLevel::kInfo);
  EXPECT_TRUE(ApplyLogLevelFlag("error").ok());
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
  Status bad = ApplyLogLevelFlag("loud");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "--log-level: expected debug, info, warning or error, got 'loud'");
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
}

TEST_F(LoggingTest, ThreadsDoNotInterleave) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) DISTRI_LOG(INFO) << "thread " << t << " line " << i;
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(lines_.size(), 400u);
  std::regex re(R"(^I .*\] thread \d line \d+\n$)");
  for (const auto& l : lines_) ASSERT_TRUE(std::regex_match(l, re)) << l;
}

}  // namespace
}  // namespace distri
