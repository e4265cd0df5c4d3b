#include "overlay/read_ahead.h"

#include <algorithm>

namespace corfs::overlay {

ReadAhead::~ReadAhead() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void ReadAhead::WaitIdle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return queue_.empty() && !filling_; });
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
    Drop(s);  // the stream reached the end of the disk
    return;
  }
  queue_.push_back({index, s.generation, start, end - start});
  s.ahead = end;
  s.window = std::min(s.window * 2, kMaxWindow);
  if (!thread_.joinable()) {
    thread_ = std::jthread([this](const std::stop_token& stop) { Run(stop); });
  }
  queued_.notify_one();
}

void ReadAhead::Run(const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  while (true) {
    queued_.wait(lock, stop, [&] { return !queue_.empty(); });
    if (stop.stop_requested()) break;
    Window window = queue_.front();
    queue_.pop_front();
    filling_ = true;
    while (window.length > 0 && Current(window) && !stop.stop_requested()) {
      const uint64_t piece = std::min(window.length, kPiece);
      lock.unlock();
      fill_(window.offset, piece);
      lock.lock();
      window.offset += piece;
      window.length -= piece;
    }
    filling_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
  queue_.clear();
  filling_ = false;
  idle_.notify_all();
}

}  // namespace corfs::overlay
