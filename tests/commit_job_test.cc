// The commit job over real overlays: an image of the chain is written into
// the raw base, the committed overlay's chain loses it and reads the same,
// and the other overlays over the base (siblings) read exactly what they
// read before and keep opening (their recorded identity follows the base).
// A commit cut short after it wrote into the base leaves an intent that
// lets exactly the prepared overlays open; bad requests change nothing.

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "jobs/commit_driver.h"
#include "jobs/job.h"
#include "overlay/commit_intent.h"
#include "overlay/overlay.h"
#include "overlay/overlay_inspect.h"
#include "overlay/shared_image_cache.h"
#include "tests/test_support.h"

namespace corfs::jobs {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kSize = 8ull << 20;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

class CommitJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(testing::TestSeed());
    base_content_ = testing::RandomBytes(rng, kSize);
    WriteFile(base(), base_content_);
    mid_ = testing::MakeRandomSparseLayer(dir_.File("mid.raw"), kSize, rng, 0.3);
  }

  std::string base() const { return dir_.File("base.raw"); }

  std::unique_ptr<overlay::Overlay> Make(const std::string& name, std::vector<overlay::ImageSpec> backing) {
    overlay::CreateOptions create;
    create.backing = std::move(backing);
    create.size = kSize;
    Status status = overlay::Overlay::Create(dir_.File(name), create);
    EXPECT_TRUE(status.ok()) << status.message();
    return Open(name);
  }

  std::unique_ptr<overlay::Overlay> Open(const std::string& name, Status* result = nullptr) {
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    open.opener = cache_.opener();
    open.warn = [this](const std::string& warning) { warnings_.push_back(warning); };
    std::unique_ptr<overlay::Overlay> image;
    Status status = overlay::Overlay::Open(dir_.File(name), open, &image);
    if (result != nullptr) {
      *result = status;
    } else {
      EXPECT_TRUE(status.ok()) << status.message();
    }
    return image;
  }

  static std::string Disk(overlay::Overlay& image) {
    std::string disk;
    Status status = testing::ReadWholeDisk(image, &disk);
    EXPECT_TRUE(status.ok()) << status.message();
    return disk;
  }

  // Runs a commit job to its end; its error, "" when it completed.
  static std::string RunJob(std::unique_ptr<CommitDriver> driver) {
    Job job("vm", JobOptions{}, std::move(driver), [](const JobEvent&) {});
    job.Start();
    EXPECT_TRUE(job.WaitConcluded(60s));
    return job.Info().error;
  }

  testing::TempDir dir_;
  overlay::SharedImageCache cache_;
  std::string base_content_;
  testing::SparseLayer mid_;
  std::vector<std::string> warnings_;
};

TEST_F(CommitJobTest, CommitsIntoTheBaseAndSiblingsReadAsBefore) {
  auto vm = Make("vm.img", {{mid_.path, "raw"}, {base(), "raw"}});
  auto sib1 = Make("sib1.img", {{base(), "raw"}});
  auto sib2 = Make("sib2.img", {{base(), "raw"}});
  // The guest wrote into the overlay: that stays in it.
  const std::string written(70000, 'w');
  ASSERT_TRUE(vm->Write(123456, written).ok());
  const std::string vm_before = Disk(*vm);
  const std::string sib1_before = Disk(*sib1);
  // sib2 read nothing yet: it holds nothing the commit will change.
  std::vector<CommitSibling> others = {{"sib1", sib1.get(), nullptr}, {"sib2", sib2.get(), nullptr}};
  CommitOptions options;
  options.top = mid_.path;
  std::unique_ptr<CommitDriver> driver;
  Status status = CommitDriver::Make(*vm, "vm", options, std::move(others), &driver);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(RunJob(std::move(driver)), "");

  ASSERT_EQ(vm->header().chain.size(), 1u) << "the chain must have lost the committed image";
  EXPECT_EQ(testing::FirstDifference(Disk(*vm), vm_before), "");
  EXPECT_EQ(testing::FirstDifference(Disk(*sib1), sib1_before), "");
  EXPECT_EQ(testing::FirstDifference(Disk(*sib2), base_content_), "");
  EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(base()),
                                     testing::ExpectedChainContent(
                                         {mid_, {base(), kSize, base_content_, std::vector<bool>(kSize / 4096, true)}},
                                         kSize)),
            "")
      << "the base must hold what the chain from the committed image showed";
  EXPECT_FALSE(testing::FileExists(overlay::CommitIntentPath(base())));

  // Every image opens again over the changed base, without a warning.
  vm.reset();
  sib1.reset();
  sib2.reset();
  warnings_.clear();
  for (const char* name : {"vm.img", "sib1.img", "sib2.img"}) {
    auto again = Open(name);
    ASSERT_NE(again, nullptr) << name;
    const std::string& expected = std::string(name) == "sib1.img"   ? sib1_before
                                  : std::string(name) == "sib2.img" ? base_content_
                                                                    : vm_before;
    EXPECT_EQ(testing::FirstDifference(Disk(*again), expected), "") << name;
  }
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

