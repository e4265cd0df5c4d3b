#include "jobs/stream_driver.h"

#include <algorithm>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "jobs/stream_plan.h"

namespace corfs::jobs {

namespace {

// A run that needs no reading (zeros) is handed out in pieces this large.
constexpr uint64_t kMaxZeroChunk = 256ull << 20;
// Progress is reported at least every this many bytes walked.
constexpr uint64_t kMaxBatchWalk = 1ull << 30;
// What a first pass skipped under on-error "ignore" is tried again by the
// second pass, this much later: a backing image that failed a moment ago
// may answer again after a while, and an image that fails every read is not
// asked again at once.
constexpr std::chrono::seconds kSkippedRetryDelay{1};

IoOperation ReadOrWrite(const Status& error) {
  const bool write = error.code() == ENOSPC || error.code() == EDQUOT || error.code() == EROFS;
  return write ? IoOperation::kWrite : IoOperation::kRead;
}

// The survey for the ETA walks at most this many runs; past them it
// assumes the density of the runs it saw (see CopyEstimate), so a badly
// fragmented disk does not hold the stream back for long.
constexpr uint64_t kMaxSurveyRuns = 1ull << 20;
// ...and it takes the job's checkpoint (pause, cancel) every this many runs.
constexpr uint64_t kSurveyCheckpointRuns = 4096;

// A replayed profile stays at most this far (in the profile's bytes) in
// front of the guest's reads while the guest reads: far enough that the
// next clusters the guest asks for are there, near enough that the stream
// does not fill the link with what the guest needs only later.
constexpr uint64_t kProfileWindow = 8ull << 20;
// ...and the guest reads while its last read of the profile is this recent;
// a guest that stopped (booted, or not started yet) holds nothing back.
constexpr std::chrono::milliseconds kGuestPause{1000};
// How long a stream in front of the guest waits before it looks again.
constexpr std::chrono::milliseconds kGuestWait{5};

// Planning asks the chain what it holds: a read.
IoOperation Read(const Status&) { return IoOperation::kRead; }

}  // namespace

Status StreamDriver::Make(overlay::Overlay& overlay, const std::string& image, const StreamOptions& options,
                          WorkerPool& pool, std::unique_ptr<StreamDriver>* out) {
  if (overlay.read_only()) return Status::Error(EROFS, "image '" + image + "' is read-only");
  if (options.chunk_size < overlay.cluster_size()) {
    return Status::Invalid("chunk size " + std::to_string(options.chunk_size) + " is smaller than a cluster (" +
                           std::to_string(overlay.cluster_size()) + ")");
  }
  size_t end_layer = overlay.header().chain.size();
  if (options.base) {
    if (options.range_offset || options.range_length) {
      return Status::Invalid("a stream down to a base covers the whole image; give either a base or a range");
    }
    CORFS_RETURN_IF_ERROR(overlay.FindBackingLayer(*options.base, &end_layer));
  }
  uint64_t start = 0;
  uint64_t end = overlay.size();
  if (options.range_offset || options.range_length) {
    start = options.range_offset.value_or(0);
    uint64_t length = options.range_length.value_or(overlay.size() - std::min(start, overlay.size()));
    if (start >= overlay.size() || length == 0 || length > overlay.size() - start) {
      return Status::Invalid("range " + std::to_string(start) + "+" + std::to_string(length) +
                             " is not inside the disk (" + std::to_string(overlay.size()) + " bytes)");
    }
    end = std::min(overlay.size(),
                   (start + length + overlay.cluster_size() - 1) / overlay.cluster_size() * overlay.cluster_size());
    start = start / overlay.cluster_size() * overlay.cluster_size();
  }
  out->reset(new StreamDriver(overlay, image, options, pool, end_layer, start, end));
  return Status::Ok();
}

namespace {

// The chunk a stream copies as one step: as asked, except that the default
// grows for a chain with a layer read through a buffer (kBufferedChunkSize).
uint64_t StepSize(const overlay::Overlay& overlay, uint64_t asked) {
  return asked == kDefaultChunkSize && overlay.chain_reads_through_buffer() ? kBufferedChunkSize : asked;
}

// Steps of such a chain copied at once: a step over a server mostly waits
// for its reply, so this many (the default connections to a server,
// RemoteOptions::connections) keep the link busy whatever the cores.
constexpr unsigned kBufferedStepsInFlight = 4;
// Over a server, a batch holds at most what the link moved in this long at
// the recent batches' pace: a guest read that faults while a batch is on
// the link waits behind it. Over a 50 Mbit/s NBD link a TCG guest booted in
// 17.9 s with a stream from mount in 32 MiB batches (5 s each on that
// link), against 7.6 s with no stream at all.
constexpr std::chrono::milliseconds kBatchLatency{250};
// The same while guests read: a stream step and a guest's fault share the
// link, so the step is kept to what it moves in this long.
constexpr std::chrono::milliseconds kGuestBatchLatency{20};
// Over a server, guests count as reading for this long after their last
// request: a booting guest reads in bursts a few milliseconds apart, and a
// full batch sent in such a gap holds up the burst's next reads.
constexpr std::chrono::milliseconds kGuestQuiet{500};
// How long a stream over a server waits for the guest requests in flight on
// its image before it sends its next batch anyway.
constexpr std::chrono::milliseconds kMaxGuestWait{100};
// Batches shorter than this tell nothing of the link's pace.
constexpr std::chrono::milliseconds kMinPaceSample{5};

}  // namespace

StreamDriver::StreamDriver(overlay::Overlay& overlay, std::string image, const StreamOptions& options, WorkerPool& pool,
                           size_t end_layer, uint64_t start, uint64_t end)
    : overlay_(overlay),
      pool_(pool),
      chunk_size_(StepSize(overlay, options.chunk_size)),
      in_flight_(overlay.chain_reads_through_buffer() ? std::max(pool.workers(), kBufferedStepsInFlight)
                                                      : pool.workers()),
      end_layer_(end_layer),
      base_mode_(options.base.has_value()),
      whole_image_(!options.base && !options.range_offset && !options.range_length),
      start_(start),
      end_(end),
      image_(std::move(image)),
      profile_(options.profile) {}

Status StreamDriver::Run(JobContext& job) {
  write_behind_ = overlay_.OpenWriteBehind(overlay::kWriteBehindBatch, overlay::kWriteBehindWindow);
  Survey(job);
  if (profile_) {
    CORFS_RETURN_IF_ERROR(ProfilePass(job));
    if (job.cancel_requested()) return Status::Ok();
  }
  CORFS_RETURN_IF_ERROR(Pass(job, /*wait_for_busy=*/false));
  if (job.cancel_requested()) return Status::Ok();
  // What is left is what the pass skipped after errors (or guest I/O held,
  // which that I/O filled): next to nothing.
  job.SetRemaining(skipped_bytes_);
  if (skipped_ && !job.Delay(kSkippedRetryDelay)) return Status::Ok();
  // Clusters that guest I/O held while the first pass went by were filled by
  // that I/O, unless it failed; a second pass waits for them and catches
  // those, and tries again what the first one skipped after an error. What
  // it skips stays in the chain.
  skipped_ = false;
  skipped_bytes_ = 0;
  CORFS_RETURN_IF_ERROR(Pass(job, /*wait_for_busy=*/true));
  job.SetRemaining(skipped_bytes_);
  if (job.cancel_requested() || skipped_) return Status::Ok();
  // A template whose size changed under the mount is the stream's error,
  // under its policy and with its event, not only a refusal in Prepare.
  auto check = [&] { return overlay_.CheckBackingUnchanged(); };
  bool ignored = false;
  CORFS_RETURN_IF_ERROR(job.RunStep(check(), check, Read, &ignored));
  if (ignored) skipped_ = true;  // the chain stays
  return Status::Ok();
}

void StreamDriver::Survey(JobContext& job) {
  estimate_ = CopyEstimate(start_, end_, overlay_.cluster_size());
  uint64_t pos = start_;
  for (uint64_t runs = 0; pos < end_ && runs < kMaxSurveyRuns; ++runs) {
    if (runs % kSurveyCheckpointRuns == kSurveyCheckpointRuns - 1 && !job.Checkpoint()) break;
    StreamRun run;
    if (!PlanStream(overlay_, pos, end_ - pos, end_layer_, &run).ok()) break;
    if (run.work == StreamWork::kCopy) estimate_.AddData(pos, run.length);
    pos += run.length;
  }
  estimate_.SetSurveyed(pos);
  job.SetRemaining(estimate_.Remaining(start_));
}

uint64_t StreamDriver::BatchBytes(const JobContext& job, bool guests_active) const {
  const uint64_t cluster = overlay_.cluster_size();
  const uint64_t slice = job.SliceBytes();
  uint64_t most = slice == 0 ? UINT64_MAX : std::max(cluster, slice / cluster * cluster);
  if (link_rate_ > 0) {
    const auto latency = std::chrono::duration<double>(guests_active ? kGuestBatchLatency : kBatchLatency);
    const auto paced = static_cast<uint64_t>(link_rate_ * latency.count());
    most = std::min(most, std::max(guests_active ? cluster : cluster * in_flight_, paced / cluster * cluster));
  }
  return most;
}

void StreamDriver::YieldToGuests() const {
  if (!overlay_.chain_reads_through_buffer()) {
    // A local chain: a short pause lets a guest request go first.
    if (overlay_.guest_io_in_flight() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return;
  }
  const auto until = std::chrono::steady_clock::now() + kMaxGuestWait;
  while (overlay_.guest_io_in_flight() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

uint64_t StreamDriver::StepBytes(uint64_t batch_bytes) const {
  if (link_rate_ == 0) return chunk_size_;
  const uint64_t cluster = overlay_.cluster_size();
  return std::min(chunk_size_, std::max(cluster, batch_bytes / in_flight_ / cluster * cluster));
}

void StreamDriver::NoteLinkPace(uint64_t bytes, std::chrono::steady_clock::duration took) {
  if (!overlay_.chain_reads_through_buffer() || took < kMinPaceSample || bytes == 0) return;
  const double rate = static_cast<double>(bytes) / std::chrono::duration<double>(took).count();
  link_rate_ = link_rate_ == 0 ? rate : (link_rate_ + rate) / 2;
}

Status StreamDriver::Pass(JobContext& job, bool wait_for_busy) {
  const bool first_pass = !wait_for_busy;
  uint64_t pos = start_;
  uint64_t guest_requests = overlay_.guest_activity().Sample();
  auto last_guest_request = std::chrono::steady_clock::now() - kGuestQuiet;
  std::vector<Chunk> chunks;
  while (pos < end_) {
    if (!job.Checkpoint()) return Status::Ok();
    // Yield to guest I/O: a request in flight on this image goes first, and
    // while guests use any image of the mount the batch is one chunk, copied
    // by one thread, so the other cores stay free for them (see
    // overlay/guest_activity.h).
    YieldToGuests();
    const uint64_t requests_now = overlay_.guest_activity().Sample();
    const auto now = std::chrono::steady_clock::now();
    if (requests_now != guest_requests) last_guest_request = now;
    const bool guests_active = requests_now != guest_requests ||
                               (overlay_.chain_reads_through_buffer() && now - last_guest_request < kGuestQuiet);
    const size_t max_chunks = guests_active ? 1 : size_t{in_flight_} * 2;
    guest_requests = requests_now;

    chunks.clear();
    uint64_t walked = 0;
    uint64_t to_copy = 0;
    uint64_t holes = 0;
    // Under a speed limit a batch copies about a slice's worth (a cluster at
    // least), so that a pause or a new speed is taken within a slice.
    const uint64_t batch_bytes = BatchBytes(job, guests_active);
    const uint64_t step_bytes = StepBytes(batch_bytes);
    while (pos < end_ && chunks.size() < max_chunks && walked < kMaxBatchWalk && to_copy < batch_bytes) {
      StreamRun run;
      auto plan = [&] { return PlanStream(overlay_, pos, end_ - pos, end_layer_, &run); };
      bool skipped = false;
      CORFS_RETURN_IF_ERROR(job.RunStep(plan(), plan, Read, &skipped));
      // A run that could not be planned is left to the chain, a cluster of it.
      if (skipped) {
        run = {StreamWork::kLocal, std::min<uint64_t>(end_ - pos, overlay_.cluster_size())};
        skipped_ = true;
        skipped_bytes_ += run.length;
      }
      uint64_t length = run.length;
      if (run.work == StreamWork::kCopy) {
        const uint64_t room = (batch_bytes - to_copy) / overlay_.cluster_size() * overlay_.cluster_size();
        length = std::min({length, step_bytes, std::max(room, overlay_.cluster_size())});
        chunks.push_back({pos, length, /*copy=*/true});
        to_copy += length;
      } else if (run.work == StreamWork::kZero) {
        length = std::min(length, kMaxZeroChunk);
        chunks.push_back({pos, length, /*copy=*/false});
        holes += length;
      }
      pos += length;
      walked += length;
    }
    if (!job.Throttle(to_copy)) return Status::Ok();
    CORFS_RETURN_IF_ERROR(CopyBatch(job, chunks, wait_for_busy));
    if (first_pass) {
      job.Advance({walked, to_copy, holes});
      job.SetRemaining(estimate_.Remaining(pos) + skipped_bytes_);  // the skipped are tried again
    }
  }
  return Status::Ok();
}

std::optional<uint64_t> StreamDriver::WindowEnd() const {
  const auto idle = profile_->IdleFor(profile_->Now());
  if (!idle || *idle >= kGuestPause) return std::nullopt;
  return profile_->BytesBefore(profile_->guest_index()) + kProfileWindow;
}

Status StreamDriver::ProfilePass(JobContext& job) {
  const std::vector<overlay::ProfileRange>& ranges = profile_->profile().ranges;
  const uint64_t cluster = overlay_.cluster_size();
  size_t next = 0;
  uint64_t pos = 0;  // inside ranges[next], once begun
  bool begun = false;
  std::vector<Chunk> chunks;
  while (next < ranges.size()) {
    if (!job.Checkpoint()) return Status::Ok();
    if (profile_->guest_index() > next) {  // the guest read up to there: it is local
      next = profile_->guest_index();
      begun = false;
      continue;
    }
    // Where the pass is, in the profile's bytes.
    const uint64_t at =
        profile_->BytesBefore(next) + (begun && pos > ranges[next].offset ? pos - ranges[next].offset : 0);
    profile_offset_.store(at, std::memory_order_relaxed);
    // The window is checked here and again for every range the batch takes,
    // so that no batch (up to workers x 2 steps) runs past it.
    const std::optional<uint64_t> window = WindowEnd();
    if (window && at + cluster > *window) {  // not a cluster of room in front of the guest
      if (!job.Delay(kGuestWait)) return Status::Ok();
      continue;
    }
    if (overlay_.guest_io_in_flight() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    chunks.clear();
    uint64_t to_copy = 0;
    uint64_t holes = 0;
    const uint64_t batch_bytes = BatchBytes(job);
    while (next < ranges.size() && chunks.size() < size_t{in_flight_} * 2 && to_copy < batch_bytes) {
      const overlay::ProfileRange& range = ranges[next];
      const uint64_t range_end = std::min(end_, range.offset + std::min(range.length, UINT64_MAX - range.offset));
      if (!begun) {
        pos = std::max(start_, range.offset / cluster * cluster);
        begun = true;
        spdlog::debug("stream of '{}': profile range {}: {}+{}", image_, next, range.offset, range.length);
      }
      // What of this range is inside the window: whole clusters up to it.
      uint64_t plan_end = range_end;
      if (window) {
        const uint64_t before = profile_->BytesBefore(next);
        if (before >= *window) break;
        const uint64_t room = *window - before;
        if (range_end > range.offset && room < range_end - range.offset) {
          plan_end = (range.offset + room) / cluster * cluster;
        }
      }
      if (pos < plan_end) {
        CORFS_RETURN_IF_ERROR(PlanProfileRange(job, plan_end, batch_bytes, &pos, &chunks, &to_copy, &holes));
      }
      // The batch is full, or the window ends in this range: it goes on in
      // the next batch.
      if (pos < range_end) break;
      ++next;
      begun = false;
    }
    if (!job.Throttle(to_copy)) return Status::Ok();
    CORFS_RETURN_IF_ERROR(CopyBatch(job, chunks, /*wait_for_busy=*/false));
    job.Advance({0, to_copy, holes});
  }
  profile_offset_.store(profile_->bytes(), std::memory_order_relaxed);
  return Status::Ok();
}

Status StreamDriver::PlanProfileRange(JobContext& job, uint64_t range_end, uint64_t batch_bytes, uint64_t* pos,
                                      std::vector<Chunk>* chunks, uint64_t* to_copy, uint64_t* holes) {
  while (*pos < range_end && *to_copy < batch_bytes && chunks->size() < size_t{in_flight_} * 2) {
    StreamRun run;
    auto plan = [&] { return PlanStream(overlay_, *pos, range_end - *pos, end_layer_, &run); };
    bool skipped = false;
    CORFS_RETURN_IF_ERROR(job.RunStep(plan(), plan, Read, &skipped));
    // The disk-order pass meets it again, under the same policy.
    if (skipped) run = {StreamWork::kLocal, std::min<uint64_t>(range_end - *pos, overlay_.cluster_size())};
    uint64_t length = run.length;
    if (run.work == StreamWork::kCopy) {
      const uint64_t room = (batch_bytes - *to_copy) / overlay_.cluster_size() * overlay_.cluster_size();
      length = std::min({length, StepBytes(batch_bytes), std::max(room, overlay_.cluster_size())});
      chunks->push_back({*pos, length, /*copy=*/true});
      *to_copy += length;
    } else if (run.work == StreamWork::kZero) {
      length = std::min(length, kMaxZeroChunk);
      chunks->push_back({*pos, length, /*copy=*/false});
      *holes += length;
    }
    *pos += length;
  }
  return Status::Ok();
}

void StreamDriver::Describe(JobInfo& info) const {
  if (!profile_) return;
  info.profile = true;
  info.profile_offset = profile_offset_.load(std::memory_order_relaxed);
  info.profile_len = profile_->bytes();
}

Status StreamDriver::CopyBatch(JobContext& job, const std::vector<Chunk>& chunks, bool wait_for_busy) {
  std::vector<Status> results(chunks.size());
  const auto start = std::chrono::steady_clock::now();
  // Over a server the steps mostly wait for replies: in_flight_ of them at
  // once, more than the pool's workers (WorkerPool::ParallelFor).
  pool_.ParallelFor(chunks.size(), in_flight_, [&](size_t i) {
    results[i] = overlay_.Populate(chunks[i].offset, chunks[i].length, wait_for_busy);
  });
  const auto took = std::chrono::steady_clock::now() - start;
  uint64_t copied = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto populate = [&] { return overlay_.Populate(chunks[i].offset, chunks[i].length, wait_for_busy); };
    bool skipped = false;
    CORFS_RETURN_IF_ERROR(job.RunStep(results[i], populate, ReadOrWrite, &skipped));
    skipped_ = skipped_ || skipped;
    if (skipped) skipped_bytes_ += chunks[i].length;
    if (chunks[i].copy) copied += chunks[i].length;
  }
  NoteLinkPace(copied, took);
  if (write_behind_) {
    for (const Chunk& chunk : chunks) {
      if (chunk.copy) write_behind_->Written(chunk.offset, chunk.length);
    }
  }
  return Status::Ok();
}

Status StreamDriver::RecordWish(const JobOptions& options) {
  if (!whole_image_) return Status::Ok();
  overlay::StreamWish wish{options.speed, ToString(options.on_error)};
  std::lock_guard lock(wish_mutex_);
  Status status = overlay_.SetStreamWish(wish);
  if (status.code() == ENOTSUP) return Status::Ok();  // an older header: no resume
  CORFS_RETURN_IF_ERROR(status);
  wish_ = std::move(wish);
  return Status::Ok();
}

void StreamDriver::SpeedChanged(uint64_t bytes_per_second) {
  std::lock_guard lock(wish_mutex_);
  if (!wish_) return;
  wish_->speed = bytes_per_second;
  // Best effort: should the header not take it, the job resumes at the speed
  // it had before, which is no worse than not resuming.
  (void)overlay_.SetStreamWish(wish_);
}

void StreamDriver::Clean(JobContext& job) {
  if (job.interrupted()) return;  // the next mount resumes it
  std::lock_guard lock(wish_mutex_);
  if (!wish_) return;
  wish_.reset();
  // Should the header not take it, the next mount starts a stream the user
  // ended (a cancel may be given again there) or finds the overlay standalone
  // and clears the wish itself.
  (void)overlay_.SetStreamWish(std::nullopt);
}

Status StreamDriver::Prepare(JobContext&) {
  // What the last pass skipped after an error is still in the chain: keep
  // the link.
  if (skipped_) return overlay_.Flush();
  if (base_mode_) return overlay_.ShortenChain(end_layer_);
  if (overlay_.lacking_clusters() == 0) return overlay_.DropBacking();
  return overlay_.Flush();  // a range: make its progress durable
}

}  // namespace corfs::jobs
