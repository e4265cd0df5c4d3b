// The job model with a scripted driver: which driver steps run in which
// case, Complete only in READY, and the on-error policy of RunStep.

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
                ctx.Advance(100, 40);
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
  job.Pause();
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

}  // namespace
}  // namespace corfs::jobs
