#include "overlay/remote/http_connection.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <curl/curl.h>

#include "common/trim.h"
#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {

// curl_global_init is not thread-safe and must run before any other curl
// call: a function-local static runs it once, under the compiler's guard,
// however many threads open images at once. It is never undone (the
// process ends with it).
Status InitCurlOnce() {
  static const CURLcode kInit = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (kInit != CURLE_OK) return Status::Error(EIO, std::string("libcurl: ") + curl_easy_strerror(kInit));
  return Status::Ok();
}

// A receive buffer larger than curl's 16 KiB default: fewer callbacks for
// the chunk-sized ranges a stream asks for.
constexpr long kReceiveBuffer = 256 * 1024;
constexpr long kMaxRedirects = 5;
// A request may take request_timeout for each this many bytes it asks for
// (so large ranges on a slow link are not cut short), and may not stall
// (send nothing) for request_timeout.
constexpr uint64_t kBytesPerTimeout = 16 * 1024 * 1024;

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

CurlString UrlPart(CURLU* url, CURLUPart part, unsigned flags) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, flags) != CURLUE_OK) return nullptr;
  return CurlString(text);
}

// Splits `url` into the URL without credentials and the credentials in it.
Status SplitCredentials(const std::string& url, std::string* clean,
                        std::optional<RemoteOptions::Credentials>* credentials) {
  std::unique_ptr<CURLU, UrlDeleter> parsed(curl_url());
  if (!parsed) return Status::Error(ENOMEM, "libcurl: out of memory");
  if (CURLUcode code = curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0); code != CURLUE_OK) {
    return Status::Invalid(RedactCredentials(url) + ": not a URL libcurl accepts (" + curl_url_strerror(code) + ")");
  }
  CurlString user = UrlPart(parsed.get(), CURLUPART_USER, CURLU_URLDECODE);
  CurlString password = UrlPart(parsed.get(), CURLUPART_PASSWORD, CURLU_URLDECODE);
  if (user || password) {
    *credentials = RemoteOptions::Credentials{user ? user.get() : "", password ? password.get() : ""};
    curl_url_set(parsed.get(), CURLUPART_USER, nullptr, 0);
    curl_url_set(parsed.get(), CURLUPART_PASSWORD, nullptr, 0);
  }
  CurlString whole = UrlPart(parsed.get(), CURLUPART_URL, 0);
  if (!whole) return Status::Invalid(RedactCredentials(url) + ": not a URL libcurl accepts");
  *clean = whole.get();
  return Status::Ok();
}

// One request's state, which curl's callbacks fill in.
struct Transfer {
  CURL* easy = nullptr;
  const HttpBodyCheck* check = nullptr;
  std::span<char> dest;
  HttpReply* reply = nullptr;
  bool decided = false;  // the first body bytes came and were judged
  bool take = false;
};

// A header line as curl hands it: a status line starts a response (a
// redirect's headers are forgotten), else "Name: value".
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::string_view line = TrimSpace(std::string_view(data, size * count));
  if (line.starts_with("HTTP/")) {
    transfer->reply->headers.clear();
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string name(TrimSpace(line.substr(0, colon)));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    transfer->reply->headers[name] = std::string(TrimSpace(line.substr(colon + 1)));
  }
  return size * count;
}

// The body: judged before its first byte is written; returning less than
// was given stops the transfer (CURLE_WRITE_ERROR).
size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  HttpReply& reply = *transfer->reply;
  const size_t length = size * count;
  if (!transfer->decided) {
    transfer->decided = true;
    long status = 0;
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 206) {
      reply.refused = (*transfer->check)(reply.headers);
      transfer->take = reply.refused.empty();
    }
  }
  if (!transfer->take) return 0;
  if (length > transfer->dest.size() - reply.body_bytes) {
    reply.refused = "it sent more than the " + std::to_string(transfer->dest.size()) + " bytes asked for";
    transfer->take = false;
    return 0;
  }
  std::memcpy(transfer->dest.data() + reply.body_bytes, data, length);
  reply.body_bytes += length;
  return length;
}

}  // namespace

// The share object: DNS answers and TLS sessions, under one lock per kind
// of data, as curl asks. The connection cache is not shared: libcurl does
// not support sharing it between threads; each handle keeps its own
// connection instead.
struct HttpConnectionPool::Share {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  ~Share() {
    if (share != nullptr) curl_share_cleanup(share);
  }
  static void Lock(CURL* /*easy*/, curl_lock_data data, curl_lock_access /*access*/, void* user) {
    static_cast<Share*>(user)->locks[data].lock();
  }
  static void Unlock(CURL* /*easy*/, curl_lock_data data, void* user) {
    static_cast<Share*>(user)->locks[data].unlock();
  }
};

struct HttpConnectionPool::Handle {
  CURL* easy = nullptr;
  std::array<char, CURL_ERROR_SIZE> error{};

