// The job model with a scripted driver: which driver steps run in which
// case, Complete only in READY, the on-error policy of RunStep (io-status
// while stopped, a cancel of a stopped job, coalesced error events), and a
// throttle that a pause or a new speed cuts short.

#include "jobs/job.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace corfs::jobs {
namespace {

using namespace std::chrono_literals;

// Records what the job calls. Run does what `run` says; Complete sets
// *completed.
class ScriptedDriver final : public JobDriver {
 public:
  ScriptedDriver(std::function<Status(JobContext&)> run, std::vector<std::string>* calls,
                 Status prepared = Status::Ok(), std::atomic<bool>* completed = nullptr)
      : run_(std::move(run)), calls_(calls), prepared_(std::move(prepared)), completed_(completed) {}

  std::string_view type() const override { return "test"; }
  uint64_t initial_length() const override { return 100; }
  Status Run(JobContext& job) override {
    calls_->push_back("run");
    return run_(job);
  }
  Status Prepare(JobContext&) override {
    calls_->push_back("prepare");
    return prepared_;
  }
  void Abort(JobContext&) override { calls_->push_back("abort"); }
  void Clean(JobContext&) override { calls_->push_back("clean"); }
  void Complete() override {
    if (completed_ != nullptr) *completed_ = true;
  }

