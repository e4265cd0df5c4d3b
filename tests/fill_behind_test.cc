// FillBehind: runs handed to it keep their claims until its thread has
// copied them; a full queue refuses, so the caller copies; a failed copy is
// reported once; the destructor copies what is still queued; its thread runs
// at the nice value asked for, where that is allowed.

#include "overlay/fill_behind.h"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;

class FillBehindTest : public ::testing::Test {
 protected:
  // Claims `count` clusters from `first` (all free in this test).
  std::unique_ptr<ClaimedRun> Claim(uint64_t first, uint64_t count) {
    auto run = std::make_unique<ClaimedRun>(claims_, first, count, /*wait=*/false);
    EXPECT_EQ(run->count(), count);
    return run;
  }
  bool Claimed(uint64_t cluster) {
    if (!claims_.TryAcquire(cluster)) return true;
    claims_.Release(cluster);
    return false;
  }

  AllocationBitmap bitmap_{64};
  ClusterClaims claims_{bitmap_};
  std::mutex mutex_;
  std::vector<uint64_t> filled_;  // the first cluster of each run copied, in order
};

TEST_F(FillBehindTest, AQueuedRunKeepsItsClaimsUntilItIsCopied) {
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  FillBehind behind(1 << 20, 0, [&](const ClaimedRun& run) {
    gate.wait();
    std::lock_guard lock(mutex_);
    filled_.push_back(run.first());
    return Status::Ok();
  });
  auto first = Claim(0, 4);
  auto second = Claim(8, 2);
  ASSERT_TRUE(behind.Offer(*first, 4096));
  ASSERT_TRUE(behind.Offer(*second, 4096));
  EXPECT_EQ(first->count(), 0u);  // handed over: the caller holds nothing
  for (uint64_t cluster : {0, 3, 8, 9}) EXPECT_TRUE(Claimed(cluster)) << cluster;
  EXPECT_FALSE(Claimed(4));
  go.set_value();
  behind.WaitIdle();
  for (uint64_t cluster : {0, 3, 8, 9}) EXPECT_FALSE(Claimed(cluster)) << cluster;
  EXPECT_EQ(filled_, (std::vector<uint64_t>{0, 8}));  // in the order offered
}

TEST_F(FillBehindTest, AFullQueueRefusesAndTheCallerKeepsTheRun) {
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  FillBehind behind(8192, 0, [&](const ClaimedRun&) {
    gate.wait();
    return Status::Ok();
  });
  auto a = Claim(0, 1);
  auto b = Claim(1, 1);
  auto c = Claim(2, 1);
  ASSERT_TRUE(behind.Offer(*a, 4096));
  ASSERT_TRUE(behind.Offer(*b, 4096));
  EXPECT_FALSE(behind.Offer(*c, 4096));  // 8 KiB already wait
  EXPECT_EQ(c->count(), 1u);             // still the caller's
  go.set_value();
  behind.WaitIdle();
  // A run larger than the whole queue is taken when nothing waits, so no
  // run is too large to be copied behind.
  auto big = Claim(10, 8);
  EXPECT_TRUE(behind.Offer(*big, 1 << 20));
  behind.WaitIdle();
}

TEST_F(FillBehindTest, AFailedCopyIsReportedOnceAndItsClaimsReleased) {
  FillBehind behind(1 << 20, 0, [&](const ClaimedRun& run) {
    return run.first() == 4 ? Status::Error(ENOSPC, "no space") : Status::Ok();
  });
  auto ok = Claim(0, 2);
  auto bad = Claim(4, 2);
  ASSERT_TRUE(behind.Offer(*ok, 4096));
  ASSERT_TRUE(behind.Offer(*bad, 4096));
  behind.WaitIdle();
  Status failure = behind.TakeFailure();
  EXPECT_EQ(failure.code(), ENOSPC);
  EXPECT_TRUE(behind.TakeFailure().ok());
  EXPECT_FALSE(Claimed(4));
}

TEST_F(FillBehindTest, TheDestructorCopiesWhatIsStillQueued) {
  std::atomic<int> copied{0};
  {
    FillBehind behind(1 << 20, 0, [&](const ClaimedRun&) {
      std::this_thread::sleep_for(5ms);
      ++copied;
      return Status::Ok();
    });
    std::vector<std::unique_ptr<ClaimedRun>> runs;
    for (uint64_t i = 0; i < 10; ++i) {
      runs.push_back(Claim(i * 2, 2));
      ASSERT_TRUE(behind.Offer(*runs.back(), 4096));
    }
  }
  EXPECT_EQ(copied.load(), 10);
  for (uint64_t cluster = 0; cluster < 20; ++cluster) EXPECT_FALSE(Claimed(cluster)) << cluster;
}

TEST_F(FillBehindTest, ItsThreadRunsAtTheNiceValueAskedForWhenAllowed) {
  // Allowed when a lower nice value can be set at all here (CAP_SYS_NICE);
  // asked of a throwaway thread, so this one keeps its own.
  int allowed = 0;
  std::thread probe([&] { allowed = ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), -10) == 0 ? 1 : 0; });
  probe.join();
  std::atomic<int> seen{100};
  {
    FillBehind behind(1 << 20, -10, [&](const ClaimedRun&) {
      seen = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      return Status::Ok();
    });
    auto run = Claim(0, 1);
    ASSERT_TRUE(behind.Offer(*run, 4096));
    behind.WaitIdle();
  }
  const int own = ::getpriority(PRIO_PROCESS, 0);
  EXPECT_EQ(seen.load(), allowed ? -10 : own);
  // The offering thread's own priority is untouched.
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), own);
}

}  // namespace
}  // namespace corfs::overlay
