// The read-only qcow2 driver, against images made at test time by qemu-img
// and qemu-io: every read equals `qemu-img convert -O raw` of the same image,
// block status agrees with `qemu-img map` and with the data, chains of
// qcow2 backing files are followed, and damaged images give clear errors.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/backing_chain.h"
#include "overlay/image_opener.h"
#include "overlay/overlay.h"
#include "overlay/qcow2_driver.h"
#include "overlay/qcow2_header.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using testing::FirstDifference;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::TempDir;

constexpr char kQemuImg[] = "/usr/bin/qemu-img";
constexpr char kQemuIo[] = "/usr/bin/qemu-io";
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kKiB = uint64_t{1} << 10;

// ---------------------------------------------------------------------------
// Helpers

void Run(const std::vector<std::string>& argv) {
  testing::CommandResult r = RunCommand(argv);
  std::string line;
  for (const std::string& a : argv) line += a + " ";
  ASSERT_EQ(r.exit_code, 0) << line << "\n" << r.out << r.err;
}

void QemuImg(std::vector<std::string> args) {
  args.insert(args.begin(), kQemuImg);
  Run(args);
}

// qemu-io -c CMD ... IMAGE (format from the file).
void QemuIo(const std::string& image, const std::vector<std::string>& commands) {
  std::vector<std::string> argv = {kQemuIo};
  for (const std::string& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  Run(argv);
}

// What qemu-img says the image reads as, raw.
std::string QemuRaw(const TempDir& dir, const std::string& image) {
  const std::string out = dir.File("qemu-raw-" + std::to_string(std::hash<std::string>()(image)) + ".raw");
  QemuImg({"convert", "-O", "raw", image, out});
  return ReadFileBytes(out);
}

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}
std::string Be64(uint64_t v) { return Be32(static_cast<uint32_t>(v >> 32)) + Be32(static_cast<uint32_t>(v)); }
uint64_t GetBe64(const std::string& bytes, uint64_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}
uint32_t GetBe32(const std::string& bytes, uint64_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// A raw source image of `size` bytes (a multiple of 512) with random data,
// runs of zeros written as data, and holes, in pieces of 1..64 KiB at
// random 512-byte offsets. Returns its content.
std::string MakeSourceRaw(const std::string& path, uint64_t size, std::mt19937_64& rng) {
  std::string content(size, '\0');
  uint64_t pos = 0;
  while (pos < size) {
    uint64_t len = std::min<uint64_t>(size - pos, testing::RandomIn(rng, 1, 128) * 512);
    switch (testing::RandomIn(rng, 0, 3)) {
      case 0:
      case 1: {
        std::string bytes = testing::RandomBytes(rng, len);
        content.replace(pos, len, bytes);
        break;
      }
      case 2:  // zeros (become holes or zero clusters)
        break;
      case 3:  // a little data in a mostly empty piece
        content[pos + testing::RandomIn(rng, 0, len - 1)] = 'x';
        break;
    }
    pos += len;
    if (testing::RandomIn(rng, 0, 7) == 0) pos += testing::RandomIn(rng, 1, 64) * 64 * kKiB;  // a large hole
  }
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    // Write the non-zero 4 KiB blocks only, so zero blocks are holes.
    for (uint64_t at = 0; at < size; at += 4096) {
      std::string_view block(content.data() + at, std::min<uint64_t>(4096, size - at));
      if (!IsAllZero(block)) {
        EXPECT_TRUE(PwriteFull(fd.get(), block, at, path).ok());
      }
    }
  }
  return content;
}

Status OpenQcow2(const std::string& path, std::unique_ptr<Qcow2Driver>* out, uint64_t cache_bytes = 32 * kMiB) {
  Qcow2Driver::Options options;
  options.l2_cache_bytes = cache_bytes;
  return Qcow2Driver::Open(path, options, out);
}

// Reads the whole image in reads of random sizes (1 byte .. 3 clusters) at
// random alignments.
std::string ReadAll(BlockDriver& image, std::mt19937_64& rng, uint64_t max_chunk) {
  std::string out(image.size(), '\0');
  uint64_t pos = 0;
  while (pos < image.size()) {
    uint64_t n = std::min<uint64_t>(image.size() - pos, testing::RandomIn(rng, 1, max_chunk));
    Status read = image.Read(pos, std::span<char>(out.data() + pos, n));
    EXPECT_TRUE(read.ok()) << read.message();
    if (!read.ok()) return "";
    pos += n;
  }
  return out;
}

// Walks the image with GetBlockStatus: runs must cover it, be maximal (two
// runs in a row differ), and kZero runs must read as zeros. Returns the runs.
std::vector<BlockStatus> CheckRuns(BlockDriver& image, const std::string& content) {
  std::vector<BlockStatus> runs;
  uint64_t pos = 0;
  while (pos < image.size()) {
    BlockStatus status;
    Status got = image.GetBlockStatus(pos, image.size() - pos, &status);
    EXPECT_TRUE(got.ok()) << got.message();
    if (!got.ok()) return runs;
    EXPECT_GT(status.length, 0u);
    EXPECT_LE(status.length, image.size() - pos);
    if (!runs.empty()) {
      EXPECT_NE(runs.back().allocation, status.allocation) << "at " << pos;
    }
    if (status.allocation != Allocation::kData) {
      EXPECT_TRUE(IsAllZero(std::string_view(content).substr(pos, status.length)))
          << "a run of " << status.length << " at " << pos << " that is not data holds data";
    }
    runs.push_back(status);
    pos += status.length;
  }
  return runs;
}

