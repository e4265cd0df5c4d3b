#!/usr/bin/env python3
"""An HTTP/1.1 proxy that holds every request for a fixed time before
passing it on, so that a server on loopback answers like one a few
milliseconds away: what nbdkit's delay filter does for the NBD bench,
for bench/remote_http.sh. nginx cannot delay a reply, and this kernel has
no netem to delay packets.

    delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS

Both ports are on 127.0.0.1. Each client connection gets a connection of
its own to the server and a thread; requests on it are taken one at a
time (clients here do not pipeline). A response must say its length
(Content-Length, as nginx does for files); its body moves from the
server's socket to the client's with splice(2) through a pipe, so the
proxy copies no data through user space and costs little CPU.
"""
import fcntl
import os
import socket
import sys
import threading
import time

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


def read_head(sock, buffered):
    """Reads up to the end of a message head; returns (head, bytes after it)."""
    while b"\r\n\r\n" not in buffered:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buffered += data
    end = buffered.index(b"\r\n\r\n") + 4
    return buffered[:end], buffered[end:]


def body_length(head, request_line):
    """The body length a response head announces (0 for HEAD and bodiless statuses)."""
    status = int(head.split(b" ", 2)[1])
    if request_line.startswith(b"HEAD ") or status in (204, 304) or 100 <= status < 200:
        return 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError("a response without Content-Length")


def splice_all(src, dst, count, pipe):
    read_end, write_end = pipe
    while count > 0:
        moved = os.splice(src.fileno(), write_end, min(count, PIPE_SIZE))
        if moved == 0:
            raise ConnectionError("the server closed in the middle of a body")
        count -= moved
        while moved > 0:
            moved -= os.splice(read_end, dst.fileno(), moved)


def serve(client, upstream_port, delay):
    pipe = os.pipe()
    try:
        fcntl.fcntl(pipe[1], F_SETPIPE_SZ, PIPE_SIZE)
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        from_client, from_upstream = b"", b""
        with client, upstream:
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                request, from_client = read_head(client, from_client)
                if request is None:
                    return
                time.sleep(delay)
                upstream.sendall(request)
                response, from_upstream = read_head(upstream, from_upstream)
                if response is None:
                    return
                length = body_length(response, request)
                early, from_upstream = from_upstream[:length], from_upstream[length:]
                client.sendall(response + early)
                splice_all(upstream, client, length - len(early), pipe)
    except (ConnectionError, ValueError, OSError):
        pass  # one connection ends; the client sees it closed
    finally:
        os.close(pipe[0])
        os.close(pipe[1])


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS")
    listen_port, upstream_port, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
    server = socket.create_server(("127.0.0.1", listen_port), backlog=64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=serve, args=(client, upstream_port, delay), daemon=True).start()


if __name__ == "__main__":
    main()
