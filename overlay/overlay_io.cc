// Overlay: the I/O path. Guest reads and writes, copy-on-read and
// copy-on-write under cluster claims, and Populate, the stream's copy.
//
// Reads of allocated clusters take no lock and allocate nothing; neither
// does a copy of a raw layer without a buffer (copy_file_range: a stream's,
// or a guest read's that FaultIn serves) beyond one scratch buffer per run
// when the kernel cannot copy.

#include <fcntl.h>

#include <cstring>

#include "overlay/overlay.h"
#include "overlay/scratch_buffer.h"

namespace corfs::overlay {

namespace {

Status RangeCheck(uint64_t offset, uint64_t length, uint64_t size, const char* what) {
  if (offset > size || length > size - offset) {
    return Status::Invalid(std::string(what) + " of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                           " is past the end of the disk (" + std::to_string(size) + ")");
  }
  return Status::Ok();
}

// One guest request on an image, for as long as it is being served: counted
// in the image's requests in flight (Overlay::guest_io_in_flight, which a
// stream of that image waits on) and noted in the mount's GuestActivity
// (which streams of every image of the mount yield to).
class InFlightGuestRequest {
 public:
  InFlightGuestRequest(std::atomic<int64_t>& in_flight, GuestActivity& activity) : in_flight_(in_flight) {
    in_flight_.fetch_add(1, std::memory_order_relaxed);
    activity.Note();
  }
  ~InFlightGuestRequest() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  InFlightGuestRequest(const InFlightGuestRequest&) = delete;
  InFlightGuestRequest& operator=(const InFlightGuestRequest&) = delete;

 private:
  std::atomic<int64_t>& in_flight_;
};

}  // namespace

int Overlay::LocalDataFd(uint64_t offset, uint64_t length) const {
  const uint64_t disk_size = size();
  if (length == 0 || offset >= disk_size || length > disk_size - offset) return -1;
  const uint64_t clusters = ClustersUpTo(offset, offset + length);
  if (bitmap_.RunLength(offset >> cluster_bits_, clusters, true) != clusters) return -1;
  guest_activity_->Note();  // the caller serves a guest read with it
  if (read_ahead_) read_ahead_->NoteRead(offset, length, /*cold=*/false);
  return data_.fd();
}

Status Overlay::Read(uint64_t offset, std::span<char> buf) {
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, buf.size(), size(), "read"));
  InFlightGuestRequest request(guest_requests_in_flight_, *guest_activity_);
  const uint64_t end = offset + buf.size();
  bool cold = false;
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t cluster = pos >> cluster_bits_;
    const uint64_t clusters_left = ClustersUpTo(pos, end);
    std::span<char> rest = buf.subspan(pos - offset);

    if (bitmap_.Test(cluster)) {
      uint64_t n = bitmap_.RunLength(cluster, clusters_left, true);
      uint64_t run_end = std::min(end, ClusterStart(cluster + n));
      CORFS_RETURN_IF_ERROR(data_.Read(pos, rest.first(run_end - pos)));
      pos = run_end;
      continue;
    }

    uint64_t n = bitmap_.RunLength(cluster, clusters_left, false);
    if (!copy_on_read_) {
      // A thin clone: read through to the chain, keep nothing. A write that
      // races this read is ordered after it.
      uint64_t run_end = std::min(end, ClusterStart(cluster + n));
      CORFS_RETURN_IF_ERROR(chain()->Read(pos, rest.first(run_end - pos)));
      pos = run_end;
      continue;
    }

