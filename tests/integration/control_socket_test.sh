#!/usr/bin/env bash
# The control socket, driven by a plain JSON client (Python stdlib, not the
# corfs CLI) against a real mount of three images:
#   - the QMP handshake: greeting, nothing before qmp_capabilities, no
#     second negotiation;
#   - every command and its reply fields: query-version, query-commands,
#     query-images, block-stream (job-id, speed, on-error, base, a range with
#     next-offset), query-block-jobs, block-job-set-speed/-pause/-resume/
#     -cancel, block-set-write-threshold (bytes and percent-thousandths);
#   - every error class, with "id" echoed, and the connection usable after
#     each error, malformed JSON and an oversized (> 64 KiB) line included;
#   - two clients both get BLOCK_JOB_COMPLETED / BLOCK_JOB_CANCELLED with a
#     timestamp; a client that has not negotiated gets no event;
#   - clients that send half a command (and vanish, or stay), or never read
#     their replies, harm nothing; the one that never reads is dropped once
#     its backlog passes the limit;
#   - the socket is 0600, beside the mountpoint (not inside it), speaks to
#     socat too, and goes away at unmount.
source "$(dirname "$0")/lib.sh"

random_file t1.raw 32M
random_file t2.raw 32M
truncate -s 32M delta.raw
dd if=/dev/urandom of=delta.raw bs=1M seek=4 count=2 conv=notrunc status=none
write_yaml control.yaml <<YAML
images:
  slow.img:
    overlay: overlays/slow.img
    backing: [t1.raw]
    stream: {speed: 2M}
  plain.img:
    overlay: overlays/plain.img
    backing: [t2.raw]
  layered.img:
    overlay: overlays/layered.img
    backing: [delta.raw, t1.raw]
YAML
start_mount control.yaml mnt
write_qmp_client

step "the socket: beside the mountpoint, mode 0600, not inside the mount"
[ -S mnt.sock ] || fail "no socket at mnt.sock"
[ "$(stat -c %a mnt.sock)" = 600 ] || fail "socket mode is $(stat -c %a mnt.sock), not 600"
[ "$(stat -c %u mnt.sock)" = "$(id -u)" ] || fail "socket not owned by the mounting user"
[ "$(ls mnt | sort | tr '\n' ' ')" = "layered.img plain.img slow.img " ] || fail "mount lists: $(ls -a mnt)"

step "handshake, every query, every error class, ids, oversized lines"
python3 - <<'PY'
import json
from qmp import *

S = "mnt.sock"
M = 1 << 20

# The greeting, and nothing but qmp_capabilities before negotiation.
c = Qmp(S, negotiate=False)
g = c.greeting
assert "QMP" in g, g
assert g["QMP"]["capabilities"] == [], g
assert set(g["QMP"]["version"]["corfs"]) == {"major", "minor", "micro"}, g
c.err("query-version", None, "CommandNotFound")
r = c.err("query-images", None, "CommandNotFound", id="early")
assert r["id"] == "early", r
# No capability is offered: asking for one, or an argument QEMU's command
# does not take, is refused and negotiates nothing.
r = c.err("qmp_capabilities", {"enable": ["oob"]}, "GenericError")
assert r["error"]["desc"] == "Capability 'oob' not available", r
c.err("qmp_capabilities", {"bogus": 1}, "GenericError")
c.err("qmp_capabilities", {"enable": "oob"}, "GenericError")
c.err("query-version", None, "CommandNotFound")
assert c.cmd("qmp_capabilities", {"enable": []}, id=1) == {"return": {}, "id": 1}
r = c.err("qmp_capabilities", None, "CommandNotFound", id=2)
assert r["id"] == 2, r

# query-version, query-commands.
v = c.ok("query-version")
assert isinstance(v["corfs"]["major"], int) and v["package"].startswith("corfs "), v
names = [x["name"] for x in c.ok("query-commands")]
expected = {"qmp_capabilities", "query-version", "query-commands", "query-images", "block-stream",
            "query-block-jobs", "block-job-set-speed", "block-job-pause", "block-job-resume",
            "block-job-cancel", "block-set-write-threshold"}
assert expected <= set(names), names
for name in expected - {"qmp_capabilities"}:
    # every listed command exists (an unknown one would be CommandNotFound)
    r = c.cmd(name, {})
    assert r.get("error", {}).get("class") != "CommandNotFound", (name, r)

