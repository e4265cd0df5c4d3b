// Bad input: every refusal comes with a clear message and leaves every file
// exactly as it was (compared byte for byte before and after).

#include <gtest/gtest.h>

#include <xxhash.h>

#include <cstring>
#include <thread>

#include "overlay/overlay.h"
#include "overlay/overlay_inspect.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::FilesSnapshot;
using testing::TempDir;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kBackingSize = 1024 * 1024 + 4096;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(42);
    backing_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), kBackingSize, rng, 0.6);
    other_ = testing::MakeRandomSparseLayer(dir_.File("other.raw"), kBackingSize, rng, 0.6);
    CreateOptions create;
    create.backing = {{backing_.path, ""}};
    create.cluster_size = kCluster;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
    // Some allocated clusters, so the bitmap is not all zeros.
    std::unique_ptr<Overlay> image;
    ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
    ASSERT_TRUE(image->Write(3 * kCluster + 5, std::string_view("hello")).ok());
    ASSERT_TRUE(image->Write(9 * kCluster, std::string(kCluster, 'a')).ok());
    ASSERT_TRUE(image->Close().ok());
  }

  static OpenOptions Options() {
    OpenOptions open;
    open.commit_interval = 0ms;
    return open;
  }

  // Every file of the test folder.
  FilesSnapshot Snapshot() const {
    std::vector<std::string> paths;
    for (const std::string& name : testing::ListDir(dir_.path())) paths.push_back(dir_.File(name));
    return FilesSnapshot(paths);
  }

  // Opening fails with `code`; nothing on disk changes, no file appears.
  std::string ExpectOpenRefused(int code, const OpenOptions& open = Options()) {
    const std::vector<std::string> names = testing::ListDir(dir_.path());
    FilesSnapshot before = Snapshot();
    std::unique_ptr<Overlay> image;
    Status status = Overlay::Open(path_, open, &image);
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(status.code(), code) << status.message();
    EXPECT_FALSE(image);
    EXPECT_FALSE(status.message().empty());
    EXPECT_EQ(before.Differences(), "");
    EXPECT_EQ(testing::ListDir(dir_.path()), names);
    return status.message();
  }

  CheckReport Check() const {
    CheckReport report;
    CheckOverlay(path_, OpenImage, &report);
    return report;
  }

  std::string Joined(const std::vector<std::string>& lines) const {
    std::string out;
    for (const std::string& line : lines) out += line + "\n";
    return out;
  }

  TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  const std::string meta_path_ = MetadataPath(path_);
  testing::SparseLayer backing_, other_;
};

TEST_F(BadInputTest, SoundOverlayOpensAndChecksClean) {
  CheckReport report = Check();
  EXPECT_TRUE(report.sound()) << Joined(report.problems);
  EXPECT_TRUE(report.notes.empty()) << Joined(report.notes);

  OverlayInfo info;
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  EXPECT_EQ(info.allocated_clusters, 2u);
  EXPECT_EQ(info.allocated_bytes, 2 * kCluster);
  EXPECT_EQ(info.header.virtual_size, kBackingSize);
  ASSERT_EQ(info.header.chain.size(), 1u);
  EXPECT_EQ(ResolveBackingPath(path_, info.header.chain[0].spec.path), backing_.path);

  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
  std::string buf(5, 'x');
  ASSERT_TRUE(image->Read(3 * kCluster + 5, buf).ok());
  EXPECT_EQ(buf, "hello");
}

TEST_F(BadInputTest, BackingContentChangedIsRefusedNamingBothImages) {
  // Same size, different content at the start (always fingerprinted).
  testing::PatchFile(backing_.path, 100, "changed!");
  std::string message = ExpectOpenRefused(EINVAL);
  EXPECT_TRUE(Contains(message, "template.raw")) << message;
  EXPECT_TRUE(Contains(message, "is not the image this overlay was made over")) << message;
  EXPECT_TRUE(Contains(message, "fingerprint")) << message;

  CheckReport report = Check();
  EXPECT_FALSE(report.sound());
  EXPECT_TRUE(Contains(Joined(report.problems), "template.raw")) << Joined(report.problems);
}

TEST_F(BadInputTest, BackingSizeChangedIsRefused) {
  testing::TruncateFile(backing_.path, kBackingSize + 4096);
  std::string message = ExpectOpenRefused(EINVAL);
  EXPECT_TRUE(Contains(message, "template.raw")) << message;
}