// Per 512-byte sector, what the image itself holds according to
// `qemu-img map` (depth 0), as Allocation.
std::vector<Allocation> QemuMap(const std::string& image, uint64_t size, bool has_backing) {
  testing::CommandResult r = RunCommand({kQemuImg, "map", "--output=json", image});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<Allocation> sectors(size / 512, Allocation::kUnallocated);
  nlohmann::json map = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(map.is_array());
  if (!map.is_array()) return sectors;
  for (const auto& e : map) {
    Allocation a = Allocation::kUnallocated;
    const bool own = e["depth"].get<int>() == 0;
    if (own && e["data"].get<bool>()) {
      a = Allocation::kData;
    } else if (own && e["present"].get<bool>() && e["zero"].get<bool>()) {
      a = Allocation::kZero;
    } else if (own && !e["present"].get<bool>()) {
      a = has_backing ? Allocation::kUnallocated : Allocation::kZero;
    }
    const uint64_t start = e["start"].get<uint64_t>(), length = e["length"].get<uint64_t>();
    for (uint64_t s = start / 512; s < (start + length) / 512 && s < sectors.size(); ++s) sectors[s] = a;
  }
  return sectors;
}

void ExpectRunsMatchQemuMap(const std::vector<BlockStatus>& runs, const std::vector<Allocation>& qemu) {
  uint64_t sector = 0;
  size_t mismatches = 0;
  for (const BlockStatus& run : runs) {
    for (uint64_t s = sector; s < sector + run.length / 512 && s < qemu.size(); ++s) {
      if (qemu[s] != run.allocation && mismatches++ < 5) {
        ADD_FAILURE() << "sector " << s << " (offset " << s * 512 << "): corfs says "
                      << static_cast<int>(run.allocation) << ", qemu-img map says " << static_cast<int>(qemu[s]);
      }
    }
    sector += run.length / 512;
  }
  EXPECT_EQ(mismatches, 0u);
}

// Opens `image` with the driver and checks it against qemu-img: every byte,
// the block status runs, and qemu-img map.
void CheckImage(const TempDir& dir, const std::string& image, std::mt19937_64& rng, bool has_backing = false) {
  SCOPED_TRACE(image);
  std::unique_ptr<Qcow2Driver> driver;
  Status opened = OpenQcow2(image, &driver);
  ASSERT_TRUE(opened.ok()) << opened.message();
  EXPECT_EQ(driver->has_backing(), has_backing);
  // The image alone (unallocated clusters read as zeros): qemu-img with the
  // backing link cut reads it the same way.
  std::string expected;
  if (has_backing) {
    const std::string alone = dir.File("alone.qcow2");
    std::filesystem::copy_file(image, alone, std::filesystem::copy_options::overwrite_existing);
    QemuImg({"rebase", "-u", "-b", "", alone});
    expected = QemuRaw(dir, alone);
  } else {
    expected = QemuRaw(dir, image);
  }
  ASSERT_EQ(expected.size(), driver->size());
  const uint64_t cluster = driver->header().cluster_size();
  std::string got = ReadAll(*driver, rng, 3 * cluster);
  EXPECT_EQ(FirstDifference(got, expected), "");
  std::string whole(driver->size(), '\0');
  ASSERT_TRUE(driver->Read(0, whole).ok());
  EXPECT_EQ(FirstDifference(whole, expected), "");
  std::vector<BlockStatus> runs = CheckRuns(*driver, expected);
  ExpectRunsMatchQemuMap(runs, QemuMap(image, driver->size(), has_backing));
}

struct Flavor {
  std::string name;
  std::vector<std::string> options;  // qemu-img convert arguments before the file names
};

class Qcow2Convert : public ::testing::TestWithParam<Flavor> {};

// ---------------------------------------------------------------------------
// Images converted from a raw file

TEST_P(Qcow2Convert, ReadsAsQemuImgDoes) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE("CORFS_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  // Not a multiple of any cluster size: the last cluster is partial.
  const uint64_t size = 9 * kMiB + 7 * 512;
  std::string content = MakeSourceRaw(dir.File("src.raw"), size, rng);
  std::vector<std::string> args = {"convert"};
  args.insert(args.end(), GetParam().options.begin(), GetParam().options.end());
  args.push_back(dir.File("src.raw"));
  args.push_back(dir.File("img.qcow2"));
  QemuImg(args);
  CheckImage(dir, dir.File("img.qcow2"), rng);
  // And it is the source.
  std::unique_ptr<Qcow2Driver> driver;
  ASSERT_TRUE(OpenQcow2(dir.File("img.qcow2"), &driver).ok());
  std::string got(size, '\0');
  ASSERT_TRUE(driver->Read(0, got).ok());
  EXPECT_EQ(FirstDifference(got, content), "");
}

