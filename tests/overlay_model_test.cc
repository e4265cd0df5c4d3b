// Reference model: threads doing random reads, writes, discards and flushes
// on an overlay over a random two-layer chain, checked byte for byte against
// an in-memory copy of what the disk must hold.
//
// Each thread owns interleaved stripes of the disk (stripe i belongs to
// thread i % T) whose boundaries are not cluster aligned, and every request
// stays inside one stripe of its own thread. So threads share clusters (and
// race on claims, copy-on-read and copy-on-write merging of one cluster)
// but never the same bytes, and the model stays exact: each thread checks
// its reads against the model as it goes. At the end the whole disk is
// compared, then again after closing and reopening.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

struct ModelParams {
  uint64_t cluster_size;
  uint64_t stripe_size;
  bool copy_on_read;
};

void PrintTo(const ModelParams& p, std::ostream* os) {
  *os << "cluster " << p.cluster_size << ", stripe " << p.stripe_size << ", copy_on_read " << p.copy_on_read;
}

std::string ParamName(const ::testing::TestParamInfo<ModelParams>& info) {
  return "Cluster" + std::to_string(info.param.cluster_size / 1024) + "K_Stripe" +
         std::to_string(info.param.stripe_size) + (info.param.copy_on_read ? "_CopyOnRead" : "_ThinClone");
}

class OverlayModelTest : public ::testing::TestWithParam<ModelParams> {};

constexpr uint64_t kDiskSize = 2 * 1024 * 1024 + 12345;  // not a multiple of any cluster size
constexpr uint64_t kTopSize = 1024 * 1024 + 700;         // shorter than the disk and the base
constexpr uint64_t kBaseSize = 1536 * 1024 + 1000;
constexpr int kThreads = 4;
constexpr int kMaxOpsPerThread = 20000;
constexpr auto kTimeBudget = 1200ms;  // per run of the threads; a few seconds per test in all

struct Worker {
  int index;
  uint64_t seed;
  std::vector<std::pair<uint64_t, uint64_t>> stripes;  // [start, end)
  int ops = 0, reads = 0, writes = 0, discards = 0, flushes = 0;
};

void RunWorker(Overlay& image, std::string& model, Worker& w, std::chrono::steady_clock::time_point deadline,
               std::atomic<bool>& failed) {
  std::mt19937_64 rng(w.seed);
  std::string buf;
  for (; w.ops < kMaxOpsPerThread && !failed.load(); ++w.ops) {
    if ((w.ops & 15) == 0 && std::chrono::steady_clock::now() > deadline) break;
    auto [start, end] = w.stripes[testing::RandomIn(rng, 0, w.stripes.size() - 1)];
    uint64_t offset, length;
    if (testing::RandomIn(rng, 0, 9) == 0) {  // the whole stripe
      offset = start;
      length = end - start;
    } else {
      offset = testing::RandomIn(rng, start, end - 1);
      length = testing::RandomIn(rng, 1, end - offset);
    }
    const uint64_t kind = testing::RandomIn(rng, 0, 99);
    Status status;
    const char* what = "";
    if (kind < 45) {
      what = "read";
      ++w.reads;
      buf.assign(length, '\x5a');
      status = image.Read(offset, buf);
      if (status.ok()) {
        std::string diff = testing::FirstDifference(buf, std::string_view(model).substr(offset, length), offset);
        if (!diff.empty()) {
          ADD_FAILURE() << "thread " << w.index << " op " << w.ops << ": read of " << length << " at " << offset << ": "
                        << diff;
          failed = true;
        }
      }
    } else if (kind < 78) {
      what = "write";
      ++w.writes;
      const uint64_t shape = testing::RandomIn(rng, 0, 9);
      buf = testing::RandomBytes(rng, length);
      if (shape == 0) {
        std::memset(buf.data(), 0, length);  // zeros: may become holes
      } else if (shape == 1) {
        std::memset(buf.data(), 0, length / 2);
      }
      status = image.Write(offset, buf);
      if (status.ok()) std::memcpy(model.data() + offset, buf.data(), length);
    } else if (kind < 96) {
      what = "discard";
      ++w.discards;
      status = image.Discard(offset, length);
      if (status.ok()) std::memset(model.data() + offset, 0, length);
    } else {
      what = "flush";
      ++w.flushes;
      status = image.Flush();
    }
    if (!status.ok()) {
      ADD_FAILURE() << "thread " << w.index << " op " << w.ops << ": " << what << " of " << length << " at " << offset
                    << " failed: " << status.message();
      failed = true;
    }
  }
}

