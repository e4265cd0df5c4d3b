// Crash consistency: a forked child writes to an overlay and is killed with
// SIGKILL; the parent reopens the overlay and checks it against a model.
//
// The child does a seeded sequence of writes (each inside one cluster,
// partial and whole), calls Flush every kFlushEvery writes and reports the
// number of writes each completed flush covers through a pipe. After the
// kill, the parent replays the same sequence in a model and checks every
// 4 KiB block: it holds either the model's content at the last flush the
// child acknowledged, or the content after some later write touching that
// block. So every flushed write is there, and every block reads either the
// overlay's data or the backing data, never a mix of a committed bit over
// data that never reached the file.
//
// The child is forked before it creates any thread (this executable has no
// other test threads), and always leaves with _exit, never into gtest.

#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <thread>
#include <unordered_set>

#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr uint64_t kCluster = 16 * 1024;
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kDiskSize = 4 * 1024 * 1024 + 3 * 4096;  // the last cluster is partial
constexpr uint64_t kBackingSize = 3 * 1024 * 1024;          // shorter than the disk
constexpr uint64_t kFlushEvery = 40;
constexpr uint64_t kMaxWrites = 1000000;  // the child is killed long before

struct WriteOp {
  uint64_t offset;
  uint64_t length;
  uint64_t data_seed;
};

// The i-th write of the sequence `seed`: inside one cluster; whole clusters
// a quarter of the time.
WriteOp MakeOp(uint64_t seed, uint64_t i) {
  std::mt19937_64 rng(seed * 1000003 + i);
  const uint64_t clusters = (kDiskSize + kCluster - 1) / kCluster;
  const uint64_t cluster = testing::RandomIn(rng, 0, clusters - 1);
  const uint64_t start = cluster * kCluster;
  const uint64_t end = std::min(kDiskSize, start + kCluster);
  WriteOp op{start, end - start, rng()};
  if (testing::RandomIn(rng, 0, 3) != 0) {
    op.offset = testing::RandomIn(rng, start, end - 1);
    op.length = testing::RandomIn(rng, 1, end - op.offset);
  }
  return op;
}

void ApplyOp(const WriteOp& op, std::string& disk) {
  testing::FillSeeded(op.data_seed, std::span(disk.data() + op.offset, op.length));
}

// ---------------------------------------------------------------------------
// The child side: never returns.

[[noreturn]] void ChildDie(const char* what, const Status& status) {
  std::fprintf(stderr, "crash-test child: %s: %s\n", what, status.message().c_str());
  ::_exit(3);
}

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(4);
    p += n;
    size -= static_cast<size_t>(n);
  }
}

[[noreturn]] void RunChild(const std::string& path, uint64_t seed, std::chrono::milliseconds commit_interval,
                           uint64_t writes, bool flush, int report_fd) {
  OpenOptions open;
  open.commit_interval = commit_interval;
  open.copy_on_read = false;
  std::unique_ptr<Overlay> image;
  Status status = Overlay::Open(path, open, &image);
  if (!status.ok()) ChildDie("open", status);
  std::string buf;
  for (uint64_t i = 0; i < writes; ++i) {
    WriteOp op = MakeOp(seed, i);
    buf.resize(op.length);
    testing::FillSeeded(op.data_seed, buf);
    status = image->Write(op.offset, buf);
    if (!status.ok()) ChildDie("write", status);
    if (flush && (i + 1) % kFlushEvery == 0) {
      status = image->Flush();
      if (!status.ok()) ChildDie("flush", status);
      uint64_t done = i + 1;
      WriteAll(report_fd, &done, sizeof done);
    }
  }
  const uint64_t finished = ~uint64_t{0};
  WriteAll(report_fd, &finished, sizeof finished);
  for (;;) ::pause();  // wait for the kill, the overlay still open
}

