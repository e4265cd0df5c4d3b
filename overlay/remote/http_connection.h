#pragma once
// HttpConnectionPool: the libcurl side of the HTTP protocol driver. It owns
// `connections` easy handles for one URL, each keeping its own connection
// alive, and a share object for what may be shared between threads (DNS
// answers and TLS sessions). It sends one kind of request, a GET of a byte
// range, and hands back what the server said: status, headers and how many
// bytes of the body it wrote. Judging the answer (is it the range asked for,
// is it the same file, is it worth another try) is the driver's
// (http_driver.cc); the pool writes no body it was not told to accept.
//
// libcurl does the protocol; the pool only sets options and reads the
// header lines curl hands it. curl never prints (no VERBOSE, no progress
// meter), and no message the pool makes holds a credential: the URL it
// names is RedactCredentials'd and curl is given credentials apart from it.
//
// Threading: Get may be called from any number of threads at once; each
// call leases one easy handle (waiting while all are in use), which only
// that thread uses until the call returns. The share object's locks are
// the pool's own.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Header names lower-cased, of the last response (after redirects).
using HttpHeaders = std::map<std::string, std::string>;

// What one GET did.
struct HttpReply {
  bool transferred = false;  // curl finished the transfer (whatever the status)
  int curl_code = 0;         // CURLcode; 0 = OK
  std::string curl_error;    // curl's words for curl_code
  long status = 0;           // HTTP status of the last response; 0 = none came
  HttpHeaders headers;
  // Why the body was not taken ("" = it was, or none came): the check
  // refused it, or it was longer than the buffer.
  std::string refused;
  uint64_t body_bytes = 0;  // bytes of the body written to the buffer
};

// Called once a 206 response's headers are in, before any of its body is
// written: "" takes the body, anything else is why not (the transfer stops).
using HttpBodyCheck = std::function<std::string(const HttpHeaders&)>;

class HttpConnectionPool {
 public:
  // For the resource `url` (credentials in it are taken out and given to
  // curl apart; the URL curl sees has none).
  static Status Create(const std::string& url, const RemoteOptions& options, std::unique_ptr<HttpConnectionPool>* out);
  ~HttpConnectionPool();
  HttpConnectionPool(const HttpConnectionPool&) = delete;
  HttpConnectionPool& operator=(const HttpConnectionPool&) = delete;

  // GET bytes [first, last] with `extra_headers` ("If-Match: ..."). A 206
  // body that `check` accepts is written into `dest` (no more than
  // dest.size() bytes: more is refused); any other body is not read beyond
  // its first bytes. `fresh` asks for a new connection (after a failure of
  // the last one).
  HttpReply Get(uint64_t first, uint64_t last, const std::vector<std::string>& extra_headers,
                const HttpBodyCheck& check, std::span<char> dest, bool fresh);

  // The URL without credentials, for messages.
  const std::string& url() const { return redacted_url_; }

 private:
  struct Handle;
  struct Share;
  class Lease;

  HttpConnectionPool(std::string request_url, std::string redacted_url, const RemoteOptions& options);
  Status AddHandle();

  const std::string request_url_;  // what curl fetches: no credentials
  const std::string redacted_url_;
  const std::chrono::milliseconds connect_timeout_;
  const std::chrono::milliseconds request_timeout_;
  std::optional<RemoteOptions::Credentials> credentials_;  // this URL's, if any
  const std::string netrc_file_;                           // else these, if named
  const std::string ca_file_;
  std::unique_ptr<Share> share_;

  std::mutex mu_;
  std::condition_variable free_changed_;
  std::vector<std::unique_ptr<Handle>> handles_;  // all of them
  std::vector<Handle*> free_;                     // not leased; guarded by mu_
};

}  // namespace corfs::overlay
