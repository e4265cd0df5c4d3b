// BootProfileWriter (mount/boot_profile_writer.h): the profile is written
// once the guest read nothing new for the idle time, or when the image
// closes; not at all when the guest read nothing; atomically.

#include "mount/boot_profile_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "overlay/boot_profile.h"
#include "tests/test_support.h"

namespace corfs::mount {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kCluster = 64 * 1024;

std::shared_ptr<overlay::BootProfileRecorder> Recorder() {
  return std::make_shared<overlay::BootProfileRecorder>(64ull << 20, kCluster,
                                                        std::vector<overlay::ProfileLayer>{
                                                            {"base.img", 64ull << 20, 42}});
}

// Waits (at most a minute: a loaded machine) for `path` to exist.
bool WaitForFile(const std::string& path) {
  for (int i = 0; i < 6000 && !testing::FileExists(path); ++i) std::this_thread::sleep_for(10ms);
  return testing::FileExists(path);
}

TEST(BootProfileWriter, WritesOnceTheGuestIsIdleThenRecordsNoMore) {
  testing::TempDir dir;
  const std::string path = dir.File("boot.profile");
  auto recorder = Recorder();
  BootProfileWriter writer(path, 100ms, recorder, "vm");
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(testing::FileExists(path)) << "no read yet: no idle time either";
  recorder->NoteRead(7 * kCluster, 4096);
  recorder->NoteRead(2 * kCluster, 4096);
  ASSERT_TRUE(WaitForFile(path));
  overlay::BootProfile profile;
  ASSERT_TRUE(overlay::LoadBootProfile(path, &profile).ok());
  ASSERT_EQ(profile.ranges.size(), 2u);
  EXPECT_EQ(profile.ranges[0].offset, 7 * kCluster);
  EXPECT_EQ(profile.ranges[1].offset, 2 * kCluster);
  recorder->NoteRead(9 * kCluster, 4096);  // after the write: not recorded
  EXPECT_EQ(recorder->Snapshot().ranges.size(), 2u);
  EXPECT_EQ(testing::ListDir(dir.path()), std::vector<std::string>{"boot.profile"}) << "no temporary file left";
}

TEST(BootProfileWriter, WritesWhenTheImageClosesBeforeTheGuestIsIdle) {
  testing::TempDir dir;
  const std::string path = dir.File("boot.profile");
  auto recorder = Recorder();
  {
    BootProfileWriter writer(path, std::chrono::hours(1), recorder, "vm");
    recorder->NoteRead(3 * kCluster, kCluster);
  }
  overlay::BootProfile profile;
  ASSERT_TRUE(overlay::LoadBootProfile(path, &profile).ok());
  ASSERT_EQ(profile.ranges.size(), 1u);
  EXPECT_EQ(profile.ranges[0].offset, 3 * kCluster);
}

TEST(BootProfileWriter, AGuestThatReadNothingLeavesNoProfile) {
  testing::TempDir dir;
  const std::string path = dir.File("boot.profile");
  { BootProfileWriter writer(path, 100ms, Recorder(), "vm"); }
  EXPECT_FALSE(testing::FileExists(path));
}

}  // namespace
}  // namespace corfs::mount