TEST_F(BadInputTest, ExpectedBackingNamingAnotherFileIsRefused) {
  OpenOptions open = Options();
  open.expected_backing = std::vector<ImageSpec>{{other_.path, "raw"}};
  std::string message = ExpectOpenRefused(EINVAL, open);
  EXPECT_TRUE(Contains(message, "other.raw")) << message;     // the image given
  EXPECT_TRUE(Contains(message, "template.raw")) << message;  // the image recorded

  // A chain of the wrong length.
  open.expected_backing = std::vector<ImageSpec>{{backing_.path, "raw"}, {other_.path, "raw"}};
  ExpectOpenRefused(EINVAL, open);

  // The right file under another name is fine.
  ASSERT_EQ(::link(backing_.path.c_str(), dir_.File("alias.raw").c_str()), 0);
  open.expected_backing = std::vector<ImageSpec>{{dir_.File("alias.raw"), ""}};
  std::unique_ptr<Overlay> image;
  Status status = Overlay::Open(path_, open, &image);
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(BadInputTest, MissingBackingAtOpenIsRefused) {
  ASSERT_EQ(::rename(backing_.path.c_str(), dir_.File("moved.raw").c_str()), 0);
  std::string message = ExpectOpenRefused(ENOENT);
  EXPECT_TRUE(Contains(message, "template.raw")) << message;
  EXPECT_FALSE(Check().sound());
}

TEST_F(BadInputTest, MissingBackingAtCreateCreatesNothing) {
  const std::vector<std::string> names = testing::ListDir(dir_.path());
  CreateOptions create;
  create.backing = {{dir_.File("nope.raw"), ""}};
  Status status = Overlay::Create(dir_.File("new.img"), create);
  EXPECT_EQ(status.code(), ENOENT) << status.message();
  EXPECT_TRUE(Contains(status.message(), "nope.raw")) << status.message();
  EXPECT_EQ(testing::ListDir(dir_.path()), names);

  // The second image of a chain missing: the same.
  create.backing = {{backing_.path, ""}, {dir_.File("nope.raw"), ""}};
  status = Overlay::Create(dir_.File("new.img"), create);
  EXPECT_EQ(status.code(), ENOENT) << status.message();
  EXPECT_EQ(testing::ListDir(dir_.path()), names);
}

TEST_F(BadInputTest, BadMagicInBothSlotsIsRefused) {
  testing::PatchFile(meta_path_, 0, "NOTCORFS");
  testing::PatchFile(meta_path_, kHeaderSlotSize, "NOTCORFS");
  std::string message = ExpectOpenRefused(EUCLEAN);
  EXPECT_TRUE(Contains(message, "magic")) << message;
  EXPECT_TRUE(Contains(message, meta_path_)) << message;
  EXPECT_FALSE(Check().sound());

  OverlayInfo info;
  EXPECT_EQ(InspectOverlay(path_, &info).code(), EUCLEAN);
}

TEST_F(BadInputTest, BadChecksumInBothSlotsIsRefused) {
  // Flip a payload byte (the virtual size) in each slot.
  for (uint64_t slot : {0, 1}) {
    std::string bytes = testing::ReadFileBytes(meta_path_).substr(slot * kHeaderSlotSize + 32, 1);
    bytes[0] ^= 0x40;
    testing::PatchFile(meta_path_, slot * kHeaderSlotSize + 32, bytes);
  }
  std::string message = ExpectOpenRefused(EUCLEAN);
  EXPECT_TRUE(Contains(message, "checksum")) << message;
  CheckReport report = Check();
  EXPECT_FALSE(report.sound());
  EXPECT_TRUE(Contains(Joined(report.problems), "checksum")) << Joined(report.problems);
}

TEST_F(BadInputTest, DamagedVersion2FieldsInBothSlotsAreRefused) {
  OverlayInfo info;
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  ASSERT_GE(info.header.version, 2u);
  const BackingImage& image = info.header.chain.at(0);
  ASSERT_TRUE(image.identity.stamp);
  // The first backing image's flags word (version 2 part): set a flag this
  // corfs does not know, and give the slot a checksum that matches, as a
  // newer corfs or a bad tool would.
  const uint64_t flags_at = 24 + 28 + 2 + image.spec.path.size() + 2 + image.spec.format.size() + 16;
  for (uint64_t slot : {0, 1}) {
    std::string bytes = testing::ReadFileBytes(meta_path_).substr(slot * kHeaderSlotSize, kHeaderSlotSize);
    bytes[flags_at] = static_cast<char>(bytes[flags_at] | 0x80);
    uint32_t length = 0;
    std::memcpy(&length, bytes.data() + 12, 4);
    const std::string summed = bytes.substr(8, 8) + bytes.substr(24, length);
    const uint64_t checksum = XXH3_64bits(summed.data(), summed.size());
    std::memcpy(bytes.data() + 16, &checksum, 8);
    testing::PatchFile(meta_path_, slot * kHeaderSlotSize, bytes);
  }
  std::string message = ExpectOpenRefused(EUCLEAN);
  EXPECT_TRUE(Contains(message, "unknown backing image flags")) << message;
  CheckReport report = Check();
  EXPECT_FALSE(report.sound());
  EXPECT_TRUE(Contains(Joined(report.problems), "unknown backing image flags")) << Joined(report.problems);
}

TEST_F(BadInputTest, OneCorruptSlotOpensWithTheOtherAndChecksWithANote) {
  for (uint64_t bad_slot : {0, 1}) {
    SCOPED_TRACE("slot " + std::to_string(bad_slot));
    const std::string original = testing::ReadFileBytes(meta_path_);
    std::string bytes = original.substr(bad_slot * kHeaderSlotSize + 40, 1);
    bytes[0] ^= 0x01;
    testing::PatchFile(meta_path_, bad_slot * kHeaderSlotSize + 40, bytes);

    CheckReport report = Check();
    EXPECT_TRUE(report.sound()) << Joined(report.problems);
    ASSERT_EQ(report.notes.size(), 1u) << Joined(report.notes);
    EXPECT_TRUE(Contains(report.notes[0], "slot " + std::to_string(bad_slot))) << report.notes[0];

    std::unique_ptr<Overlay> image;
    Status status = Overlay::Open(path_, Options(), &image);
    ASSERT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(image->header().sequence % 2, 1 - bad_slot);
    EXPECT_EQ(image->allocated_clusters(), 2u);
    std::string buf(5, 'x');
    ASSERT_TRUE(image->Read(3 * kCluster + 5, buf).ok());
    EXPECT_EQ(buf, "hello");
    ASSERT_TRUE(image->Close().ok());
    image.reset();
    testing::PatchFile(meta_path_, 0, original.substr(0, kBitmapOffset));  // repair for the next round
  }
  CheckReport report = Check();
  EXPECT_TRUE(report.sound() && report.notes.empty());
}

TEST_F(BadInputTest, TruncatedBitmapIsRefused) {
  testing::TruncateFile(meta_path_, kBitmapOffset + 100);
  std::string message = ExpectOpenRefused(EUCLEAN);
  EXPECT_TRUE(Contains(message, "bitmap is shorter than the disk")) << message;
  EXPECT_FALSE(Check().sound());
  OverlayInfo info;
  EXPECT_EQ(InspectOverlay(path_, &info).code(), EUCLEAN);

  // Cut inside the header slots: no valid header at all.
  testing::TruncateFile(meta_path_, 1000);
  ExpectOpenRefused(EUCLEAN);
}

// A header (checksums right) that claims a 1 EiB disk over a metadata file
// with a bitmap for a few MiB: refused at once, without sizing the bitmap
// in memory (check grew to 10 GB before it ran out).
TEST_F(BadInputTest, AnEnormousDiskOverAShortBitmapIsRefusedAtOnce) {
  OverlayInfo info;
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  OverlayHeader forged = info.header;
  forged.virtual_size = uint64_t{1} << 60;
  for (int i = 0; i < 2; ++i) {
    forged.sequence += 1;
    std::string slot;
    ASSERT_TRUE(EncodeHeaderSlot(forged, &slot).ok());
    testing::PatchFile(meta_path_, (forged.sequence % 2) * kHeaderSlotSize, slot);
  }
  std::string message = ExpectOpenRefused(EUCLEAN);
  EXPECT_TRUE(Contains(message, "bitmap is shorter than the disk")) << message;
  CheckReport report = Check();
  EXPECT_FALSE(report.sound());
  EXPECT_TRUE(Contains(Joined(report.problems), "bitmap is shorter than the disk")) << Joined(report.problems);
}

// What a grow interrupted before its header update leaves (overlay_resize.cc):
// the bits are ignored, and `corfs check` says so.
TEST_F(BadInputTest, BitmapBitsPastTheLastClusterAreIgnored) {
  // 17 clusters (1 MiB + 4 KiB at 64 KiB): bit 20 is padding.
  testing::PatchFile(meta_path_, kBitmapOffset + 2, std::string(1, '\x10'));
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
  EXPECT_LE(image->allocated_clusters(), image->cluster_count());
  image.reset();
  CheckReport report = Check();
  EXPECT_TRUE(report.sound());
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_TRUE(Contains(report.notes[0], "past the last cluster")) << report.notes[0];
}

// Shorter is damage; longer is what an interrupted grow leaves: opened for
// writing, the overlay cuts it back.
TEST_F(BadInputTest, DataFileOfTheWrongSizeIsRefused) {
  const std::string data_path = PartialDataPath(path_);  // unfinished
  testing::TruncateFile(data_path, kBackingSize + 1);
  EXPECT_TRUE(Check().sound());
  EXPECT_EQ(Check().notes.size(), 1u);
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
  image.reset();
  EXPECT_EQ(testing::ReadFileBytes(data_path).size(), kBackingSize);
  for (uint64_t size : {kBackingSize - 4096}) {
    testing::TruncateFile(data_path, size);
    std::string message = ExpectOpenRefused(EUCLEAN);
    EXPECT_TRUE(Contains(message, "data file")) << message;
    EXPECT_TRUE(Contains(message, std::to_string(size))) << message;
    EXPECT_FALSE(Check().sound());
  }
  ASSERT_EQ(::unlink(data_path.c_str()), 0);
  ExpectOpenRefused(ENOENT);
  EXPECT_FALSE(Check().sound());
}

// Two creates of one new overlay at once (two mounts of one new image):
// one makes it, the other is refused and leaves the winner's files alone.
// Before, both could fail, leaving a data file that refused every later
// create.
TEST_F(BadInputTest, TwoCreatesOfOneOverlayAtOnceMakeOneSoundOverlay) {
  CreateOptions create;
  create.backing = {{backing_.path, ""}};
  create.cluster_size = kCluster;
  for (int round = 0; round < 40; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string path = dir_.File("race" + std::to_string(round) + ".img");
    Status first, second;
    std::thread a([&] { first = Overlay::Create(path, create); });
    std::thread b([&] { second = Overlay::Create(path, create); });
    a.join();
    b.join();
    ASSERT_NE(first.ok(), second.ok()) << first.message() << " / " << second.message();
    EXPECT_EQ((first.ok() ? second : first).code(), EEXIST) << (first.ok() ? second : first).message();
    std::unique_ptr<Overlay> image;
    Status opened = Overlay::Open(path, Options(), &image);
    ASSERT_TRUE(opened.ok()) << opened.message();
    EXPECT_FALSE(testing::FileExists(MetadataPath(path) + ".tmp"));
  }
}

TEST_F(BadInputTest, CreateOverAnOverlayInUseIsRefusedNamingTheHolder) {
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
  FilesSnapshot before = Snapshot();
  for (bool force : {false, true}) {
    CreateOptions create;
    create.backing = {{backing_.path, ""}};
    create.force = force;
    Status status = Overlay::Create(path_, create);
    EXPECT_EQ(status.code(), EBUSY) << status.message();
    EXPECT_TRUE(Contains(status.message(), "in use")) << status.message();
    EXPECT_TRUE(Contains(status.message(), "pid " + std::to_string(::getpid()))) << status.message();
  }
  EXPECT_EQ(before.Differences(), "");
}

TEST_F(BadInputTest, MissingMetadataFileIsRefused) {
  ASSERT_EQ(::unlink(meta_path_.c_str()), 0);
  std::string message = ExpectOpenRefused(ENOENT);
  EXPECT_TRUE(Contains(message, ".cor")) << message;
}

TEST_F(BadInputTest, SecondWriterIsRefused) {
  std::unique_ptr<Overlay> first;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &first).ok());
  ExpectOpenRefused(EBUSY);
  OpenOptions read_only = Options();
  read_only.read_only = true;
  ExpectOpenRefused(EBUSY, read_only);
}

