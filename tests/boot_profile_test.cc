// Boot profiles (overlay/boot_profile.h): the recorder keeps the order of
// first reads, once per cluster, from any number of threads; the file
// round-trips, is checked, and is refused over another template; merging
// orders clusters by their median first-read time; the replay cursor tells
// where the guest is in a profile.

#include "overlay/boot_profile.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "overlay/boot_profile_cursor.h"
#include "overlay/boot_profile_recorder.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kDisk = 64ull << 20;

std::vector<ProfileLayer> Template() { return {{"base.img", kDisk, 0x1234abcdull}}; }

TEST(BootProfileRecorder, FirstRangesAreTheClustersReadFirstInOrderOnce) {
  BootProfileRecorder recorder(kDisk, kCluster, Template());
  EXPECT_FALSE(recorder.IdleFor(BootProfileRecorder::Clock::now()).has_value()) << "no read yet";
  recorder.NoteRead(40 * kCluster + 100, 10);  // inside one cluster
  recorder.NoteRead(8 * kCluster, 2 * kCluster);
  recorder.NoteRead(40 * kCluster, kCluster);     // seen: nothing new
  recorder.NoteRead(9 * kCluster, 2 * kCluster);  // 9 seen, 10 new, and it continues 8-9
  recorder.NoteRead(3 * kCluster, 1);
  recorder.NoteRead(kDisk, 4096);  // past the end: nothing
  const BootProfile profile = recorder.Snapshot();
  ASSERT_EQ(profile.ranges.size(), 3u);
  EXPECT_EQ(profile.ranges[0].offset, 40 * kCluster);
  EXPECT_EQ(profile.ranges[0].length, kCluster);
  EXPECT_EQ(profile.ranges[0].first_read_ns, 0u);
  EXPECT_EQ(profile.ranges[1].offset, 8 * kCluster);
  EXPECT_EQ(profile.ranges[1].length, 3 * kCluster) << "a sequential read is one range";
  EXPECT_EQ(profile.ranges[2].offset, 3 * kCluster);
  EXPECT_LE(profile.ranges[1].first_read_ns, profile.ranges[2].first_read_ns);
  EXPECT_EQ(profile.cluster_size, kCluster);
  EXPECT_EQ(profile.layers, Template());
  EXPECT_TRUE(recorder.IdleFor(BootProfileRecorder::Clock::now()).has_value());

  recorder.Stop();
  recorder.NoteRead(50 * kCluster, kCluster);
  EXPECT_EQ(recorder.Snapshot().ranges.size(), 3u) << "nothing after Stop";
}

TEST(BootProfileRecorder, ManyThreadsRecordEachClusterExactlyOnce) {
  BootProfileRecorder recorder(kDisk, 4096, Template());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&recorder, t] {
      // Every thread reads every 4 KiB block, in its own order.
      for (uint64_t i = 0; i < kDisk / 4096; ++i) {
        const uint64_t block = (i * 7919 + static_cast<uint64_t>(t) * 104729) % (kDisk / 4096);
        recorder.NoteRead(block * 4096, 4096);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const BootProfile profile = recorder.Snapshot();
  std::set<uint64_t> seen;
  uint64_t bytes = 0;
  for (const ProfileRange& range : profile.ranges) {
    for (uint64_t b = range.offset; b < range.offset + range.length; b += 4096) {
      EXPECT_TRUE(seen.insert(b).second) << "block at " << b << " twice";
    }
    bytes += range.length;
  }
  EXPECT_EQ(bytes, kDisk);
  EXPECT_EQ(seen.size(), kDisk / 4096);
}

BootProfile Sample() {
  BootProfile profile;
  profile.cluster_size = kCluster;
  profile.layers = Template();
  profile.ranges = {{5 * kCluster, kCluster, 0}, {kCluster, 2 * kCluster, 1000}, {20 * kCluster, kCluster, 5000}};
  return profile;
}

TEST(BootProfileFile, RoundTripsAtomicallyAndRefusesDamage) {
  testing::TempDir dir;
  const std::string path = dir.File("boot.profile");
  BootProfile missing;
  EXPECT_EQ(LoadBootProfile(path, &missing).code(), ENOENT);
  ASSERT_TRUE(SaveBootProfile(path, Sample()).ok());
  EXPECT_EQ(testing::ListDir(dir.path()), std::vector<std::string>{"boot.profile"}) << "no temporary file left";
  BootProfile loaded;
  ASSERT_TRUE(LoadBootProfile(path, &loaded).ok());
  EXPECT_EQ(loaded.ranges, Sample().ranges);
  EXPECT_EQ(loaded.layers, Sample().layers);
  EXPECT_EQ(loaded.bytes(), 4 * kCluster);
  EXPECT_EQ(loaded.span_ns(), 5000u);

  std::string text = testing::ReadFileBytes(path);
  const size_t at = text.find("[327680,");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 8, "[393216,");  // another offset: the checksum no longer matches
  Status damaged = ParseBootProfile(text, path, &loaded);
  EXPECT_FALSE(damaged.ok());
  EXPECT_NE(damaged.message().find("checksum"), std::string::npos) << damaged.message();
  EXPECT_FALSE(ParseBootProfile("{\"hello\": 1}", path, &loaded).ok());
  EXPECT_FALSE(ParseBootProfile("not json", path, &loaded).ok());
  const std::string deep = "{\"ranges\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(ParseBootProfile(deep, path, &loaded).ok()) << "refused, not a stack overflow";
}