# query-images: fields and values of three fresh overlays.
images = {i["name"]: i for i in c.ok("query-images")}
assert set(images) == {"slow.img", "plain.img", "layered.img"}, images
for i in images.values():
    for field in ("name", "virtual-size", "allocated-bytes", "backing-chain", "state", "write-threshold", "job"):
        assert field in i, (field, i)
    assert i["virtual-size"] == 32 * M, i
    assert i["allocated-bytes"] == 0, i
    assert i["state"] == "has-backing", i
    assert i["write-threshold"] == 0, i
    assert i["job"] is None, i
chain = [e["filename"].split("/")[-1] for e in images["layered.img"]["backing-chain"]]
assert chain == ["delta.raw", "t1.raw"], images["layered.img"]
assert images["layered.img"]["backing-chain"][1]["virtual-size"] == 32 * M
assert c.ok("query-block-jobs") == []

# Input that is not a command: one GenericError each, no id (there is none
# to echo), and the connection goes on.
for bad in ['{"execute": "query-version"', '{"execute": query-version}', "not json at all",
            '[1, 2]', '"query-version"', '42', 'null', '{"execute": 7}']:
    c.send_raw(bad + "\n")
    r = c.reply()
    assert r.get("error", {}).get("class") == "GenericError" and "id" not in r, (bad, r)
    assert c.cmd("query-version", id="after")["id"] == "after"
# JSON nested deeper than any command needs is refused before it is parsed
# (20 KB nested 10 000 deep overflowed the control thread's stack while
# the value was copied), in the arguments or in the id alike.
for member in ("arguments", "id"):
    deep = '{"execute": "query-version", "%s": %s1%s}\n' % (member, "[" * 10000, "]" * 10000)
    c.send_raw(deep)
    r = c.reply()
    assert r.get("error", {}).get("desc") == "JSON nesting depth limit exceeded" and "id" not in r, str(r)[:200]
    assert c.cmd("query-version", id="after deep")["id"] == "after deep"
# Nesting a command can use is parsed as before: brackets inside strings do
# not count.
c.send_raw('{"execute": "query-version", "id": ["%s", [[[[1]]]]]}\n' % ("[" * 100))
assert c.reply()["id"] == ["[" * 100, [[[[1]]]]]
# Object input that breaks the rules: the id is echoed on the error.
for bad, ident in [('{"arguments": {}, "id": 5}', 5),                               # no 'execute'
                   ('{"execute": "query-version", "bogus": 1, "id": "x"}', "x"),    # unexpected member
                   ('{"execute": "query-version", "arguments": [1], "id": [1]}', [1])]:  # arguments not an object
    c.send_raw(bad + "\n")
    r = c.reply()
    assert r.get("error", {}).get("class") == "GenericError" and r.get("id") == ident, (bad, r)
# Blank lines are ignored; two commands in one write get two replies, in order.
c.send_raw('\n  \n{"execute": "query-version", "id": "a"}\n{"execute": "query-block-jobs", "id": "b"}\n')
assert c.reply()["id"] == "a" and c.reply() == {"return": [], "id": "b"}

# Command errors, by class; the id is echoed on each.
r = c.err("no-such-command", None, "CommandNotFound", id={"k": [1, 2]})
assert r["id"] == {"k": [1, 2]}, r
c.err("block-stream", {}, "GenericError")                                        # missing argument
c.err("block-stream", {"device": 5}, "GenericError")                             # wrong type
c.err("block-stream", {"device": "plain.img", "speed": "fast"}, "GenericError")
c.err("block-stream", {"device": "plain.img", "speed": -1}, "GenericError")
c.err("block-stream", {"device": "plain.img", "speed": 1.5}, "GenericError")
c.err("block-stream", {"device": "plain.img", "on-error": "explode"}, "GenericError")
c.err("block-stream", {"device": "plain.img", "colour": "red"}, "GenericError")  # unknown argument
c.err("block-stream", {"device": "plain.img", "job-id": ""}, "GenericError")
# A job id is well formed as QEMU's (a letter, then letters, digits, - . _):
# one with a line break would split the mount's log line in two.
for bad_id in ["j\nforged line", "1job", "-x", "a b", "tab\t", "\u00e9t\u00e9"]:
    r = c.err("block-stream", {"device": "plain.img", "job-id": bad_id}, "GenericError")
    assert r["error"]["desc"].startswith("Invalid job ID"), r
c.err("block-stream", {"device": "layered.img", "base": "/nonexistent.raw"}, "GenericError")
r = c.err("block-stream", {"device": "nosuch.img"}, "DeviceNotFound", id=9)
assert r["id"] == 9 and "nosuch.img" in r["error"]["desc"], r
c.err("block-set-write-threshold", {"node-name": "nosuch.img", "write-threshold": 1}, "DeviceNotFound")
for command in ("block-job-pause", "block-job-resume", "block-job-cancel"):
    r = c.err(command, {"device": "nosuchjob"}, "DeviceNotActive", id=command)
    assert r["id"] == command, r
