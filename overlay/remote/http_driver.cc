#include "overlay/remote/http_driver.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <string_view>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include "overlay/remote/http_connection.h"

namespace corfs::overlay {

namespace {

using std::chrono::milliseconds;

// What a Content-Range header says: "bytes FIRST-LAST/TOTAL" or, with a
// 416, "bytes */TOTAL"; TOTAL may be "*" (unknown).
struct ContentRange {
  bool has_range = false;
  uint64_t first = 0;
  uint64_t last = 0;
  bool has_total = false;
  uint64_t total = 0;
};

bool ParseNumber(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

bool ParseContentRange(const HttpHeaders& headers, ContentRange* out) {
  auto it = headers.find("content-range");
  if (it == headers.end()) return false;
  std::string_view value = it->second;
  if (!value.starts_with("bytes ")) return false;
  value.remove_prefix(6);
  const size_t slash = value.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view range = value.substr(0, slash);
  const std::string_view total = value.substr(slash + 1);
  ContentRange parsed;
  if (range != "*") {
    const size_t dash = range.find('-');
    if (dash == std::string_view::npos || !ParseNumber(range.substr(0, dash), &parsed.first) ||
        !ParseNumber(range.substr(dash + 1), &parsed.last) || parsed.last < parsed.first) {
      return false;
    }
    parsed.has_range = true;
  }
  if (total != "*") {
    if (!ParseNumber(total, &parsed.total)) return false;
    parsed.has_total = true;
  }
  *out = parsed;
  return true;
}

std::string Header(const HttpHeaders& headers, const std::string& name) {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

// The server's identity of this version of the file.
std::string VersionTagOf(const HttpHeaders& headers) {
  if (std::string etag = Header(headers, "etag"); !etag.empty()) return "etag:" + etag;
  if (std::string modified = Header(headers, "last-modified"); !modified.empty()) return "last-modified:" + modified;
  return "";
}

// Failures of the connection, not of the answer: worth a new connection.
bool IsTransientCurlError(int code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
  }
}

// Retry-After: seconds, or an HTTP date.
milliseconds RetryAfter(const HttpHeaders& headers) {
  const std::string value = Header(headers, "retry-after");
  if (value.empty()) return milliseconds(0);
  uint64_t seconds = 0;
  if (ParseNumber(value, &seconds)) return std::chrono::seconds(std::min<uint64_t>(seconds, 86400));
  const time_t when = curl_getdate(value.c_str(), nullptr);
  const time_t now = std::time(nullptr);
  if (when < 0 || when <= now) return milliseconds(0);
  return std::chrono::seconds(std::min<time_t>(when - now, 86400));
}

std::string RangeText(uint64_t first, uint64_t last) { return std::to_string(first) + "-" + std::to_string(last); }

// What one try of a request came to.
struct Outcome {
  Status status;
  bool transient = false;       // another try, on a new connection, may do
  milliseconds retry_after{0};  // the server asked for this wait
  static Outcome Done() { return {}; }
  static Outcome Fail(Status status) { return {std::move(status), false, milliseconds(0)}; }
  static Outcome Retry(std::string why, milliseconds after = milliseconds(0)) {
    return {Status::Error(EIO, std::move(why)), true, after};
  }
};

// A reply that is not a usable 206: what the server did, in words, and
// whether another try may do better.
Outcome JudgeFailure(const HttpReply& reply, const std::string& request) {
  const std::string prefix = request + ": ";
  if (!reply.refused.empty()) return Outcome::Fail(Status::Error(EIO, prefix + reply.refused + "; nothing was used"));
  const long status = reply.status;
  if (status == 0 || (status == 206 && reply.curl_code != CURLE_OK)) {
    const std::string what = prefix + reply.curl_error;
    return IsTransientCurlError(reply.curl_code) ? Outcome::Retry(what) : Outcome::Fail(Status::Error(EIO, what));
  }
  const std::string answered = prefix + "the server answered HTTP " + std::to_string(status);
  if (status == 429 || status >= 500) return Outcome::Retry(answered, RetryAfter(reply.headers));
  if (status == 200) {
    return Outcome::Fail(Status::Error(
        EIO, answered + " (the whole file) to a range request: it ignores Range, so corfs cannot read from it; "
                        "nothing was used"));
  }
  if (status == 412) {
    return Outcome::Fail(
        Status::Error(EIO, answered + " (If-Match failed): the image changed on the server since it was opened"));
  }
  if (status == 404 || status == 410) return Outcome::Fail(Status::Error(ENOENT, answered + ": no such file"));
  if (status == 401 || status == 403) {
    return Outcome::Fail(Status::Error(EACCES, answered + ": access refused (check the credentials)"));
  }
  return Outcome::Fail(Status::Error(EIO, answered));
}

class HttpDriver final : public BlockDriver {
 public:
  HttpDriver(std::unique_ptr<HttpConnectionPool> pool, const RemoteOptions& options)
      : pool_(std::move(pool)),
        retries_(options.retries),
        backoff_(options.backoff),
        max_backoff_(options.max_backoff) {}

  // Learns the size and version tag (one range request).
  Status Start() {
    CORFS_RETURN_IF_ERROR(Probe(&size_, &version_tag_));
    // A strong ETag is sent as If-Match, so a server that changed the file
    // answers 412 instead of a range of the new one. A weak one
    // ("W/...") never matches If-Match: its value is checked instead.
    if (version_tag_.starts_with("etag:") && !version_tag_.starts_with("etag:W/")) {
      if_match_ = {"If-Match: " + version_tag_.substr(5)};
    }
    return Status::Ok();
  }

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return pool_->url(); }
  std::string format() const override { return "raw"; }
  std::string version_tag() const override { return version_tag_; }

  Status Read(uint64_t offset, std::span<char> buf) override {
    const uint64_t inside = offset >= size_ ? 0 : std::min<uint64_t>(buf.size(), size_ - offset);
    std::memset(buf.data() + inside, 0, buf.size() - inside);  // past the end: zeros
    if (inside == 0) return Status::Ok();
    return ReadRange(offset, buf.first(inside));
  }
  Status Write(uint64_t /*offset*/, std::span<const char> /*data*/) override { return ReadOnly(); }
  Status Flush() override { return Status::Ok(); }
  Status Discard(uint64_t /*offset*/, uint64_t /*length*/) override { return ReadOnly(); }
  Status GetBlockStatus(uint64_t /*offset*/, uint64_t length, BlockStatus* out) override {
    *out = {Allocation::kData, length};  // HTTP has no holes
    return Status::Ok();
  }

  Status CheckUnchanged() const override {
    uint64_t size = 0;
    std::string tag;
    CORFS_RETURN_IF_ERROR(Probe(&size, &tag));
    if (size != size_) {
      return Status::Error(EIO, path() + " now has " + std::to_string(size) + " bytes, not the " +
                                    std::to_string(size_) + " it had when opened: the image changed on the server");
    }
    if (!tag.empty() && tag != version_tag_) {
      return Status::Error(EIO, path() + " is now " + tag + ", not " + version_tag_ +
                                    " as when opened: the image changed on the server");
    }
    return Status::Ok();
  }

 private:
  Status ReadOnly() const { return Status::Error(EROFS, path() + " is read-only (an image on an HTTP server)"); }
  Status ReadRange(uint64_t offset, std::span<char> dest) const;
  Status Probe(uint64_t* size, std::string* tag) const;
  std::string CheckRange(const HttpHeaders& headers, uint64_t first, uint64_t last) const;
  // Runs `attempt` until it is done or fails for good, or the tries run out.
  Status WithRetries(const std::function<Outcome(bool fresh)>& attempt) const;

  std::unique_ptr<HttpConnectionPool> pool_;
  const unsigned retries_;
  const milliseconds backoff_;
  const milliseconds max_backoff_;
  uint64_t size_ = 0;        // set by Start, then constant
  std::string version_tag_;  // set by Start, then constant
  std::vector<std::string> if_match_;
};

// Why a 206 for [first, last] is not that range of this version of the
// file; "" when it is.
std::string HttpDriver::CheckRange(const HttpHeaders& headers, uint64_t first, uint64_t last) const {
  ContentRange range;
  if (!ParseContentRange(headers, &range) || !range.has_range) {
    return "the server's 206 has no usable Content-Range ('" + Header(headers, "content-range") + "')";
  }
  if (range.has_total && range.total != size_) {
    return "the server says the file has " + std::to_string(range.total) + " bytes, not the " + std::to_string(size_) +
           " it had when opened: the image changed on the server";
  }
  if (range.first != first || range.last != last || !range.has_total) {
    return "the server answered with bytes " + Header(headers, "content-range").substr(6) + " to a request for " +
           RangeText(first, last) + "/" + std::to_string(size_);
  }
  const std::string tag = VersionTagOf(headers);
  if (!tag.empty() && !version_tag_.empty() && tag != version_tag_ &&
      tag.substr(0, tag.find(':')) == version_tag_.substr(0, version_tag_.find(':'))) {
    return "the server now says " + tag + ", not " + version_tag_ + " as when opened: the image changed on the server";
  }
  return "";
}

Status HttpDriver::ReadRange(uint64_t offset, std::span<char> dest) const {
  const uint64_t first = offset;
  const uint64_t last = offset + dest.size() - 1;
  const std::string request = path() + ": GET bytes " + RangeText(first, last);
  const HttpBodyCheck check = [&](const HttpHeaders& headers) { return CheckRange(headers, first, last); };
  return WithRetries([&](bool fresh) {
    const HttpReply reply = pool_->Get(first, last, if_match_, check, dest, fresh);
    if (reply.status != 206 || !reply.transferred || !reply.refused.empty()) return JudgeFailure(reply, request);
    if (reply.body_bytes != dest.size()) {
      return Outcome::Fail(Status::Error(EIO, request + ": the server sent " + std::to_string(reply.body_bytes) +
                                                  " bytes of the " + std::to_string(dest.size()) +
                                                  " its Content-Range promised (a short body); nothing was used"));
    }
    return Outcome::Done();
  });
}

Status HttpDriver::Probe(uint64_t* size, std::string* tag) const {
  const std::string request = path() + ": GET bytes 0-0";
  std::array<char, 1> byte{};
  ContentRange range;
  const HttpBodyCheck check = [&](const HttpHeaders& headers) -> std::string {
    if (!ParseContentRange(headers, &range) || !range.has_range || range.first != 0 || range.last != 0 ||
        !range.has_total) {
      return "the server's 206 has no Content-Range 0-0/SIZE ('" + Header(headers, "content-range") +
             "'), so the file's size is unknown";
    }
    return "";
  };
  return WithRetries([&](bool fresh) {
    const HttpReply reply = pool_->Get(0, 0, {}, check, byte, fresh);
    // An empty file has no byte 0: 416, with its size as "bytes */0".
    ContentRange empty;
    if (reply.status == 416 && ParseContentRange(reply.headers, &empty) && empty.has_total && empty.total == 0) {
      *size = 0;
      *tag = VersionTagOf(reply.headers);
      return Outcome::Done();
    }
    if (reply.status != 206 || !reply.transferred || !reply.refused.empty()) return JudgeFailure(reply, request);
    if (reply.body_bytes != 1) {
      return Outcome::Fail(Status::Error(EIO, request + ": the server sent no byte for its range 0-0"));
    }
    *size = range.total;
    *tag = VersionTagOf(reply.headers);
    return Outcome::Done();
  });
}

Status HttpDriver::WithRetries(const std::function<Outcome(bool fresh)>& attempt) const {
  milliseconds backoff = backoff_;
  bool fresh = false;
  for (unsigned tried = 1;; ++tried) {
    Outcome outcome = attempt(fresh);
    if (!outcome.transient) return outcome.status;
    if (tried > retries_) {
      return Status::Error(EIO, outcome.status.message() + " (gave up after " + std::to_string(tried) + " tries)");
    }
    const milliseconds wait = std::min(std::max(backoff, outcome.retry_after), max_backoff_);
    spdlog::warn("{} (try {} of {}); trying again in {} ms on a new connection", outcome.status.message(), tried,
                 retries_ + 1, wait.count());
    std::this_thread::sleep_for(wait);
    backoff = std::min(backoff * 2, max_backoff_);
    fresh = true;
  }
}

}  // namespace

Status OpenHttpImage(const std::string& url, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out) {
  std::unique_ptr<HttpConnectionPool> pool;
  CORFS_RETURN_IF_ERROR(HttpConnectionPool::Create(url, options, &pool));
  auto driver = std::make_unique<HttpDriver>(std::move(pool), options);
  CORFS_RETURN_IF_ERROR(driver->Start());
  *out = std::move(driver);
  return Status::Ok();
}

}  // namespace corfs::overlay