INSTANTIATE_TEST_SUITE_P(
    Flavors, Qcow2Convert,
    ::testing::Values(Flavor{"v3_64k", {"-O", "qcow2"}}, Flavor{"v3_4k", {"-O", "qcow2", "-o", "cluster_size=4k"}},
                      Flavor{"v3_2m", {"-O", "qcow2", "-o", "cluster_size=2M"}},
                      Flavor{"v3_512", {"-O", "qcow2", "-o", "cluster_size=512"}},
                      Flavor{"v2_64k", {"-O", "qcow2", "-o", "compat=0.10"}},
                      Flavor{"v2_4k", {"-O", "qcow2", "-o", "compat=0.10,cluster_size=4k"}},
                      Flavor{"zlib_64k", {"-c", "-O", "qcow2"}},
                      Flavor{"zlib_4k", {"-c", "-O", "qcow2", "-o", "cluster_size=4k"}},
                      Flavor{"zlib_2m", {"-c", "-O", "qcow2", "-o", "cluster_size=2M"}},
                      Flavor{"zlib_512", {"-c", "-O", "qcow2", "-o", "cluster_size=512"}},
                      Flavor{"zlib_v2", {"-c", "-O", "qcow2", "-o", "compat=0.10"}},
                      Flavor{"zstd_64k", {"-c", "-O", "qcow2", "-o", "compression_type=zstd"}},
                      Flavor{"zstd_4k", {"-c", "-O", "qcow2", "-o", "compression_type=zstd,cluster_size=4k"}},
                      Flavor{"zstd_2m", {"-c", "-O", "qcow2", "-o", "compression_type=zstd,cluster_size=2M"}},
                      Flavor{"extended_l2", {"-O", "qcow2", "-o", "extended_l2=on,cluster_size=64k"}},
                      Flavor{"extended_l2_zstd", {"-c", "-O", "qcow2", "-o", "extended_l2=on,compression_type=zstd"}}),
    [](const ::testing::TestParamInfo<Flavor>& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// Images written with qemu-io: zero clusters, partial clusters, subclusters

TEST(Qcow2, ZeroClustersAndPartialWrites) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  for (const std::string& opts : {std::string("cluster_size=64k"), std::string("cluster_size=4k"),
                                  std::string("cluster_size=2M"), std::string("compat=0.10")}) {
    SCOPED_TRACE(opts);
    const std::string img = dir.File("z.qcow2");
    QemuImg({"create", "-q", "-f", "qcow2", "-o", opts, img, "24M"});
    QemuIo(img, {"write -P 0xab 0 3M", "write -z 1M 1M", "write -P 0x11 5M 4k", "write -z 8M 4M",
                 "write -P 0x22 9M 512", "write -z 20M 64k", "write -P 0x33 23M 1M"});
    CheckImage(dir, img, rng);
    std::unique_ptr<Qcow2Driver> driver;
    ASSERT_TRUE(OpenQcow2(img, &driver).ok());
    BlockStatus status;
    ASSERT_TRUE(driver->GetBlockStatus(10 * kMiB, 1 * kMiB, &status).ok());  // whole clusters zeroed
    EXPECT_EQ(status.allocation, Allocation::kZero);
    EXPECT_EQ(status.length, kMiB);
    // Unallocated with no backing file: zeros that hide lower layers.
    ASSERT_TRUE(driver->GetBlockStatus(14 * kMiB, kMiB, &status).ok());
    EXPECT_EQ(status.allocation, Allocation::kZero);
  }
}

TEST(Qcow2, ExtendedL2SubclustersOverBacking) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  const std::string base = dir.File("base.raw");
  MakeSourceRaw(base, 8 * kMiB, rng);
  const std::string img = dir.File("ext.qcow2");
  QemuImg({"create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", "-b", base, "-F", "raw", img});
  QemuIo(img, {"write -P 1 4k 2k", "write -z 64k 8k", "write -P 2 70k 10k", "write -z 1M 1M", "write -P 3 3M 100k",
               "write -z 3100k 2k"});
  CheckImage(dir, img, rng, /*has_backing=*/true);
  // Through the chain it is what qemu-img reads.
  std::vector<std::unique_ptr<BlockDriver>> drivers;
  ASSERT_TRUE(OpenImageChain(img, "", &drivers).ok());
  ASSERT_EQ(drivers.size(), 2u);
  BackingChain chain(std::move(drivers), 8 * kMiB);
  std::string got(8 * kMiB, '\0');
  ASSERT_TRUE(chain.Read(0, got).ok());
  EXPECT_EQ(FirstDifference(got, QemuRaw(dir, img)), "");
}

// ---------------------------------------------------------------------------
// Chains: qcow2 -> qcow2 -> raw

struct ChainFiles {
  std::string top, mid, base;
  uint64_t size = 0;
};

// base.raw (random), mid.qcow2 over it (relative name), top.qcow2 over mid,
// each with writes, zero writes and discards of its own.
ChainFiles MakeChain(const TempDir& dir, std::mt19937_64& rng, const std::string& cluster = "64k") {
  ChainFiles c{dir.File("top.qcow2"), dir.File("mid.qcow2"), dir.File("base.raw"), 16 * kMiB};
  MakeSourceRaw(c.base, c.size, rng);
  // Relative backing names, resolved against the image's folder.
  QemuImg({"create", "-q", "-f", "qcow2", "-o", "cluster_size=" + cluster, "-b", "base.raw", "-F", "raw", c.mid});
  QemuIo(c.mid, {"write -P 0x10 1M 2M", "write -z 4M 1M", "write -P 0x11 6M 32k", "write -c -P 0x12 8M 2M"});
  QemuImg({"create", "-q", "-f", "qcow2", "-o", "cluster_size=" + cluster, "-b", "mid.qcow2", "-F", "qcow2", c.top});
  QemuIo(c.top, {"write -P 0x20 1536k 1M", "write -z 6M 16k", "write -P 0x21 12M 64k", "write -z 14M 1M",
                 "write -P 0x22 4608k 4k"});
  return c;
}

TEST(Qcow2Chain, OpenImageChainFollowsBackingFiles) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  for (const std::string cluster : {"64k", "4k", "2M"}) {
    SCOPED_TRACE("cluster " + cluster);
    ChainFiles c = MakeChain(dir, rng, cluster);
    std::vector<std::unique_ptr<BlockDriver>> drivers;
    Status opened = OpenImageChain(c.top, "", &drivers);
    ASSERT_TRUE(opened.ok()) << opened.message();
    ASSERT_EQ(drivers.size(), 3u);
    EXPECT_EQ(drivers[0]->format(), "qcow2");
    EXPECT_EQ(drivers[1]->format(), "qcow2");
    EXPECT_EQ(drivers[2]->format(), "raw");
    EXPECT_EQ(drivers[1]->path(), c.mid);
    EXPECT_EQ(drivers[2]->path(), c.base);
    CheckImage(dir, c.top, rng, true);
    CheckImage(dir, c.mid, rng, true);
    BackingChain chain(std::move(drivers), c.size);
    const std::string expected = QemuRaw(dir, c.top);
    std::string got(c.size, '\0');
    ASSERT_TRUE(chain.Read(0, got).ok());
    EXPECT_EQ(FirstDifference(got, expected), "");
    // Merged block status: what is not data reads as zeros.
    uint64_t pos = 0;
    while (pos < c.size) {
      BlockStatus status;
      ASSERT_TRUE(chain.GetBlockStatus(pos, c.size - pos, &status).ok());
      if (status.allocation != Allocation::kData) {
        EXPECT_TRUE(IsAllZero(std::string_view(expected).substr(pos, status.length))) << pos;
      }
      pos += status.length;
    }
  }
}

