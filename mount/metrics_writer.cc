#include "mount/metrics_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "common/file_io.h"
#include "common/unique_fd.h"

namespace corfs::mount {

MetricsWriter::MetricsWriter(std::string path, std::chrono::milliseconds interval, Collect collect,
                             std::shared_ptr<spdlog::logger> log)
    : path_(std::move(path)), interval_(interval), collect_(std::move(collect)), log_(std::move(log)) {}

Status MetricsWriter::Start(const std::string& path, std::chrono::milliseconds interval, Collect collect,
                            std::shared_ptr<spdlog::logger> log, std::unique_ptr<MetricsWriter>* out) {
  std::unique_ptr<MetricsWriter> writer(new MetricsWriter(path, interval, std::move(collect), std::move(log)));
  Status first = writer->Write(writer->collect_());
  if (!first.ok()) return first.WithContext("metrics file");
  writer->thread_ = std::thread([w = writer.get()] { w->Loop(); });
  *out = std::move(writer);
  return Status::Ok();
}

void MetricsWriter::Loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    Status written = Write(collect_());
    if (!written.ok()) log_->warn("metrics file: {}", written.message());
    lock.lock();
  }
}

void MetricsWriter::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

MetricsWriter::~MetricsWriter() { Stop(); }

Status MetricsWriter::Write(const MetricsSnapshot& snapshot) const {
  return ReplaceFileAtomically(path_, FormatMetrics(snapshot));
}

}  // namespace corfs::mount
