// corfs_engine_bench: the engine's own speed and memory targets, measured
// without FUSE in the way (bench/README.md, "Engine figures").
//
//   1. Reads of allocated data through Overlay::Read against plain pread of
//      the overlay's data file: same file, same offsets, same bytes, same
//      threads, from the page cache. Target: engine >= 0.9x pread.
//   2. Opening a 1 TiB overlay (64 KiB clusters): wall time of Overlay::Open
//      (target < 50 ms) and the resident memory the open adds (target
//      < 64 MiB), with an empty bitmap and with a partly set one. Each open
//      runs in a fresh child process (this program, --probe-open), so the
//      memory figure is not blurred by what the benchmark allocated before.
//
//   corfs_engine_bench [--size 1G] [--repeats 16] [--dir DIR] [--json FILE] [--keep]

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/file_io.h"
#include "common/size.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "overlay/overlay.h"

namespace {

namespace fs = std::filesystem;
using corfs::Status;
using corfs::UniqueFd;
using corfs::overlay::Overlay;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr double kReadTarget = 0.9;             // engine / pread
constexpr double kOpenTimeTargetMs = 50;        // Overlay::Open of a 1 TiB overlay
constexpr uint64_t kOpenRssTarget = 64 * kMiB;  // resident memory the open adds

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "corfs_engine_bench: %s\n", message.c_str());
  std::exit(1);
}

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.message());
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"); nullopt if absent.
std::optional<uint64_t> ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") != 0) continue;
    return std::stoull(line.substr(field.size() + 1)) * 1024;  // "VmRSS:   1234 kB"
  }
  return std::nullopt;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false if not possible.
bool ResetPeakRss() {
  UniqueFd fd(::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC));
  return fd.valid() && ::write(fd.get(), "5", 1) == 1;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

// A file of `size` pseudo-random bytes (no 4 KiB block is all zeros, so the
// overlay stores every cluster as data).
void WriteRandomFile(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) Die("create " + path + ": " + std::strerror(errno));
  std::vector<uint64_t> words(kMiB / 8);
  uint64_t state = 0x636f726673;  // "corfs"
  for (uint64_t at = 0; at < size; at += kMiB) {
    for (uint64_t& w : words) w = SplitMix64(state);
    uint64_t n = std::min(kMiB, size - at);
    Check(corfs::PwriteFull(fd.get(), std::span(reinterpret_cast<const char*>(words.data()), n), at, path),
          "write template");
  }
  Check(corfs::SyncData(fd.get(), path), "sync template");
}

void MakeSparseFile(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) Die("create " + path + ": " + std::strerror(errno));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    Die("make a sparse file of " + corfs::FormatSize(size) + " at " + path + ": " + std::strerror(errno));
  }
}

// Drops the clean page-cache pages of `path`, so the next open reads from disk.
void EvictFromCache(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return;
  (void)::fdatasync(fd.get());
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
}

// A buffer aligned to 4 KiB and touched once, so page faults stay out of the timings.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t bytes) : data_(static_cast<char*>(std::aligned_alloc(4096, bytes))), size_(bytes) {
    if (data_ == nullptr) Die("out of memory");
    std::memset(data_, 0xa5, size_);
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::span<char> span(size_t n) { return {data_, n}; }

 private:
  char* data_;
  size_t size_;
};

// ---------------------------------------------------------------------------
// Figure 1: reads of allocated data, engine vs pread

struct ReadWorkload {
  std::string name;
  uint64_t block = 0;
  bool random = false;
  int threads = 1;
};

enum class Method { kPread, kEngine };

// Offsets each thread reads, in order. Sequential: the threads split the
// file into contiguous parts and go around it until `pass_bytes` are read.
// Random: 4 KiB-aligned offsets from a fixed seed.
std::vector<std::vector<uint64_t>> PlanOffsets(const ReadWorkload& w, uint64_t size, uint64_t pass_bytes) {
  std::vector<std::vector<uint64_t>> plan(static_cast<size_t>(w.threads));
  const uint64_t ops = pass_bytes / w.block;
  const uint64_t blocks = size / w.block;
  for (int t = 0; t < w.threads; ++t) {
    std::vector<uint64_t>& offsets = plan[static_cast<size_t>(t)];
    const uint64_t my_ops = ops / static_cast<uint64_t>(w.threads);
    offsets.reserve(my_ops);
    if (w.random) {
      uint64_t state = 0x5eed0000 + static_cast<uint64_t>(t);
      for (uint64_t i = 0; i < my_ops; ++i) offsets.push_back(SplitMix64(state) % blocks * w.block);
    } else {
      const uint64_t first = blocks * static_cast<uint64_t>(t) / static_cast<uint64_t>(w.threads);
      const uint64_t last = blocks * static_cast<uint64_t>(t + 1) / static_cast<uint64_t>(w.threads);
      for (uint64_t i = 0; i < my_ops; ++i) offsets.push_back((first + i % (last - first)) * w.block);
    }
  }
  return plan;
}