    ClaimedRun run(claims_, cluster, n, /*wait=*/true);
    if (run.count() == 0) continue;  // someone else filled it: read it from the overlay
    const uint64_t run_start = ClusterStart(cluster);
    const uint64_t run_end = ClusterEnd(cluster + run.count() - 1);
    const uint64_t copy_end = std::min(end, run_end);
    if (pos == run_start && copy_end == run_end) {
      // The request covers the whole run: fill straight into the caller's buffer.
      CORFS_RETURN_IF_ERROR(FillClaimed(run, rest.first(run_end - run_start)));
    } else {
      ScratchBuffer scratch(run_end - run_start);
      CORFS_RETURN_IF_ERROR(FillClaimed(run, scratch.span()));
      std::memcpy(rest.data(), scratch.span().data() + (pos - run_start), copy_end - pos);
    }
    CountFault(run);
    cold = true;
    pos = copy_end;
  }
  if (read_ahead_ && !buf.empty()) read_ahead_->NoteRead(offset, buf.size(), cold);
  return Status::Ok();
}

Status Overlay::ReadWithoutFill(uint64_t offset, std::span<char> buf) {
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, buf.size(), size(), "read"));
  const uint64_t end = offset + buf.size();
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t cluster = pos >> cluster_bits_;
    const uint64_t clusters_left = ClustersUpTo(pos, end);
    const bool local = bitmap_.Test(cluster);
    const uint64_t n = bitmap_.RunLength(cluster, clusters_left, local);
    const uint64_t run_end = std::min(end, ClusterStart(cluster + n));
    std::span<char> part = buf.subspan(pos - offset, run_end - pos);
    if (local) {
      CORFS_RETURN_IF_ERROR(data_.Read(pos, part));
    } else if (const std::shared_ptr<BackingChain> layers = chain()) {
      CORFS_RETURN_IF_ERROR(layers->Read(pos, part));
    } else {
      std::memset(part.data(), 0, part.size());  // no chain: what no image holds reads as zeros
    }
    pos = run_end;
  }
  return Status::Ok();
}

Status Overlay::ReadEarly(uint64_t offset, std::span<char> buf, const std::function<void()>& ready) {
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, buf.size(), size(), "read"));
  const uint64_t first = offset >> cluster_bits_;
  const uint64_t clusters = buf.empty() ? 0 : ClustersUpTo(offset, offset + buf.size());
  if (copy_on_read_ && clusters > 0 && bitmap_.RunLength(first, clusters, false) == clusters) {
    // The whole request is the chain's: answer from the chain, then copy the
    // clusters (as a stream does: in the kernel from a raw layer) while the
    // guest goes on (FillAfterReply). The claims stay held until the bits
    // are set.
    //
    // Over raw files, clusters someone else has claimed meanwhile are not
    // waited for: they are being filled from the chain (most often by a
    // cold read answered moments ago, whose copy waits in the fill-behind
    // queue) or changed by a guest write still in flight, which this read
    // may see or not, as any read that overlaps a write. All were the
    // chain's when this read came, so it is answered from the chain and
    // those clusters are left to their claimant. Waiting put a random read
    // that met a queued cluster behind the whole queue: at QD16 the 99th
    // percentile of cold 4 KiB reads was 11-13 ms, without the wait 2-5 ms,
    // the mean the same. Over a server or a compressed image the read waits
    // as before: a second fetch of what the claimant is fetching costs more
    // than the wait.
    InFlightGuestRequest request(guest_requests_in_flight_, *guest_activity_);
    const std::shared_ptr<BackingChain> backing = chain();
    const bool wait = !backing || !backing->AllRawFiles();
    ClaimedRun run(claims_, first, clusters, wait);
    // No chain once every cluster is local (filled meanwhile); after a
    // wait, clusters filled meanwhile are read from the overlay: an
    // ordinary read, below.
    if (backing && (!wait || run.count() == clusters)) {
      CORFS_RETURN_IF_ERROR(backing->Read(offset, buf));
      ready();
      if (read_ahead_) read_ahead_->NoteRead(offset, buf.size(), /*cold=*/true);
      return FillAfterReply(run);
    }
  }
  // Partly local, or filled by someone else meanwhile: an ordinary read.
  CORFS_RETURN_IF_ERROR(Read(offset, buf));
  ready();
  return Status::Ok();
}

Status Overlay::Write(uint64_t offset, std::span<const char> data) { return WriteOrDiscard(offset, data.size(), data); }