// ---------------------------------------------------------------------------
// The parent side

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = testing::TestSeed();
    std::mt19937_64 rng(seed_);
    backing_ = testing::MakeRandomSparseLayer(dir_.File("base.raw"), kBackingSize, rng, 0.6);
    CreateOptions create;
    create.backing = {{backing_.path, "raw"}};
    create.size = kDiskSize;
    create.cluster_size = kCluster;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
    initial_ = testing::ExpectedChainContent({backing_}, kDiskSize);
  }

  struct ChildRun {
    std::vector<uint64_t> reports;  // flushes acknowledged (write counts); ~0 = all writes done
    bool killed = false;
  };

  // Forks the child, reads its reports until `kill_when` says to kill it (or
  // a timeout), kills it with SIGKILL and collects every report it sent.
  ChildRun RunAndKill(std::chrono::milliseconds commit_interval, uint64_t writes, bool flush,
                      const std::function<bool(const std::vector<uint64_t>&)>& kill_when,
                      std::chrono::milliseconds delay_before_kill) {
    ChildRun run;
    int fds[2];
    if (::pipe(fds) != 0) {
      ADD_FAILURE() << "pipe: " << std::strerror(errno);
      return run;
    }
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      return run;
    }
    if (pid == 0) {
      ::close(fds[0]);
      RunChild(path_, seed_, commit_interval, writes, flush, fds[1]);
    }
    ::close(fds[1]);
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    auto read_report = [&](int timeout_ms) -> bool {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return false;
      uint64_t value = 0;
      size_t got = 0;
      while (got < sizeof value) {
        ssize_t n = ::read(fds[0], reinterpret_cast<char*>(&value) + got, sizeof value - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += static_cast<size_t>(n);
      }
      run.reports.push_back(value);
      return true;
    };
    while (!kill_when(run.reports) && std::chrono::steady_clock::now() < give_up) {
      if (!read_report(1000)) {
        int wstatus = 0;
        if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
          ADD_FAILURE() << "the child died on its own (status " << wstatus << ")";
          ::close(fds[0]);
          return run;
        }
      }
    }
    std::this_thread::sleep_for(delay_before_kill);
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    run.killed = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL;
    EXPECT_TRUE(run.killed) << "the child ended by itself (status " << wstatus << ")";
    while (read_report(0)) {  // reports sent before the kill
    }
    ::close(fds[0]);
    return run;
  }

  std::string ReadDisk() {
    OpenOptions open;
    open.commit_interval = 0ms;
    open.copy_on_read = false;
    std::unique_ptr<Overlay> image;
    Status status = Overlay::Open(path_, open, &image);
    EXPECT_TRUE(status.ok()) << "reopening after the crash: " << status.message();
    std::string disk;
    if (image) {
      EXPECT_TRUE(testing::ReadWholeDisk(*image, &disk).ok());
    }
    return disk;
  }

  TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  testing::SparseLayer backing_;
  std::string initial_;
  uint64_t seed_ = 0;
};

