#pragma once
// Background threads (a job's driver and the pool's workers) ask the
// scheduler for long time slices, so that any thread with a normal slice
// that wakes up (a guest's request, the guest itself) takes the CPU from
// them at once.
//
// Why: since Linux 6.6 (EEVDF) a running thread is shielded from wakeup
// preemption for the rest of its slice. On 2 cores, a stream thread copying
// flat out then made a woken guest request wait up to half a millisecond
// for the CPU (seen with `perf sched timehist`), and that was the p99 of
// 4 KiB reads during a stream. Since Linux 6.12 a thread with a shorter
// slice that wakes up overrides that shield (sched_attr.sched_runtime sets
// a thread's slice; PREEMPT_SHORT).
//
// The thread's weight (nice) is not changed: when the CPUs are contended,
// jobs still get their fair share, so a guest waiting for a cluster a job
// is copying is never stuck behind threads that outrank the job (as it
// could be with SCHED_IDLE). Older kernels ignore the request; it is a
// hint, and failures are ignored.

namespace corfs::jobs {

// The calling thread from now on: long slices, or the default again.
void UseLongSlices();
void UseDefaultSlices();

}  // namespace corfs::jobs