 private:
  std::function<Status(JobContext&)> run_;
  std::vector<std::string>* calls_;
  Status prepared_;
  std::atomic<bool>* completed_;
};

// Enters READY and waits there for Complete (or a cancel).
Status WaitInReady(JobContext& job, const std::atomic<bool>& completed) {
  job.EnterReady();
  while (!completed) {
    if (!job.Checkpoint()) return Status::Ok();
    std::this_thread::sleep_for(1ms);
  }
  return Status::Ok();
}

// Polls until the job is in `state`; false after 10 s.
bool WaitForState(const Job& job, JobState state) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (job.Info().state != state) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

struct Events {
  std::mutex mutex;
  std::vector<JobEvent> seen;
  JobEventSink sink() {
    return [this](const JobEvent& event) {
      std::lock_guard lock(mutex);
      seen.push_back(event);
    };
  }
  std::vector<JobEvent::Kind> kinds() {
    std::lock_guard lock(mutex);
    std::vector<JobEvent::Kind> out;
    for (const JobEvent& event : seen) out.push_back(event.kind);
    return out;
  }
};

using Calls = std::vector<std::string>;

TEST(Job, SuccessRunsPrepareThenClean) {
  Calls calls;
  Events events;
  Job job("vm1", {},
          std::make_unique<ScriptedDriver>(
              [](JobContext& ctx) {
                ctx.Advance({100, 40, 50});
                return Status::Ok();
              },
              &calls),
          events.sink());
  EXPECT_EQ(job.id(), "vm1");
  EXPECT_EQ(job.Info().len, 100u);
  job.Start();
  ASSERT_TRUE(job.WaitConcluded(10s));
  EXPECT_EQ(calls, (Calls{"run", "prepare", "clean"}));
  JobInfo info = job.Info();
  EXPECT_EQ(info.type, "test");
  EXPECT_EQ(info.image, "vm1");
  EXPECT_EQ(info.offset, 100u);
  EXPECT_EQ(info.copied, 40u);
  EXPECT_EQ(info.holes, 50u);
  EXPECT_EQ(info.local, 10u) << "what was neither copied nor a hole";
  EXPECT_EQ(info.error, "");
  EXPECT_EQ(events.kinds(), std::vector{JobEvent::Kind::kCompleted});
}

TEST(Job, FailureAndCancelRunAbort) {
  {
    Calls calls;
    Events events;
    Job job("vm1", {}, std::make_unique<ScriptedDriver>([](JobContext&) { return Status::Invalid("no"); }, &calls),
            events.sink());
    job.Start();
    ASSERT_TRUE(job.WaitConcluded(10s));
    EXPECT_EQ(calls, (Calls{"run", "abort", "clean"}));
    EXPECT_EQ(job.Info().error, "no");
    std::lock_guard lock(events.mutex);
    ASSERT_EQ(events.seen.size(), 1u);
    EXPECT_EQ(events.seen[0].error.value_or(""), "no");
  }
  {
    Calls calls;
    Events events;
    Job job("vm1", {},
            std::make_unique<ScriptedDriver>(
                [](JobContext& ctx) {
                  while (ctx.Checkpoint()) std::this_thread::sleep_for(1ms);
                  return Status::Ok();
                },
                &calls),
            events.sink());
    job.Start();
    job.Cancel();
    ASSERT_TRUE(job.WaitConcluded(10s));
    EXPECT_EQ(calls, (Calls{"run", "abort", "clean"}));
    EXPECT_TRUE(job.Info().cancelled);
    EXPECT_EQ(events.kinds(), std::vector{JobEvent::Kind::kCancelled});
  }
  {
    Calls calls;
    Events events;
    Job job("vm1", {},
            std::make_unique<ScriptedDriver>([](JobContext&) { return Status::Ok(); }, &calls,
                                             Status::Invalid("commit failed")),
            events.sink());
    job.Start();
    ASSERT_TRUE(job.WaitConcluded(10s));
    EXPECT_EQ(calls, (Calls{"run", "prepare", "abort", "clean"}));
    EXPECT_EQ(job.Info().error, "commit failed");
  }
}

TEST(Job, CompleteOnlyWhenReady) {
  Calls calls;
  Events events;
  std::atomic<bool> completed = false;
  JobOptions options;
  options.job_id = "mirror0";
  Job job("vm1", options,
          std::make_unique<ScriptedDriver>([&](JobContext& ctx) { return WaitInReady(ctx, completed); }, &calls,
                                           Status::Ok(), &completed),
          events.sink());
  EXPECT_FALSE(job.Complete().ok()) << "a created job is not ready";
  job.Start();
  ASSERT_TRUE(WaitForState(job, JobState::kReady));
  EXPECT_TRUE(job.Pause());
  EXPECT_FALSE(job.Pause()) << "a second pause is refused";
  ASSERT_TRUE(WaitForState(job, JobState::kPaused));
  EXPECT_FALSE(job.Complete().ok()) << "a paused job is not ready";
  job.Resume();
  ASSERT_TRUE(WaitForState(job, JobState::kReady)) << "a resume goes back to ready";
  EXPECT_TRUE(job.Complete().ok());
  ASSERT_TRUE(job.WaitConcluded(10s));
  EXPECT_EQ(calls, (Calls{"run", "prepare", "clean"}));
  EXPECT_EQ(events.kinds(), (std::vector{JobEvent::Kind::kReady, JobEvent::Kind::kCompleted}));
  EXPECT_EQ(job.Info().id, "mirror0");
}

// A step that fails `failures` times, then succeeds.
Status RunFlakyStep(JobContext& ctx, int failures, bool* skipped) {
  int attempts = 0;
  auto attempt = [&] { return ++attempts <= failures ? Status::Error(ENOSPC, "full") : Status::Ok(); };
  return ctx.RunStep(
      attempt(), attempt, [](const Status&) { return IoOperation::kWrite; }, skipped);
}

TEST(Job, RunStepAppliesThePolicy) {
  for (OnError policy : {OnError::kReport, OnError::kIgnore, OnError::kStop}) {
    SCOPED_TRACE(ToString(policy));
    Calls calls;
    Events events;
    bool skipped = false;
    Status step;
    JobOptions options;
    options.on_error = policy;
    Job job("vm1", options,
            std::make_unique<ScriptedDriver>(
                [&](JobContext& ctx) {
                  step = RunFlakyStep(ctx, 2, &skipped);
                  return step;
                },
                &calls),
            events.sink());
    job.Start();
    if (policy == OnError::kStop) {
      // Each failure reports and pauses the job; each resume retries.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      for (size_t resumed = 0; resumed < 2 && std::chrono::steady_clock::now() < deadline;) {
        if (job.Info().state == JobState::kPaused && events.kinds().size() > resumed) {
          job.Resume();
          ++resumed;
        }
        std::this_thread::sleep_for(1ms);
      }
    }
    ASSERT_TRUE(job.WaitConcluded(10s));
    std::lock_guard lock(events.mutex);
    const JobEvent& error = events.seen.front();
    EXPECT_EQ(error.kind, JobEvent::Kind::kError);
    EXPECT_EQ(error.operation, IoOperation::kWrite);
    EXPECT_EQ(error.action, policy);
    EXPECT_EQ(error.error.value_or(""), "full");
    switch (policy) {
      case OnError::kReport:
        EXPECT_EQ(step.message(), "full");
        EXPECT_EQ(events.seen.size(), 2u);  // the error, the failed completion
        break;
      case OnError::kIgnore:
        EXPECT_TRUE(step.ok());
        EXPECT_TRUE(skipped);
        EXPECT_EQ(events.seen.size(), 2u);
        break;
      case OnError::kStop:
        EXPECT_TRUE(step.ok());
        EXPECT_FALSE(skipped);
        EXPECT_EQ(events.seen.size(), 3u);  // two errors, the completion
        break;
    }
  }
}