c.err("block-job-set-speed", {"device": "nosuchjob", "speed": 1}, "DeviceNotActive")
c.err("block-job-pause", {}, "GenericError")
c.err("block-job-pause", {"device": 3}, "GenericError")
assert c.ok("query-block-jobs") == [], "a refused command started a job"
for ident in (7, "abc", {"k": [1, 2]}, None):
    message = {"execute": "query-version"}
    if ident is not None:
        message["id"] = ident
    c.send_raw(json.dumps(message) + "\n")
    r = c.reply()
    assert "return" in r and r.get("id") == ident and ("id" in r) == (ident is not None), r

# A line longer than 64 KiB is refused with one error and skipped; the next
# command on the same connection is answered. A long line within the limit
# is served.
c.send_raw('{"execute": "query-version", "id": "' + "x" * (70 * 1024) + '"}\n')
r = c.reply()
assert r.get("error", {}).get("class") == "GenericError" and "id" not in r, str(r)[:200]
r = c.cmd("query-version", id="after-big")
assert r.get("id") == "after-big" and "return" in r, r
c.send_raw('{"execute": "query-version", "id": "' + "y" * (200 * 1024))  # huge, sent before its end
c.send_raw('", "more": 1}\n{"execute": "query-block-jobs", "id": "next"}\n')
r = c.reply()
assert r.get("error", {}).get("class") == "GenericError", str(r)[:200]
assert c.reply() == {"return": [], "id": "next"}
ident = "z" * (60 * 1024)
r = c.cmd("query-version", id=ident)
assert r.get("id") == ident and "return" in r, str(r)[:200]
assert c.events == [], c.events
PY

step "clients that send half a command, or never read, harm nothing"
python3 - <<'PY'
import errno, socket, time
from qmp import *

S = "mnt.sock"

# Half a command, then gone.
gone = socket.socket(socket.AF_UNIX)
gone.connect(S)
gone.sendall(b'{"execute": "qmp_capabilities"}\n{"execute": "query-')
gone.close()
# Half a command, and it stays (its partial line must not block others).
half = socket.socket(socket.AF_UNIX)
half.connect(S)
half.sendall(b'{"execute": "qmp_capabilities"}\n{"execute": "query-ver')
# A client that only writes: commands whose replies (~1 KiB each) it never
# reads. The server keeps its replies off the poll loop's critical path and
# drops it once its backlog passes the limit (16 MiB).
flood = socket.socket(socket.AF_UNIX)
flood.connect(S)
flood.setblocking(False)
request = b'{"execute": "query-images"}\n'
payload = b'{"execute": "qmp_capabilities"}\n' + request * 40000
sent, dropped, deadline = 0, False, time.monotonic() + 90  # slow under sanitizers
while sent < len(payload):
    assert time.monotonic() < deadline, f"flood stuck after {sent} bytes"
    try:
        sent += flood.send(payload[sent:sent + 65536])
    except BlockingIOError:
        time.sleep(0.01)
    except (BrokenPipeError, ConnectionResetError):
        dropped = True
        break

# Meanwhile another client is served at once.
c = Qmp(S, timeout=5)
assert "corfs" in c.ok("query-version")
assert len(c.ok("query-images")) == 3
# And the file system serves reads.
with open("mnt/slow.img", "rb") as f, open("t1.raw", "rb") as t:
    f.seek(31 << 20)
    t.seek(31 << 20)
    assert f.read(1 << 20) == t.read(1 << 20)

# The flooder is disconnected: writing to it fails (EPIPE) once it is gone.
def flood_gone():
    try:
        flood.send(request)
        return False
    except BlockingIOError:
        return False
    except (BrokenPipeError, ConnectionResetError):
        return True
assert dropped or wait_until(flood_gone, timeout=20, what="the never-reading client to be dropped")
flood.close()
assert "corfs" in c.ok("query-version")
half.close()
assert "corfs" in c.ok("query-version")
PY

step "jobs: stream options, busy image, speed, pause, resume, cancel; events to both clients"
python3 - <<'PY'
import os, time
from qmp import *

S = "mnt.sock"
M = 1 << 20
c = Qmp(S)
c2 = Qmp(S)                     # a second monitor: gets every event too
quiet = Qmp(S, negotiate=False)  # not negotiated: gets no event
half = Qmp(S)
half.send_raw('{"execute": "query-')  # a partial line stays pending throughout

