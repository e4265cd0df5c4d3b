#!/usr/bin/env python3
"""A minimal QMP client for bench/run.sh (qemu-storage-daemon's monitor).

    qmp.py SOCKET stream DEVICE     block-stream DEVICE, wait for
                                    BLOCK_JOB_COMPLETED, print the seconds
                                    from the command to the event
    qmp.py SOCKET quit              ask the daemon to quit

Exit status 0 on success; 1 with a message on stderr otherwise (an error
reply, a job that completed with an error, a timeout, a closed socket).
"""

import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout):
        deadline = time.monotonic() + 10
        while True:  # the daemon may not have made its socket yet
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rwb")
        self.events = []
        greeting = self.receive()
        if "QMP" not in greeting:
            raise RuntimeError("not a QMP greeting: %r" % greeting)
        self.execute("qmp_capabilities")

    def receive(self):
        line = self.file.readline()
        if not line:
            raise EOFError("the daemon closed the QMP socket")
        return json.loads(line)

    def execute(self, name, arguments=None):
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self.file.write((json.dumps(message) + "\n").encode())
        self.file.flush()
        while True:
            reply = self.receive()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError("%s: %s" % (name, reply["error"].get("desc", reply["error"])))
            self.events.append(reply)  # an event that arrived before the reply

    def wait_event(self, name, device):
        while True:
            event = self.events.pop(0) if self.events else self.receive()
            if event.get("event") == name and event.get("data", {}).get("device") == device:
                return event


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, verb = argv[1], argv[2]
    try:
        if verb == "stream" and len(argv) == 4:
            qmp = Qmp(path, timeout=3600)
            start = time.monotonic()
            qmp.execute("block-stream", {"job-id": "bench-stream", "device": argv[3]})
            event = qmp.wait_event("BLOCK_JOB_COMPLETED", "bench-stream")
            seconds = time.monotonic() - start
            if "error" in event["data"]:
                raise RuntimeError("block-stream failed: " + event["data"]["error"])
            print("%.3f" % seconds)
            return 0
        if verb == "quit" and len(argv) == 3:
            qmp = Qmp(path, timeout=30)
            try:
                qmp.execute("quit")
            except EOFError:
                pass  # the daemon may close the socket before replying
            return 0
    except Exception as error:  # noqa: BLE001 - report anything and fail
        print("qmp.py: %s" % error, file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
