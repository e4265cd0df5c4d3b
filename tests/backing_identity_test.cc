// What an overlay records about its backing images and what opening and
// `check` do when a template changes: a rewrite the sampled fingerprint
// cannot see warns (no content hash) or refuses (content hash recorded, or
// full verification asked for); harmless moves and copies stay silent.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <cstdio>

#include "overlay/content_hash.h"
#include "overlay/image_identity.h"
#include "overlay/overlay.h"
#include "overlay/overlay_inspect.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kTemplateSize = 1024 * 1024 + 4096;
// A 4 KiB block none of the fingerprint's samples covers (asserted below).
constexpr uint64_t kUnsampledOffset = 40 * 4096;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

// A past mtime, so that a rewrite moves it whatever the file system's clock
// granularity.
void SetOldMtime(const std::string& path) {
  const struct timespec times[2] = {{1'600'000'000, 123}, {1'600'000'000, 123}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

class BackingIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(7);
    template_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), kTemplateSize, rng, 0.8);
    SetOldMtime(template_.path);
  }

  void Create(VerifyBacking verify) {
    CreateOptions create;
    create.backing = {{template_.path, ""}};
    create.verify_backing = verify;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  // Opens with `verify`; collects the warnings; returns the status.
  Status Open(VerifyBacking verify, std::vector<std::string>* warnings,
              const std::optional<std::string>& backing = std::nullopt) {
    OpenOptions open;
    open.commit_interval = 0ms;
    open.verify_backing = verify;
    open.warn = [warnings](const std::string& warning) { warnings->push_back(warning); };
    if (backing) open.expected_backing = std::vector<ImageSpec>{{*backing, ""}};
    std::unique_ptr<Overlay> image;
    Status status = Overlay::Open(path_, open, &image);
    EXPECT_EQ(status.ok(), image != nullptr);
    return status;
  }

  CheckReport Check(VerifyBacking verify) const {
    CheckReport report;
    CheckOverlay(path_, OpenImage, &report, verify);
    return report;
  }

  // Rewrites one 4 KiB block in place, between the fingerprint's samples.
  void RewriteUnsampledBlock() {
    OverlayInfo info;
    ASSERT_TRUE(InspectOverlay(path_, &info).ok());
    testing::PatchFile(template_.path, kUnsampledOffset, std::string(4096, 'R'));
    std::unique_ptr<BlockDriver> driver;
    ASSERT_TRUE(OpenImage(template_.path, "raw", &driver).ok());
    ImageIdentity now;
    ASSERT_TRUE(ComputeIdentity(*driver, &now).ok());
    ASSERT_TRUE(now.SameSamples(info.header.chain.at(0).identity)) << "the rewrite hit a sample; pick another block";
  }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  testing::SparseLayer template_;
};

TEST_F(BackingIdentityTest, CreateRecordsTheFileStampAndOnRequestTheContentHash) {
  Create(VerifyBacking::kSampled);
  OverlayInfo info;
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  EXPECT_EQ(info.header.version, kLatestHeaderVersion);
  const ImageIdentity& sampled = info.header.chain.at(0).identity;
  ASSERT_TRUE(sampled.stamp);
  struct stat st {};
  ASSERT_EQ(::stat(template_.path.c_str(), &st), 0);
  EXPECT_EQ(sampled.stamp->mtime_ns, int64_t{1'600'000'000'000'000'123});
  EXPECT_EQ(sampled.stamp->inode, st.st_ino);
  EXPECT_FALSE(sampled.content);

  ASSERT_EQ(::unlink(PartialDataPath(path_).c_str()), 0);  // unfinished: NAME.part
  ASSERT_EQ(::unlink(MetadataPath(path_).c_str()), 0);
  Create(VerifyBacking::kFull);
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  ASSERT_TRUE(info.header.chain.at(0).identity.content);
  // The content hash is XXH3-128 of the size (u64 little-endian) and the bytes.
  std::string hashed(8, '\0');
  for (int i = 0; i < 8; ++i) hashed[i] = static_cast<char>(kTemplateSize >> (8 * i));
  hashed += template_.content;
  const XXH128_hash_t expected = XXH3_128bits(hashed.data(), hashed.size());
  EXPECT_EQ(*info.header.chain[0].identity.content, (ContentHash{expected.low64, expected.high64}));
}

TEST_F(BackingIdentityTest, ContentHashCoversEveryChunk) {
  // Larger than two of the hash's 8 MiB reads, not a multiple of them.
  std::mt19937_64 rng(9);
  testing::SparseLayer big = testing::MakeRandomSparseLayer(dir_.File("big.raw"), (17 << 20) + 12345, rng, 0.5);
  std::unique_ptr<BlockDriver> driver;
  ASSERT_TRUE(OpenImage(big.path, "raw", &driver).ok());
  ContentHash first;
  ASSERT_TRUE(ComputeContentHash(*driver, &first).ok());
  std::string hashed(8, '\0');
  for (int i = 0; i < 8; ++i) hashed[i] = static_cast<char>(big.size >> (8 * i));
  hashed += big.content;
  const XXH128_hash_t expected = XXH3_128bits(hashed.data(), hashed.size());
  EXPECT_EQ(first, (ContentHash{expected.low64, expected.high64}));

  // One byte changed in the last chunk changes it.
  testing::PatchFile(big.path, big.size - 1, "\x01");
  ContentHash second;
  ASSERT_TRUE(ComputeContentHash(*driver, &second).ok());
  EXPECT_NE(first, second);
}