TEST(Qcow2Chain, BackingFormatDetectedWhenTheExtensionIsMissing) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  ChainFiles c = MakeChain(dir, rng);
  // Turn top's backing format extension into an unknown one: it is skipped,
  // and mid's format is detected.
  std::string bytes = ReadFileBytes(c.top);
  uint64_t at = GetBe32(bytes, 100);  // header_length
  bool found = false;
  while (at + 8 <= 65536) {
    uint32_t type = GetBe32(bytes, at), len = GetBe32(bytes, at + 4);
    if (type == 0) break;
    if (type == kQcow2ExtBackingFormat) {
      testing::PatchFile(c.top, at, Be32(0x12345678));
      found = true;
      break;
    }
    at += 8 + ((len + 7) & ~7u);
  }
  ASSERT_TRUE(found);
  std::vector<ImageSpec> chain;
  ASSERT_TRUE(ExpandImageChain(c.top, "", &chain).ok());
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[1].format, "qcow2");
  std::vector<std::unique_ptr<BlockDriver>> drivers;
  ASSERT_TRUE(OpenImageChain(c.top, "", &drivers).ok());
  BackingChain merged(std::move(drivers), c.size);
  std::string got(c.size, '\0');
  ASSERT_TRUE(merged.Read(0, got).ok());
  EXPECT_EQ(FirstDifference(got, QemuRaw(dir, c.top)), "");
}

TEST(Qcow2Chain, ExpandImageListPlacesBackingFiles) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  ChainFiles c = MakeChain(dir, rng);
  const std::string other = dir.File("other.raw");
  MakeSourceRaw(other, kMiB, rng);
  auto paths = [](const std::vector<ImageSpec>& images) {
    std::vector<std::string> p;
    for (const ImageSpec& i : images) p.push_back(i.path);
    return p;
  };
  std::vector<ImageSpec> out;
  ASSERT_TRUE(ExpandImageList({{c.top, ""}}, &out).ok());
  EXPECT_EQ(paths(out), (std::vector<std::string>{c.top, c.mid, c.base}));
  // The user lists part of the chain: no image twice.
  ASSERT_TRUE(ExpandImageList({{c.top, ""}, {c.base, "raw"}}, &out).ok());
  EXPECT_EQ(paths(out), (std::vector<std::string>{c.top, c.mid, c.base}));
  EXPECT_EQ(out[2].format, "raw");
  ASSERT_TRUE(ExpandImageList({{c.top, ""}, {c.mid, ""}}, &out).ok());
  EXPECT_EQ(paths(out), (std::vector<std::string>{c.top, c.mid, c.base}));
  // Another image below: after the qcow2's own backing files.
  ASSERT_TRUE(ExpandImageList({{c.top, ""}, {other, ""}}, &out).ok());
  EXPECT_EQ(paths(out), (std::vector<std::string>{c.top, c.mid, c.base, other}));
  ASSERT_TRUE(ExpandImageList({{other, ""}, {c.mid, "qcow2"}}, &out).ok());
  EXPECT_EQ(paths(out), (std::vector<std::string>{other, c.mid, c.base}));
  // A raw image named as raw is not followed, even if it is a qcow2 file.
  ASSERT_TRUE(ExpandImageList({{c.top, "raw"}}, &out).ok());
  EXPECT_EQ(paths(out), (std::vector<std::string>{c.top}));
  // Two qcow2 images over the same base: the base would appear twice.
  const std::string second = dir.File("second.qcow2");
  QemuImg({"create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", second});
  Status twice = ExpandImageList({{c.mid, ""}, {second, ""}}, &out);
  EXPECT_FALSE(twice.ok());
  EXPECT_NE(twice.message().find("appear once"), std::string::npos) << twice.message();
  // Files that cannot be read are left to the opener.
  ASSERT_TRUE(ExpandImageList({{dir.File("missing.raw"), ""}}, &out).ok());
  EXPECT_EQ(out.size(), 1u);
}

TEST(Qcow2Chain, LoopsAndDepthAreRefused) {
  TempDir dir;
  const std::string a = dir.File("a.qcow2"), b = dir.File("b.qcow2");
  QemuImg({"create", "-q", "-f", "qcow2", a, "1M"});
  QemuImg({"create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b});
  QemuImg({"rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a});
  std::vector<ImageSpec> chain;
  Status loop = ExpandImageChain(b, "", &chain);
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.message().find("loops"), std::string::npos) << loop.message();
  std::vector<std::unique_ptr<BlockDriver>> drivers;
  EXPECT_FALSE(OpenImageChain(a, "", &drivers).ok());
  // Itself as its own backing file, through a symlink.
  const std::string self = dir.File("self.qcow2");
  QemuImg({"create", "-q", "-f", "qcow2", self, "1M"});
  ASSERT_EQ(::symlink("self.qcow2", dir.File("link.qcow2").c_str()), 0);
  QemuImg({"rebase", "-u", "-b", "link.qcow2", "-F", "qcow2", self});
  loop = ExpandImageChain(self, "", &chain);
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.message().find("loops"), std::string::npos) << loop.message();
  // A chain of 70 images (each over the one before): too deep.
  QemuImg({"create", "-q", "-f", "qcow2", dir.File("d0.qcow2"), "1M"});
  for (int i = 1; i < 70; ++i) {
    QemuImg({"create", "-q", "-f", "qcow2", "-u", "-b", "d" + std::to_string(i - 1) + ".qcow2", "-F", "qcow2",
             dir.File("d" + std::to_string(i) + ".qcow2"), "1M"});
  }
  Status deep = ExpandImageChain(dir.File("d69.qcow2"), "", &chain);
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.message().find("deeper than 64"), std::string::npos) << deep.message();
  ASSERT_TRUE(ExpandImageChain(dir.File("d63.qcow2"), "", &chain).ok());
  EXPECT_EQ(chain.size(), 64u);
  // A missing backing file is named.
  QemuImg({"create", "-q", "-f", "qcow2", "-b", "gone.raw", "-F", "raw", "-u", dir.File("orphan.qcow2"), "1M"});
  Status missing = ExpandImageChain(dir.File("orphan.qcow2"), "", &chain);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("gone.raw"), std::string::npos) << missing.message();
}

