#include "jobs/background_thread.h"

#include <linux/sched.h>  // SCHED_NORMAL, SCHED_BATCH (glibc's sched.h clashes with types.h)
#include <linux/sched/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace corfs::jobs {

namespace {

// The longest slice Linux grants (it clamps sched_runtime to 0.1-100 ms).
constexpr uint64_t kLongSliceNs = 100'000'000;

// Changes only the slice of the calling thread; policy and nice stay.
void SetSlice(uint64_t nanoseconds) {
  sched_attr attr{};
  if (::syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0) != 0) return;
  if (attr.sched_policy != SCHED_NORMAL && attr.sched_policy != SCHED_BATCH) return;
  attr.size = sizeof(attr);
  attr.sched_flags &= SCHED_FLAG_RESET_ON_FORK;  // keep that; ask for nothing else
  attr.sched_runtime = nanoseconds;              // 0: the default slice
  (void)::syscall(SYS_sched_setattr, 0, &attr, 0);
}

}  // namespace

void UseLongSlices() { SetSlice(kLongSliceNs); }
void UseDefaultSlices() { SetSlice(0); }

}  // namespace corfs::jobs