TEST_F(CommitJobTest, ActiveCommitGoesThroughReadyAndLeavesTheOverlayEmpty) {
  auto vm = Make("vm.img", {{mid_.path, "raw"}, {base(), "raw"}});
  auto sib = Make("sib.img", {{base(), "raw"}});
  ASSERT_TRUE(vm->Write(123456, std::string(70000, 'a')).ok());
  std::string expected = Disk(*vm);  // faults in everything: the overlay holds the whole disk
  const std::string sib_before = Disk(*sib);
  std::unique_ptr<CommitDriver> driver;
  Status status = CommitDriver::Make(*vm, "vm", CommitOptions{}, {{"sib", sib.get(), nullptr}}, &driver);
  ASSERT_TRUE(status.ok()) << status.message();
  Job job("vm", JobOptions{}, std::move(driver), [](const JobEvent&) {});
  job.Start();
  for (int i = 0; i < 6000 && job.Info().state != JobState::kReady; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(job.Info().state, JobState::kReady) << job.Info().error;
  // The guest writes while the job is READY: committed too.
  const std::string late(5000, 'b');
  ASSERT_TRUE(vm->Write(4000000, late).ok());
  expected.replace(4000000, late.size(), late);
  ASSERT_TRUE(job.Complete().ok());
  ASSERT_TRUE(job.WaitConcluded(60s));
  EXPECT_EQ(job.Info().error, "");

  EXPECT_EQ(vm->allocated_clusters(), 0u) << "the overlay must hold nothing of what was committed";
  ASSERT_EQ(vm->header().chain.size(), 1u);
  EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(base()), expected), "");
  EXPECT_EQ(testing::FirstDifference(Disk(*sib), sib_before), "");
  vm.reset();
  auto again = Open("vm.img");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->allocated_clusters(), 0u);
  EXPECT_EQ(testing::FirstDifference(Disk(*again), expected), "");
}

TEST_F(CommitJobTest, AnIntentLetsOnlyThePreparedOverlaysOpenOverAChangedBase) {
  { Make("prepared.img", {{base(), "raw"}}); }
  { Make("elsewhere.img", {{base(), "raw"}}); }
  overlay::ImageIdentity old_identity;
  {
    std::unique_ptr<overlay::BlockDriver> driver;
    ASSERT_TRUE(overlay::OpenImage(base(), "raw", &driver).ok());
    ASSERT_TRUE(overlay::ComputeIdentity(*driver, &old_identity).ok());
  }
  overlay::CommitIntent intent;
  intent.old_identity = old_identity;
  intent.overlays = {dir_.File("prepared.img")};
  ASSERT_TRUE(overlay::WriteCommitIntent(base(), intent).ok());
  // The first 64 KiB are always sampled: the fingerprint changes.
  testing::PatchFile(base(), 0, std::string(4096, 'x'));

  Status status;
  auto prepared = Open("prepared.img", &status);
  EXPECT_TRUE(status.ok()) << status.message();
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_.back().find("commit that did not finish"), std::string::npos) << warnings_.back();
  auto elsewhere = Open("elsewhere.img", &status);
  EXPECT_FALSE(status.ok()) << "an overlay the commit did not prepare must be refused";
  // `corfs check` judges them alike: the prepared one sound, with a note.
  overlay::CheckReport report;
  overlay::CheckOverlay(dir_.File("prepared.img"), overlay::OpenImage, &report, overlay::VerifyBacking::kSampled);
  EXPECT_TRUE(report.sound()) << (report.problems.empty() ? "" : report.problems.front());
  EXPECT_TRUE(std::any_of(report.notes.begin(), report.notes.end(), [](const std::string& note) {
    return note.find("commit that did not finish") != std::string::npos;
  }));
  overlay::CheckReport refused;
  overlay::CheckOverlay(dir_.File("elsewhere.img"), overlay::OpenImage, &refused, overlay::VerifyBacking::kSampled);
  EXPECT_FALSE(refused.sound());

  // Without the intent, the prepared one is refused too.
  ASSERT_TRUE(overlay::RemoveCommitIntent(base()).ok());
  prepared.reset();
  Open("prepared.img", &status);
  EXPECT_FALSE(status.ok());
}