TEST(BootProfileFile, RefusedOverAnotherTemplate) {
  const BootProfile profile = Sample();
  EXPECT_TRUE(CheckTemplate(profile, Template(), "p").ok());
  std::vector<ProfileLayer> other = Template();
  other[0].path = "moved/base.img";  // the same image elsewhere: fine
  EXPECT_TRUE(CheckTemplate(profile, other, "p").ok());
  other[0].fingerprint = 0x9999;
  Status refused = CheckTemplate(profile, other, "boot.profile");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("another template"), std::string::npos) << refused.message();
  EXPECT_FALSE(CheckTemplate(profile, {Template()[0], Template()[0]}, "p").ok()) << "another chain length";
}

TEST(BootProfileMerge, OrdersClustersByTheirMedianFirstReadTime) {
  // Cluster A: 10, 20, 30 -> 20; B: 1, 100, 200 -> 100; C: 50, 5 -> 27 (the
  // median of two is their middle); D: read by one profile only, at 25.
  auto make = [](std::vector<ProfileRange> ranges) {
    BootProfile profile;
    profile.cluster_size = kCluster;
    profile.layers = Template();
    profile.ranges = std::move(ranges);
    return profile;
  };
  const uint64_t a = 10 * kCluster, b = 20 * kCluster, c = 30 * kCluster, d = 40 * kCluster;
  std::vector<BootProfile> profiles = {
      make({{b, kCluster, 1}, {a, kCluster, 10}, {c, kCluster, 50}}),
      make({{a, kCluster, 20}, {c, kCluster, 5}, {d, kCluster, 25}, {b, kCluster, 100}}),
      make({{a, kCluster, 30}, {b, kCluster, 200}}),
  };
  BootProfile merged;
  ASSERT_TRUE(MergeBootProfiles(profiles, {"1", "2", "3"}, &merged).ok());
  std::vector<uint64_t> order;
  for (const ProfileRange& range : merged.ranges) order.push_back(range.offset);
  EXPECT_EQ(order, (std::vector<uint64_t>{a, d, c, b}));
  EXPECT_EQ(merged.ranges[0].first_read_ns, 20u);

  profiles[2].layers[0].size += kCluster;
  Status refused = MergeBootProfiles(profiles, {"1", "2", "3"}, &merged);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("boot profile 3 "), std::string::npos) << refused.message();
}

TEST(BootProfileCursor, TheGuestIsAtTheFurthestRangeItRead) {
  BootProfileCursor cursor(Sample());  // ranges: 5, 1-2, 20 (clusters)
  EXPECT_EQ(cursor.guest_index(), 0u);
  EXPECT_EQ(cursor.bytes(), 4 * kCluster);
  EXPECT_EQ(cursor.BytesBefore(2), 3 * kCluster);
  cursor.NoteRead(50 * kCluster, 4096);  // not in the profile
  EXPECT_EQ(cursor.guest_index(), 0u);
  EXPECT_FALSE(cursor.IdleFor(BootProfileCursor::Clock::now()).has_value());
  cursor.NoteRead(2 * kCluster + 10, 100);
  EXPECT_EQ(cursor.guest_index(), 2u);
  cursor.NoteRead(5 * kCluster, 4096);  // behind: the guest stays where it is
  EXPECT_EQ(cursor.guest_index(), 2u);
  cursor.NoteRead(19 * kCluster, 2 * kCluster);  // its last byte is in range 2
  EXPECT_EQ(cursor.guest_index(), 3u);
  EXPECT_TRUE(cursor.IdleFor(BootProfileCursor::Clock::now()).has_value());
}

}  // namespace
}  // namespace corfs::overlay