// One timed pass: every thread reads its offsets; wall time from the common
// start to the last thread's end.
double RunPass(Method method, int fd, Overlay* overlay, const ReadWorkload& w,
               const std::vector<std::vector<uint64_t>>& plan, std::vector<std::unique_ptr<AlignedBuffer>>& buffers) {
  std::barrier start(w.threads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < w.threads; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<uint64_t>& offsets = plan[static_cast<size_t>(t)];
      std::span<char> buf = buffers[static_cast<size_t>(t)]->span(w.block);
      start.arrive_and_wait();
      if (method == Method::kPread) {
        for (uint64_t offset : offsets) {
          ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
          if (n != static_cast<ssize_t>(buf.size())) Die("pread of the data file failed or was short");
        }
      } else {
        for (uint64_t offset : offsets) {
          Status status = overlay->Read(offset, buf);
          if (!status.ok()) Die("Overlay::Read: " + status.message());
        }
      }
    });
  }
  start.arrive_and_wait();
  Clock::time_point t0 = Clock::now();
  for (std::thread& thread : threads) thread.join();
  return Seconds(Clock::now() - t0);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct MethodResult {
  std::vector<double> seconds;  // one per repeat
  double best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double median() const { return Median(seconds); }
};

struct ReadResult {
  ReadWorkload workload;
  uint64_t bytes = 0;  // per pass
  uint64_t ops = 0;    // per pass
  MethodResult pread;
  MethodResult engine;
  // Throughput ratios engine / pread. The figure judged is the median of
  // the ratios of the pairs (pread and engine back to back): a drift of the
  // machine between pairs cancels, and one lucky pass cannot decide.
  std::vector<double> pair_ratios() const {
    std::vector<double> r;
    for (size_t i = 0; i < pread.seconds.size(); ++i) r.push_back(pread.seconds[i] / engine.seconds[i]);
    return r;
  }
  double ratio() const { return Median(pair_ratios()); }
  double ratio_best() const { return pread.best() / engine.best(); }
  bool pass() const { return ratio() >= kReadTarget; }
};

// Reads the same blocks through the engine, through pread and from the
// template, and stops if any differ: the figures compare equal work only.
void VerifySameData(int data_fd, int template_fd, Overlay* overlay, uint64_t size) {
  AlignedBuffer a(kMiB), b(kMiB), c(kMiB);
  uint64_t state = 42;
  for (int i = 0; i < 64; ++i) {
    uint64_t offset = i == 0 ? 0 : i == 1 ? size - kMiB : SplitMix64(state) % (size / 4096) * 4096;
    uint64_t n = std::min(kMiB, size - offset);
    Check(overlay->Read(offset, a.span(n)), "Overlay::Read");
    Check(corfs::PreadFull(data_fd, b.span(n), offset, "data file"), "pread");
    Check(corfs::PreadFull(template_fd, c.span(n), offset, "template"), "pread");
    if (std::memcmp(a.span(n).data(), b.span(n).data(), n) != 0 ||
        std::memcmp(a.span(n).data(), c.span(n).data(), n) != 0) {
      Die("the engine, the data file and the template disagree at offset " + std::to_string(offset));
    }
  }
}