def job(ident):
    for j in c.ok("query-block-jobs"):
        if j["device"] == ident:
            return j
    return None

def image(name):
    return next(i for i in c.ok("query-images") if i["name"] == name)

def check_timestamp(event):
    ts = event["timestamp"]
    assert set(ts) == {"seconds", "microseconds"}, event
    assert 0 <= ts["microseconds"] < 1000000, event
    assert abs(ts["seconds"] - time.time()) < 60, event

# A running job: job-id and on-error given, speed from the YAML file (2M).
assert c.ok("block-stream", {"device": "slow.img", "job-id": "slowjob", "on-error": "ignore"}) == {"job-id": "slowjob"}
j = job("slowjob")
assert j["image"] == "slow.img" and j["type"] == "stream" and j["len"] == 32 * M, j
assert j["speed"] == 2 * M, j
assert j["status"] == "running" and j["busy"] and not j["paused"], j
for field in ("offset", "copied", "rate", "eta-seconds", "ready", "io-status"):
    assert field in j, (field, j)
assert image("slow.img")["job"] == "slowjob" and image("slow.img")["state"] == "streaming"
# The image is busy: a second stream on it fails, so does a taken job id.
r = c.err("block-stream", {"device": "slow.img"}, "GenericError", id="busy")
assert r["id"] == "busy", r
c.err("block-stream", {"device": "slow.img", "job-id": "other"}, "GenericError")
c.err("block-stream", {"device": "plain.img", "job-id": "slowjob"}, "GenericError")
assert [x["device"] for x in c.ok("query-block-jobs")] == ["slowjob"]

# Speed.
assert c.ok("block-job-set-speed", {"device": "slowjob", "speed": 1 * M}) == {}
assert job("slowjob")["speed"] == 1 * M
c.err("block-job-set-speed", {"device": "slowjob"}, "GenericError")
c.err("block-job-set-speed", {"device": "slowjob", "speed": "1M"}, "GenericError")
assert job("slowjob")["speed"] == 1 * M
# A speed under 64K is taken for a typo unless forced (0 is unlimited).
r = c.err("block-job-set-speed", {"device": "slowjob", "speed": 50}, "GenericError")
assert "force" in r["error"]["desc"], r
assert job("slowjob")["speed"] == 1 * M
c.err("block-job-set-speed", {"device": "slowjob", "speed": 50, "force": "yes"}, "GenericError")
assert c.ok("block-job-set-speed", {"device": "slowjob", "speed": 50, "force": True}) == {}
assert job("slowjob")["speed"] == 50
assert c.ok("block-job-set-speed", {"device": "slowjob", "speed": 1 * M}) == {}
c.err("block-stream", {"device": "plain.img", "speed": 1000}, "GenericError")
assert [x["device"] for x in c.ok("query-block-jobs")] == ["slowjob"]

# Pause: the offset stops; resume: it moves again.
assert c.ok("block-job-pause", {"device": "slowjob"}) == {}
wait_until(lambda: job("slowjob")["status"] == "paused", 10, "paused")
j = job("slowjob")
assert j["paused"] and not j["busy"], j
at = j["offset"]
time.sleep(1.2)
assert job("slowjob")["offset"] == at, "a paused job went on"
assert c.ok("block-job-resume", {"device": "slowjob"}) == {}
wait_until(lambda: job("slowjob")["offset"] > at, 10, "progress after resume")
# A job that is not paused has nothing to resume: refused, as by QEMU.
r = c.err("block-job-resume", {"device": "slowjob"}, "GenericError")
assert r["error"]["desc"] == "Can't resume a job that was not paused", r
assert job("slowjob")["status"] == "running"

# Cancel: both monitors get BLOCK_JOB_CANCELLED; the job is gone.
assert c.ok("block-job-cancel", {"device": "slowjob"}) == {}
for client in (c, c2):
    e = client.event("BLOCK_JOB_CANCELLED", device="slowjob")
    check_timestamp(e)
    assert e["data"]["image"] == "slow.img" and e["data"]["type"] == "stream", e
    assert e["data"]["len"] == 32 * M and e["data"]["offset"] < 32 * M, e
assert job("slowjob") is None
c.err("block-job-cancel", {"device": "slowjob"}, "DeviceNotActive")
i = image("slow.img")
assert i["job"] is None and i["state"] == "has-backing" and 0 < i["allocated-bytes"] < 32 * M, i

