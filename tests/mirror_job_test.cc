// The mirror job over real overlays and a file target (jobs/mirror_driver.h):
// the bulk copy, the dirty phase under concurrent guest writes, READY, and
// complete leaving the target identical to the disk; write-blocking mode;
// sync top into a target that reads as the template; a cancel before and
// after READY; dirty-bytes in the job's info. (That mirroring does not fill
// the overlay is checked by tests/integration/mirror_test.sh.)

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "jobs/job.h"
#include "jobs/mirror_driver.h"
#include "jobs/worker_pool.h"
#include "overlay/overlay.h"
#include "overlay/target_image.h"
#include "tests/test_support.h"

namespace corfs::jobs {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kSize = 16ull << 20;

// The events of one job, to wait for.
class Events {
 public:
  JobEventSink sink() {
    return [this](const JobEvent& event) {
      std::lock_guard lock(mutex_);
      kinds_.push_back(event.kind);
      if (event.error) errors_.push_back(*event.error);
      changed_.notify_all();
    };
  }
  bool WaitFor(JobEvent::Kind kind, std::chrono::seconds timeout = 60s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout,
                             [&] { return std::find(kinds_.begin(), kinds_.end(), kind) != kinds_.end(); });
  }
  std::vector<JobEvent::Kind> kinds() {
    std::lock_guard lock(mutex_);
    return kinds_;
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<JobEvent::Kind> kinds_;
  std::vector<std::string> errors_;
};

// A template of random bytes with a hole in its second quarter, and an
// overlay over it.
class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rng_.seed(testing::TestSeed());
    template_path_ = dir_.File("template.raw");
    content_ = testing::RandomBytes(rng_, kSize);
    std::fill(content_.begin() + kSize / 4, content_.begin() + kSize / 2, '\0');
    {
      std::ofstream out(template_path_, std::ios::binary);
      out.write(content_.data(), static_cast<std::streamsize>(content_.size()));
    }
    const std::string path = dir_.File("vm.img");
    overlay::CreateOptions create;
    create.backing = {{template_path_, "raw"}};
    create.size = kSize;
    ASSERT_TRUE(overlay::Overlay::Create(path, create).ok());
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    Status status = overlay::Overlay::Open(path, open, &image_);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  // A job mirroring the image into `target` (made new unless `existing`).
  std::unique_ptr<Job> MakeJob(const std::string& target, MirrorOptions options, uint64_t speed, bool existing,
                               Events& events) {
    overlay::TargetOptions target_options;
    target_options.size = kSize;
    target_options.existing = existing;
    std::unique_ptr<overlay::BlockDriver> driver;
    Status status = overlay::OpenTarget(target, target_options, &driver);
    EXPECT_TRUE(status.ok()) << status.message();
    options.target_zeroed = !existing;
    std::unique_ptr<MirrorDriver> mirror;
    status = MirrorDriver::Make(*image_, std::move(driver), options, pool_, &mirror);
    EXPECT_TRUE(status.ok()) << status.message();
    JobOptions job_options;
    job_options.speed = speed;
    return std::make_unique<Job>("vm", job_options, std::move(mirror), events.sink());
  }

  // A guest writing random blocks (and discarding now and then) until told
  // to stop.
  void StartWriter() {
    writer_ = std::thread([this, seed = rng_()] {
      std::mt19937_64 rng(seed);
      while (!stop_.load()) {
        const uint64_t length = 4096 * testing::RandomIn(rng, 1, 32);
        const uint64_t offset = testing::RandomIn(rng, 0, (kSize - length) / 4096) * 4096;
        if (testing::RandomIn(rng, 0, 9) == 0) {
          ASSERT_TRUE(image_->Discard(offset, length).ok());
        } else {
          ASSERT_TRUE(image_->Write(offset, testing::RandomBytes(rng, length)).ok());
        }
        writes_.fetch_add(1);
        std::this_thread::sleep_for(200us);
      }
    });
  }
  void StopWriter() {
    stop_.store(true);
    if (writer_.joinable()) writer_.join();
  }
  void TearDown() override { StopWriter(); }

  void ExpectIdentical(const std::string& target) {
    std::string disk;
    ASSERT_TRUE(testing::ReadWholeDisk(*image_, &disk).ok());
    EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(target), disk), "");
  }

  testing::TempDir dir_;
  std::mt19937_64 rng_;
  std::string template_path_;
  std::string content_;
  std::unique_ptr<overlay::Overlay> image_;
  WorkerPool pool_{2};
  std::thread writer_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> writes_{0};
};

TEST_F(MirrorTest, FullMirrorUnderWritesIsIdenticalAfterComplete) {
  Events events;
  const std::string target = dir_.File("target.raw");
  StartWriter();
  auto job = MakeJob(target, {}, 0, false, events);
  job->Start();
  ASSERT_TRUE(events.WaitFor(JobEvent::Kind::kReady));
  EXPECT_EQ(job->Info().state, JobState::kReady);
  // In READY, guest writes reach the target before they are answered.
  std::this_thread::sleep_for(50ms);
  StopWriter();
  EXPECT_GT(writes_.load(), 0u);
  ExpectIdentical(target);
  ASSERT_TRUE(job->Complete().ok());
  ASSERT_TRUE(job->WaitConcluded(60s));
  EXPECT_EQ(events.kinds().back(), JobEvent::Kind::kCompleted);
  EXPECT_TRUE(events.errors().empty());
  ExpectIdentical(target);
  // After the end, guest writes no longer reach the target.
  ASSERT_TRUE(image_->Write(0, std::string(4096, 'x')).ok());
  EXPECT_NE(testing::ReadFileBytes(target).substr(0, 4096), std::string(4096, 'x'));
}

