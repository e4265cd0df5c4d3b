#pragma once
// Qcow2L2Cache: a bounded cache of qcow2 L2 tables, shared by every thread
// that reads one image.
//
// Tables are keyed by their offset in the image file and held as immutable,
// reference-counted arrays of host-order entries, so a reader keeps using a
// table it looked up even if the cache evicts it meanwhile, and no lock is
// held while a reader walks a table.
//
// The cache is split into shards (a table goes to the shard its cluster
// number hashes to), each a mutex-protected LRU list with a hash index, so
// concurrent readers of different tables rarely meet on a lock. A miss loads
// the table with no lock held; when two threads miss on the same table at
// once, both load it and the first insert wins (the second copy is dropped),
// which costs one extra read and never blocks readers of other tables behind
// I/O. The memory bound is fixed at construction: shards * tables per shard
// * table size.

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace corfs::overlay {

class Qcow2L2Cache {
 public:
  using Table = std::vector<uint64_t>;
  // Reads the table at `offset` of the file into `table` (host order).
  using Loader = std::function<Status(uint64_t offset, Table* table)>;

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t tables = 0;    // held now
    uint64_t capacity = 0;  // tables it may hold
  };

  // A cache of tables of `table_bytes` each, using at most about
  // `budget_bytes` (and room for at least 4 tables).
  Qcow2L2Cache(uint64_t table_bytes, uint64_t budget_bytes);

  // The table at `offset`, from the cache or loaded with `load`.
  Status Get(uint64_t offset, const Loader& load, std::shared_ptr<const Table>* out);

  Stats stats() const;
  size_t shard_count() const { return shards_.size(); }

 private:
  struct Shard {
    mutable std::mutex mutex;
    // Most recently used first.
    std::list<std::pair<uint64_t, std::shared_ptr<const Table>>> lru;
    std::unordered_map<uint64_t, decltype(lru)::iterator> index;
  };

  Shard& ShardFor(uint64_t offset);

  uint32_t table_shift_;  // log2 of the table size: offsets are multiples of it
  size_t per_shard_ = 1;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace corfs::overlay