// ---------------------------------------------------------------------------
// An overlay over a qcow2 chain

TEST(Qcow2Overlay, ReadPopulateAndDropBacking) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  ChainFiles c = MakeChain(dir, rng);
  const std::string expected = QemuRaw(dir, c.top);
  const std::string ov = dir.File("vm.img");
  CreateOptions create;
  create.backing = {{c.top, ""}};
  Status created = Overlay::Create(ov, create);
  ASSERT_TRUE(created.ok()) << created.message();
  {
    std::unique_ptr<Overlay> overlay;
    ASSERT_TRUE(Overlay::Open(ov, OpenOptions{}, &overlay).ok());
    OverlayHeader header = overlay->header();
    ASSERT_EQ(header.chain.size(), 3u);
    EXPECT_EQ(header.chain[0].spec.format, "qcow2");
    EXPECT_EQ(header.chain[1].spec.format, "qcow2");
    EXPECT_EQ(header.chain[2].spec.format, "raw");
    EXPECT_EQ(overlay->size(), c.size);
    std::string got;
    ASSERT_TRUE(testing::ReadWholeDisk(*overlay, &got, 100 * kKiB).ok());
    EXPECT_EQ(FirstDifference(got, expected), "");
  }
  {
    // Opened with the chain as a YAML file names it: the same expansion.
    OpenOptions options;
    options.expected_backing = std::vector<ImageSpec>{{c.top, ""}};
    std::unique_ptr<Overlay> overlay;
    Status opened = Overlay::Open(ov, options, &overlay);
    ASSERT_TRUE(opened.ok()) << opened.message();
    options.expected_backing = std::vector<ImageSpec>{{c.top, "qcow2"}, {c.base, "raw"}};
    overlay.reset();
    opened = Overlay::Open(ov, options, &overlay);
    ASSERT_TRUE(opened.ok()) << opened.message();
    ASSERT_TRUE(overlay->Populate(0, overlay->size(), /*wait=*/true).ok());
    ASSERT_EQ(overlay->allocated_clusters(), overlay->cluster_count());
    Status dropped = overlay->DropBacking();
    ASSERT_TRUE(dropped.ok()) << dropped.message();
    EXPECT_TRUE(overlay->header().standalone);
    std::string got;
    ASSERT_TRUE(testing::ReadWholeDisk(*overlay, &got).ok());
    EXPECT_EQ(FirstDifference(got, expected), "");
    ASSERT_TRUE(overlay->Close().ok());
  }
  // The data file alone is the disk.
  EXPECT_EQ(FirstDifference(ReadFileBytes(ov), expected), "");
}

TEST(Qcow2Overlay, CompressedTemplateUnderAnOverlay) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  MakeSourceRaw(dir.File("src.raw"), 12 * kMiB, rng);
  const std::string tmpl = dir.File("template.qcow2");
  QemuImg({"convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", dir.File("src.raw"), tmpl});
  const std::string expected = QemuRaw(dir, tmpl);
  const std::string ov = dir.File("vm.img");
  CreateOptions create;
  create.backing = {{tmpl, "qcow2"}};
  create.cluster_size = 4096;
  ASSERT_TRUE(Overlay::Create(ov, create).ok());
  std::unique_ptr<Overlay> overlay;
  ASSERT_TRUE(Overlay::Open(ov, OpenOptions{}, &overlay).ok());
  // Readers in parallel, in small pieces: copy-on-read of compressed clusters.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 r(static_cast<uint64_t>(t) * 77 + 1);
      for (int i = 0; i < 300; ++i) {
        uint64_t len = testing::RandomIn(r, 1, 20000);
        uint64_t at = testing::RandomIn(r, 0, expected.size() - len);
        std::string buf(len, '\0');
        if (!overlay->Read(at, buf).ok() || buf != expected.substr(at, len)) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(overlay->Populate(0, overlay->size(), true).ok());
  ASSERT_TRUE(overlay->DropBacking().ok());
  ASSERT_TRUE(overlay->Close().ok());
  EXPECT_EQ(FirstDifference(ReadFileBytes(ov), expected), "");
}

// ---------------------------------------------------------------------------
// Many readers, a small L2 cache

