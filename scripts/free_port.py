#!/usr/bin/env python3
"""Prints a TCP port on 127.0.0.1 that nothing uses just now, for a test or a
bench to start a server on.

Below the ephemeral range: while a server is down, a client retrying to
connect to a port in that range can be given the port itself as its own,
connect to itself, and hold the port the restarted server needs."""
import random
import socket

low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
while True:
    port = random.randrange(10000, low)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
