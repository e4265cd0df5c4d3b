#!/usr/bin/env python3
"""An HTTP range server for the tests, which can be told to misbehave.

    http_test_server.py FILE PORT_FILE MODE_FILE [LOG_FILE [CERT KEY]]

Serves FILE (at any path) on 127.0.0.1, on a free port it writes to
PORT_FILE. Each request reads MODE_FILE (missing or empty = "ok"), one
word and its arguments:

  ok                  honest: 206 for a Range, with a strong ETag and
                      Last-Modified; If-Match that differs -> 412
  ignore-range        200 with the whole file, whatever the Range
  short               206 with the right Content-Range and a body (and
                      Content-Length) half as long
  wrong-range         206 for the range 512 bytes further on
  wrong-size          206 whose Content-Range total is 4096 bytes more
  change-etag         206 with another ETag, If-Match ignored (a liar)
  modified            an honest server after the file changed: another
                      ETag, and If-Match with the old one -> 412
  fail N CODE [SECS]  the next N requests get CODE (503, 429, ...), with
                      Retry-After: SECS if given; then "ok"
  reset N             the next N requests get their connection closed
                      unanswered; then "ok"
  stall SECS          wait SECS before answering each request
  auth USER PASS      honest, but only with Basic credentials USER:PASS
                      (else 401)

With CERT and KEY (PEM files) it speaks HTTPS.

LOG_FILE, if given, gets a line per request: "METHOD RANGE MODE", and
"+auth" when the request carried an Authorization header.
"""

import base64
import http.server
import os
import socketserver
import ssl
import sys
import threading
import time

FILE, PORT_FILE, MODE_FILE = sys.argv[1:4]
LOG_FILE = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
CERT, KEY = sys.argv[5:7] if len(sys.argv) > 6 else (None, None)
ETAG = '"corfs-test-v1"'
OTHER_ETAG = '"corfs-test-v2"'
LAST_MODIFIED = "Wed, 02 Dec 2026 06:00:00 GMT"
lock = threading.Lock()
counted = {"key": None, "left": 0}  # the countdown of a fail/reset mode


def current_mode():
    """The mode word and arguments; a countdown mode counts this request."""
    try:
        with open(MODE_FILE) as f:
            words = f.read().split()
    except FileNotFoundError:
        words = []
    if not words:
        return ["ok"]
    if words[0] in ("fail", "reset"):
        with lock:
            # A new text in the mode file starts a new countdown.
            key = (os.stat(MODE_FILE).st_mtime_ns, tuple(words))
            if counted["key"] != key:
                counted["key"], counted["left"] = key, int(words[1])
            if counted["left"] <= 0:
                return ["ok"]
            counted["left"] -= 1
    return words


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, mode):
        if LOG_FILE:
            with lock, open(LOG_FILE, "a") as f:
                auth = " +auth" if self.headers.get("Authorization") else ""
                f.write(f"{self.command} {self.headers.get('Range', '-')} {mode}{auth}\n")

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def send(self, code, headers, payload, body):
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if body and payload:
            self.wfile.write(payload)

    def serve(self, body):
        mode = current_mode()
        self.log(" ".join(mode))
        word = mode[0]
        if word == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if word == "stall":
            time.sleep(float(mode[1]))
        if word == "fail":
            headers = [("Content-Length", "0")]
            if len(mode) > 3:
                headers.append(("Retry-After", mode[3]))
            self.send(int(mode[2]), headers, b"", body)
            return
        if word == "auth":
            wanted = "Basic " + base64.b64encode(f"{mode[1]}:{mode[2]}".encode()).decode()
            if self.headers.get("Authorization") != wanted:
                self.send(401, [("WWW-Authenticate", 'Basic realm="corfs"'), ("Content-Length", "0")], b"", body)
                return
        with open(FILE, "rb") as f:
            data = f.read()
        size = len(data)
        etag = OTHER_ETAG if word in ("change-etag", "modified") else ETAG
        common = [("ETag", etag), ("Last-Modified", LAST_MODIFIED), ("Accept-Ranges", "bytes")]
        if word == "modified" and self.headers.get("If-Match") not in (None, etag):
            self.send(412, [("Content-Length", "0")], b"", body)
            return
        rng = self.headers.get("Range")
        if word == "ignore-range" or not rng or not rng.startswith("bytes="):
            self.send(200, common + [("Content-Length", str(size))], data, body)
            return
        first, _, last = rng[len("bytes="):].partition("-")
        first = int(first)
        last = min(int(last) if last else size - 1, size - 1)
        if first >= size:
            self.send(416, [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")], b"", body)
            return
        payload = data[first:last + 1]
        shown_first, shown_last, shown_size = first, last, size
        if word == "short":
            payload = payload[: max(1, len(payload) // 2)]
        elif word == "wrong-range":
            shown_first, shown_last = first + 512, last + 512
            payload = data[first + 512:last + 513].ljust(last - first + 1, b"\0")
        elif word == "wrong-size":
            shown_size = size + 4096
        headers = common + [
            ("Content-Range", f"bytes {shown_first}-{shown_last}/{shown_size}"),
            ("Content-Length", str(len(payload))),
        ]
        self.send(206, headers, payload, body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that drops a refused answer resets the connection


server = Server(("127.0.0.1", 0), Handler)
if CERT:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
try:
    server.serve_forever()
except KeyboardInterrupt:  # the tests stop it with SIGINT or SIGTERM
    pass