Status Overlay::Discard(uint64_t offset, uint64_t length) { return WriteOrDiscard(offset, length, {}); }

Status Overlay::WriteOrDiscard(uint64_t offset, uint64_t length, std::span<const char> data) {
  const bool discard = data.empty();
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  // One size for the whole request: a Resize may publish a larger one meanwhile.
  const uint64_t disk_size = size();
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, disk_size, discard ? "discard" : "write"));
  InFlightGuestRequest request(guest_requests_in_flight_, *guest_activity_);
  // Inside the gate from before the hooks are taken until the change is
  // made and reported: AddWriteHook waits for it (write_gate.h).
  WriteGate::Pass pass(write_gate_);
  const std::shared_ptr<const WriteHooks> hooks = write_hooks();
  size_t passed = 0;  // hooks whose BeforeWrite succeeded: each hears AfterWrite or WriteFailed
  Status status;
  if (hooks) {
    for (; passed < hooks->size() && status.ok(); ++passed) status = (*hooks)[passed]->BeforeWrite(offset, length);
    if (!status.ok()) --passed;
  }
  if (status.ok()) {
    status = StoreGuestChange(offset, length, data, disk_size);
    // Counted even when it failed part way: what it stored must be synced
    // by the guest's next flush all the same.
    guest_changes_.fetch_add(1, std::memory_order_release);
  }
  for (size_t i = 0; i < passed; ++i) {
    if (!status.ok()) {
      (*hooks)[i]->WriteFailed(offset, length);
      continue;
    }
    Status after = (*hooks)[i]->AfterWrite(offset, length, data);
    if (!after.ok()) {
      status = after;
      // The hooks after it hear of the failure instead.
    }
  }
  return status;
}

Status Overlay::StoreGuestChange(uint64_t offset, uint64_t length, std::span<const char> data, uint64_t disk_size) {
  const bool discard = data.empty();
  const uint64_t end = offset + length;
  // Writes the data of [pos, pos+n) to the data file, or punches it out.
  auto store = [&](uint64_t pos, uint64_t n) {
    return discard ? data_.Punch(pos, n) : data_.Write(pos, data.subspan(pos - offset, n));
  };
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t cluster = pos >> cluster_bits_;
    const uint64_t clusters_left = ClustersUpTo(pos, end);

    if (bitmap_.Test(cluster)) {
      uint64_t n = bitmap_.RunLength(cluster, clusters_left, true);
      uint64_t run_end = std::min(end, ClusterStart(cluster + n));
      CORFS_RETURN_IF_ERROR(store(pos, run_end - pos));
      pos = run_end;
      continue;
    }

    if (pos == ClusterStart(cluster) && end >= ClusterEnd(cluster)) {
      // Whole clusters: nothing of the chain survives, so no backing read.
      // The claim still matters: it keeps a copy-on-read of these clusters
      // from landing after this change.
      uint64_t whole = (end == disk_size) ? clusters_left : (end >> cluster_bits_) - cluster;
      ClaimedRun run(claims_, cluster, bitmap_.RunLength(cluster, whole, false), /*wait=*/true);
      if (run.count() == 0) continue;  // allocated meanwhile: the direct path
      uint64_t run_end = ClusterEnd(cluster + run.count() - 1);
      CORFS_RETURN_IF_ERROR(store(pos, run_end - pos));
      MarkAllocated(cluster, run.count());
      pos = run_end;
      continue;
    }

    // Part of a cluster the overlay lacks: copy-on-write.
    uint64_t part_end = std::min(end, ClusterEnd(cluster));
    bool done = false;
    std::span<const char> part = discard ? std::span<const char>() : data.subspan(pos - offset, part_end - pos);
    CORFS_RETURN_IF_ERROR(MergeIntoCluster(cluster, pos, part, part_end - pos, &done));
    if (done) pos = part_end;
  }
  return Status::Ok();
}

