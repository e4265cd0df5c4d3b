#include "mount/metrics.h"

#include <functional>
#include <sstream>

namespace corfs::mount {

namespace {

// A label value escaped as the format asks: backslash, double quote, newline.
std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double value) {
  std::ostringstream text;
  text.precision(17);
  text << value;
  return text.str();
}

// One metric family: its header, then one sample per item.
class Family {
 public:
  Family(std::string* out, const char* name, const char* type, const char* help) : out_(out), name_(name) {
    *out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& labels, double value) {
    *out_ += name_;
    if (!labels.empty()) *out_ += "{" + labels + "}";
    *out_ += " " + Number(value) + "\n";
  }

 private:
  std::string* out_;
  const char* name_;
};

std::string ImageLabel(const ImageMetrics& image) { return "image=\"" + Escape(image.name) + "\""; }

std::string JobLabels(const JobMetrics& job) {
  return "job=\"" + Escape(job.id) + "\",image=\"" + Escape(job.image) + "\",type=\"" + Escape(job.type) + "\"";
}

const char* const kIoNames[] = {"read", "write", "flush", "discard"};

// One metric family whose samples are read off a T (an image, its I/O
// counts of one kind, a job).
template <typename T>
struct Metric {
  const char* name;
  const char* help;
  std::function<double(const T&)> value;
};

void FormatImages(const std::vector<ImageMetrics>& images, std::string* out) {
  const Metric<ImageMetrics> gauges[] = {
      {"corfs_image_virtual_bytes", "Virtual size of the disk.",
       [](const ImageMetrics& i) { return static_cast<double>(i.virtual_bytes); }},
      {"corfs_image_local_bytes", "Bytes of the disk the overlay holds (allocated locally).",
       [](const ImageMetrics& i) { return static_cast<double>(i.local_bytes); }},
      {"corfs_image_standalone", "1 when the overlay no longer needs a backing image.",
       [](const ImageMetrics& i) { return i.standalone ? 1.0 : 0.0; }},
  };
  for (const auto& gauge : gauges) {
    Family family(out, gauge.name, "gauge", gauge.help);
    for (const ImageMetrics& image : images) family.Sample(ImageLabel(image), gauge.value(image));
  }
  const Metric<IoCounts> counters[] = {
      {"corfs_image_io_operations_total", "Guest requests served, by operation.",
       [](const IoCounts& c) { return static_cast<double>(c.operations); }},
      {"corfs_image_io_bytes_total", "Bytes of the guest requests served, by operation.",
       [](const IoCounts& c) { return static_cast<double>(c.bytes); }},
      {"corfs_image_io_seconds_total", "Time spent serving guest requests, by operation.",
       [](const IoCounts& c) { return static_cast<double>(c.total_time_ns) / 1e9; }},
      {"corfs_image_io_errors_total", "Guest requests that failed, by operation.",
       [](const IoCounts& c) { return static_cast<double>(c.failed); }},
  };
  for (const auto& counter : counters) {
    Family family(out, counter.name, "counter", counter.help);
    for (const ImageMetrics& image : images) {
      for (size_t kind = 0; kind < kIoKindCount; ++kind) {
        family.Sample(ImageLabel(image) + ",op=\"" + kIoNames[kind] + "\"", counter.value(image.io[kind]));
      }
    }
  }
  Family faults(out, "corfs_image_cor_faults_total", "counter",
                "Copy-on-read faults: runs of clusters guest reads "
                "fetched from the backing chain.");
  for (const ImageMetrics& image : images) faults.Sample(ImageLabel(image), static_cast<double>(image.cor_faults));
  Family bytes(out, "corfs_image_cor_bytes_total", "counter", "Bytes guest reads fetched from the backing chain.");
  for (const ImageMetrics& image : images) bytes.Sample(ImageLabel(image), static_cast<double>(image.cor_bytes));
}

void FormatJobs(const std::vector<JobMetrics>& jobs, std::string* out) {
  const Metric<JobMetrics> gauges[] = {
      {"corfs_job_offset_bytes", "Bytes of the job's range done.",
       [](const JobMetrics& j) { return static_cast<double>(j.offset); }},
      {"corfs_job_length_bytes", "Bytes of the job's range.",
       [](const JobMetrics& j) { return static_cast<double>(j.length); }},
      {"corfs_job_rate_bytes_per_second", "Measured progress of the job.", [](const JobMetrics& j) { return j.rate; }},
      {"corfs_job_speed_limit_bytes_per_second", "Speed limit of the job (0: none).",
       [](const JobMetrics& j) { return static_cast<double>(j.speed); }},
      {"corfs_job_paused", "1 while the job is paused (by a user or stopped on an error).",
       [](const JobMetrics& j) { return j.state == "paused" ? 1.0 : 0.0; }},
      {"corfs_job_stopped_on_error", "1 while the job is stopped on an I/O error (on-error stop).",
       [](const JobMetrics& j) { return j.stopped_on_error ? 1.0 : 0.0; }},
  };
  for (const auto& gauge : gauges) {
    Family family(out, gauge.name, "gauge", gauge.help);
    for (const JobMetrics& job : jobs) family.Sample(JobLabels(job), gauge.value(job));
  }
}

}  // namespace

std::vector<ImageMetrics> CollectImageMetrics(const ImageTable& table) {
  std::vector<ImageMetrics> images;
  for (const std::shared_ptr<MountedImage>& image_ptr : table.Snapshot()) {
    const MountedImage& mounted = *image_ptr;
    const overlay::Overlay& ovl = *mounted.overlay;
    ImageMetrics image;
    image.name = mounted.name();
    image.virtual_bytes = ovl.size();
    image.local_bytes = ovl.allocated_bytes();
    image.standalone = ovl.header().standalone;
    for (size_t kind = 0; kind < kIoKindCount; ++kind) image.io[kind] = mounted.io_stats.Get(static_cast<IoKind>(kind));
    const overlay::Overlay::CopyOnReadCounts cor = ovl.copy_on_read_counts();
    image.cor_faults = cor.faults;
    image.cor_bytes = cor.bytes;
    images.push_back(std::move(image));
  }
  return images;
}

std::string FormatMetrics(const MetricsSnapshot& snapshot) {
  std::string out;
  Family(&out, "corfs_up", "gauge", "1 while the mount serves; 0 in the file written at unmount.")
      .Sample("", snapshot.up ? 1 : 0);
  Family(&out, "corfs_images", "gauge", "Images of the mount.").Sample("", static_cast<double>(snapshot.images.size()));
  FormatImages(snapshot.images, &out);
  Family(&out, "corfs_jobs", "gauge", "Background jobs of the mount.")
      .Sample("", static_cast<double>(snapshot.jobs.size()));
  FormatJobs(snapshot.jobs, &out);
  return out;
}

}  // namespace corfs::mount