# A range: offset + length, the reply says where the next range starts.
r = c.ok("block-stream", {"device": "plain.img", "offset": 0, "length": 8 * M})
assert r == {"job-id": "plain.img", "next-offset": 8 * M}, r
for client in (c, c2):
    e = client.event("BLOCK_JOB_COMPLETED", device="plain.img")
    check_timestamp(e)
    assert "error" not in e["data"], e
i = image("plain.img")
assert i["allocated-bytes"] == 8 * M and i["state"] == "has-backing", i
r = c.ok("block-stream", {"device": "plain.img", "job-id": "range2", "offset": 8 * M, "length": 8 * M})
assert r == {"job-id": "range2", "next-offset": 16 * M}, r
for client in (c, c2):
    client.event("BLOCK_JOB_COMPLETED", device="range2")
assert image("plain.img")["allocated-bytes"] == 16 * M

# The whole image with an explicit speed: standalone at the end.
assert c.ok("block-stream", {"device": "plain.img", "job-id": "full", "speed": 64 * M}) == {"job-id": "full"}
for client in (c, c2):
    e = client.event("BLOCK_JOB_COMPLETED", device="full")
    assert e["data"]["speed"] == 64 * M and "error" not in e["data"], e
i = image("plain.img")
assert i["state"] == "standalone" and i["backing-chain"] == [] and i["allocated-bytes"] == 32 * M, i

# Down to a base: only the delta is copied, t1.raw stays as the only backing image.
assert c.ok("block-stream", {"device": "layered.img", "base": os.path.abspath("t1.raw")}) == {"job-id": "layered.img"}
for client in (c, c2):
    assert "error" not in client.event("BLOCK_JOB_COMPLETED", device="layered.img")["data"]
i = image("layered.img")
assert [e["filename"].split("/")[-1] for e in i["backing-chain"]] == ["t1.raw"], i
assert 2 * M <= i["allocated-bytes"] < 8 * M and i["state"] == "has-backing", i

# The unnegotiated client saw none of it: its next message is its own reply.
assert quiet.cmd("qmp_capabilities") == {"return": {}}
assert quiet.recv(timeout=0.5) is None
assert c2.ok("query-block-jobs") == []
for client in (c, c2):
    assert client.events == [], client.events
half.close()
PY

step "block-set-write-threshold: bytes, percent-thousandths, bad values"
python3 - <<'PY'
from qmp import *

M = 1 << 20
c = Qmp("mnt.sock")
def threshold(name):
    return next(i for i in c.ok("query-images") if i["name"] == name)["write-threshold"]

assert c.ok("block-set-write-threshold", {"node-name": "layered.img", "write-threshold": 20 * M}) == {"write-threshold": 20 * M}
assert threshold("layered.img") == 20 * M
# 12.5% of 32 MiB, as libvirt gives it; "device" names the image as well.
assert c.ok("block-set-write-threshold", {"device": "layered.img", "percent-thousandths": 12500}) == {"write-threshold": 4 * M}
assert threshold("layered.img") == 4 * M
assert c.ok("block-set-write-threshold", {"node-name": "layered.img", "percent-thousandths": 100000})["write-threshold"] == 32 * M
for bad in ({"node-name": "layered.img"},
            {"node-name": "layered.img", "write-threshold": 1, "percent-thousandths": 1},
            {"node-name": "layered.img", "percent-thousandths": 100001},
            {"node-name": "layered.img", "write-threshold": 33 * M},
            {"node-name": "layered.img", "write-threshold": "1M"},
            {"node-name": "layered.img", "write-threshold": -5},
            {"write-threshold": 1},
            {"node-name": "layered.img", "write-threshold": 1, "extra": True}):
    c.err("block-set-write-threshold", bad, "GenericError")
assert threshold("layered.img") == 32 * M, "a refused command changed the threshold"
assert c.ok("block-set-write-threshold", {"node-name": "layered.img", "write-threshold": 0}) == {"write-threshold": 0}
assert threshold("layered.img") == 0
PY

step "socat speaks to the socket too"
out=$(printf '{"execute":"qmp_capabilities"}\n{"execute":"query-version","id":"s"}\n' |
  socat -t 2 - UNIX-CONNECT:mnt.sock)
python3 - "$out" <<'PY' || fail "socat session: $out"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
assert "QMP" in lines[0], lines
assert lines[1] == {"return": {}}, lines
assert lines[2]["id"] == "s" and lines[2]["return"]["package"].startswith("corfs"), lines
PY

step "the data is right, and the socket goes away at unmount"
cmp t2.raw mnt/plain.img
stop_mount mnt
[ -e mnt.sock ] && fail "the socket outlived the mount"
for o in slow plain layered; do "$CORFS" check overlays/$o.img > /dev/null || fail "check $o"; done