TEST_F(BadInputTest, ReadOnlyOpenRefusesChanges) {
  FilesSnapshot before = Snapshot();
  OpenOptions open = Options();
  open.read_only = true;
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, open, &image).ok());
  EXPECT_EQ(image->Write(0, std::string_view("x")).code(), EROFS);
  EXPECT_EQ(image->Discard(0, 1).code(), EROFS);
  std::string buf(kCluster, 'x');
  ASSERT_TRUE(image->Read(0, buf).ok());  // no copy-on-read when read-only
  EXPECT_EQ(image->allocated_clusters(), 2u);
  ASSERT_TRUE(image->Close().ok());
  EXPECT_EQ(before.Differences(), "");
}

TEST_F(BadInputTest, OutOfRangeRequestsAreRefused) {
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
  std::string buf(10, 'x');
  EXPECT_EQ(image->Read(kBackingSize - 5, buf).code(), EINVAL);
  EXPECT_EQ(image->Write(kBackingSize, std::string_view("x")).code(), EINVAL);
  EXPECT_EQ(image->Discard(kBackingSize - 1, 2).code(), EINVAL);
  EXPECT_EQ(image->Read(~uint64_t{0} - 3, buf).code(), EINVAL);
  EXPECT_EQ(image->allocated_clusters(), 2u);
}

