// The backup job over real overlays: copy-before-write gives the disk as of
// the job's start while writers keep changing it; persistent dirty bitmaps
// survive a close, turn inconsistent after a crash (the file left "in use")
// and then refuse an incremental; an incremental over the full backup reads
// as the disk at its own start (zeroed chunks included) and leaves the
// bitmap holding only what came after; a cancelled one gives its bits back.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "jobs/backup_driver.h"
#include "jobs/job_manager.h"
#include "overlay/overlay.h"
#include "overlay/persistent_bitmaps.h"
#include "tests/test_support.h"

namespace corfs::jobs {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kSize = 8ull << 20;
constexpr uint64_t kChunk = 64 * 1024;

class BackupJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rng_.seed(testing::TestSeed());
    const std::string base = dir_.File("template.raw");
    const std::string content = testing::RandomBytes(rng_, kSize);
    std::ofstream(base, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    overlay::CreateOptions create;
    create.backing = {{base, "raw"}};
    create.size = kSize;
    ASSERT_TRUE(overlay::Overlay::Create(path_, create).ok());
    Reopen();
  }

  void Reopen() {
    bitmaps_.reset();
    image_.reset();
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    Status status = overlay::Overlay::Open(path_, open, &image_);
    ASSERT_TRUE(status.ok()) << status.message();
    status = overlay::PersistentBitmaps::Open(*image_, &bitmaps_);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  std::string Disk() {
    std::string out;
    EXPECT_TRUE(testing::ReadWholeDisk(*image_, &out).ok());
    return out;
  }

  void WriteRandom(uint64_t offset, uint64_t length) {
    const std::string data = testing::RandomBytes(rng_, length);
    ASSERT_TRUE(image_->Write(offset, data).ok());
  }

  // Starts a backup; returns the job (null and the error when refused).
  std::shared_ptr<Job> Start(const BackupOptions& options, uint64_t speed, Status* refused = nullptr) {
    std::unique_ptr<BackupDriver> driver;
    Status status = BackupDriver::Make(*image_, bitmaps_, options, &driver);
    if (refused != nullptr) *refused = status;
    if (!status.ok()) return nullptr;
    JobOptions job;
    job.speed = speed;
    std::string id;
    status = jobs_.StartJob("disk", job, std::move(driver), &id);
    EXPECT_TRUE(status.ok()) << status.message();
    return jobs_.Find(id);
  }

  // Waits for the job; its error ("" when it completed).
  std::string Finish(const std::shared_ptr<Job>& job) {
    EXPECT_TRUE(job->WaitConcluded(60s));
    return job->Info().error;
  }

  uint64_t BitmapCount(const std::string& name) {
    for (const overlay::BitmapInfo& info : bitmaps_->List()) {
      if (info.name == name) return info.count;
    }
    return ~uint64_t{0};
  }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  std::mt19937_64 rng_;
  std::unique_ptr<overlay::Overlay> image_;
  std::shared_ptr<overlay::PersistentBitmaps> bitmaps_;
  JobManager jobs_{1, [](const JobEvent&) {}};
};

TEST_F(BackupJobTest, CopyBeforeWriteGivesTheDiskAsOfTheStart) {
  WriteRandom(1 << 20, 3 << 20);  // some of it the overlay's, the rest the template's
  const std::string at_start = Disk();
  BackupOptions options;
  options.target = dir_.File("full.raw");
  // Slow enough that the writers below meet chunks it has not copied yet.
  std::shared_ptr<Job> job = Start(options, 2ull << 20);
  ASSERT_NE(job, nullptr);
  // The point in time is fixed once the job knows its range.
  while (job->Info().len == 0 && !job->concluded()) std::this_thread::sleep_for(1ms);

  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(testing::TestSeed() + static_cast<uint64_t>(w));
      std::string data(16 * 1024, static_cast<char>('a' + w));
      while (!stop.load()) {
        const uint64_t offset = testing::RandomIn(rng, 0, kSize - data.size());
        Status status = (rng() % 8 == 0) ? image_->Discard(offset, data.size()) : image_->Write(offset, data);
        ASSERT_TRUE(status.ok()) << status.message();
        std::this_thread::sleep_for(200us);
      }
    });
  }
  const std::string error = Finish(job);
  stop = true;
  for (std::thread& t : writers) t.join();
  ASSERT_EQ(error, "");
  EXPECT_NE(Disk(), at_start) << "the writers changed nothing: the test proves nothing";
  EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(options.target), at_start), "");
}

