#include "overlay/persistent_bitmaps.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "common/file_io.h"
#include "overlay/overlay.h"

namespace corfs::overlay {

namespace {

constexpr char kMagic[8] = {'C', 'O', 'R', 'F', 'S', 'B', 'M', 'P'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kFileInUse = 1;           // file flags: a mount has it open (see the crash rule)
constexpr uint32_t kBitmapInconsistent = 1;  // bitmap flags
constexpr size_t kMaxNameLength = 1023;      // QEMU's BLOCK_DIRTY_BITMAP_MAX_NAME_SIZE

void PutInt(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutString(std::string* out, std::string_view text) {
  PutInt(out, text.size(), 4);
  out->append(text);
}

// Reads the file's fields in order; any read past the end fails the whole.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool Int(int bytes, uint64_t* value) {
    if (bytes_.size() - pos_ < static_cast<size_t>(bytes)) return false;
    *value = 0;
    for (int i = 0; i < bytes; ++i) *value |= uint64_t{static_cast<unsigned char>(bytes_[pos_ + i])} << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return true;
  }
  bool String(std::string* text, uint64_t max) {
    uint64_t length = 0;
    if (!Int(4, &length) || length > max || bytes_.size() - pos_ < length) return false;
    text->assign(bytes_.substr(pos_, length));
    pos_ += length;
    return true;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

Status CheckGranularity(uint64_t granularity) {
  if (granularity < PersistentBitmaps::kMinGranularity || granularity > PersistentBitmaps::kMaxGranularity ||
      !std::has_single_bit(granularity)) {
    return Status::Invalid("granularity " + std::to_string(granularity) +
                           " must be a power of two between 512 and 2147483648");
  }
  return Status::Ok();
}

}  // namespace

std::string BitmapsPath(const std::string& overlay_path) { return overlay_path + ".bitmaps"; }

PersistentBitmaps::PersistentBitmaps(Overlay& overlay, std::string path, uint64_t disk_size, bool read_only)
    : overlay_(overlay), path_(std::move(path)), disk_size_(disk_size), read_only_(read_only) {}

PersistentBitmaps::~PersistentBitmaps() { (void)Close(); }

Status PersistentBitmaps::Open(Overlay& overlay, std::shared_ptr<PersistentBitmaps>* out) {
  std::shared_ptr<PersistentBitmaps> store(new PersistentBitmaps(overlay, BitmapsPath(overlay.path()), overlay.size(),
                                                                 overlay.read_only()));
  std::error_code ec;
  if (std::filesystem::exists(store->path_, ec)) {
    std::ifstream in(store->path_, std::ios::binary);
    std::stringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) return Status::FromErrno("cannot read " + store->path_);
    bool in_use = false;
    CORFS_RETURN_IF_ERROR(Decode(text.str(), store->path_, store->disk_size_, &in_use, &store->bitmaps_));
    if (in_use) {
      // The last mount did not close: writes it saw may be missing.
      for (auto& [name, entry] : store->bitmaps_) entry.inconsistent = true;
    }
  } else if (ec) {
    return Status::Error(ec.value(), "cannot look for " + store->path_ + ": " + ec.message());
  }
  if (!store->read_only_ && !store->bitmaps_.empty()) {
    {
      std::unique_lock lock(store->mutex_);
      // Durably "in use" before any write is recorded (the crash rule).
      CORFS_RETURN_IF_ERROR(store->SaveLocked(/*in_use=*/true));
    }
    store->UpdateHook();
  }
  *out = std::move(store);
  return Status::Ok();
}

Status PersistentBitmaps::Decode(const std::string& bytes, const std::string& path, uint64_t disk_size, bool* in_use,
                                 std::map<std::string, Entry>* out) {
  Status corrupt = Status::Corrupt(path +
                                   " is not a corfs bitmap file or is damaged (remove it to drop the "
                                   "bitmaps; the next backup must then be a full one)");
  if (bytes.size() < sizeof kMagic + 8 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return corrupt;
  const std::string_view summed(bytes.data(), bytes.size() - 8);
  Reader tail(std::string_view(bytes).substr(bytes.size() - 8));
  uint64_t checksum = 0;
  tail.Int(8, &checksum);
  if (XXH3_64bits(summed.data(), summed.size()) != checksum) return corrupt;
  Reader r(summed.substr(sizeof kMagic));
  uint64_t version = 0, flags = 0, size = 0, count = 0;
  if (!r.Int(4, &version) || !r.Int(4, &flags) || !r.Int(8, &size) || !r.Int(4, &count)) return corrupt;
  if (version != kVersion) {
    return Status::Invalid(path + " has bitmap file version " + std::to_string(version) + "; this corfs reads " +
                           std::to_string(kVersion));
  }
  *in_use = (flags & kFileInUse) != 0;
  for (uint64_t i = 0; i < count; ++i) {
    std::string name, data;
    uint64_t granularity = 0, bitmap_flags = 0;
    Entry entry;
    if (!r.String(&name, kMaxNameLength) || !r.Int(8, &granularity) || !r.Int(4, &bitmap_flags) ||
        !r.String(&entry.last_target, 1 << 16) || !r.String(&data, bytes.size())) {
      return corrupt;
    }
    if (!CheckGranularity(granularity).ok()) return corrupt;
    entry.inconsistent = (bitmap_flags & kBitmapInconsistent) != 0;
    entry.bits = std::make_unique<DirtyBitmap>(disk_size, granularity);
    // A disk resized without the bitmaps (offline) leaves bits of another
    // size: they say nothing about this disk.
    if (size != disk_size || !entry.bits->Deserialize(data)) entry.inconsistent = true;
    (*out)[name] = std::move(entry);
  }
  if (!r.done()) return corrupt;
  return Status::Ok();
}

std::string PersistentBitmaps::EncodeLocked(bool in_use) const {
  std::string out(kMagic, sizeof kMagic);
  PutInt(&out, kVersion, 4);
  PutInt(&out, in_use ? kFileInUse : 0, 4);
  PutInt(&out, disk_size_, 8);
  uint64_t count = 0;
  for (const auto& [name, entry] : bitmaps_) count += entry.persistent ? 1 : 0;
  PutInt(&out, count, 4);
  for (const auto& [name, entry] : bitmaps_) {
    if (!entry.persistent) continue;
    PutString(&out, name);
    PutInt(&out, entry.bits->granularity(), 8);
    PutInt(&out, entry.inconsistent ? kBitmapInconsistent : 0, 4);
    PutString(&out, entry.last_target);
    const std::string bits = entry.bits->Serialize();
    PutInt(&out, bits.size(), 4);
    out.append(bits);
  }
  PutInt(&out, XXH3_64bits(out.data(), out.size()), 8);
  return out;
}

Status PersistentBitmaps::SaveLocked(bool in_use) {
  if (read_only_) return Status::Ok();
  bool any = false;
  for (const auto& [name, entry] : bitmaps_) any |= entry.persistent;
  if (!any) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    if (ec) return Status::Error(ec.value(), "cannot remove " + path_ + ": " + ec.message());
    return Status::Ok();
  }
  return ReplaceFileAtomically(path_, EncodeLocked(in_use));
}

void PersistentBitmaps::UpdateHook() {
  bool want = false;
  {
    std::shared_lock lock(mutex_);
    want = !bitmaps_.empty() && !closed_ && !read_only_;
  }
  if (want == hook_installed_) return;
  if (want) {
    overlay_.AddWriteHook(shared_from_this());
  } else {
    overlay_.RemoveWriteHook(this);
  }
  hook_installed_ = want;
}

Status PersistentBitmaps::Add(const std::string& name, uint64_t granularity, bool persistent) {
  if (name.empty()) return Status::Invalid("a bitmap needs a name");
  if (name.size() > kMaxNameLength) return Status::Invalid("bitmap name is longer than 1023 bytes");
  if (granularity == 0) granularity = std::max<uint64_t>(overlay_.cluster_size(), kMinGranularity);
  CORFS_RETURN_IF_ERROR(CheckGranularity(granularity));
  if (read_only_) return Status::Error(EROFS, overlay_.path() + " is read-only: it records no writes");
  std::lock_guard hook_lock(hook_mutex_);
  Entry entry;
  entry.bits = std::make_unique<DirtyBitmap>(disk_size_, granularity);
  entry.persistent = persistent;
  {
    std::unique_lock lock(mutex_);
    if (closed_) return Status::Error(EBADF, "the image is closing");
    if (bitmaps_.count(name) != 0) return Status::Error(EEXIST, "Bitmap already exists: " + name);
    bitmaps_[name] = std::move(entry);
    Status saved = SaveLocked(/*in_use=*/true);
    if (!saved.ok()) {
      bitmaps_.erase(name);
      return saved;
    }
  }
  // A new bitmap marks the writes from here on; the point it starts at is
  // fixed by the first backup that takes it (a full one), which takes it
  // at a quiet moment, so a write racing this call cannot be lost to it.
  UpdateHook();
  return Status::Ok();
}

Status PersistentBitmaps::Remove(const std::string& name) {
  std::lock_guard hook_lock(hook_mutex_);
  {
    std::unique_lock lock(mutex_);
    auto it = bitmaps_.find(name);
    if (it == bitmaps_.end()) return Status::NotFound("Dirty bitmap '" + name + "' not found");
    if (it->second.busy) return Status::Error(EBUSY, "Bitmap '" + name + "' is in use by a backup");
    Entry removed = std::move(it->second);
    bitmaps_.erase(it);
    Status saved = SaveLocked(/*in_use=*/true);
    if (!saved.ok()) {
      bitmaps_[name] = std::move(removed);
      return saved;
    }
  }
  UpdateHook();
  return Status::Ok();
}

Status PersistentBitmaps::Clear(const std::string& name) {
  std::unique_lock lock(mutex_);
  auto it = bitmaps_.find(name);
  if (it == bitmaps_.end()) return Status::NotFound("Dirty bitmap '" + name + "' not found");
  if (it->second.busy) return Status::Error(EBUSY, "Bitmap '" + name + "' is in use by a backup");
  it->second.bits->ClearAll();
  it->second.inconsistent = false;
  return SaveLocked(/*in_use=*/true);
}

std::vector<BitmapInfo> PersistentBitmaps::List() const {
  std::shared_lock lock(mutex_);
  std::vector<BitmapInfo> list;
  for (const auto& [name, entry] : bitmaps_) {
    list.push_back({name, entry.bits->granularity(), entry.bits->DirtyBytes(), entry.persistent, entry.inconsistent,
                    entry.busy, entry.last_target});
  }
  return list;
}

Status PersistentBitmaps::Check(const std::string& name, bool need_consistent) const {
  std::shared_lock lock(mutex_);
  auto it = bitmaps_.find(name);
  if (it == bitmaps_.end()) return Status::NotFound("Dirty bitmap '" + name + "' not found");
  if (it->second.busy) return Status::Error(EBUSY, "Bitmap '" + name + "' is in use by a backup");
  if (need_consistent && it->second.inconsistent) {
    return Status::Invalid("Bitmap '" + name +
                           "' is inconsistent (the image was not closed cleanly while it recorded, so it may miss "
                           "writes) and cannot be used for an incremental backup: make a full backup with it, or "
                           "clear it (block-dirty-bitmap-clear) or remove and add it again, then back up in full");
  }
  return Status::Ok();
}

Status PersistentBitmaps::Take(const std::string& name, bool need_consistent, std::unique_ptr<DirtyBitmap>* taken) {
  CORFS_RETURN_IF_ERROR(Check(name, need_consistent));
  std::unique_lock lock(mutex_);
  auto it = bitmaps_.find(name);
  if (it == bitmaps_.end()) return Status::NotFound("Dirty bitmap '" + name + "' not found");
  DirtyBitmap& bits = *it->second.bits;
  auto copy = std::make_unique<DirtyBitmap>(bits.disk_size(), bits.granularity());
  copy->Merge(bits);
  bits.ClearAll();
  it->second.busy = true;
  *taken = std::move(copy);
  return Status::Ok();
}

void PersistentBitmaps::Release(const std::string& name, const DirtyBitmap& taken, bool succeeded,
                                const std::string& target) {
  std::unique_lock lock(mutex_);
  auto it = bitmaps_.find(name);
  if (it == bitmaps_.end()) return;  // cannot happen: a busy bitmap is not removed
  it->second.busy = false;
  if (succeeded) {
    it->second.inconsistent = false;
    it->second.last_target = target;
  } else {
    it->second.bits->Merge(taken);
  }
  // Best effort: while mounted the file says "in use" anyway; Close writes
  // what counts.
  (void)SaveLocked(/*in_use=*/true);
}

Status PersistentBitmaps::Close() {
  std::lock_guard hook_lock(hook_mutex_);
  std::unique_lock lock(mutex_);
  if (closed_) return Status::Ok();
  closed_ = true;
  return SaveLocked(/*in_use=*/false);
}

Status PersistentBitmaps::BeforeWrite(uint64_t offset, uint64_t length) {
  std::shared_lock lock(mutex_);
  for (auto& [name, entry] : bitmaps_) entry.bits->Set(offset, length);
  return Status::Ok();
}

}  // namespace corfs::overlay