TEST_F(BadInputTest, BadClusterSizesCreateNothing) {
  const std::vector<std::string> names = testing::ListDir(dir_.path());
  for (uint64_t size : {uint64_t{0}, uint64_t{3000}, uint64_t{65536 + 4096}, uint64_t{2048}, uint64_t{1024},
                        uint64_t{4} << 20, uint64_t{1} << 40}) {
    SCOPED_TRACE(size);
    CreateOptions create;
    create.backing = {{backing_.path, ""}};
    create.cluster_size = size;
    Status status = Overlay::Create(dir_.File("new.img"), create);
    EXPECT_EQ(status.code(), EINVAL) << status.message();
    EXPECT_TRUE(Contains(status.message(), "cluster size")) << status.message();
    EXPECT_FALSE(ValidateClusterSize(size).ok());
  }
  EXPECT_EQ(testing::ListDir(dir_.path()), names);
  for (uint64_t size : {uint64_t{4096}, uint64_t{65536}, uint64_t{2} << 20})
    EXPECT_TRUE(ValidateClusterSize(size).ok());
}

TEST_F(BadInputTest, CreateWithoutSizeOrBackingCreatesNothing) {
  const std::vector<std::string> names = testing::ListDir(dir_.path());
  CreateOptions create;  // no backing, no size
  EXPECT_EQ(Overlay::Create(dir_.File("new.img"), create).code(), EINVAL);
  CreateOptions sized;
  sized.size = 4096;
  EXPECT_EQ(Overlay::Create(dir_.path() + "/", sized).code(), EINVAL);
  // An overlay over itself.
  create.backing = {{path_, ""}};
  create.force = true;
  FilesSnapshot before = Snapshot();
  EXPECT_FALSE(Overlay::Create(path_, create).ok());
  EXPECT_EQ(before.Differences(), "");
  EXPECT_EQ(testing::ListDir(dir_.path()), names);
  // One file twice in the chain, under two names.
  CreateOptions twice;
  twice.backing = {{backing_.path, ""}, {dir_.path() + "/./template.raw", ""}};
  Status status = Overlay::Create(dir_.File("twice.img"), twice);
  EXPECT_EQ(status.code(), EINVAL) << status.message();
  EXPECT_NE(status.message().find("again"), std::string::npos) << status.message();
  EXPECT_EQ(testing::ListDir(dir_.path()), names);
}