Status Overlay::MergeIntoCluster(uint64_t cluster, uint64_t offset, std::span<const char> data, uint64_t zero_length,
                                 bool* done) {
  ClaimedRun run(claims_, cluster, 1, /*wait=*/true);
  *done = run.count() == 1;
  if (!*done) return Status::Ok();  // allocated meanwhile: the caller takes the direct path
  const uint64_t start = ClusterStart(cluster);
  ScratchBuffer scratch(ClusterEnd(cluster) - start);
  std::span<char> bytes = scratch.span();
  CORFS_RETURN_IF_ERROR(chain()->Read(start, bytes));
  if (data.empty()) {
    std::memset(bytes.data() + (offset - start), 0, zero_length);
  } else {
    std::memcpy(bytes.data() + (offset - start), data.data(), data.size());
  }
  CORFS_RETURN_IF_ERROR(data_.Store(start, bytes));
  MarkAllocated(cluster, 1);
  return Status::Ok();
}

Status Overlay::Populate(uint64_t offset, uint64_t length, bool wait) {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, size(), "populate"));
  return FillMissing(offset, length, wait, /*count_faults=*/false);
}

Status Overlay::FaultIn(uint64_t offset, uint64_t length, const std::function<void(int fd)>& ready) {
  if (!copy_on_read_) return Status::Ok();
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, size(), "read"));
  InFlightGuestRequest request(guest_requests_in_flight_, *guest_activity_);
  const uint64_t first = offset >> cluster_bits_;
  const uint64_t clusters = length == 0 ? 0 : ClustersUpTo(offset, offset + length);
  if (clusters > 0 && bitmap_.RunLength(first, clusters, false) == clusters) {
    // The whole request is the chain's. When one raw layer holds all of it,
    // the guest is answered from that layer's file and the clusters are
    // copied after (FillAfterReply): the guest waits for one copy (to it),
    // not two. The claims stay held until the bits are set. As in
    // ReadEarly, clusters someone else holds are then not waited for (the
    // file answers; their claimant fills them). `backing` keeps the layer's
    // file open while the reply is spliced from it.
    const std::shared_ptr<BackingChain> backing = chain();
    const int source = backing ? backing->FileHolding(offset, length) : -1;
    ClaimedRun run(claims_, first, clusters, /*wait=*/source < 0);
    if (source >= 0) {
      ready(source);
      if (read_ahead_) read_ahead_->NoteRead(offset, length, /*cold=*/true);
      return FillAfterReply(run);
    }
    if (run.count() == clusters) {
      CORFS_RETURN_IF_ERROR(FillClaimed(run, {}));
      CountFault(run);
    }
  }
  // Partly local, or being filled by someone else (or just filled above):
  // fill what is missing, then answer from the data file.
  CORFS_RETURN_IF_ERROR(FillMissing(offset, length, /*wait=*/true, /*count_faults=*/true));
  ready(data_.fd());
  if (read_ahead_) read_ahead_->NoteRead(offset, length, /*cold=*/true);
  return Status::Ok();
}

Status Overlay::FillAfterReply(ClaimedRun& run) {
  if (run.count() > 0) {  // none when the reply's clusters were all someone else's to fill
    CountFault(run);
    const uint64_t bytes = ClusterEnd(run.first() + run.count() - 1) - ClusterStart(run.first());
    if (!fill_behind_ || !fill_behind_->Offer(run, bytes)) CORFS_RETURN_IF_ERROR(FillClaimed(run, {}));
  }
  return fill_behind_ ? fill_behind_->TakeFailure() : Status::Ok();
}

void Overlay::CountFault(const ClaimedRun& run) {
  cor_faults_.fetch_add(1, std::memory_order_relaxed);
  cor_bytes_.fetch_add(ClusterEnd(run.first() + run.count() - 1) - ClusterStart(run.first()),
                       std::memory_order_relaxed);
}

