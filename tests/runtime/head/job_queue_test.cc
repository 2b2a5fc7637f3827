#include "runtime/head/job_queue.h"

#include <gtest/gtest.h>

namespace distri::head {
namespace {

TEST(JobQueue, PriorityThenFifo) {
  JobQueue q;
  const JobId a = JobId::Random(), b = JobId::Random(), c = JobId::Random(), d = JobId::Random();
  EXPECT_TRUE(q.Push(a, 0, 1));
  EXPECT_TRUE(q.Push(b, 5, 2));
  EXPECT_TRUE(q.Push(c, 0, 3));
  EXPECT_TRUE(q.Push(d, 5, 4));
  EXPECT_FALSE(q.Push(a, 9, 5));  // already queued
  EXPECT_EQ(q.InOrder(), (std::vector<JobId>{b, d, a, c}));
  EXPECT_EQ(q.Position(b), 0u);
  EXPECT_EQ(q.Position(c), 3u);
}

TEST(JobQueue, CancellationAndRequeueKeepOrder) {
  JobQueue q;
  const JobId a = JobId::Random(), b = JobId::Random(), c = JobId::Random();
  q.Push(a, 0, 1);
  q.Push(b, 0, 2);
  q.Push(c, 0, 3);
  EXPECT_TRUE(q.Remove(b));
  EXPECT_FALSE(q.Remove(b));
  EXPECT_FALSE(q.Position(b).has_value());
  EXPECT_EQ(q.InOrder(), (std::vector<JobId>{a, c}));
  // Placed, then re-queued after a failure: back ahead of the later jobs.
  q.Remove(a);
  q.Push(a, 0, 1);
  EXPECT_EQ(q.InOrder(), (std::vector<JobId>{a, c}));
  EXPECT_EQ(q.size(), 2u);
}

}  // namespace
}  // namespace distri::head
