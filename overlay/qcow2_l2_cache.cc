#include "overlay/qcow2_l2_cache.h"

#include <algorithm>
#include <bit>

namespace corfs::overlay {

Qcow2L2Cache::Qcow2L2Cache(uint64_t table_bytes, uint64_t budget_bytes) {
  table_bytes = std::max<uint64_t>(table_bytes, 1);
  table_shift_ = static_cast<uint32_t>(std::bit_width(table_bytes) - 1);
  const uint64_t tables = std::max<uint64_t>(4, budget_bytes / table_bytes);
  // About 4 tables or more per shard, at most 16 shards: 64 KiB clusters and
  // 32 MiB give 16 shards of 32 tables; 2 MiB clusters give 4 shards of 4.
  const uint64_t shards = std::clamp<uint64_t>(tables / 4, 1, 16);
  per_shard_ = static_cast<size_t>(tables / shards);
  for (uint64_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

Qcow2L2Cache::Shard& Qcow2L2Cache::ShardFor(uint64_t offset) {
  // Tables of one image are often allocated next to each other: mix the
  // cluster number so neighbours go to different shards.
  uint64_t x = offset >> table_shift_;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return *shards_[x % shards_.size()];
}

Status Qcow2L2Cache::Get(uint64_t offset, const Loader& load, std::shared_ptr<const Table>* out) {
  Shard& shard = ShardFor(offset);
  {
    std::lock_guard lock(shard.mutex);
    auto it = shard.index.find(offset);
    if (it != shard.index.end()) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      *out = it->second->second;
      hits_.fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  auto table = std::make_shared<Table>();
  CORFS_RETURN_IF_ERROR(load(offset, table.get()));

  std::shared_ptr<const Table> evicted;  // released after the lock
  std::lock_guard lock(shard.mutex);
  auto it = shard.index.find(offset);
  if (it != shard.index.end()) {  // another reader loaded it meanwhile
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    *out = it->second->second;
    return Status::Ok();
  }
  shard.lru.emplace_front(offset, std::move(table));
  shard.index.emplace(offset, shard.lru.begin());
  *out = shard.lru.front().second;
  if (shard.lru.size() > per_shard_) {
    shard.index.erase(shard.lru.back().first);
    evicted = std::move(shard.lru.back().second);
    shard.lru.pop_back();
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::Ok();
}

Qcow2L2Cache::Stats Qcow2L2Cache::stats() const {
  Stats s;
  s.hits = hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.evictions = evictions_.load(std::memory_order_relaxed);
  s.capacity = per_shard_ * shards_.size();
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    s.tables += shard->lru.size();
  }
  return s;
}

}  // namespace corfs::overlay