TEST_F(BackingIdentityTest, RewriteWithoutContentHashWarnsAtOpenAndIsANoteInCheck) {
  Create(VerifyBacking::kSampled);
  std::vector<std::string> warnings;
  ASSERT_TRUE(Open(VerifyBacking::kSampled, &warnings).ok());
  EXPECT_TRUE(warnings.empty()) << Joined(warnings);

  RewriteUnsampledBlock();
  Status status = Open(VerifyBacking::kSampled, &warnings);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(Contains(warnings[0], "template.raw")) << warnings[0];
  EXPECT_TRUE(Contains(warnings[0], "was modified after the overlay was made")) << warnings[0];
  EXPECT_TRUE(Contains(warnings[0], "same file")) << warnings[0];
  EXPECT_TRUE(Contains(warnings[0], "--verify-backing full")) << warnings[0];

  CheckReport report = Check(VerifyBacking::kSampled);
  EXPECT_TRUE(report.sound()) << Joined(report.problems);
  EXPECT_TRUE(Contains(Joined(report.notes), "was modified after the overlay was made")) << Joined(report.notes);

  // Full verification cannot be given without a recorded hash: refused.
  status = Open(VerifyBacking::kFull, &warnings);
  EXPECT_EQ(status.code(), EINVAL);
  EXPECT_TRUE(Contains(status.message(), "records no content hash")) << status.message();
  report = Check(VerifyBacking::kFull);
  EXPECT_TRUE(report.sound()) << Joined(report.problems);
  EXPECT_TRUE(Contains(Joined(report.notes), "records no content hash")) << Joined(report.notes);
}

TEST_F(BackingIdentityTest, RewriteWithContentHashIsRefusedNamingTheImage) {
  Create(VerifyBacking::kFull);
  std::vector<std::string> warnings;
  ASSERT_TRUE(Open(VerifyBacking::kFull, &warnings).ok());
  ASSERT_TRUE(Open(VerifyBacking::kSampled, &warnings).ok());
  EXPECT_TRUE(Check(VerifyBacking::kFull).sound());

  RewriteUnsampledBlock();
  const std::string meta_before = testing::ReadFileBytes(MetadataPath(path_));
  for (VerifyBacking verify : {VerifyBacking::kFull, VerifyBacking::kSampled}) {
    // kSampled too: the mtime moved and the overlay has a hash to verify.
    Status status = Open(verify, &warnings);
    EXPECT_EQ(status.code(), EINVAL) << status.message();
    EXPECT_TRUE(Contains(status.message(), "template.raw")) << status.message();
    EXPECT_TRUE(Contains(status.message(), "content hash")) << status.message();
    CheckReport report = Check(verify);
    EXPECT_FALSE(report.sound());
    EXPECT_TRUE(Contains(Joined(report.problems), "content hash")) << Joined(report.problems);
  }
  EXPECT_TRUE(warnings.empty()) << Joined(warnings);
  EXPECT_EQ(testing::ReadFileBytes(MetadataPath(path_)), meta_before);

  // The old bytes back (a newer mtime): the hash matches again, and opening
  // accepts it without a warning.
  testing::PatchFile(template_.path, kUnsampledOffset, template_.content.substr(kUnsampledOffset, 4096));
  EXPECT_TRUE(Open(VerifyBacking::kSampled, &warnings).ok());
  EXPECT_TRUE(warnings.empty()) << Joined(warnings);
  EXPECT_TRUE(Check(VerifyBacking::kFull).sound());
}

TEST_F(BackingIdentityTest, HarmlessChangesDoNotWarn) {
  Create(VerifyBacking::kSampled);
  std::vector<std::string> warnings;
  // chmod and a new hard link change the ctime only.
  ASSERT_EQ(::chmod(template_.path.c_str(), 0600), 0);
  ASSERT_EQ(::link(template_.path.c_str(), dir_.File("link.raw").c_str()), 0);
  ASSERT_TRUE(Open(VerifyBacking::kSampled, &warnings).ok());
  // A copy elsewhere that keeps the mtime, as `cp -p` and `rsync -a` do:
  // another inode, the same content.
  const std::string copy = dir_.File("copy.raw");
  {
    UniqueFd out(::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    ASSERT_TRUE(out.valid());
  }
  testing::PatchFile(copy, 0, template_.content);
  SetOldMtime(copy);
  Status status = Open(VerifyBacking::kSampled, &warnings, copy);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(warnings.empty()) << Joined(warnings);
  EXPECT_TRUE(Check(VerifyBacking::kSampled).notes.empty());
}

TEST_F(BackingIdentityTest, AVersion1OverlayRefusesFullVerificationAndNeverWarns) {
  Create(VerifyBacking::kSampled);
  // The overlay as an older corfs would have written it: version 1, no stamp.
  OverlayInfo info;
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  OverlayHeader header = info.header;
  header.version = 1;
  header.chain.at(0).identity.stamp.reset();
  header.partial_data_file = false;  // version 1 keeps the data in NAME
  ASSERT_EQ(::rename(PartialDataPath(path_).c_str(), path_.c_str()), 0);
  UniqueFd meta(::open(MetadataPath(path_).c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(meta.valid());
  for (uint64_t sequence : {0, 1}) {
    header.sequence = sequence;
    ASSERT_TRUE(WriteHeaderSlot(meta.get(), MetadataPath(path_), header).ok());
  }

  RewriteUnsampledBlock();
  std::vector<std::string> warnings;
  EXPECT_TRUE(Open(VerifyBacking::kSampled, &warnings).ok());
  EXPECT_TRUE(warnings.empty()) << "nothing recorded to compare with";
  Status status = Open(VerifyBacking::kFull, &warnings);
  EXPECT_EQ(status.code(), EINVAL);
  EXPECT_TRUE(Contains(status.message(), "records no content hash")) << status.message();
}

}  // namespace
}  // namespace corfs::overlay