TEST_F(CommitJobTest, ASiblingStreamedStandaloneMeanwhileIsLeftAlone) {
  auto vm = Make("vm.img", {{mid_.path, "raw"}, {base(), "raw"}});
  auto sib = Make("sib.img", {{base(), "raw"}});
  CommitOptions options;
  options.top = mid_.path;
  std::unique_ptr<CommitDriver> driver;
  Status status = CommitDriver::Make(*vm, "vm", options, {{"sib", sib.get(), nullptr}}, &driver);
  ASSERT_TRUE(status.ok()) << status.message();
  // After the commit took it in, the sibling stops reading the base.
  ASSERT_TRUE(sib->Populate(0, kSize, /*wait=*/true).ok());
  ASSERT_TRUE(sib->DropBacking().ok());
  EXPECT_EQ(RunJob(std::move(driver)), "");
  EXPECT_FALSE(testing::FileExists(overlay::CommitIntentPath(base())));
  EXPECT_EQ(testing::FirstDifference(Disk(*sib), base_content_), "");
  sib.reset();
  auto again = Open("sib.img");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(testing::FirstDifference(Disk(*again), base_content_), "");
}

TEST_F(CommitJobTest, RefusesWhatItCannotDoAndChangesNothing) {
  auto vm = Make("vm.img", {{mid_.path, "raw"}, {base(), "raw"}});
  const overlay::OverlayHeader before = vm->header();
  std::unique_ptr<CommitDriver> driver;
  CommitOptions options;
  // Top not above base.
  options.top = base();
  options.base = mid_.path;
  EXPECT_FALSE(CommitDriver::Make(*vm, "vm", options, {}, &driver).ok());
  // Not in the chain.
  options.top = dir_.File("nowhere.raw");
  options.base.reset();
  EXPECT_FALSE(CommitDriver::Make(*vm, "vm", options, {}, &driver).ok());
  // A base read-only on disk.
  options.top = mid_.path;
  ASSERT_EQ(::chmod(base().c_str(), 0444), 0);
  Status status = CommitDriver::Make(*vm, "vm", options, {}, &driver);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("read-only"), std::string::npos) << status.message();
  ASSERT_EQ(::chmod(base().c_str(), 0644), 0);
  // A read-only sibling over the base could not keep what it reads.
  auto sib = Make("sib.img", {{base(), "raw"}});
  sib.reset();
  overlay::OpenOptions read_only;
  read_only.read_only = true;
  ASSERT_TRUE(overlay::Overlay::Open(dir_.File("sib.img"), read_only, &sib).ok());
  EXPECT_FALSE(CommitDriver::Make(*vm, "vm", options, {{"sib", sib.get(), nullptr}}, &driver).ok());

  EXPECT_EQ(vm->header(), before);
  EXPECT_EQ(testing::ReadFileBytes(base()), base_content_);
  EXPECT_FALSE(testing::FileExists(overlay::CommitIntentPath(base())));
}

}  // namespace
}  // namespace corfs::jobs
