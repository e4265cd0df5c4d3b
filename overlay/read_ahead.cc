#include "overlay/read_ahead.h"

#include <algorithm>

namespace corfs::overlay {

ReadAhead::~ReadAhead() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  threads_.clear();  // joins each after its piece under way
}

void ReadAhead::WaitIdle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return queue_.empty() && filling_ == 0; });
}

int ReadAhead::FindStream(uint64_t offset) const {
  for (int i = 0; i < kStreams; ++i) {
    const Stream& s = streams_[i];
    if (s.last_use != 0 && offset + kBehind >= s.next && offset <= s.next + kGap) return i;
  }
  return -1;
}

void ReadAhead::Drop(Stream& stream) {
  if (stream.ahead != 0) active_.fetch_sub(1, std::memory_order_relaxed);
  const uint64_t generation = stream.generation + 1;
  stream = Stream{};
  stream.generation = generation;
}

void ReadAhead::NoteReadSlow(uint64_t offset, uint64_t length, bool cold) {
  std::lock_guard lock(mutex_);
  const int found = FindStream(offset);
  if (found < 0) {
    if (!cold) {
      // Warm reads elsewhere: the streams may be over; drop them after a while.
      if (++misses_ >= kMaxMisses) {
        for (Stream& s : streams_) Drop(s);
        misses_ = 0;
      }
      return;
    }
    // A cold read that continues nothing: it may start a stream, in the
    // place of the least recently used one.
    Stream* oldest = &streams_[0];
    for (Stream& s : streams_) {
      if (s.last_use < oldest->last_use) oldest = &s;
    }
    Drop(*oldest);
    oldest->next = offset + length;
    oldest->last_use = ++clock_;
    oldest->cold_reads = 1;
    return;
  }
  misses_ = 0;
  Stream& s = streams_[found];
  s.next = std::max(s.next, offset + length);
  s.last_use = ++clock_;
  if (s.ahead == 0) {
    if (!cold || ++s.cold_reads < kColdReadsToStart) return;
    active_.fetch_add(1, std::memory_order_relaxed);
    s.ahead = s.next;
    QueueNext(found);
    return;
  }
  if (s.ahead < s.next + s.window / 2) QueueNext(found);
}

void ReadAhead::QueueNext(int index) {
  Stream& s = streams_[index];
  const uint64_t start = std::max(s.ahead, s.next);
  const uint64_t end = std::min(disk_size_(), start + s.window);
  if (start >= end) {
    // The stream reached the end of the disk: its slot is freed, but its
    // windows still queued stay current (same generation) and are filled.
    if (s.ahead != 0) active_.fetch_sub(1, std::memory_order_relaxed);
    const uint64_t generation = s.generation;
    s = Stream{};
    s.generation = generation;
    return;
  }
  queue_.push_back({index, s.generation, start, end - start});
  s.ahead = end;
  s.window = std::min(s.window * 2, kMaxWindow);
  if (threads_.empty()) {
    threads_.reserve(fillers_);
    for (unsigned i = 0; i < fillers_; ++i) threads_.emplace_back([this] { Run(); });
  }
  queued_.notify_all();  // a window is several pieces: for every filler
}

void ReadAhead::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    // The next piece of the nearest window still current: the fillers
    // take the pieces in order, so the clusters the guest needs first are
    // the first in flight.
    Window& front = queue_.front();
    if (!Current(front)) {
      queue_.pop_front();
      if (queue_.empty() && filling_ == 0) idle_.notify_all();
      continue;
    }
    const Window piece{front.stream, front.generation, front.offset, std::min(front.length, kPiece)};
    front.offset += piece.length;
    front.length -= piece.length;
    if (front.length == 0) queue_.pop_front();
    ++filling_;
    lock.unlock();
    fill_(piece.offset, piece.length);
    lock.lock();
    --filling_;
    if (queue_.empty() && filling_ == 0) idle_.notify_all();
  }
  queue_.clear();
  idle_.notify_all();
}

}  // namespace corfs::overlay
