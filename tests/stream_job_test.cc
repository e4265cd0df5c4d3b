// The stream job over real overlays: several images that share one
// template stream at the same time on one worker pool, each ends standalone
// with the template's bytes, and the template, opened once for all of them,
// is closed when the last one lets go of it; and under a speed limit the
// stream copies about a slice of it per step.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <set>

#include "jobs/job.h"
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
  void Advance(uint64_t, uint64_t) override {}
  void EnterReady() override {}
  Status RunStep(Status result, const std::function<Status()>&, ClassifyError, bool*) override { return result; }
  bool cancel_requested() const override { return false; }

  std::vector<uint64_t> throttled;

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

}  // namespace
}  // namespace corfs::jobs
