// Job threads take long scheduler slices and keep their nice value.

#include "jobs/background_thread.h"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <thread>

namespace corfs::jobs {
namespace {

// struct sched_attr of the kernel's ABI (its first version): the kernel
// header clashes with glibc's <sched.h>, which gtest includes.
struct KernelSchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

struct Seen {
  uint64_t slice_ns = 0;
  int nice = 0;
};

Seen Look() {
  KernelSchedAttr attr{};
  EXPECT_EQ(::syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0), 0);
  return {attr.sched_runtime, attr.sched_nice};
}

TEST(BackgroundThread, LongSlicesThenDefaultNiceKept) {
  Seen before, long_slices, after;
  // A thread of its own, so the test process keeps its settings.
  std::thread([&] {
    ASSERT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 5), 0);
    before = Look();
    UseLongSlices();
    long_slices = Look();
    UseDefaultSlices();
    after = Look();
  }).join();
  if (long_slices.slice_ns == 0) GTEST_SKIP() << "this kernel has no per-thread slices (Linux < 6.12)";
  EXPECT_EQ(long_slices.slice_ns, 100'000'000u);
  EXPECT_NE(after.slice_ns, 100'000'000u);
  EXPECT_EQ(before.nice, 5);
  EXPECT_EQ(long_slices.nice, 5);
  EXPECT_EQ(after.nice, 5);
}

}  // namespace
}  // namespace corfs::jobs