Status Overlay::FillMissing(uint64_t offset, uint64_t length, bool wait, bool count_faults) {
  if (length == 0) return Status::Ok();
  uint64_t cluster = offset >> cluster_bits_;
  const uint64_t last = (offset + length - 1) >> cluster_bits_;
  while (cluster <= last) {
    if (bitmap_.Test(cluster)) {
      cluster += bitmap_.RunLength(cluster, last - cluster + 1, true);
      continue;
    }
    ClaimedRun run(claims_, cluster, bitmap_.RunLength(cluster, last - cluster + 1, false), wait);
    if (run.count() == 0) {
      ++cluster;  // in use or just allocated: the other party fills it
      continue;
    }
    CORFS_RETURN_IF_ERROR(FillClaimed(run, {}));
    if (count_faults) CountFault(run);
    cluster += run.count();
  }
  return Status::Ok();
}

Status Overlay::FillClaimed(const ClaimedRun& run, std::span<char> out) {
  const uint64_t start = ClusterStart(run.first());
  const uint64_t end = ClusterEnd(run.first() + run.count() - 1);
  std::shared_ptr<BackingChain> backing = chain();
  // When the caller wants no data (a stream), bytes are copied in pieces of
  // at most this many. On a kernel without preemption (preempt=none, usual
  // on servers) a thread inside a long read or copy keeps its CPU until the
  // call returns, and a guest request woken meanwhile waits for it; small
  // pieces bound that wait.
  constexpr uint64_t kMaxPiece = 128 << 10;
  // A layer without a file to copy from (a server, a qcow2 image) is read
  // in requests of up to this many bytes, then stored in pieces: over a
  // network each request costs a round trip, and a worker with one small
  // request in flight would leave the link idle for most of it.
  constexpr uint64_t kMaxRequest = 8 << 20;
  std::unique_ptr<ScratchBuffer> scratch;
  uint64_t pos = start;
  while (pos < end) {
    BlockStatus status;
    size_t layer = 0;
    CORFS_RETURN_IF_ERROR(backing->GetBlockStatus(pos, end - pos, backing->depth(), &status, &layer));
    uint64_t length = std::min(status.length, end - pos);
    if (status.allocation != Allocation::kData) {
      if (!out.empty()) std::memset(out.data() + (pos - start), 0, length);
      CORFS_RETURN_IF_ERROR(data_.Punch(pos, length));
    } else if (!out.empty()) {
      // A guest read: the bytes go to the caller and into the overlay.
      std::span<char> piece = out.subspan(pos - start, length);
      CORFS_RETURN_IF_ERROR(backing->Read(pos, piece));
      CORFS_RETURN_IF_ERROR(data_.Store(pos, piece));
    } else {
      // A stream: the bytes are only stored, in the kernel when the layer is
      // a raw file, else through a scratch buffer; the whole run in pieces.
      const int source = backing->layer(layer).data_fd();
      const uint64_t run_end = pos + length;
      while (pos < run_end) {
        uint64_t piece = std::min(run_end - pos, kMaxPiece);
        const uint64_t copied = source >= 0 ? data_.CopyFrom(source, pos, piece) : 0;
        if (copied > 0) {
          piece = copied;
        } else {
          piece = std::min(run_end - pos, source >= 0 ? kMaxPiece : kMaxRequest);
          if (!scratch || scratch->span().size() < piece) {
            scratch = std::make_unique<ScratchBuffer>(std::min(source >= 0 ? kMaxPiece : kMaxRequest, end - start));
          }
          std::span<char> bytes = scratch->span().first(piece);
          CORFS_RETURN_IF_ERROR(backing->Read(pos, bytes));
          for (uint64_t at = 0; at < piece; at += kMaxPiece) {
            CORFS_RETURN_IF_ERROR(data_.Store(pos + at, bytes.subspan(at, std::min(kMaxPiece, piece - at))));
          }
        }
        pos += piece;
      }
      continue;
    }
    pos += length;
  }
  MarkAllocated(run.first(), run.count());
  return Status::Ok();
}

std::unique_ptr<WriteBehind> Overlay::OpenWriteBehind(uint64_t batch, uint64_t window) const {
  return WriteBehind::ForFile(data_.fd(), batch, window);
}

}  // namespace corfs::overlay
