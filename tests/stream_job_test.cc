// The stream job over real overlays: several images that share one
// template stream at the same time on one worker pool, each ends standalone
// with the template's bytes, and the template, opened once for all of them,
// is closed when the last one lets go of it; and under a speed limit the
// stream copies about a slice of it per step.

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>

#include "jobs/copy_estimate.h"
#include "jobs/job.h"
#include "jobs/job_manager.h"
#include "jobs/stream_driver.h"
#include "jobs/worker_pool.h"
#include "overlay/overlay.h"
#include "overlay/shared_image_cache.h"
#include "tests/test_support.h"

namespace corfs::jobs {
namespace {

using namespace std::chrono_literals;

TEST(StreamJobs, ImagesOverOneTemplateStreamTogetherOnOnePool) {
  constexpr uint64_t kSize = 24ull << 20;
  constexpr int kImages = 3;
  testing::TempDir dir;
  const std::string template_path = dir.File("template.raw");
  std::mt19937_64 rng(testing::TestSeed());
  const std::string content = testing::RandomBytes(rng, kSize);
  {
    std::ofstream out(template_path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }

  overlay::SharedImageCache cache;
  std::vector<std::unique_ptr<overlay::Overlay>> images;
  for (int i = 0; i < kImages; ++i) {
    const std::string path = dir.File("vm" + std::to_string(i) + ".img");
    overlay::CreateOptions create;
    create.backing = {{template_path, "raw"}};
    create.size = kSize;
    ASSERT_TRUE(overlay::Overlay::Create(path, create).ok());
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    open.opener = cache.opener();
    std::unique_ptr<overlay::Overlay> image;
    Status status = overlay::Overlay::Open(path, open, &image);
    ASSERT_TRUE(status.ok()) << status.message();
    images.push_back(std::move(image));
  }
  EXPECT_EQ(cache.open_images(), 1u) << "images over one template must share one driver";

  WorkerPool pool(2);
  std::mutex mutex;
  std::condition_variable completed_changed;
  std::set<std::string> completed;
  JobEventSink events = [&](const JobEvent& event) {
    if (event.kind != JobEvent::Kind::kCompleted) return;
    std::lock_guard lock(mutex);
    EXPECT_FALSE(event.error.has_value()) << *event.error;
    completed.insert(event.job.id);
    completed_changed.notify_all();
  };

  std::vector<std::unique_ptr<Job>> jobs;
  for (int i = 0; i < kImages; ++i) {
    const std::string name = "vm" + std::to_string(i);
    StreamOptions options;
    options.chunk_size = 256 * 1024;
    std::unique_ptr<StreamDriver> driver;
    Status status = StreamDriver::Make(*images[i], name, options, pool, &driver);
    ASSERT_TRUE(status.ok()) << status.message();
    jobs.push_back(std::make_unique<Job>(name, options, std::move(driver), events));
  }
  for (auto& job : jobs) job->Start();  // all at once, on the one pool
  for (auto& job : jobs) {
    ASSERT_TRUE(job->WaitConcluded(120s));
    JobInfo info = job->Info();
    EXPECT_EQ(info.error, "");
    EXPECT_EQ(info.offset, kSize);
  }

  {
    // A job is concluded just before its event goes out.
    std::unique_lock lock(mutex);
    EXPECT_TRUE(completed_changed.wait_for(lock, 30s, [&] { return completed.size() == kImages; }))
        << completed.size() << " events";
  }
  for (auto& image : images) {
    EXPECT_TRUE(image->header().chain.empty()) << "not standalone";
    std::string disk;
    ASSERT_TRUE(testing::ReadWholeDisk(*image, &disk).ok());
    EXPECT_EQ(testing::FirstDifference(disk, content), "");
  }
  // Every overlay dropped its link: nobody holds the template any more.
  EXPECT_EQ(cache.open_images(), 0u);
}

// A context with a fixed slice that records what is throttled.
class RecordingContext final : public JobContext {
 public:
  explicit RecordingContext(uint64_t slice) : slice_(slice) {}
  bool Checkpoint() override { return true; }
  bool Throttle(uint64_t bytes) override {
    throttled.push_back(bytes);
    return true;
  }
  uint64_t SliceBytes() const override { return slice_; }
  bool Delay(std::chrono::milliseconds) override { return true; }
  void SetRange(uint64_t) override {}
  void Advance(const StepProgress& step) override {
    processed += step.processed;
    copied += step.copied;
    holes += step.holes;
  }
  void SetRemaining(uint64_t bytes) override { remaining.push_back(bytes); }
  void EnterReady() override {}
  Status RunStep(Status result, const std::function<Status()>&, ClassifyError, bool*) override { return result; }
  bool cancel_requested() const override { return false; }
  bool interrupted() const override { return false; }

  std::vector<uint64_t> throttled;
  uint64_t processed = 0;
  uint64_t copied = 0;
  uint64_t holes = 0;
  std::vector<uint64_t> remaining;  // each estimate, in order

 private:
  uint64_t slice_;
};

TEST(StreamJobs, UnderASpeedLimitAStepCopiesAboutASlice) {
  constexpr uint64_t kSize = 8ull << 20;
  constexpr uint64_t kCluster = 64 * 1024;
  testing::TempDir dir;
  const std::string template_path = dir.File("template.raw");
  std::mt19937_64 rng(testing::TestSeed());
  {
    const std::string content = testing::RandomBytes(rng, kSize);
    std::ofstream out(template_path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  WorkerPool pool(2);
  // slice -> the most one step may copy: whole clusters, at least one.
  const std::vector<std::pair<uint64_t, uint64_t>> cases = {{5, kCluster}, {200 * 1024, 3 * kCluster}, {0, kSize}};
  for (const auto& [slice, most] : cases) {
    SCOPED_TRACE(slice);
    const std::string path = dir.File("vm" + std::to_string(slice) + ".img");
    overlay::CreateOptions create;
    create.backing = {{template_path, "raw"}};
    create.cluster_size = kCluster;
    ASSERT_TRUE(overlay::Overlay::Create(path, create).ok());
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    std::unique_ptr<overlay::Overlay> image;
    ASSERT_TRUE(overlay::Overlay::Open(path, open, &image).ok());
    StreamOptions options;
    options.chunk_size = 512 * 1024;
    std::unique_ptr<StreamDriver> driver;
    ASSERT_TRUE(StreamDriver::Make(*image, "vm", options, pool, &driver).ok());
    RecordingContext context(slice);
    ASSERT_TRUE(driver->Run(context).ok());
    uint64_t copied = 0;
    uint64_t largest = 0;
    for (uint64_t bytes : context.throttled) {
      copied += bytes;
      largest = std::max(largest, bytes);
    }
    EXPECT_EQ(copied, kSize);
    EXPECT_LE(largest, most);
    if (slice == 0) {
      EXPECT_GT(largest, options.chunk_size) << "unlimited: a batch of chunks at once";
    }
    EXPECT_EQ(image->allocated_clusters(), image->cluster_count());
  }
}

constexpr uint64_t kMiB = 1ull << 20;

// A raw template of `size` bytes, holes but for random data in `data`
// ({offset, length}, MiB).
void MakeSparseTemplate(const std::string& path, uint64_t size,
                        const std::vector<std::pair<uint64_t, uint64_t>>& data) {
  std::mt19937_64 rng(testing::TestSeed());
  std::fstream out(path, std::ios::binary | std::ios::out | std::ios::trunc);
  for (const auto& [offset, length] : data) {
    const std::string bytes = testing::RandomBytes(rng, length * kMiB);
    out.seekp(static_cast<std::streamoff>(offset * kMiB));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  out.close();
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0);
}

std::unique_ptr<overlay::Overlay> OpenOverlay(const std::string& path, const std::string& backing) {
  overlay::CreateOptions create;
  create.backing = {{backing, "raw"}};
  create.cluster_size = 64 * 1024;
  EXPECT_TRUE(overlay::Overlay::Create(path, create).ok());
  overlay::OpenOptions open;
  open.commit_interval = 0ms;
  std::unique_ptr<overlay::Overlay> image;
  EXPECT_TRUE(overlay::Overlay::Open(path, open, &image).ok());
  return image;
}

// What a stream walks is copied, recorded as holes, or was local already;
// its estimate of what remains starts at the data the chain holds (the
// survey), only goes down, and ends at 0; and only copied bytes go through
// the speed limit.
TEST(StreamJobs, ProgressCountsCopiedHolesAndLocalAndEstimatesWhatRemains) {
  testing::TempDir dir;
  const std::string template_path = dir.File("template.raw");
  MakeSparseTemplate(template_path, 16 * kMiB, {{0, 2}, {8, 2}});
  std::unique_ptr<overlay::Overlay> image = OpenOverlay(dir.File("vm.img"), template_path);
  ASSERT_NE(image, nullptr);
  ASSERT_TRUE(image->Populate(8 * kMiB, kMiB, /*wait=*/true).ok());  // 1 MiB local already

  WorkerPool pool(2);
  std::unique_ptr<StreamDriver> driver;
  ASSERT_TRUE(StreamDriver::Make(*image, "vm", StreamOptions{}, pool, &driver).ok());
  RecordingContext context(/*slice=*/200 * 1024);
  ASSERT_TRUE(driver->Run(context).ok());

  EXPECT_EQ(context.processed, 16 * kMiB);
  EXPECT_EQ(context.copied, 3 * kMiB);
  EXPECT_EQ(context.holes, 12 * kMiB);
  uint64_t throttled = 0;
  for (uint64_t bytes : context.throttled) throttled += bytes;
  EXPECT_EQ(throttled, 3 * kMiB) << "the speed limit is on copied bytes, not on holes";
  ASSERT_GE(context.remaining.size(), 2u);
  EXPECT_EQ(context.remaining.front(), 3 * kMiB) << "the survey counts the data to copy";
  EXPECT_EQ(context.remaining.back(), 0u);
  for (size_t i = 1; i < context.remaining.size(); ++i) {
    EXPECT_LE(context.remaining[i], context.remaining[i - 1]) << "estimate " << i << " went up";
  }
  EXPECT_EQ(image->allocated_clusters(), image->cluster_count());
}

// The CopyEstimate on its own: prorated inside a bin, and past a survey cut
// short the surveyed density is assumed.
TEST(StreamJobs, CopyEstimateProratesAndExtrapolates) {
  CopyEstimate estimate(0, 1000 * kMiB, 64 * 1024);
  estimate.AddData(0, 10 * kMiB);
  estimate.AddData(500 * kMiB, 10 * kMiB);
  estimate.SetSurveyed(1000 * kMiB);
  EXPECT_EQ(estimate.Remaining(0), 20 * kMiB);
  EXPECT_EQ(estimate.Remaining(5 * kMiB), 15 * kMiB);
  EXPECT_EQ(estimate.Remaining(505 * kMiB), 5 * kMiB);
  EXPECT_EQ(estimate.Remaining(600 * kMiB), 0u);

  CopyEstimate partial(0, 1000 * kMiB, 64 * 1024);
  partial.AddData(0, 50 * kMiB);
  partial.SetSurveyed(100 * kMiB);  // half data so far: half of the rest assumed
  EXPECT_EQ(partial.Remaining(0), 50 * kMiB + 450 * kMiB);
  EXPECT_EQ(partial.Remaining(600 * kMiB), 200 * kMiB);
}

// Under a speed limit a whole job's average rate of copied bytes stays at
// the limit, holes cost none of it, and the end event sums the job up.
TEST(StreamJobs, TheSpeedLimitAppliesToCopiedBytes) {
  testing::TempDir dir;
  const std::string template_path = dir.File("template.raw");
  MakeSparseTemplate(template_path, 64 * kMiB, {{4, 1}, {40, 1}});
  std::unique_ptr<overlay::Overlay> image = OpenOverlay(dir.File("vm.img"), template_path);
  ASSERT_NE(image, nullptr);
  WorkerPool pool(2);
  StreamOptions options;
  options.speed = kMiB;  // 2 MiB to copy: two seconds or more
  std::unique_ptr<StreamDriver> driver;
  ASSERT_TRUE(StreamDriver::Make(*image, "vm", options, pool, &driver).ok());
  std::mutex mutex;
  std::optional<JobEvent> end;
  Job job("vm", options, std::move(driver), [&](const JobEvent& event) {
    std::lock_guard lock(mutex);
    end = event;
  });
  job.Start();
  ASSERT_TRUE(job.WaitConcluded(60s));
  std::lock_guard lock(mutex);
  ASSERT_TRUE(end.has_value());
  ASSERT_EQ(end->kind, JobEvent::Kind::kCompleted) << end->error.value_or("");
  EXPECT_EQ(end->job.offset, 64 * kMiB);
  EXPECT_EQ(end->job.copied, 2 * kMiB);
  EXPECT_EQ(end->job.holes, 62 * kMiB);
  EXPECT_EQ(end->job.local, 0u);
  EXPECT_EQ(end->job.remaining, std::optional<uint64_t>(0));
  // The limiter lets a job run at most its burst (100 ms) ahead of the rate.
  EXPECT_LE(end->job.AverageRate(), kMiB * 2.0 / 1.9);
  EXPECT_TRUE(image->header().chain.empty()) << "standalone";
}

// A whole-image stream records its wish (speed, on-error) in the overlay
// when it starts, a new speed updates it, and a cancel or its completion
// clears it; the mount going down (the manager interrupting its jobs)
// leaves it for the next mount. A range or a base records none.
TEST(StreamJobs, AWholeImageStreamRecordsItsWishUntilItEnds) {
  testing::TempDir dir;
  const std::string base_path = dir.File("base.raw");
  const std::string top_path = dir.File("top.raw");
  MakeSparseTemplate(base_path, 16 * kMiB, {{0, 16}});
  MakeSparseTemplate(top_path, 16 * kMiB, {{4, 1}});
  overlay::CreateOptions create;
  create.backing = {{top_path, "raw"}, {base_path, "raw"}};
  create.cluster_size = 64 * 1024;
  const std::string path = dir.File("vm.img");
  ASSERT_TRUE(overlay::Overlay::Create(path, create).ok());
  overlay::OpenOptions open;
  open.commit_interval = 0ms;
  std::unique_ptr<overlay::Overlay> image;
  ASSERT_TRUE(overlay::Overlay::Open(path, open, &image).ok());
  auto wish = [&] { return image->header().stream_wish; };
  using Wish = std::optional<overlay::StreamWish>;

  StreamOptions slow;
  slow.speed = 64 * 1024;  // 16 MiB: minutes; every job here ends sooner
  slow.on_error = OnError::kStop;
  {
    JobManager jobs(2, {});
    StartedStream started;
    ASSERT_TRUE(jobs.StartStream(*image, "vm", slow, &started).ok());
    EXPECT_EQ(wish(), Wish(overlay::StreamWish{64 * 1024, "stop"}));
    std::shared_ptr<Job> job = jobs.Find("vm");
    ASSERT_NE(job, nullptr);
    job->SetSpeed(128 * 1024);
    EXPECT_EQ(wish(), Wish(overlay::StreamWish{128 * 1024, "stop"})) << "a new speed is the wish's";
    job->Cancel();
    ASSERT_TRUE(job->WaitConcluded(30s));
    EXPECT_EQ(wish(), std::nullopt) << "a cancel clears it";

    ASSERT_TRUE(jobs.StartStream(*image, "vm", slow, &started).ok());
    EXPECT_TRUE(wish().has_value());
  }  // the mount goes down
  EXPECT_EQ(wish(), Wish(overlay::StreamWish{64 * 1024, "stop"})) << "an interrupted stream resumes";
  ASSERT_TRUE(image->SetStreamWish(std::nullopt).ok());

  JobManager jobs(2, {});
  StreamOptions range = slow;
  range.range_offset = 0;
  range.range_length = 16 * kMiB;
  StreamOptions base = slow;
  base.base = base_path;
  for (const StreamOptions& options : {range, base}) {
    StartedStream started;
    ASSERT_TRUE(jobs.StartStream(*image, "vm", options, &started).ok());
    EXPECT_EQ(wish(), std::nullopt) << "a range or a base records no wish";
    std::shared_ptr<Job> job = jobs.Find("vm");
    ASSERT_NE(job, nullptr);
    job->Cancel();
    ASSERT_TRUE(job->WaitConcluded(30s));
  }

  StartedStream started;
  ASSERT_TRUE(jobs.StartStream(*image, "vm", StreamOptions{}, &started).ok());
  std::shared_ptr<Job> job = jobs.Find("vm");
  ASSERT_TRUE(job == nullptr || job->WaitConcluded(60s));  // gone once concluded
  EXPECT_TRUE(image->header().standalone);
  EXPECT_EQ(wish(), std::nullopt) << "its completion clears it";
}

}  // namespace
}  // namespace corfs::jobs