TEST_F(MirrorTest, WriteBlockingConvergesUnderASlowLimit) {
  Events events;
  const std::string target = dir_.File("target.raw");
  MirrorOptions options;
  options.copy_mode = MirrorCopyMode::kWriteBlocking;
  StartWriter();
  // 8 MiB/s for 12 MiB of data: the writer keeps writing the whole time.
  auto job = MakeJob(target, options, 8ull << 20, false, events);
  job->Start();
  std::this_thread::sleep_for(200ms);
  const JobInfo info = job->Info();
  ASSERT_TRUE(info.dirty_bytes.has_value());
  EXPECT_GT(*info.dirty_bytes, 0u) << "the bulk is still to copy";
  ASSERT_TRUE(events.WaitFor(JobEvent::Kind::kReady));
  EXPECT_EQ(*job->Info().dirty_bytes, 0u);
  StopWriter();
  ExpectIdentical(target);
  ASSERT_TRUE(job->Complete().ok());
  ASSERT_TRUE(job->WaitConcluded(60s));
  EXPECT_EQ(events.kinds().back(), JobEvent::Kind::kCompleted);
  ExpectIdentical(target);
}

TEST_F(MirrorTest, TopCopiesOnlyWhatTheOverlayHolds) {
  // The target reads as the template already (as an overlay over the same
  // template would on the destination).
  const std::string target = dir_.File("target.raw");
  {
    std::ofstream out(target, std::ios::binary);
    out.write(content_.data(), static_cast<std::streamsize>(content_.size()));
  }
  ASSERT_TRUE(image_->Write(3 << 20, std::string(100000, 'a')).ok());
  ASSERT_TRUE(image_->Discard(10 << 20, 1 << 20).ok());
  Events events;
  MirrorOptions options;
  options.sync = MirrorSync::kTop;
  StartWriter();
  auto job = MakeJob(target, options, 0, true, events);
  job->Start();
  ASSERT_TRUE(events.WaitFor(JobEvent::Kind::kReady));
  StopWriter();
  job->Cancel(/*force=*/false);  // after READY: completes, as in QEMU
  ASSERT_TRUE(job->WaitConcluded(60s));
  EXPECT_EQ(events.kinds().back(), JobEvent::Kind::kCompleted);
  ExpectIdentical(target);
}

TEST_F(MirrorTest, CancelBeforeReadyIsCancelled) {
  Events events;
  const std::string target = dir_.File("target.raw");
  auto job = MakeJob(target, {}, kMinSpeed, false, events);  // far from READY
  job->Start();
  std::this_thread::sleep_for(100ms);
  job->Cancel(/*force=*/false);
  ASSERT_TRUE(job->WaitConcluded(30s));
  EXPECT_EQ(events.kinds(), std::vector{JobEvent::Kind::kCancelled});
  // The hook is out: a write after the end leaves the target alone.
  ASSERT_TRUE(image_->Write(0, std::string(4096, 'y')).ok());
  EXPECT_NE(testing::ReadFileBytes(target).substr(0, 4096), std::string(4096, 'y'));
}

TEST_F(MirrorTest, ForcedCancelAfterReadyIsCancelled) {
  Events events;
  const std::string target = dir_.File("target.raw");
  auto job = MakeJob(target, {}, 0, false, events);
  job->Start();
  ASSERT_TRUE(events.WaitFor(JobEvent::Kind::kReady));
  job->Cancel(/*force=*/true);
  ASSERT_TRUE(job->WaitConcluded(30s));
  EXPECT_EQ(events.kinds(), (std::vector{JobEvent::Kind::kReady, JobEvent::Kind::kCancelled}));
}

TEST_F(MirrorTest, PausedReadyJobCompletesOnASoftCancel) {
  Events events;
  const std::string target = dir_.File("target.raw");
  auto job = MakeJob(target, {}, 0, false, events);
  job->Start();
  ASSERT_TRUE(events.WaitFor(JobEvent::Kind::kReady));
  ASSERT_TRUE(job->Pause());
  ASSERT_TRUE(image_->Write(5 << 20, std::string(8192, 'p')).ok());  // mirrored while paused too
  job->Cancel(/*force=*/false);
  ASSERT_TRUE(job->WaitConcluded(30s));
  EXPECT_EQ(events.kinds().back(), JobEvent::Kind::kCompleted);
  ExpectIdentical(target);
}

TEST_F(MirrorTest, MakeRefusesABadGranularityAndAWrongSize) {
  const std::string target = dir_.File("target.raw");
  overlay::TargetOptions target_options;
  target_options.size = kSize;
  std::unique_ptr<overlay::BlockDriver> driver;
  ASSERT_TRUE(overlay::OpenTarget(target, target_options, &driver).ok());
  MirrorOptions options;
  options.granularity = 3000;
  std::unique_ptr<MirrorDriver> mirror;
  EXPECT_FALSE(MirrorDriver::Make(*image_, std::move(driver), options, pool_, &mirror).ok());
  // An existing target must be said to exist.
  EXPECT_EQ(overlay::OpenTarget(target, target_options, &driver).code(), EEXIST);
}

}  // namespace
}  // namespace corfs::jobs