TEST_F(CrashTest, FlushedWritesSurviveSigkill) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + " (set CORFS_TEST_SEED to replay)");
  std::mt19937_64 rng(seed_);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Rounds alternate: only flushes commit, or the periodic commit too.
    const auto interval = round % 2 == 0 ? 0ms : 100ms;
    const uint64_t min_flushes = 3 + round;
    const auto delay = std::chrono::milliseconds(testing::RandomIn(rng, 0, 15));
    ChildRun run = RunAndKill(
        interval, kMaxWrites, /*flush=*/true,
        [&](const std::vector<uint64_t>& reports) { return reports.size() >= min_flushes; }, delay);
    ASSERT_TRUE(run.killed);
    ASSERT_GE(run.reports.size(), min_flushes);
    ASSERT_NE(run.reports.back(), ~uint64_t{0}) << "the child finished before the kill";
    const uint64_t acked = run.reports.back();  // writes covered by the last acknowledged flush
    // The child may have written at most up to the next flush: after a
    // flush completes it reports before writing on.
    const uint64_t done_max = acked + kFlushEvery;

    // The model: every write of every round so far (rounds go on from the
    // same overlay, so later rounds use a fresh seed and start from what
    // the disk held).
    std::string at_flush = initial_;
    for (uint64_t i = 0; i < acked; ++i) ApplyOp(MakeOp(seed_, i), at_flush);
    std::vector<std::unordered_set<std::string>> later(kDiskSize / kBlock + 1);
    std::string model = at_flush;
    for (uint64_t i = acked; i < done_max; ++i) {
      WriteOp op = MakeOp(seed_, i);
      ApplyOp(op, model);
      for (uint64_t b = op.offset / kBlock; b * kBlock < op.offset + op.length; ++b) {
        later[b].insert(model.substr(b * kBlock, std::min(kBlock, kDiskSize - b * kBlock)));
      }
    }

    const std::string disk = ReadDisk();
    ASSERT_EQ(disk.size(), kDiskSize);
    uint64_t bad = 0, newer = 0;
    for (uint64_t b = 0; b * kBlock < kDiskSize; ++b) {
      const uint64_t start = b * kBlock, length = std::min(kBlock, kDiskSize - start);
      const std::string_view got = std::string_view(disk).substr(start, length);
      if (got == std::string_view(at_flush).substr(start, length)) continue;
      if (later[b].contains(std::string(got))) {
        ++newer;
        continue;
      }
      if (++bad <= 5) {
        ADD_FAILURE() << "block " << b << " (byte " << start << ") holds neither its content at the last flush ("
                      << acked << " writes) nor any later one: "
                      << testing::FirstDifference(got, std::string_view(at_flush).substr(start, length), start);
      }
    }
    EXPECT_EQ(bad, 0u);
    std::printf("round %d: killed after %zu flushes, last acknowledged at %llu writes; %llu blocks newer\n", round,
                run.reports.size(), static_cast<unsigned long long>(acked), static_cast<unsigned long long>(newer));

    // The next round starts from this state: make it the new "initial"
    // and use a new sequence.
    initial_ = disk;
    seed_ = seed_ * 6364136223846793005ULL + 1442695040888963407ULL;
  }
}

TEST_F(CrashTest, PeriodicCommitMakesUnflushedWritesDurable) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + " (set CORFS_TEST_SEED to replay)");
  constexpr uint64_t kWrites = 300;
  // No flush at all: the child reports when its writes are done and waits;
  // the background commit (about once a second) makes them durable.
  ChildRun run = RunAndKill(
      1000ms, kWrites, /*flush=*/false, [](const std::vector<uint64_t>& reports) { return !reports.empty(); }, 2500ms);
  ASSERT_TRUE(run.killed);
  ASSERT_EQ(run.reports.size(), 1u);
  ASSERT_EQ(run.reports[0], ~uint64_t{0});

  std::string model = initial_;
  for (uint64_t i = 0; i < kWrites; ++i) ApplyOp(MakeOp(seed_, i), model);
  const std::string disk = ReadDisk();
  EXPECT_EQ(testing::FirstDifference(disk, model), "");
}

TEST_F(CrashTest, UnflushedWritesWithoutCommitFallBackToTheBacking) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + " (set CORFS_TEST_SEED to replay)");
  constexpr uint64_t kWrites = 200;
  // No flush and no periodic commit: after the kill the bitmap on disk is
  // empty, so the disk reads as the backing image, whatever the data file holds.
  ChildRun run = RunAndKill(
      0ms, kWrites, /*flush=*/false, [](const std::vector<uint64_t>& reports) { return !reports.empty(); }, 0ms);
  ASSERT_TRUE(run.killed);
  const std::string disk = ReadDisk();
  EXPECT_EQ(testing::FirstDifference(disk, initial_), "");
}

}  // namespace
}  // namespace corfs::overlay
