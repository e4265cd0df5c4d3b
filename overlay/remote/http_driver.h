#pragma once
// HTTP(S) backing images, through libcurl: a file on a server that answers
// range requests (nginx, object stores, CDNs). The driver is a protocol
// driver: it presents the file's bytes; a format driver (raw, qcow2) reads
// through it.
//
// What the server says is checked, because a wrong answer would be copied
// into an overlay for good: every read is a GET of the range asked for,
// which must come back as a 206 whose Content-Range is exactly that range
// of a file of the size seen at open, with the same ETag (sent as If-Match
// when it is a strong one) or Last-Modified; its body must be as long as
// the range. A 200 (the server ignored Range), another range or size, a
// short body or a changed ETag is EIO, naming the URL (without
// credentials) and what the server did, and nothing of the body is handed
// on. Transient failures (a refused or reset connection, a timeout, a 5xx,
// a 429 whose Retry-After is honoured up to max_backoff) are tried again on
// a new connection with a doubling back-off (RemoteOptions); when the tries
// run out the read is EIO, and a later read tries afresh.
//
// HTTP has no holes: block status is all data. version_tag() is the ETag
// ("etag:...") or else Last-Modified ("last-modified:...") seen at open.

#include <memory>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Opens the file at `url` (http:// or https://) read-only: one range
// request learns its size and version tag, and refuses a server that does
// not answer ranges.
Status OpenHttpImage(const std::string& url, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out);

}  // namespace corfs::overlay