  ~Handle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

// One handle, leased for one request.
class HttpConnectionPool::Lease {
 public:
  explicit Lease(HttpConnectionPool& pool) : pool_(pool) {
    std::unique_lock lock(pool_.mu_);
    pool_.free_changed_.wait(lock, [&] { return !pool_.free_.empty(); });
    handle_ = pool_.free_.back();
    pool_.free_.pop_back();
  }
  ~Lease() {
    {
      std::lock_guard lock(pool_.mu_);
      pool_.free_.push_back(handle_);
    }
    pool_.free_changed_.notify_one();
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Handle& operator*() const { return *handle_; }

 private:
  HttpConnectionPool& pool_;
  Handle* handle_ = nullptr;
};

HttpConnectionPool::HttpConnectionPool(std::string request_url, std::string redacted_url, const RemoteOptions& options)
    : request_url_(std::move(request_url)),
      redacted_url_(std::move(redacted_url)),
      connect_timeout_(options.connect_timeout),
      request_timeout_(options.request_timeout),
      netrc_file_(options.credentials_file),
      ca_file_(options.ca_file),
      share_(std::make_unique<Share>()) {}

HttpConnectionPool::~HttpConnectionPool() {
  handles_.clear();  // before the share they use
}

Status HttpConnectionPool::Create(const std::string& url, const RemoteOptions& options,
                                  std::unique_ptr<HttpConnectionPool>* out) {
  CORFS_RETURN_IF_ERROR(InitCurlOnce());
  std::string clean;
  std::optional<RemoteOptions::Credentials> credentials;
  CORFS_RETURN_IF_ERROR(SplitCredentials(url, &clean, &credentials));
  const std::string redacted = RedactCredentials(url);
  std::unique_ptr<HttpConnectionPool> pool(new HttpConnectionPool(clean, redacted, options));
  if (!credentials) {
    if (auto it = options.uri_credentials.find(redacted); it != options.uri_credentials.end()) {
      credentials = it->second;
    }
  }
  pool->credentials_ = std::move(credentials);

  Share& share = *pool->share_;
  share.share = curl_share_init();
  if (share.share == nullptr) return Status::Error(ENOMEM, "libcurl: out of memory");
  curl_share_setopt(share.share, CURLSHOPT_LOCKFUNC, &Share::Lock);
  curl_share_setopt(share.share, CURLSHOPT_UNLOCKFUNC, &Share::Unlock);
  curl_share_setopt(share.share, CURLSHOPT_USERDATA, &share);
  curl_share_setopt(share.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

  for (unsigned i = 0; i < std::max(1U, options.connections); ++i) CORFS_RETURN_IF_ERROR(pool->AddHandle());
  *out = std::move(pool);
  return Status::Ok();
}

Status HttpConnectionPool::AddHandle() {
  auto handle = std::make_unique<Handle>();
  handle->easy = curl_easy_init();
  if (handle->easy == nullptr) return Status::Error(ENOMEM, "libcurl: out of memory");
  CURL* easy = handle->easy;
  bool ok = true;
  auto set = [&](CURLoption option, auto value) { ok = ok && curl_easy_setopt(easy, option, value) == CURLE_OK; };
  set(CURLOPT_URL, request_url_.c_str());
  set(CURLOPT_SHARE, share_->share);
  set(CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  set(CURLOPT_VERBOSE, 0L);
  set(CURLOPT_NOPROGRESS, 1L);
  set(CURLOPT_ERRORBUFFER, handle->error.data());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // Object stores and CDNs redirect; credentials are not sent on to
  // another host (CURLOPT_UNRESTRICTED_AUTH stays off).
  set(CURLOPT_FOLLOWLOCATION, 1L);
  set(CURLOPT_MAXREDIRS, kMaxRedirects);
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout_.count()));
  set(CURLOPT_LOW_SPEED_LIMIT, 1L);
  set(CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>((request_timeout_.count() + 999) / 1000)));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_BUFFERSIZE, kReceiveBuffer);
  set(CURLOPT_USERAGENT, "corfs");
  // TLS verification is always on; a CA file adds the authority to trust.
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file_.empty()) set(CURLOPT_CAINFO, ca_file_.c_str());
  if (credentials_) {
    set(CURLOPT_USERNAME, credentials_->user.c_str());
    set(CURLOPT_PASSWORD, credentials_->password.c_str());
  } else if (!netrc_file_.empty()) {
    set(CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
    set(CURLOPT_NETRC_FILE, netrc_file_.c_str());
  }
  set(CURLOPT_HEADERFUNCTION, &OnHeader);
  set(CURLOPT_WRITEFUNCTION, &OnBody);
  if (!ok) return Status::Error(EIO, redacted_url_ + ": libcurl refused an option (too old a libcurl?)");
  free_.push_back(handle.get());
  handles_.push_back(std::move(handle));
  return Status::Ok();
}

HttpReply HttpConnectionPool::Get(uint64_t first, uint64_t last, const std::vector<std::string>& extra_headers,
                                  const HttpBodyCheck& check, std::span<char> dest, bool fresh) {
  HttpReply reply;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const std::string& header : extra_headers) {
    curl_slist* list = curl_slist_append(headers.get(), header.c_str());
    if (list == nullptr) {
      reply.curl_code = CURLE_OUT_OF_MEMORY;
      reply.curl_error = curl_easy_strerror(CURLE_OUT_OF_MEMORY);
      return reply;
    }
    (void)headers.release();
    headers.reset(list);
  }
  const std::string range = std::to_string(first) + "-" + std::to_string(last);
  const uint64_t parts = 1 + (last - first) / kBytesPerTimeout;
  const long timeout_ms = static_cast<long>(request_timeout_.count()) * static_cast<long>(parts);

  Lease lease(*this);
  Handle& handle = *lease;
  CURL* easy = handle.easy;
  Transfer transfer{easy, &check, dest, &reply};
  curl_easy_setopt(easy, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  handle.error[0] = '\0';
  const CURLcode code = curl_easy_perform(easy);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);  // the list dies with this call
  reply.curl_code = code;
  reply.curl_error = handle.error[0] != '\0' ? handle.error.data() : curl_easy_strerror(code);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply.status);
  reply.transferred = code == CURLE_OK;
  return reply;
}

}  // namespace corfs::overlay
