// The pieces of observability that need no mount: the allocation map's
// walk over a chain (against runs worked out by hand), the Prometheus
// text, the `metrics:` key and the log levels. Real mounts are in
// tests/integration (block_map, io_stats, metrics).

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

#include "common/log.h"
#include "config/config_loader.h"
#include "mount/metrics.h"
#include "overlay/block_map.h"
#include "overlay/raw_driver.h"
#include "tests/test_support.h"

namespace corfs {
namespace {

using overlay::MapRun;
using testing::PatchFile;
using testing::TempDir;
using testing::TruncateFile;
constexpr uint64_t kK = 1024;

TEST(BlockMap, WalksTheChainAsQemuImgMap) {
  TempDir dir;
  // Layer 0 (1M): data at [64K, 128K). Layer 1 (512K): data at [0, 64K).
  // Raw holes hold nothing, so the layers below show through them.
  for (const char* name : {"/upper.raw", "/lower.raw"}) std::ofstream(dir.path() + name).close();
  TruncateFile(dir.path() + "/upper.raw", 1024 * kK);
  PatchFile(dir.path() + "/upper.raw", 64 * kK, std::string(64 * kK, 'u'));
  TruncateFile(dir.path() + "/lower.raw", 512 * kK);
  PatchFile(dir.path() + "/lower.raw", 0, std::string(64 * kK, 'l'));
  std::vector<std::unique_ptr<overlay::BlockDriver>> layers(2);
  ASSERT_TRUE(overlay::OpenImage(dir.path() + "/upper.raw", "raw", &layers[0]).ok());
  ASSERT_TRUE(overlay::OpenImage(dir.path() + "/lower.raw", "raw", &layers[1]).ok());
  overlay::BackingChain chain(std::move(layers), 2048 * kK);

  // The overlay holds [256K, 320K): data, then a hole from 288K.
  overlay::MapSources sources;
  sources.disk_size = 2048 * kK;
  sources.local_run = [](uint64_t offset, uint64_t length, bool* local, uint64_t* run) {
    const uint64_t end = offset + length;
    *local = offset >= 256 * kK && offset < 320 * kK;
    const uint64_t boundary = offset < 256 * kK ? 256 * kK : *local ? 320 * kK : end;
    *run = std::min(end, boundary) - offset;
    return Status::Ok();
  };
  sources.local_status = [](uint64_t offset, uint64_t length, overlay::BlockStatus* out) {
    const bool data = offset < 288 * kK;
    *out = {data ? overlay::Allocation::kData : overlay::Allocation::kZero,
            std::min(length, (data ? 288 * kK : 320 * kK) - offset)};
    return Status::Ok();
  };
  sources.chain = &chain;
  std::vector<MapRun> runs;
  ASSERT_TRUE(overlay::MapDisk(sources, &runs).ok());
  const std::vector<MapRun> expected = {
      {0, 64 * kK, 2, true, false, true},             // lower's data
      {64 * kK, 64 * kK, 1, true, false, true},       // upper's data
      {128 * kK, 128 * kK, 2, false, true, false},    // no image holds it
      {256 * kK, 32 * kK, 0, true, false, true},      // the overlay's data
      {288 * kK, 32 * kK, 0, true, true, false},      // the overlay's hole
      {320 * kK, 192 * kK, 2, false, true, false},    // no image holds it
      {512 * kK, 512 * kK, 1, false, true, false},    // past lower's end: upper decides
      {1024 * kK, 1024 * kK, 0, false, true, false},  // past upper's end: the overlay decides
  };
  EXPECT_EQ(runs, expected);
}

TEST(Metrics, ExpositionFormat) {
  mount::MetricsSnapshot snapshot;
  mount::ImageMetrics image;
  image.name = "vm \"1\"\\x\n";
  image.virtual_bytes = 10ull << 30;
  image.local_bytes = 1ull << 20;
  image.io[static_cast<size_t>(mount::IoKind::kRead)] = {4096, 1, 1500000000, 2};
  snapshot.images.push_back(image);
  snapshot.jobs.push_back({"job1", "vm1.img", "stream", "paused", 5, 10, 0, 2.5, true});
  const std::string text = mount::FormatMetrics(snapshot);
  EXPECT_NE(text.find("# HELP corfs_image_local_bytes "), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE corfs_image_local_bytes gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("corfs_image_local_bytes{image=\"vm \\\"1\\\"\\\\x\\n\"} 1048576\n"), std::string::npos) << text;
  EXPECT_NE(text.find("corfs_image_virtual_bytes{image=\"vm \\\"1\\\"\\\\x\\n\"} 10737418240\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE corfs_image_io_errors_total counter\n"), std::string::npos);
  EXPECT_NE(text.find(",op=\"read\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find(",op=\"read\"} 1.5\n"), std::string::npos) << text;  // seconds
  EXPECT_NE(text.find("corfs_job_rate_bytes_per_second{job=\"job1\",image=\"vm1.img\",type=\"stream\"} 2.5\n"),
            std::string::npos);
  EXPECT_NE(text.find("corfs_job_paused{job=\"job1\",image=\"vm1.img\",type=\"stream\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("corfs_up 1\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsConfig, ReadsTextfileAndInterval) {
  TempDir dir;
  config::MountConfig cfg;
  Status status = config::ParseMountConfig("metrics: {textfile: m/corfs.prom, interval: 500ms}\nimages: {}\n",
                                           "vms.yaml", dir.path(), &cfg);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_TRUE(cfg.metrics.has_value());
  EXPECT_EQ(cfg.metrics->textfile, dir.path() + "/m/corfs.prom");
  EXPECT_EQ(cfg.metrics->interval, std::chrono::milliseconds(500));
  ASSERT_TRUE(config::ParseMountConfig("metrics: {textfile: a.prom}\n", "vms.yaml", dir.path(), &cfg).ok());
  EXPECT_EQ(cfg.metrics->interval, std::chrono::seconds(5));
  ASSERT_TRUE(
      config::ParseMountConfig("metrics: {textfile: a.prom, interval: 2}\n", "vms.yaml", dir.path(), &cfg).ok());
  EXPECT_EQ(cfg.metrics->interval, std::chrono::seconds(2));
  ASSERT_TRUE(config::ParseMountConfig("images: {}\n", "vms.yaml", dir.path(), &cfg).ok());
  EXPECT_FALSE(cfg.metrics.has_value());
}

TEST(MetricsConfig, RefusesBadValues) {
  TempDir dir;
  struct Case {
    const char* yaml;
    const char* message;
  };
  for (const Case& c : {Case{"metrics: {textfile: a.txt}\n", "vms.yaml:1:21: metrics.textfile: "},
                        Case{"metrics: {interval: 5s}\n", "metrics: missing `textfile:`"},
                        Case{"metrics: {textfile: a.prom, interval: 5x}\n", "metrics.interval: expected a duration"},
                        Case{"metrics: {textfile: a.prom, interval: 10ms}\n", "metrics.interval: 10ms is outside"},
                        Case{"metrics: {textfile: a.prom, interval: 2h}\n", "is outside"},
                        Case{"metrics: {textfile: a.prom, every: 5s}\n", "every"}}) {
    config::MountConfig cfg;
    Status status = config::ParseMountConfig(c.yaml, "vms.yaml", dir.path(), &cfg);
    EXPECT_FALSE(status.ok()) << c.yaml;
    EXPECT_NE(status.message().find(c.message), std::string::npos) << status.message();
  }
}

TEST(LogLevel, Words) {
  spdlog::level::level_enum level = spdlog::level::info;
  EXPECT_TRUE(ParseLogLevel("debug", &level).ok());
  EXPECT_EQ(level, spdlog::level::debug);
  EXPECT_TRUE(ParseLogLevel("warn", &level).ok());
  EXPECT_EQ(level, spdlog::level::warn);
  EXPECT_TRUE(ParseLogLevel("off", &level).ok());
  EXPECT_EQ(level, spdlog::level::off);
  Status bad = ParseLogLevel("loud", &level);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("trace, debug, info, warn, error or off"), std::string::npos);
  EXPECT_EQ(level, spdlog::level::off);  // unchanged
}

}  // namespace
}  // namespace corfs