TEST(Qcow2Cache, ConcurrentReadersWithEviction) {
  std::mt19937_64 rng(testing::TestSeed());
  TempDir dir;
  const uint64_t size = 64 * kMiB;
  std::string content = MakeSourceRaw(dir.File("src.raw"), size, rng);
  const std::string img = dir.File("img.qcow2");
  // 4 KiB clusters: one L2 table maps 2 MiB, so 32 tables; the cache holds 4.
  QemuImg({"convert", "-O", "qcow2", "-o", "cluster_size=4k", dir.File("src.raw"), img});
  std::unique_ptr<Qcow2Driver> driver;
  ASSERT_TRUE(OpenQcow2(img, &driver, 16 * kKiB).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 r(static_cast<uint64_t>(t) + 1000);
      for (int i = 0; i < 2000; ++i) {
        uint64_t len = testing::RandomIn(r, 1, 70000);
        uint64_t at = testing::RandomIn(r, 0, size - len);
        std::string buf(len, '\0');
        if (!driver->Read(at, buf).ok() || std::memcmp(buf.data(), content.data() + at, len) != 0) failures++;
        BlockStatus status;
        if (!driver->GetBlockStatus(at, len, &status).ok()) failures++;
        if (status.allocation != Allocation::kData && !IsAllZero(std::string_view(content).substr(at, status.length))) {
          failures++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Qcow2L2Cache::Stats stats = driver->l2_cache_stats();
  EXPECT_LE(stats.tables, stats.capacity);
  EXPECT_EQ(stats.capacity, 4u);
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_GT(stats.hits, 0u);
}

TEST(Qcow2Cache, HolesAreSkippedInWholeRuns) {
  TempDir dir;
  // 1 TiB, two small writes: the block status walks empty L1 entries, not
  // clusters. No backing file: the holes read as zeros.
  const std::string img = dir.File("big.qcow2");
  QemuImg({"create", "-q", "-f", "qcow2", img, "1T"});
  QemuIo(img, {"write -P 1 0 64k", "write -P 2 900G 64k"});
  std::unique_ptr<Qcow2Driver> driver;
  ASSERT_TRUE(OpenQcow2(img, &driver).ok());
  BlockStatus status;
  ASSERT_TRUE(driver->GetBlockStatus(64 * kKiB, driver->size() - 64 * kKiB, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kZero);
  EXPECT_EQ(status.length, 900 * (kMiB << 10) - 64 * kKiB);
  ASSERT_TRUE(driver->GetBlockStatus(900 * (kMiB << 10), kMiB, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kData);
  EXPECT_EQ(status.length, 64 * kKiB);
}

// ---------------------------------------------------------------------------
// Damaged and unsupported images

class Qcow2Bad : public ::testing::Test {
 protected:
  void SetUp() override {
    img_ = dir_.File("img.qcow2");
    QemuImg({"create", "-q", "-f", "qcow2", img_, "16M"});
    QemuIo(img_, {"write -P 0x5a 0 1M", "write -P 0x5b 8M 64k"});
    bytes_ = ReadFileBytes(img_);
    l1_offset_ = GetBe64(bytes_, 40);
    l2_offset_ = GetBe64(bytes_, l1_offset_) & 0x00fffffffffffe00ULL;
  }

  // Opens the image and reads it whole; the first failure, or OK.
  Status OpenAndRead() {
    std::unique_ptr<Qcow2Driver> driver;
    CORFS_RETURN_IF_ERROR(OpenQcow2(img_, &driver));
    std::string all(driver->size(), '\0');
    CORFS_RETURN_IF_ERROR(driver->Read(0, all));
    for (uint64_t pos = 0; pos < driver->size();) {
      BlockStatus status;
      CORFS_RETURN_IF_ERROR(driver->GetBlockStatus(pos, driver->size() - pos, &status));
      pos += status.length;
    }
    return Status::Ok();
  }

  void ExpectError(const std::string& words) {
    Status status = OpenAndRead();
    ASSERT_FALSE(status.ok()) << "expected an error about '" << words << "'";
    EXPECT_NE(status.message().find(words), std::string::npos) << status.message();
    EXPECT_NE(status.message().find(img_), std::string::npos) << status.message();
  }

  TempDir dir_;
  std::string img_;
  std::string bytes_;
  uint64_t l1_offset_ = 0;
  uint64_t l2_offset_ = 0;
};

TEST_F(Qcow2Bad, Sound) { ASSERT_TRUE(OpenAndRead().ok()); }

TEST_F(Qcow2Bad, Truncated) {
  testing::TruncateFile(img_, 100);
  ExpectError("truncated");
  testing::TruncateFile(img_, 50);
  ExpectError("truncated");
  testing::TruncateFile(img_, 2);
  ExpectError("not a qcow2 image");
}

TEST_F(Qcow2Bad, TruncatedBeforeTheL2Tables) {
  testing::TruncateFile(img_, l2_offset_ + 100);
  ExpectError("past the end of the file");
}

TEST_F(Qcow2Bad, TruncatedBeforeTheData) {
  testing::TruncateFile(img_, l2_offset_ + 65536);
  ExpectError("past the end of the file");
}

TEST_F(Qcow2Bad, L1OffsetPastTheEnd) {
  testing::PatchFile(img_, 40, Be64(uint64_t{1} << 40));
  ExpectError("L1 table");
}

TEST_F(Qcow2Bad, L1OffsetUnaligned) {
  testing::PatchFile(img_, 40, Be64(l1_offset_ + 8));
  ExpectError("cluster boundary");
}

TEST_F(Qcow2Bad, HugeL1Size) {
  testing::PatchFile(img_, 36, Be32(0xffffffff));
  ExpectError("larger than 32 MiB");
}

TEST_F(Qcow2Bad, L1TooSmallForTheSize) {
  testing::PatchFile(img_, 24, Be64(uint64_t{1} << 50));
  ExpectError("needs");
}

TEST_F(Qcow2Bad, HugeVirtualSize) {
  testing::PatchFile(img_, 24, Be64(~uint64_t{0}));
  ExpectError("too large");
}

TEST_F(Qcow2Bad, L2OffsetPastTheEnd) {
  testing::PatchFile(img_, l1_offset_, Be64((uint64_t{1} << 63) | (uint64_t{1} << 45)));
  ExpectError("L2 table");
}

TEST_F(Qcow2Bad, L2OffsetUnaligned) {
  testing::PatchFile(img_, l1_offset_, Be64(l2_offset_ + 512));
  ExpectError("cluster boundary");
}

TEST_F(Qcow2Bad, DataClusterPastTheEnd) {
  testing::PatchFile(img_, l2_offset_, Be64((uint64_t{1} << 63) | (uint64_t{1} << 44)));
  ExpectError("past the end of the file");
}

TEST_F(Qcow2Bad, DataClusterUnaligned) {
  uint64_t entry = GetBe64(bytes_, l2_offset_);
  testing::PatchFile(img_, l2_offset_, Be64(entry + 4096));
  ExpectError("cluster boundary");
}

TEST_F(Qcow2Bad, ClusterBits) {
  testing::PatchFile(img_, 20, Be32(22));
  ExpectError("cluster_bits");
  testing::PatchFile(img_, 20, Be32(8));
  ExpectError("cluster_bits");
}

TEST_F(Qcow2Bad, Version) {
  testing::PatchFile(img_, 4, Be32(4));
  ExpectError("version 4");
}

TEST_F(Qcow2Bad, HeaderLength) {
  testing::PatchFile(img_, 100, Be32(99));
  ExpectError("header_length");
  testing::PatchFile(img_, 100, Be32(1 << 20));
  ExpectError("header_length");
}

TEST_F(Qcow2Bad, HeaderExtensionOverflow) {
  uint64_t at = GetBe32(bytes_, 100);
  testing::PatchFile(img_, at + 4, Be32(0x7fffffff));
  ExpectError("header extension");
}

TEST_F(Qcow2Bad, Encrypted) {
  testing::PatchFile(img_, 32, Be32(1));
  ExpectError("encrypted");
  testing::PatchFile(img_, 32, Be32(2));
  ExpectError("LUKS");
}

TEST_F(Qcow2Bad, UnknownIncompatibleBit) {
  testing::PatchFile(img_, 72, Be64(uint64_t{1} << 9));
  ExpectError("unknown incompatible qcow2 feature bit 9");
}

TEST_F(Qcow2Bad, UnknownIncompatibleBitNamedByTheFeatureTable) {
  // Rename the table's entry for incompatible bit 0 to bit 7, and set bit 7.
  uint64_t at = GetBe32(bytes_, 100);
  bool patched = false;
  while (at + 8 < 65536) {
    uint32_t type = GetBe32(bytes_, at), len = GetBe32(bytes_, at + 4);
    if (type == 0) break;
    if (type == kQcow2ExtFeatureTable) {
      for (uint64_t e = at + 8; e + 48 <= at + 8 + len; e += 48) {
        if (bytes_[e] == 0 && bytes_[e + 1] == 0) {
          testing::PatchFile(img_, e + 1, std::string(1, '\x07'));
          patched = true;
        }
      }
    }
    at += 8 + ((len + 7) & ~7u);
  }
  ASSERT_TRUE(patched);
  testing::PatchFile(img_, 72, Be64(uint64_t{1} << 7));
  ExpectError("bit 7 ('dirty bit')");
}

TEST_F(Qcow2Bad, CompressionTypeWithoutItsBit) {
  // header_length 112 holds the compression type at 104.
  ASSERT_GE(GetBe32(bytes_, 100), 112u);
  testing::PatchFile(img_, 104, std::string(1, '\x01'));
  ExpectError("compression");
  testing::PatchFile(img_, 72, Be64(uint64_t{1} << 3));
  testing::PatchFile(img_, 104, std::string(1, '\x05'));
  ExpectError("compression type 5");
}

TEST_F(Qcow2Bad, BackingNamePastTheEnd) {
  testing::PatchFile(img_, 8, Be64(bytes_.size() - 10));
  testing::PatchFile(img_, 16, Be32(100));
  ExpectError("backing file name");
  testing::PatchFile(img_, 16, Be32(5000));
  ExpectError("longer than 1023");
}

TEST_F(Qcow2Bad, ExternalDataFile) {
  const std::string img = dir_.File("df.qcow2");
  QemuImg({"create", "-q", "-f", "qcow2", "-o", "data_file=" + dir_.File("data.raw"), img, "1M"});
  std::unique_ptr<Qcow2Driver> driver;
  Status status = OpenQcow2(img, &driver);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("external data file"), std::string::npos) << status.message();
}

TEST_F(Qcow2Bad, LuksEncryptedImage) {
  const std::string img = dir_.File("luks.qcow2");
  testing::CommandResult r =
      RunCommand({kQemuImg, "create", "-q", "--object", "secret,id=sec0,data=123456", "-f", "qcow2", "-o",
                  "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", img, "1M"});
  if (r.exit_code != 0) GTEST_SKIP() << "qemu-img cannot make LUKS images here: " << r.err;
  std::unique_ptr<Qcow2Driver> driver;
  Status status = OpenQcow2(img, &driver);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("encrypted"), std::string::npos) << status.message();
}

// Compressed clusters: descriptors that point outside the file, or data
// that does not decompress.
class Qcow2BadCompressed : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(7);
    const std::string src = dir_.File("src.raw");
    std::string content = testing::RandomBytes(rng, 2 * kMiB);
    UniqueFd fd(::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(PwriteFull(fd.get(), content, 0, src).ok());
    // Text compresses: repeat a pattern so each cluster has a real deflate stream.
    std::string text;
    while (text.size() < 2 * kMiB) text += "corfs qcow2 compressed cluster " + std::to_string(text.size()) + "\n";
    ASSERT_TRUE(PwriteFull(fd.get(), std::string_view(text).substr(0, kMiB), 0, src).ok());
    content_ = text.substr(0, kMiB) + content.substr(kMiB);
    img_ = dir_.File("c.qcow2");
    QemuImg({"convert", "-c", "-O", "qcow2", "-o", GetParam(), src, img_});
    bytes_ = ReadFileBytes(img_);
    const uint64_t l1 = GetBe64(bytes_, 40);
    l2_ = GetBe64(bytes_, l1) & 0x00fffffffffffe00ULL;
    entry_ = GetBe64(bytes_, l2_);
    ASSERT_TRUE(entry_ & (uint64_t{1} << 62)) << "cluster 0 is not compressed";
    cluster_bits_ = GetBe32(bytes_, 20);
  }

  Status ReadFirstCluster() {
    std::unique_ptr<Qcow2Driver> driver;
    CORFS_RETURN_IF_ERROR(OpenQcow2(img_, &driver));
    std::string buf(driver->header().cluster_size(), '\0');
    return driver->Read(0, buf);
  }

  TempDir dir_;
  std::string img_, bytes_, content_;
  uint64_t l2_ = 0, entry_ = 0;
  uint32_t cluster_bits_ = 0;
};

TEST_P(Qcow2BadCompressed, Sound) { EXPECT_TRUE(ReadFirstCluster().ok()); }

TEST_P(Qcow2BadCompressed, OffsetPastTheEnd) {
  const uint32_t x = 62 - (cluster_bits_ - 8);
  const uint64_t sectors = entry_ & ~((uint64_t{1} << x) - 1);
  testing::PatchFile(img_, l2_, Be64(sectors | (bytes_.size() + 4096)));
  Status status = ReadFirstCluster();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("past the end of the file"), std::string::npos) << status.message();
}

TEST_P(Qcow2BadCompressed, TooFewSectors) {
  const uint32_t x = 62 - (cluster_bits_ - 8);
  const uint64_t offset = entry_ & ((uint64_t{1} << x) - 1);
  if (((entry_ & ((uint64_t{1} << 62) - 1)) >> x) == 0) GTEST_SKIP() << "the cluster fits in one sector";
  testing::PatchFile(img_, l2_, Be64((uint64_t{1} << 62) | offset));  // 1 sector only
  Status status = ReadFirstCluster();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot be decompressed"), std::string::npos) << status.message();
}

TEST_P(Qcow2BadCompressed, MaximalSectorsAtTheEndOfTheFile) {
  const uint32_t x = 62 - (cluster_bits_ - 8);
  const uint64_t all_sectors = ((uint64_t{1} << 62) - 1) & ~((uint64_t{1} << x) - 1);
  testing::PatchFile(img_, l2_, Be64((uint64_t{1} << 62) | all_sectors | (bytes_.size() - 3)));
  Status status = ReadFirstCluster();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot be decompressed"), std::string::npos) << status.message();
}

TEST_P(Qcow2BadCompressed, GarbageData) {
  const uint32_t x = 62 - (cluster_bits_ - 8);
  const uint64_t offset = entry_ & ((uint64_t{1} << x) - 1);
  testing::PatchFile(img_, offset, std::string(64, '\xff'));
  Status status = ReadFirstCluster();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot be decompressed"), std::string::npos) << status.message();
}

// A read of many whole compressed clusters inflates them together (in
// parallel): one damaged cluster among them fails the read, and the same
// driver (and the threads' reused decompression state) reads the sound
// clusters after it correctly.
TEST_P(Qcow2BadCompressed, GarbageDataInALargeRead) {
  const uint32_t x = 62 - (cluster_bits_ - 8);
  const uint64_t offset = entry_ & ((uint64_t{1} << x) - 1);
  testing::PatchFile(img_, offset, std::string(64, '\xff'));
  std::unique_ptr<Qcow2Driver> driver;
  ASSERT_TRUE(OpenQcow2(img_, &driver).ok());
  std::string buf(kMiB, '\0');
  Status status = driver->Read(0, buf);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot be decompressed"), std::string::npos) << status.message();
  const uint64_t cluster = driver->header().cluster_size();
  for (int round = 0; round < 3; ++round) {
    const uint64_t from = std::max<uint64_t>(cluster, kMiB / 2);  // past the damaged cluster 0
    std::string rest(2 * kMiB - from, '\0');
    ASSERT_TRUE(driver->Read(from, rest).ok());
    EXPECT_EQ(FirstDifference(rest, content_.substr(from)), "");
    EXPECT_FALSE(driver->Read(0, buf).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Qcow2BadCompressed,
                         ::testing::Values("compression_type=zlib", "compression_type=zstd",
                                           "compression_type=zlib,cluster_size=512",
                                           "compression_type=zstd,cluster_size=2M"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// Random damage to the metadata of real images: errors are fine, crashes,
// hangs and wrong-sized reads are not.
TEST(Qcow2Damage, RandomMetadataCorruptionNeverCrashes) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE("CORFS_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  MakeSourceRaw(dir.File("src.raw"), 4 * kMiB, rng);
  std::vector<std::string> images;
  for (const std::string& opts : {std::string("cluster_size=4k"), std::string("compression_type=zstd"),
                                  std::string("compat=0.10,cluster_size=512"), std::string("extended_l2=on")}) {
    const std::string img = dir.File("i" + std::to_string(images.size()) + ".qcow2");
    QemuImg({"convert", "-c", "-O", "qcow2", "-o", opts, dir.File("src.raw"), img});
    images.push_back(img);
  }
  int opened = 0, failed = 0;
  for (int round = 0; round < 400; ++round) {
    const std::string& original = images[round % images.size()];
    std::string bytes = ReadFileBytes(original);
    const uint64_t l1 = GetBe64(bytes, 40);
    const uint32_t cluster = 1u << GetBe32(bytes, 20);
    // Flip bytes in the header, the L1 table, or the clusters after it.
    const int flips = static_cast<int>(testing::RandomIn(rng, 1, 8));
    for (int f = 0; f < flips; ++f) {
      uint64_t region = testing::RandomIn(rng, 0, 2);
      uint64_t at = region == 0   ? testing::RandomIn(rng, 0, 200)
                    : region == 1 ? l1 + testing::RandomIn(rng, 0, 64)
                                  : testing::RandomIn(rng, cluster, bytes.size() - 1);
      if (at >= bytes.size()) continue;
      bytes[at] = static_cast<char>(bytes[at] ^ (1 << testing::RandomIn(rng, 0, 7)));
    }
    const std::string damaged = dir.File("damaged.qcow2");
    {
      UniqueFd fd(::open(damaged.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      ASSERT_TRUE(PwriteFull(fd.get(), bytes, 0, damaged).ok());
    }
    std::unique_ptr<Qcow2Driver> driver;
    if (!OpenQcow2(damaged, &driver).ok()) {
      failed++;
      continue;
    }
    opened++;
    const uint64_t limit = std::min<uint64_t>(driver->size(), 8 * kMiB);
    std::string buf(256 * kKiB, '\0');
    for (uint64_t pos = 0; pos < limit; pos += buf.size()) {
      (void)driver->Read(pos, std::span<char>(buf).first(std::min<uint64_t>(buf.size(), limit - pos)));
      BlockStatus status;
      if (driver->GetBlockStatus(pos, limit - pos, &status).ok()) {
        ASSERT_GT(status.length, 0u);
        ASSERT_LE(status.length, limit - pos);
      }
    }
  }
  EXPECT_GT(opened, 0);
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace corfs::overlay