// Walks the disk with GetBlockStatus: runs cover it exactly, and every run
// said to be zero or unallocated reads as zeros in the model.
void ExpectBlockStatusAgreesWithModel(Overlay& image, const std::string& model) {
  uint64_t offset = 0;
  while (offset < image.size()) {
    BlockStatus status;
    Status result = image.GetBlockStatus(offset, image.size() - offset, &status);
    ASSERT_TRUE(result.ok()) << result.message();
    ASSERT_GT(status.length, 0u);
    ASSERT_LE(status.length, image.size() - offset);
    if (status.allocation != Allocation::kData) {
      ASSERT_EQ(testing::FirstDifference(std::string_view(model).substr(offset, status.length),
                                         std::string(status.length, '\0'), offset),
                "")
          << "a run of " << status.length << " at " << offset << " is reported "
          << (status.allocation == Allocation::kZero ? "zero" : "unallocated");
    }
    offset += status.length;
  }
}

TEST_P(OverlayModelTest, ConcurrentRandomIoMatchesModel) {
  const ModelParams params = GetParam();
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set CORFS_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  TempDir dir;

  // Layers with different allocated regions; the top holds some explicit
  // zeros that hide the base's data.
  std::vector<testing::SparseLayer> layers;
  layers.push_back(testing::MakeRandomSparseLayer(dir.File("top.raw"), kTopSize, rng, 0.35, 0.15));
  layers.push_back(testing::MakeRandomSparseLayer(dir.File("base.raw"), kBaseSize, rng, 0.5));
  std::string model = testing::ExpectedChainContent(layers, kDiskSize);

  const std::string path = dir.File("disk.img");
  CreateOptions create;
  create.backing = {{layers[0].path, ""}, {layers[1].path, "raw"}};
  create.size = kDiskSize;
  create.cluster_size = params.cluster_size;
  // Backing reads take a little longer than the page cache would, so fills
  // stay in progress long enough for the other threads to run into them.
  auto control = std::make_shared<testing::DriverControl>();
  control->SetSlowReads(0, kDiskSize, 100us);
  create.opener = testing::TestOpener(control);
  Status status = Overlay::Create(path, create);
  ASSERT_TRUE(status.ok()) << status.message();

  OpenOptions open;
  open.copy_on_read = params.copy_on_read;
  open.commit_interval = 20ms;  // the background commit runs alongside the I/O
  open.opener = create.opener;
  std::unique_ptr<Overlay> image;
  status = Overlay::Open(path, open, &image);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(image->size(), kDiskSize);
  ASSERT_EQ(image->cluster_count(), (kDiskSize + params.cluster_size - 1) / params.cluster_size);

  std::vector<Worker> workers(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    workers[t].index = t;
    workers[t].seed = seed + 1000 + t;
  }
  for (uint64_t i = 0, start = 0; start < kDiskSize; ++i, start += params.stripe_size) {
    workers[i % kThreads].stripes.emplace_back(start, std::min(kDiskSize, start + params.stripe_size));
  }
  std::atomic<bool> failed{false};
  const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
  std::vector<std::thread> threads;
  for (Worker& w : workers) {
    threads.emplace_back([&, wp = &w] { RunWorker(*image, model, *wp, deadline, failed); });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_FALSE(failed.load());
  int total_ops = 0;
  for (const Worker& w : workers) {
    total_ops += w.ops;
    EXPECT_GT(w.reads, 0);
    EXPECT_GT(w.writes, 0);
  }
  EXPECT_GT(total_ops, 400) << "too few operations to mean much";

  // The whole disk, in one read.
  const uint64_t allocated_before = image->allocated_clusters();
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &all).ok());
  ASSERT_EQ(testing::FirstDifference(all, model), "");
  if (params.copy_on_read) {
    EXPECT_EQ(image->allocated_clusters(), image->cluster_count()) << "a whole-disk read copies every cluster";
  } else {
    EXPECT_EQ(image->allocated_clusters(), allocated_before) << "reads of a thin clone copy nothing";
  }
  ExpectBlockStatusAgreesWithModel(*image, model);

  // Close, reopen (now without copy-on-read, so reads change nothing), and
  // compare again, in pieces that do not line up with clusters.
  ASSERT_TRUE(image->Close().ok());
  const uint64_t allocated = image->allocated_clusters();
  image.reset();
  open.copy_on_read = false;
  status = Overlay::Open(path, open, &image);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(image->allocated_clusters(), allocated) << "the bitmap was committed at close";
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &all, 3 * 4096 + 17).ok());
  ASSERT_EQ(testing::FirstDifference(all, model), "");
  ExpectBlockStatusAgreesWithModel(*image, model);
  ASSERT_TRUE(image->Close().ok());
}

INSTANTIATE_TEST_SUITE_P(Overlay, OverlayModelTest,
                         ::testing::Values(ModelParams{4096, 3072, true}, ModelParams{4096, 3072, false},
                                           ModelParams{4096, 11 * 1024, true}, ModelParams{65536, 3072, true},
                                           ModelParams{65536, 3072, false}, ModelParams{65536, 150 * 1024, true}),
                         ParamName);

}  // namespace
}  // namespace corfs::overlay
