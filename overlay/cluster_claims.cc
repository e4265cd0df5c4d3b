#include "overlay/cluster_claims.h"

namespace corfs::overlay {

bool ClusterClaims::Acquire(uint64_t cluster) {
  Shard& shard = ShardOf(cluster);
  std::unique_lock lock(shard.mutex);
  shard.released.wait(lock, [&] { return !shard.claimed.contains(cluster); });
  if (bitmap_.Test(cluster)) return false;
  shard.claimed.insert(cluster);
  return true;
}

bool ClusterClaims::TryAcquire(uint64_t cluster) {
  Shard& shard = ShardOf(cluster);
  std::lock_guard lock(shard.mutex);
  if (shard.claimed.contains(cluster) || bitmap_.Test(cluster)) return false;
  shard.claimed.insert(cluster);
  return true;
}

void ClusterClaims::Release(uint64_t cluster) {
  Shard& shard = ShardOf(cluster);
  {
    std::lock_guard lock(shard.mutex);
    shard.claimed.erase(cluster);
  }
  shard.released.notify_all();
}

}  // namespace corfs::overlay