// Polls until `done` holds; false after 10 s.
template <typename Predicate>
bool WaitUntil(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Progress with a measured rate, then a step that fails with `code` until
// `failures` attempts have failed, then checkpoints until *finish.
Status ProgressThenFail(JobContext& ctx, int code, int failures, const std::atomic<bool>& finish) {
  ctx.Advance({10, 10, 0});
  std::this_thread::sleep_for(300ms);
  ctx.Advance({10, 10, 0});
  int attempts = 0;
  auto attempt = [&] { return ++attempts <= failures ? Status::Error(code, "injected") : Status::Ok(); };
  CORFS_RETURN_IF_ERROR(ctx.RunStep(attempt(), attempt, [](const Status&) { return IoOperation::kRead; }));
  while (!finish) {
    if (!ctx.Checkpoint()) break;
    std::this_thread::sleep_for(1ms);
  }
  return Status::Ok();
}

TEST(Job, StoppedOnAnErrorReportsItUntilResumed) {
  for (int code : {EIO, ENOSPC}) {
    SCOPED_TRACE(code);
    Calls calls;
    Events events;
    std::atomic<bool> finish = false;
    JobOptions options;
    options.on_error = OnError::kStop;
    Job job("vm1", options,
            std::make_unique<ScriptedDriver>([&](JobContext& ctx) { return ProgressThenFail(ctx, code, 1, finish); },
                                             &calls),
            events.sink());
    job.Start();
    ASSERT_TRUE(WaitForState(job, JobState::kPaused));
    JobInfo info = job.Info();
    EXPECT_EQ(info.io_status, code == ENOSPC ? IoStatus::kNoSpace : IoStatus::kFailed);
    EXPECT_EQ(info.error, "injected");
    EXPECT_GT(info.rate, 0);
    EXPECT_EQ(info.eta_seconds, -1) << "a job stopped on an error has no ETA";
    job.Resume();
    ASSERT_TRUE(WaitForState(job, JobState::kRunning));
    info = job.Info();
    EXPECT_EQ(info.io_status, IoStatus::kOk) << "a resume clears the io-status";
    EXPECT_EQ(info.error, "");
    finish = true;
    ASSERT_TRUE(job.WaitConcluded(10s));
    EXPECT_EQ(events.kinds(), (std::vector{JobEvent::Kind::kError, JobEvent::Kind::kCompleted}));
  }
}

TEST(Job, CancelOfAJobStoppedOnAnErrorIsACancel) {
  Calls calls;
  Events events;
  std::atomic<bool> finish = false;
  JobOptions options;
  options.on_error = OnError::kStop;
  Job job("vm1", options,
          std::make_unique<ScriptedDriver>([&](JobContext& ctx) { return ProgressThenFail(ctx, EIO, 1000, finish); },
                                           &calls),
          events.sink());
  job.Start();
  ASSERT_TRUE(WaitForState(job, JobState::kPaused));
  job.Cancel();
  ASSERT_TRUE(job.WaitConcluded(10s));
  EXPECT_EQ(calls, (Calls{"run", "abort", "clean"}));
  EXPECT_EQ(events.kinds(), (std::vector{JobEvent::Kind::kError, JobEvent::Kind::kCancelled}));
  JobInfo info = job.Info();
  EXPECT_TRUE(info.cancelled);
  EXPECT_EQ(info.error, "");
  EXPECT_EQ(info.io_status, IoStatus::kOk);
  std::lock_guard lock(events.mutex);
  EXPECT_FALSE(events.seen.back().error.has_value());
}

TEST(Job, IdenticalErrorsAreCoalescedWithACount) {
  constexpr int kReadErrors = 2000;
  constexpr int kWriteErrors = 5;
  Calls calls;
  Events events;
  JobOptions options;
  options.on_error = OnError::kIgnore;
  auto read = [](const Status&) { return IoOperation::kRead; };
  auto write = [](const Status&) { return IoOperation::kWrite; };
  const auto started = std::chrono::steady_clock::now();
  Job job("vm1", options,
          std::make_unique<ScriptedDriver>(
              [&](JobContext& ctx) {
                auto eio = [] { return Status::Error(EIO, "bad read"); };
                auto enospc = [] { return Status::Error(ENOSPC, "full"); };
                for (int i = 0; i < kReadErrors && ctx.Checkpoint(); ++i) {
                  CORFS_RETURN_IF_ERROR(ctx.RunStep(eio(), eio, read));
                }
                for (int i = 0; i < kWriteErrors && ctx.Checkpoint(); ++i) {
                  CORFS_RETURN_IF_ERROR(ctx.RunStep(enospc(), enospc, write));
                }
                return Status::Ok();
              },
              &calls),
          events.sink());
  job.Start();
  ASSERT_TRUE(job.WaitConcluded(10s));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::lock_guard lock(events.mutex);
  ASSERT_GE(events.seen.size(), 3u);
  EXPECT_EQ(events.seen.back().kind, JobEvent::Kind::kCompleted);
  uint64_t reads = 0;
  uint64_t writes = 0;
  size_t error_events = 0;
  for (const JobEvent& event : events.seen) {
    if (event.kind != JobEvent::Kind::kError) continue;
    ++error_events;
    (event.operation == IoOperation::kRead ? reads : writes) += event.count;
    EXPECT_EQ(event.error.value_or(""), event.operation == IoOperation::kRead ? "bad read" : "full");
  }
  EXPECT_EQ(reads, static_cast<uint64_t>(kReadErrors));
  EXPECT_EQ(writes, static_cast<uint64_t>(kWriteErrors));
  EXPECT_EQ(events.seen.front().count, 1u) << "the first error goes out at once";
  // One a second at most, plus the switch to the other error and the end.
  EXPECT_LE(error_events, static_cast<size_t>(seconds) + 4) << seconds << " s";
}

TEST(Job, APauseOrANewSpeedCutsAThrottleShort) {
  Calls calls;
  Events events;
  std::atomic<bool> throttling = false;
  std::atomic<int> steps = 0;
  std::atomic<uint64_t> slice = 0;
  JobOptions options;
  options.speed = 50;  // one 64 KiB step takes 22 minutes
  Job job("vm1", options,
          std::make_unique<ScriptedDriver>(
              [&](JobContext& ctx) {
                while (ctx.Checkpoint()) {
                  slice = ctx.SliceBytes();
                  throttling = true;
                  if (!ctx.Throttle(64 * 1024)) break;
                  ++steps;
                  std::this_thread::sleep_for(1ms);
                }
                return Status::Ok();
              },
              &calls),
          events.sink());
  job.Start();
  ASSERT_TRUE(WaitUntil([&] { return throttling.load(); }));
  EXPECT_EQ(slice, 5u) << "a tenth of a second's worth";
  job.Pause();
  ASSERT_TRUE(WaitForState(job, JobState::kPaused)) << "the pause waited for the throttle";
  EXPECT_EQ(steps, 0);
  job.Resume();
  ASSERT_TRUE(WaitForState(job, JobState::kRunning));
  job.SetSpeed(100 << 20);
  ASSERT_TRUE(WaitUntil([&] { return steps > 0; })) << "the new speed waited for the old booking";
  EXPECT_TRUE(WaitUntil([&] { return slice == (100u << 20) / 10; }));
  job.SetSpeed(50);
  const int at = steps;
  ASSERT_TRUE(WaitUntil([&] { return slice == 5; }));
  job.SetSpeed(0);
  ASSERT_TRUE(WaitUntil([&] { return steps > at + 10; })) << "unlimited waited for the old booking";
  EXPECT_TRUE(WaitUntil([&] { return slice == 0; }));
  job.Cancel();
  ASSERT_TRUE(job.WaitConcluded(10s));
  EXPECT_EQ(events.kinds(), std::vector{JobEvent::Kind::kCancelled});
}

// The rate is bytes copied per second and the ETA is the bytes still to copy
// over it: holes walked make no rate, and the driver's estimate of what
// remains is what the ETA counts. The end event carries the summary.
TEST(Job, RateAndEtaCountBytesToCopyNotHolesWalked) {
  Calls calls;
  Events events;
  Job* self = nullptr;
  Job job("vm1", {},
          std::make_unique<ScriptedDriver>(
              [&self](JobContext& ctx) {
                ctx.SetRange(10000);
                ctx.Advance({1000, 0, 1000});
                std::this_thread::sleep_for(300ms);
                ctx.Advance({1000, 0, 1000});
                JobInfo info = self->Info();
                EXPECT_EQ(info.offset, 2000u);
                EXPECT_EQ(info.rate, 0) << "2000 bytes of holes walked, nothing copied";
                EXPECT_EQ(info.remaining, std::optional<uint64_t>(0)) << "extrapolated: no data seen so far";
                ctx.SetRemaining(5000);
                info = self->Info();
                EXPECT_EQ(info.remaining, std::optional<uint64_t>(5000));
                EXPECT_EQ(info.eta_seconds, -1) << "bytes to copy, and no rate yet";

                std::this_thread::sleep_for(300ms);
                ctx.Advance({1000, 1000, 0});
                ctx.SetRemaining(4000);
                info = self->Info();
                EXPECT_GT(info.rate, 0);
                // 1000 bytes copied in the 300 ms or more since the last sample.
                EXPECT_LE(info.rate, 1000 / 0.3);
                EXPECT_DOUBLE_EQ(info.eta_seconds, 4000 / info.rate);
                ctx.SetRemaining(0);
                return Status::Ok();
              },
              &calls),
          events.sink());
  self = &job;
  job.Start();
  ASSERT_TRUE(job.WaitConcluded(10s));
  std::lock_guard lock(events.mutex);
  ASSERT_EQ(events.seen.size(), 1u);
  const JobInfo& end = events.seen[0].job;
  EXPECT_EQ(end.copied, 1000u);
  EXPECT_EQ(end.holes, 2000u);
  EXPECT_EQ(end.local, 0u);
  EXPECT_EQ(end.remaining, std::optional<uint64_t>(0));
  EXPECT_GE(end.elapsed_seconds, 0.6);
  EXPECT_DOUBLE_EQ(end.AverageRate(), 1000 / end.elapsed_seconds);
  EXPECT_EQ(job.Info().elapsed_seconds, end.elapsed_seconds) << "the clock stops at the end";
}

// Without an estimate from the driver, what remains is extrapolated from the
// share of the range walked so far that had to be copied.
TEST(Job, WithoutAnEstimateWhatRemainsIsExtrapolated) {
  Calls calls;
  Job* self = nullptr;
  Job job("vm1", {},
          std::make_unique<ScriptedDriver>(
              [&self](JobContext& ctx) {
                ctx.SetRange(10000);
                EXPECT_EQ(self->Info().remaining, std::nullopt) << "nothing walked: unknown";
                ctx.Advance({1000, 250, 500});
                EXPECT_EQ(self->Info().remaining, std::optional<uint64_t>(9000 / 4));
                EXPECT_EQ(self->Info().local, 250u);
                return Status::Ok();
              },
              &calls),
          nullptr);
  self = &job;
  job.Start();
  ASSERT_TRUE(job.WaitConcluded(10s));
}

}  // namespace
}  // namespace corfs::jobs
