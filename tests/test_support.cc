#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/file_io.h"
#include "common/unique_fd.h"

extern char** environ;

namespace corfs::testing {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Files

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/corfs-test-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp %s: %s\n", pattern.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return "";
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void PatchFile(const std::string& path, uint64_t offset, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << path << ": " << std::strerror(errno);
  Status written = PwriteFull(fd.get(), data, offset, path);
  ASSERT_TRUE(written.ok()) << written.message();
}

void TruncateFile(const std::string& path, uint64_t size) {
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0) << path << ": " << std::strerror(errno);
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(path)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

FilesSnapshot::FilesSnapshot(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) entries_.push_back(Take(path));
}

FilesSnapshot::Entry FilesSnapshot::Take(const std::string& path) {
  Entry entry;
  entry.path = path;
  entry.exists = FileExists(path);
  if (entry.exists) entry.bytes = ReadFileBytes(path);
  return entry;
}

std::string FilesSnapshot::Differences() const {
  std::string out;
  for (const Entry& before : entries_) {
    Entry now = Take(before.path);
    if (now.exists != before.exists) {
      out += before.path + (before.exists ? " was removed; " : " appeared; ");
    } else if (now.bytes.size() != before.bytes.size()) {
      out += before.path + " changed size from " + std::to_string(before.bytes.size()) + " to " +
             std::to_string(now.bytes.size()) + "; ";
    } else if (now.bytes != before.bytes) {
      out += before.path + " changed content; ";
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Random content

uint64_t TestSeed() {
  if (const char* env = std::getenv("CORFS_TEST_SEED"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 0);
  }
  return std::random_device{}() * uint64_t{0x9e3779b97f4a7c15} ^ std::random_device{}();
}

uint64_t RandomIn(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

void FillSeeded(uint64_t seed, std::span<char> buf) {
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= buf.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(buf.data() + i, &v, 8);
  }
  for (; i < buf.size(); ++i) buf[i] = static_cast<char>(rng());
}

SparseLayer MakeRandomSparseLayer(const std::string& path, uint64_t size, std::mt19937_64& rng, double density,
                                  double zero_fraction) {
  constexpr uint64_t kBlock = 4096;
  SparseLayer layer;
  layer.path = path;
  layer.size = size;
  layer.content.assign(size, '\0');
  const uint64_t blocks = (size + kBlock - 1) / kBlock;
  layer.allocated_blocks.assign(blocks, false);

  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    ADD_FAILURE() << "create " << path << ": " << std::strerror(errno);
    return layer;
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) ADD_FAILURE() << "size " << path;

  // Runs of 1..8 blocks (mean 4.5) each followed by a hole block; a run
  // starts at a free block with probability p, which gives about
  // 4.5p / (1 + 4.5p) = `density` of the blocks allocated.
  std::bernoulli_distribution starts(std::clamp(density / (4.5 * (1 - density) + 1e-9), 0.0, 1.0));
  std::bernoulli_distribution zero(zero_fraction);
  for (uint64_t b = 0; b < blocks;) {
    if (!starts(rng)) {
      ++b;
      continue;
    }
    uint64_t run = std::min<uint64_t>(RandomIn(rng, 1, 8), blocks - b);
    for (uint64_t i = b; i < b + run; ++i) {
      const uint64_t offset = i * kBlock;
      const uint64_t length = std::min(kBlock, size - offset);
      std::string bytes = zero(rng) ? std::string(length, '\0') : RandomBytes(rng, length);
      Status written = PwriteFull(fd.get(), bytes, offset, path);
      if (!written.ok()) ADD_FAILURE() << written.message();
      std::memcpy(layer.content.data() + offset, bytes.data(), length);
      layer.allocated_blocks[i] = true;
    }
    b += run + (density < 1.0 ? 1 : 0);  // keep a hole between runs, unless every block is wanted
  }
  if (::fsync(fd.get()) != 0) ADD_FAILURE() << "fsync " << path;
  return layer;
}

std::string ExpectedChainContent(const std::vector<SparseLayer>& layers, uint64_t disk_size) {
  std::string out(disk_size, '\0');
  for (uint64_t block = 0; block * 4096 < disk_size; ++block) {
    const uint64_t start = block * 4096;
    uint64_t visible = disk_size;
    for (const SparseLayer& layer : layers) {
      visible = std::min(visible, layer.size);
      if (start >= visible) break;  // past this layer's end: zeros
      if (layer.Allocated(start)) {
        uint64_t end = std::min(start + 4096, visible);
        std::memcpy(out.data() + start, layer.content.data() + start, end - start);
        break;
      }
    }
  }
  return out;
}

bool ChainHoldsData(const std::vector<SparseLayer>& layers, uint64_t disk_size, uint64_t offset) {
  uint64_t visible = disk_size;
  for (const SparseLayer& layer : layers) {
    visible = std::min(visible, layer.size);
    if (offset >= visible) return false;
    if (layer.Allocated(offset)) return true;
  }
  return false;
}

std::string FirstDifference(std::string_view actual, std::string_view expected, uint64_t base) {
  if (actual == expected) return "";
  if (actual.size() != expected.size()) {
    return "sizes differ: " + std::to_string(actual.size()) + " vs " + std::to_string(expected.size());
  }
  size_t i = 0;
  while (actual[i] == expected[i]) ++i;
  size_t j = i;
  while (j < actual.size() && actual[j] != expected[j]) ++j;
  char text[160];
  std::snprintf(text, sizeof text, "first difference at byte %" PRIu64 " (run of %zu bytes): got 0x%02x, want 0x%02x",
                uint64_t{base + i}, j - i, static_cast<unsigned char>(actual[i]),
                static_cast<unsigned char>(expected[i]));
  return text;
}

// ---------------------------------------------------------------------------
// Overlays

Status ReadWholeDisk(overlay::Overlay& image, std::string* out, uint64_t chunk) {
  out->assign(image.size(), '\x5a');
  if (chunk == 0) chunk = image.size();
  for (uint64_t at = 0; at < image.size(); at += chunk) {
    uint64_t n = std::min(chunk, image.size() - at);
    CORFS_RETURN_IF_ERROR(image.Read(at, std::span(out->data() + at, n)));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// DriverControl and TestDriver

void DriverControl::ResetCounts() {
  std::lock_guard lock(mutex_);
  reads_.clear();
}

std::vector<DriverControl::ReadRecord> DriverControl::Reads() const {
  std::lock_guard lock(mutex_);
  return reads_;
}

uint64_t DriverControl::ReadsOverlapping(uint64_t offset, uint64_t length) const {
  std::lock_guard lock(mutex_);
  return std::count_if(reads_.begin(), reads_.end(),
                       [&](const ReadRecord& r) { return Overlaps(r.offset, r.length, offset, length); });
}

uint64_t DriverControl::BytesReadIn(uint64_t offset, uint64_t length) const {
  std::lock_guard lock(mutex_);
  uint64_t total = 0;
  for (const ReadRecord& r : reads_) {
    uint64_t start = std::max(r.offset, offset);
    uint64_t end = std::min(r.offset + r.length, offset + length);
    if (start < end) total += end - start;
  }
  return total;
}

void DriverControl::SetSlowReads(uint64_t offset, uint64_t length, std::chrono::microseconds delay) {
  std::lock_guard lock(mutex_);
  slow_offset_ = offset;
  slow_length_ = length;
  slow_delay_ = delay;
}

void DriverControl::ClearSlowReads() { SetSlowReads(0, 0, std::chrono::microseconds(0)); }

void DriverControl::SetFailingReads(uint64_t offset, uint64_t length, int error) {
  std::lock_guard lock(mutex_);
  fail_offset_ = offset;
  fail_length_ = length;
  fail_error_ = error;
}

void DriverControl::ClearFailingReads() { SetFailingReads(0, 0, 0); }

bool DriverControl::StartedLocked(uint64_t offset, uint64_t length) const {
  return std::any_of(reads_.begin(), reads_.end(),
                     [&](const ReadRecord& r) { return Overlaps(r.offset, r.length, offset, length); });
}

bool DriverControl::WaitForReadStart(uint64_t offset, uint64_t length, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return read_started_.wait_for(lock, timeout, [&] { return StartedLocked(offset, length); });
}

Status DriverControl::BeforeRead(const std::string& path, uint64_t offset, uint64_t length) {
  std::chrono::microseconds delay{0};
  {
    std::lock_guard lock(mutex_);
    reads_.push_back({path, offset, length});
    if (fail_error_ != 0 && Overlaps(offset, length, fail_offset_, fail_length_)) {
      return Status::Error(fail_error_, "injected read failure at " + std::to_string(offset) + " of " + path);
    }
    if (Overlaps(offset, length, slow_offset_, slow_length_)) delay = slow_delay_;
  }
  read_started_.notify_all();
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  return Status::Ok();
}

Status TestDriver::Read(uint64_t offset, std::span<char> buf) {
  CORFS_RETURN_IF_ERROR(control_->BeforeRead(path(), offset, buf.size()));
  return inner_->Read(offset, buf);
}

overlay::ImageOpener TestOpener(const std::shared_ptr<DriverControl>& control) {
  return [control](const std::string& path, const std::string& format,
                   std::unique_ptr<overlay::BlockDriver>* out) -> Status {
    std::unique_ptr<overlay::BlockDriver> inner;
    CORFS_RETURN_IF_ERROR(overlay::OpenImage(path, format, &inner));
    *out = std::make_unique<TestDriver>(std::move(inner), control);
    return Status::Ok();
  };
}

// ---------------------------------------------------------------------------
// Running a program

CommandResult RunCommand(const std::vector<std::string>& argv) {
  CommandResult result;
  TempDir scratch;
  const std::string out_path = scratch.File("stdout");
  const std::string err_path = scratch.File("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << std::strerror(spawned);
    return result;
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  result.out = ReadFileBytes(out_path);
  result.err = ReadFileBytes(err_path);
  return result;
}

}  // namespace corfs::testing