TEST_F(BadInputTest, CreateOverAnExistingOverlayNeedsForce) {
  FilesSnapshot before = Snapshot();
  CreateOptions create;
  create.backing = {{other_.path, ""}};
  create.cluster_size = 4096;
  Status status = Overlay::Create(path_, create);
  EXPECT_EQ(status.code(), EEXIST) << status.message();
  EXPECT_TRUE(Contains(status.message(), "disk.img")) << status.message();
  EXPECT_EQ(before.Differences(), "");

  // Only the metadata file left behind counts too.
  const std::string data_path = PartialDataPath(path_);  // unfinished
  ASSERT_EQ(::rename(data_path.c_str(), dir_.File("data.bak").c_str()), 0);
  EXPECT_EQ(Overlay::Create(path_, create).code(), EEXIST);
  ASSERT_EQ(::rename(dir_.File("data.bak").c_str(), data_path.c_str()), 0);

  create.force = true;
  // Forced, but over a missing backing image: still refused before anything is written.
  CreateOptions missing = create;
  missing.backing = {{dir_.File("nope.raw"), ""}};
  EXPECT_EQ(Overlay::Create(path_, missing).code(), ENOENT);
  EXPECT_EQ(before.Differences(), "");

  status = Overlay::Create(path_, create);
  ASSERT_TRUE(status.ok()) << status.message();
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Overlay::Open(path_, Options(), &image).ok());
  EXPECT_EQ(image->cluster_size(), 4096u);
  EXPECT_EQ(image->allocated_clusters(), 0u);
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &all).ok());
  EXPECT_EQ(testing::FirstDifference(all, other_.content), "") << "the new overlay shows the new backing image only";
  ASSERT_TRUE(image->Close().ok());
  EXPECT_TRUE(Check().sound());
}

}  // namespace
}  // namespace corfs::overlay
