#include "overlay/image_identity.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include <tbb/parallel_for.h>

#include "common/hex.h"
#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {
constexpr uint64_t kEdgeBytes = 64 * 1024;
constexpr uint64_t kSampleBytes = 4096;
constexpr uint64_t kSamples = 64;

// The ranges the fingerprint hashes, in order: the first 64 KiB, 64 samples
// spread over the image, the last 64 KiB (clipped to the image).
std::vector<std::pair<uint64_t, uint64_t>> SampleRanges(uint64_t size) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  auto add = [&](uint64_t offset, uint64_t length) {
    length = std::min(length, size - std::min(size, offset));
    if (length > 0) ranges.emplace_back(offset, length);
  };
  add(0, kEdgeBytes);
  for (uint64_t i = 1; i <= kSamples; ++i) add(size / (kSamples + 1) * i / kSampleBytes * kSampleBytes, kSampleBytes);
  if (size > kEdgeBytes) add(size - kEdgeBytes, kEdgeBytes);
  return ranges;
}

Status SampledFingerprint(BlockDriver& image, uint64_t* out) {
  const uint64_t size = image.size();
  const std::vector<std::pair<uint64_t, uint64_t>> ranges = SampleRanges(size);
  std::vector<uint64_t> at(ranges.size() + 1, 0);
  for (size_t i = 0; i < ranges.size(); ++i) at[i + 1] = at[i] + ranges[i].second;
  // The samples are read at once (drivers are thread-safe): from a server
  // each read is a round trip, and 66 of them one after another would
  // make every open of an overlay over it wait that many.
  std::vector<char> buf(at.back());
  std::vector<Status> read(ranges.size());
  tbb::parallel_for(size_t{0}, ranges.size(), [&](size_t i) {
    read[i] = image.Read(ranges[i].first, std::span<char>(buf.data() + at[i], ranges[i].second));
  });
  for (const Status& status : read) CORFS_RETURN_IF_ERROR(status);
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return Status::Error(ENOMEM, "out of memory hashing " + image.path());
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, &size, sizeof size);
  XXH3_64bits_update(state, buf.data(), buf.size());
  *out = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return Status::Ok();
}

// "2025-01-31 12:00:00.123456789 UTC"
std::string FormatTime(int64_t ns) {
  const time_t seconds = static_cast<time_t>(ns / 1'000'000'000);
  struct tm utc {};
  char date[40] = "?";
  if (gmtime_r(&seconds, &utc) != nullptr) std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &utc);
  char text[80];
  std::snprintf(text, sizeof text, "%s.%09" PRId64 " UTC", date, ns % 1'000'000'000);
  return text;
}

std::string ModifiedWarning(const std::string& path, const FileStamp& found, const FileStamp& recorded) {
  const bool same_file = found.device == recorded.device && found.inode == recorded.inode;
  return "backing image '" + path + "' was modified after the overlay was made (mtime " + FormatTime(found.mtime_ns) +
         ", recorded " + FormatTime(recorded.mtime_ns) + (same_file ? ", same file" : ", a different file") +
         "): its size and sampled fingerprint match, but the rest of its content is not verified, and if it "
         "changed the disk mixes old and new template data (an overlay made with `corfs create --verify-backing "
         "full` verifies the whole content)";
}

// "etag" of "etag:\"abc\"".
std::string_view TagKind(std::string_view tag) { return tag.substr(0, tag.find(':')); }

// A server's image whose version tag changed since the overlay was made is
// another image, as one of another size is. Names are URIs without
// credentials (the only form corfs keeps).
Status CheckVersionTag(const std::string& found, const std::string& recorded, const std::string& path,
                       const std::string& recorded_path, std::string* warning) {
  if (recorded.empty() || found == recorded) return Status::Ok();
  if (!found.empty() && TagKind(found) == TagKind(recorded)) {
    return Status::Invalid("backing image '" + path +
                           "' changed on its server after the overlay was made: its version is " + found +
                           ", the overlay recorded " + recorded + " for '" + recorded_path + "'");
  }
  *warning = "backing image '" + path + "' no longer has the version tag the overlay recorded (" + recorded +
             (found.empty() ? ", now none" : ", now " + found) +
             "): its size and sampled fingerprint match, but corfs cannot tell whether the rest changed";
  return Status::Ok();
}

}  // namespace

std::string_view VerifyBackingName(VerifyBacking mode) { return kVerifyBackingNames[static_cast<int>(mode)]; }

bool ParseVerifyBacking(std::string_view name, VerifyBacking* out) {
  for (VerifyBacking mode : {VerifyBacking::kSampled, VerifyBacking::kFull}) {
    if (name == VerifyBackingName(mode)) {
      *out = mode;
      return true;
    }
  }
  return false;
}

std::string ImageIdentity::ToString() const {
  return "size " + std::to_string(size) + ", fingerprint " + Hex16(fingerprint);
}

Status ComputeIdentity(BlockDriver& driver, ImageIdentity* out) {
  BlockDriver& image = driver.identity_source();
  ImageIdentity identity;
  identity.size = image.size();
  CORFS_RETURN_IF_ERROR(SampledFingerprint(image, &identity.fingerprint));
  identity.version_tag = image.version_tag();
  struct stat st {};
  if (!IsUri(image.path()) && ::stat(image.path().c_str(), &st) == 0) {
    identity.stamp = FileStamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                               int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
  }
  *out = identity;
  return Status::Ok();
}

Status VerifyIdentity(BlockDriver& image, const std::string& path, const ImageIdentity& recorded,
                      const std::string& recorded_path, VerifyBacking mode, std::string* warning) {
  warning->clear();
  ImageIdentity found;
  CORFS_RETURN_IF_ERROR(ComputeIdentity(image, &found));
  if (!found.SameSamples(recorded)) {
    return Status::Invalid("backing image '" + path + "' (" + found.ToString() +
                           ") is not the image this overlay was made over: '" + recorded_path + "' (" +
                           recorded.ToString() + ")");
  }
  CORFS_RETURN_IF_ERROR(CheckVersionTag(found.version_tag, recorded.version_tag, path, recorded_path, warning));
  if (mode == VerifyBacking::kFull && !recorded.content) {
    return Status::Invalid("full verification of backing image '" + path +
                           "' was asked for, but the overlay records no content hash of it (it was made without "
                           "`corfs create --verify-backing full`)");
  }
  const bool modified = recorded.stamp && found.stamp && found.stamp->mtime_ns != recorded.stamp->mtime_ns;
  if (mode == VerifyBacking::kFull || (modified && recorded.content)) {
    ContentHash hash;
    CORFS_RETURN_IF_ERROR(ComputeContentHash(image, &hash));
    if (hash != *recorded.content) {
      return Status::Invalid("backing image '" + path + "' changed after the overlay was made: its content hash is " +
                             hash.ToString() + ", the overlay recorded " + recorded.content->ToString() + " for '" +
                             recorded_path + "' (same size and sampled fingerprint: rewritten in place?)");
    }
    return Status::Ok();
  }
  if (modified) *warning = ModifiedWarning(path, *found.stamp, *recorded.stamp);
  return Status::Ok();
}

}  // namespace corfs::overlay