std::vector<ReadResult> RunReadFigures(const std::string& dir, uint64_t size, int repeats) {
  const std::string template_path = dir + "/template.raw";
  const std::string overlay_path = dir + "/disk.img";

  std::fprintf(stderr, "bench: random template of %s\n", corfs::FormatSize(size).c_str());
  Clock::time_point t0 = Clock::now();
  WriteRandomFile(template_path, size);
  corfs::overlay::CreateOptions create;
  create.backing = {{template_path, "raw"}};
  Check(Overlay::Create(overlay_path, create), "Overlay::Create");
  std::unique_ptr<Overlay> overlay;
  Check(Overlay::Open(overlay_path, {}, &overlay), "Overlay::Open");
  std::fprintf(stderr, "bench: populating the overlay\n");
  Check(overlay->Populate(0, size, /*wait=*/true), "Overlay::Populate");
  Check(overlay->Flush(), "Overlay::Flush");
  if (overlay->allocated_clusters() != overlay->cluster_count()) Die("Populate left clusters unallocated");
  std::fprintf(stderr, "bench: setup took %.1f s\n", Seconds(Clock::now() - t0));

  // The data file itself (NAME.part: populated, but not standalone).
  const std::string data_path = overlay->data_path();
  UniqueFd data_fd(::open(data_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!data_fd.valid()) Die("open " + data_path + ": " + std::strerror(errno));
  UniqueFd template_fd(::open(template_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!template_fd.valid()) Die("open " + template_path + ": " + std::strerror(errno));
  VerifySameData(data_fd.get(), template_fd.get(), overlay.get(), size);
  template_fd.reset();

  std::vector<std::unique_ptr<AlignedBuffer>> buffers;
  for (int t = 0; t < 2; ++t) buffers.push_back(std::make_unique<AlignedBuffer>(kMiB));

  // Warm the page cache: the whole data file, twice (pread, then the engine).
  ReadWorkload warm{"warm", kMiB, false, 1};
  auto warm_plan = PlanOffsets(warm, size, size);
  (void)RunPass(Method::kPread, data_fd.get(), overlay.get(), warm, warm_plan, buffers);
  (void)RunPass(Method::kEngine, data_fd.get(), overlay.get(), warm, warm_plan, buffers);

  // Passes of a tenth of a second or more: sequential passes read at least
  // 4 GiB, going around the file again if it is smaller; random passes do
  // 128 Ki reads wherever they fall. Many short pairs rather than a few
  // long ones: the pairs follow the machine's drift more closely.
  const uint64_t seq_pass_bytes = std::max(size, 4 * kGiB);
  const uint64_t random_pass_bytes = uint64_t{128} * 1024 * 4096;
  const std::vector<ReadWorkload> workloads = {
      {"1 MiB sequential, 1 thread", kMiB, false, 1},
      {"1 MiB sequential, 2 threads", kMiB, false, 2},
      {"4 KiB random, 1 thread", 4096, true, 1},
      {"4 KiB random, 2 threads", 4096, true, 2},
  };
  std::vector<ReadResult> results;
  for (const ReadWorkload& w : workloads) {
    std::fprintf(stderr, "bench: %s\n", w.name.c_str());
    ReadResult r;
    r.workload = w;
    auto plan = PlanOffsets(w, size, w.random ? random_pass_bytes : seq_pass_bytes);
    for (const auto& offsets : plan) r.ops += offsets.size();
    r.bytes = r.ops * w.block;
    // Interleaved, alternating which goes first, so drift of the machine
    // (other load, frequency) falls on both alike.
    for (int i = 0; i < repeats; ++i) {
      for (int k = 0; k < 2; ++k) {
        const bool pread_turn = (k == 0) == (i % 2 == 0);
        double s =
            RunPass(pread_turn ? Method::kPread : Method::kEngine, data_fd.get(), overlay.get(), w, plan, buffers);
        (pread_turn ? r.pread : r.engine).seconds.push_back(s);
      }
    }
    results.push_back(std::move(r));
  }
  Check(overlay->Close(), "Overlay::Close");
  overlay.reset();
  fs::remove(template_path);
  fs::remove(overlay_path);
  fs::remove(corfs::overlay::PartialDataPath(overlay_path));
  fs::remove(corfs::overlay::MetadataPath(overlay_path));
  return results;
}

// ---------------------------------------------------------------------------
// Figure 2: opening a 1 TiB overlay

// Child side (--probe-open): opens the overlay once (timed, with the memory
// it adds), closes it; opens it again with the files in `evict` dropped from
// the page cache; then times `repeats` more opens. Prints one JSON line.
int ProbeOpen(const std::string& path, const std::vector<std::string>& evict, int repeats) {
  std::optional<uint64_t> rss_before = ProcStatusBytes("VmRSS");
  bool peak_reset = ResetPeakRss();
  std::unique_ptr<Overlay> overlay;
  Clock::time_point t0 = Clock::now();
  Check(Overlay::Open(path, {}, &overlay), "Overlay::Open");
  double first = Seconds(Clock::now() - t0);
  std::optional<uint64_t> rss_after = ProcStatusBytes("VmRSS");
  std::optional<uint64_t> peak = ProcStatusBytes("VmHWM");

  Json out;
  out["first_open_ms"] = first * 1000;
  if (rss_before && rss_after) out["rss_added_bytes"] = *rss_after > *rss_before ? *rss_after - *rss_before : 0;
  if (rss_before && peak && peak_reset) out["peak_rss_added_bytes"] = *peak > *rss_before ? *peak - *rss_before : 0;
  out["clusters"] = overlay->cluster_count();
  out["allocated_clusters"] = overlay->allocated_clusters();
  Check(overlay->Close(), "Overlay::Close");
  overlay.reset();

  // Files evicted again, the process warm: what the disk reads cost alone.
  for (const std::string& p : evict) EvictFromCache(p);
  t0 = Clock::now();
  Check(Overlay::Open(path, {}, &overlay), "Overlay::Open");
  out["cold_files_open_ms"] = Seconds(Clock::now() - t0) * 1000;
  Check(overlay->Close(), "Overlay::Close");
  overlay.reset();

  std::vector<double> again;
  for (int i = 0; i < repeats; ++i) {
    t0 = Clock::now();
    Check(Overlay::Open(path, {}, &overlay), "Overlay::Open");
    again.push_back(Seconds(Clock::now() - t0) * 1000);
    Check(overlay->Close(), "Overlay::Close");
    overlay.reset();
  }
  std::sort(again.begin(), again.end());
  if (!again.empty()) out["warm_open_ms_median"] = again[again.size() / 2];
  if (!again.empty()) out["warm_open_ms_best"] = again.front();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// Runs this program with `args` and returns what it printed.
std::string RunSelf(const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) Die(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) Die(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    static char self[] = "corfs_engine_bench";
    argv.push_back(self);
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char chunk[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], chunk, sizeof chunk)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(chunk, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) Die("the open probe failed");
  return out;
}

// NOLINTNEXTLINE(bugprone-exception-escape): a plain aggregate; the check misreads its Json member
struct OpenResult {
  std::string name;
  uint64_t size = 0;
  Json probe;  // what the child measured
  double setup_seconds = 0;
  double first_ms() const { return probe.value("first_open_ms", 0.0); }
  uint64_t rss_added() const { return probe.value("rss_added_bytes", uint64_t{0}); }
  bool time_pass() const { return first_ms() < kOpenTimeTargetMs; }
  bool rss_pass() const { return probe.contains("rss_added_bytes") && rss_added() < kOpenRssTarget; }
  bool pass() const { return time_pass() && rss_pass(); }
};

std::vector<OpenResult> RunOpenFigures(const std::string& dir, uint64_t size) {
  const std::string template_path = dir + "/big-template.raw";
  const std::string overlay_path = dir + "/big.img";
  std::fprintf(stderr, "bench: sparse template and overlay of %s\n", corfs::FormatSize(size).c_str());
  MakeSparseFile(template_path, size);
  corfs::overlay::CreateOptions create;
  create.backing = {{template_path, "raw"}};
  Check(Overlay::Create(overlay_path, create), "Overlay::Create");

  // Unfinished, so its data file is NAME.part.
  const std::string data_path = corfs::overlay::PartialDataPath(overlay_path);
  auto probe = [&](const std::string& name, double setup_seconds) {
    for (const std::string& p : {template_path, data_path, corfs::overlay::MetadataPath(overlay_path)}) {
      EvictFromCache(p);
    }
    OpenResult r;
    r.name = name;
    r.size = size;
    r.setup_seconds = setup_seconds;
    r.probe =
        Json::parse(RunSelf({"--probe-open", overlay_path, "--probe-repeats", "5", "--probe-evict", template_path,
                             "--probe-evict", data_path, "--probe-evict", corfs::overlay::MetadataPath(overlay_path)}));
    return r;
  };

  std::vector<OpenResult> results;
  results.push_back(probe(corfs::FormatSize(size) + ", empty bitmap", 0));

  // Partly set: the first 1 MiB of every 4 MiB (a quarter of the clusters,
  // every bitmap page touched). Over a sparse template, Populate records the
  // clusters as holes without copying data.
  std::fprintf(stderr, "bench: allocating a quarter of the clusters\n");
  Clock::time_point t0 = Clock::now();
  {
    std::unique_ptr<Overlay> overlay;
    Check(Overlay::Open(overlay_path, {}, &overlay), "Overlay::Open");
    for (uint64_t at = 0; at < size; at += 4 * kMiB) {
      Check(overlay->Populate(at, std::min(kMiB, size - at), /*wait=*/true), "Overlay::Populate");
    }
    Check(overlay->Close(), "Overlay::Close");
  }
  results.push_back(probe(corfs::FormatSize(size) + ", 25% of the bitmap set", Seconds(Clock::now() - t0)));

  fs::remove(template_path);
  fs::remove(overlay_path);
  fs::remove(corfs::overlay::PartialDataPath(overlay_path));
  fs::remove(corfs::overlay::MetadataPath(overlay_path));
  return results;
}

// ---------------------------------------------------------------------------
// Output

std::string Mbps(uint64_t bytes, double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f", static_cast<double>(bytes) / seconds / 1e6);
  return text;
}

std::string Iops(uint64_t ops, double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f", static_cast<double>(ops) / seconds);
  return text;
}

std::string Ms(const Json& probe, const char* key) {
  if (!probe.contains(key)) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f ms", probe[key].get<double>());
  return text;
}

void PrintTables(const std::vector<ReadResult>& reads, const std::vector<OpenResult>& opens, uint64_t size,
                 int repeats) {
  if (!reads.empty()) {
    std::printf("Reads of allocated data from the page cache, Overlay::Read vs pread of its data file\n");
    std::printf(
        "(%s overlay; %d pairs of passes, pread and engine back to back; medians; MB = 10^6 bytes;\n"
        "ratio = median of the pairs' engine/pread, judged against the target; best = best engine / best pread)\n\n",
        corfs::FormatSize(size).c_str(), repeats);
    std::printf("%-28s %10s %10s %11s %10s %7s %7s %7s %s\n", "figure", "pread MB/s", "pread IOPS", "engine MB/s",
                "eng. IOPS", "ratio", "best", "target", "result");
    for (const ReadResult& r : reads) {
      std::printf("%-28s %10s %10s %11s %10s %6.3fx %6.3fx %7s %s\n", r.workload.name.c_str(),
                  Mbps(r.bytes, r.pread.median()).c_str(), Iops(r.ops, r.pread.median()).c_str(),
                  Mbps(r.bytes, r.engine.median()).c_str(), Iops(r.ops, r.engine.median()).c_str(), r.ratio(),
                  r.ratio_best(), ">=0.9x", r.pass() ? "PASS" : "FAIL");
    }
  }
  if (!opens.empty()) {
    if (!reads.empty()) std::printf("\n");
    std::printf("Overlay::Open (64 KiB clusters). first: fresh process, files evicted from the page cache;\n");
    std::printf(
        "cold files: same process again, files evicted; warm: median of 5. Targets: first < 50 ms, RSS < 64 MiB\n\n");
    std::printf("%-30s %10s %11s %9s %10s %11s %s\n", "figure", "first", "cold files", "warm", "RSS added",
                "peak added", "result");
    for (const OpenResult& r : opens) {
      std::string peak = r.probe.contains("peak_rss_added_bytes")
                             ? corfs::FormatSize(r.probe["peak_rss_added_bytes"].get<uint64_t>())
                             : "n/a";
      const char* result = r.pass()                          ? "PASS"
                           : !r.time_pass() && !r.rss_pass() ? "FAIL (both)"
                           : !r.time_pass()                  ? "FAIL (time)"
                                                             : "FAIL (memory)";
      std::printf("%-30s %10s %11s %9s %10s %11s %s\n", r.name.c_str(), Ms(r.probe, "first_open_ms").c_str(),
                  Ms(r.probe, "cold_files_open_ms").c_str(), Ms(r.probe, "warm_open_ms_median").c_str(),
                  corfs::FormatSize(r.rss_added()).c_str(), peak.c_str(), result);
    }
  }
}

Json ToJson(const std::vector<ReadResult>& reads, const std::vector<OpenResult>& opens, uint64_t size, int repeats,
            bool all_pass) {
  Json out;
  out["tool"] = "corfs_engine_bench";
  out["size_bytes"] = size;
  out["repeats"] = repeats;
  out["read"] = Json::array();
  for (const ReadResult& r : reads) {
    auto method = [&](const MethodResult& m) {
      return Json{{"best_mb_per_s", static_cast<double>(r.bytes) / m.best() / 1e6},
                  {"best_iops", static_cast<double>(r.ops) / m.best()},
                  {"median_mb_per_s", static_cast<double>(r.bytes) / m.median() / 1e6},
                  {"median_iops", static_cast<double>(r.ops) / m.median()},
                  {"seconds", m.seconds}};
    };
    out["read"].push_back({{"figure", r.workload.name},
                           {"block_bytes", r.workload.block},
                           {"pattern", r.workload.random ? "random" : "sequential"},
                           {"threads", r.workload.threads},
                           {"bytes_per_pass", r.bytes},
                           {"ops_per_pass", r.ops},
                           {"pread", method(r.pread)},
                           {"engine", method(r.engine)},
                           {"ratio", r.ratio()},
                           {"pair_ratios", r.pair_ratios()},
                           {"ratio_best", r.ratio_best()},
                           {"target_ratio", kReadTarget},
                           {"pass", r.pass()}});
  }
  out["open"] = Json::array();
  for (const OpenResult& r : opens) {
    Json o = r.probe;
    o["figure"] = r.name;
    o["size_bytes"] = r.size;
    o["cluster_bytes"] = corfs::overlay::kDefaultClusterSize;
    o["target_open_ms"] = kOpenTimeTargetMs;
    o["target_rss_added_bytes"] = kOpenRssTarget;
    o["setup_seconds"] = r.setup_seconds;
    o["pass"] = r.pass();
    out["open"].push_back(o);
  }
  out["all_pass"] = all_pass;
  return out;
}

}  // namespace

// NOLINTNEXTLINE(bugprone-exception-escape): a benchmark may end on an exception; the run is then void anyway
int main(int argc, char** argv) {
  CLI::App app{
      "corfs_engine_bench: the overlay engine's read speed against pread, and the cost of opening a 1 TiB overlay"};
  std::string size_text = "1G";
  std::string open_size_text = "1T";
  std::string dir;
  std::string json_path;
  int repeats = 16;
  bool keep = false;
  std::string probe_path;
  int probe_repeats = 5;
  app.add_option("--size", size_text, "size of the random template for the read figures (e.g. 256M, 1G)")
      ->capture_default_str();
  app.add_option("--open-size", open_size_text, "size of the sparse overlay for the open figures")
      ->capture_default_str();
  app.add_option("--repeats", repeats,
                 "pairs of timed passes (pread, engine) per read figure; an even number balances which goes first")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--dir", dir, "folder for the work files (a temporary folder is made inside it; default /tmp)");
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  app.add_flag("--keep", keep, "keep the work folder");
  app.add_option("--probe-open", probe_path, "(internal) open this overlay and print what it cost")->group("");
  app.add_option("--probe-repeats", probe_repeats, "(internal)")->group("");
  std::vector<std::string> probe_evict;
  app.add_option("--probe-evict", probe_evict, "(internal)")->group("");
  bool no_reads = false, no_open = false;
  app.add_flag("--no-reads", no_reads, "skip the read figures");
  app.add_flag("--no-open", no_open, "skip the open figures");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!probe_path.empty()) return ProbeOpen(probe_path, probe_evict, probe_repeats);

  uint64_t size = 0, open_size = 0;
  Check(corfs::ParseSize(size_text, &size), "--size");
  Check(corfs::ParseSize(open_size_text, &open_size), "--open-size");
  if (size < 16 * kMiB || size % kMiB != 0) Die("--size must be a multiple of 1 MiB, at least 16 MiB");
  if (open_size == 0) Die("--open-size must not be zero");

  std::string parent = dir.empty() ? "/tmp" : dir;
  std::string pattern = parent + "/corfs-engine-bench.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) Die("make a folder in " + parent + ": " + std::strerror(errno));
  const std::string work = pattern;
  std::fprintf(stderr, "bench: working in %s\n", work.c_str());
  Clock::time_point t0 = Clock::now();

  std::vector<OpenResult> opens;
  if (!no_open) opens = RunOpenFigures(work, open_size);
  std::vector<ReadResult> reads;
  if (!no_reads) reads = RunReadFigures(work, size, repeats);

  bool all_pass = true;
  for (const ReadResult& r : reads) all_pass &= r.pass();
  for (const OpenResult& r : opens) all_pass &= r.pass();
  PrintTables(reads, opens, size, repeats);
  std::printf("\n%s (%.0f s)\n", all_pass ? "all targets met" : "some targets missed", Seconds(Clock::now() - t0));

  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << ToJson(reads, opens, size, repeats, all_pass).dump(2) << "\n";
    if (!out) Die("write " + json_path);
  }
  if (keep) {
    std::fprintf(stderr, "bench: kept %s\n", work.c_str());
  } else {
    std::error_code ec;
    fs::remove_all(work, ec);
  }
  return all_pass ? 0 : 1;
}