TEST_F(BackupJobTest, BitmapSurvivesACloseAndACrashMakesItInconsistent) {
  ASSERT_TRUE(bitmaps_->Add("b", kChunk, true).ok());
  EXPECT_FALSE(bitmaps_->Add("b", kChunk, true).ok()) << "a name is taken once";
  EXPECT_FALSE(bitmaps_->Add("c", 1000, true).ok()) << "granularity must be a power of two";
  ASSERT_TRUE(bitmaps_->Add("t", kChunk, false).ok());
  WriteRandom(3 * kChunk + 10, 100);
  EXPECT_EQ(BitmapCount("b"), kChunk);
  ASSERT_TRUE(bitmaps_->Close().ok());
  Reopen();
  ASSERT_EQ(bitmaps_->List().size(), 1u) << "a transient bitmap is not kept";
  EXPECT_EQ(BitmapCount("b"), kChunk);
  EXPECT_FALSE(bitmaps_->List()[0].inconsistent);

  // A crash: the file as a mount leaves it, "in use".
  const std::string file = overlay::BitmapsPath(path_);
  const std::string in_use = testing::ReadFileBytes(file);
  ASSERT_TRUE(bitmaps_->Close().ok());
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(in_use.data(), static_cast<std::streamsize>(in_use.size()));
  Reopen();
  ASSERT_EQ(bitmaps_->List().size(), 1u);
  EXPECT_TRUE(bitmaps_->List()[0].inconsistent);
  BackupOptions options;
  options.target = dir_.File("inc.img");
  options.sync = BackupSync::kIncremental;
  options.bitmap = "b";
  Status refused;
  EXPECT_EQ(Start(options, 0, &refused), nullptr);
  EXPECT_NE(refused.message().find("inconsistent"), std::string::npos) << refused.message();
  EXPECT_FALSE(testing::FileExists(options.target)) << "a refusal makes nothing";

  // A damaged file is refused, not taken for empty.
  ASSERT_TRUE(bitmaps_->Close().ok());
  testing::PatchFile(file, 20, "x");
  bitmaps_.reset();
  EXPECT_FALSE(overlay::PersistentBitmaps::Open(*image_, &bitmaps_).ok());
}

TEST_F(BackupJobTest, IncrementalOverTheFullOneReadsAsTheDiskAtItsStart) {
  ASSERT_TRUE(bitmaps_->Add("b", kChunk, true).ok());
  WriteRandom(0, 1 << 20);
  BackupOptions full;
  full.target = dir_.File("full.raw");
  full.bitmap = "b";
  std::shared_ptr<Job> job = Start(full, 0);
  ASSERT_NE(job, nullptr);
  ASSERT_EQ(Finish(job), "");
  EXPECT_EQ(BitmapCount("b"), 0u) << "a full backup with the bitmap starts it afresh";

  WriteRandom(5 * kChunk, 3 * kChunk);
  ASSERT_TRUE(image_->Discard(2 * kChunk, kChunk).ok());  // zeros over data the full backup holds
  WriteRandom(kSize - 100, 100);
  const std::string at_start = Disk();
  EXPECT_EQ(BitmapCount("b"), 5 * kChunk);

  // A cancelled incremental gives its bits back.
  BackupOptions inc;
  inc.target = dir_.File("inc.img");
  inc.sync = BackupSync::kIncremental;
  inc.bitmap = "b";
  job = Start(inc, 64 * 1024);
  ASSERT_NE(job, nullptr);
  job->Cancel();
  Finish(job);
  EXPECT_EQ(BitmapCount("b"), 5 * kChunk);
  EXPECT_FALSE(testing::FileExists(inc.target)) << "a failed backup removes the target it made";

  job = Start(inc, 0);
  ASSERT_NE(job, nullptr);
  ASSERT_EQ(Finish(job), "");
  EXPECT_EQ(BitmapCount("b"), 0u);
  overlay::OpenOptions open;
  open.read_only = true;
  std::unique_ptr<overlay::Overlay> restored;
  Status status = overlay::Overlay::Open(inc.target, open, &restored);
  ASSERT_TRUE(status.ok()) << status.message();
  std::string content;
  ASSERT_TRUE(testing::ReadWholeDisk(*restored, &content).ok());
  EXPECT_EQ(testing::FirstDifference(content, at_start), "");
  EXPECT_LE(restored->allocated_bytes(), 6 * kChunk) << "an incremental holds only what changed";
}

}  // namespace
}  // namespace corfs::jobs
