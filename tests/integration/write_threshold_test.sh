#!/usr/bin/env bash
# The one-shot write threshold (libvirt's block threshold): armed with
# `corfs threshold IMAGE 10M` (and, on another image, with the JSON client's
# percent-thousandths), writes that leave the overlay holding less do not
# fire it; the write that crosses it fires exactly one BLOCK_WRITE_THRESHOLD
# (write-threshold, amount-exceeded > 0), after which query-images shows 0
# and further writes fire nothing. 0 disarms; re-arming fires again; a
# stream crossing it fires it too.
#
# The images have copy_on_read off and dd writes whole clusters with
# O_DIRECT, so only these writes allocate. "No event" is checked against a
# barrier: a tiny stream job on a third image whose BLOCK_JOB_COMPLETED, on
# the same event stream, comes after anything published before it.
source "$(dirname "$0")/lib.sh"

random_file t.raw 32M
random_file data.raw 32M
write_yaml threshold.yaml <<YAML
images:
  w.img:
    overlay: overlays/w.img
    backing: [t.raw]
    copy_on_read: false
  p.img:
    overlay: overlays/p.img
    backing: [t.raw]
    copy_on_read: false
  probe.img:
    overlay: overlays/probe.img
    backing: [t.raw]
YAML
start_mount threshold.yaml mnt
write_qmp_client
start_bg "$CORFS" events -m mnt --json > events.log
EVENTS_PID=$BG_PID

M=$((1 << 20))
BARRIER=0
# barrier: every event published before it is in events.log afterwards.
barrier() {
  BARRIER=$((BARRIER + 1))
  "$CORFS" stream probe.img -m mnt --job-id "barrier$BARRIER" --range "$(((BARRIER - 1) * 65536)):65536" > /dev/null
  wait_for 10 grep -q "\"device\":\"barrier$BARRIER\"" events.log
}
# threshold_events: the data of each BLOCK_WRITE_THRESHOLD in events.log, one per line.
threshold_events() {
  python3 -c '
import json, sys
lines = open("events.log").read().split("\n")[:-1]  # the last one may be unfinished
for line in lines:
    e = json.loads(line)
    assert set(e) == {"event", "data", "timestamp"}, e
    if e["event"] == "BLOCK_WRITE_THRESHOLD":
        print(json.dumps(e["data"], sort_keys=True))'
}
count_events() { threshold_events | grep -c . || true; }
image_field() {  # IMAGE FIELD: from `corfs status --json`
  "$CORFS" status -m mnt --json | python3 -c '
import json, sys
print(next(i[sys.argv[2]] for i in json.load(sys.stdin)["images"] if i["name"] == sys.argv[1]))' "$1" "$2"
}
write_mib() {  # IMAGE FIRST_MIB COUNT_MIB: whole clusters of data.raw, direct
  dd if=data.raw of="mnt/$1" bs=1M skip="$2" seek="$2" count="$3" oflag=direct conv=notrunc status=none
}

step "the event stream is live"
# The events client connects in the background (slow to start under
# sanitizers): barriers until the event of one of them arrives.
any_barrier_seen() {
  BARRIER=$((BARRIER + 1))
  "$CORFS" stream probe.img -m mnt --job-id "barrier$BARRIER" --range "$(((BARRIER - 1) * 65536)):65536" > /dev/null
  sleep 0.2
  grep -q '"device":"barrier' events.log
}
wait_for 30 any_barrier_seen

step "corfs threshold w.img 10M: 5M written, no event"
out=$("$CORFS" threshold w.img 10M -m mnt) || fail "corfs threshold: $out"
[ "$(image_field w.img write-threshold)" -eq $((10 * M)) ] || fail "threshold not shown by status"
write_mib w.img 0 5
barrier
[ "$(image_field w.img allocated-bytes)" -eq $((5 * M)) ] || fail "allocated $(image_field w.img allocated-bytes), not 5M"
[ "$(count_events)" -eq 0 ] || fail "an event below the threshold: $(threshold_events)"
[ "$(image_field w.img write-threshold)" -eq $((10 * M)) ] || fail "the threshold went off below it"

step "6M more crosses it: exactly one event, and the threshold is off"
write_mib w.img 5 6
barrier
[ "$(count_events)" -eq 1 ] || fail "wanted one event, got: $(threshold_events)"
python3 - "$(threshold_events)" <<'PY' || fail "event: $(threshold_events)"
import json, sys
d = json.loads(sys.argv[1])
assert d["node-name"] == "w.img", d
assert d["write-threshold"] == 10 << 20, d
assert 0 < d["amount-exceeded"] <= 1 << 20, d  # crossed by at most one 1 MiB write
PY
[ "$(image_field w.img write-threshold)" -eq 0 ] || fail "query-images still shows a threshold after it fired"
write_mib w.img 11 2
barrier
[ "$(count_events)" -eq 1 ] || fail "a second event after the one-shot fired: $(threshold_events)"

step "0 disarms; re-arming fires again"
"$CORFS" threshold w.img 16M -m mnt > /dev/null
"$CORFS" threshold w.img 0 -m mnt > /dev/null
[ "$(image_field w.img write-threshold)" -eq 0 ] || fail "0 did not disarm"
write_mib w.img 13 4
barrier
[ "$(count_events)" -eq 1 ] || fail "a disarmed threshold fired: $(threshold_events)"
"$CORFS" threshold w.img 20M -m mnt > /dev/null
write_mib w.img 17 4
barrier
[ "$(count_events)" -eq 2 ] || fail "the re-armed threshold did not fire once: $(threshold_events)"
threshold_events | tail -1 | grep -q '"write-threshold": 20971520' || fail "second event: $(threshold_events)"

step "percent-thousandths over the JSON client: 25% of 32M; a stream crosses it too"
python3 - <<'PY'
import subprocess
from qmp import *

M = 1 << 20
c = Qmp("mnt.sock")
def image(name):
    return next(i for i in c.ok("query-images") if i["name"] == name)
def write(first, count):
    subprocess.run(["dd", "if=data.raw", "of=mnt/p.img", "bs=1M", f"skip={first}", f"seek={first}",
                    f"count={count}", "oflag=direct", "conv=notrunc", "status=none"], check=True)

assert c.ok("block-set-write-threshold", {"node-name": "p.img", "percent-thousandths": 25000}) == {"write-threshold": 8 * M}
assert image("p.img")["write-threshold"] == 8 * M
write(0, 6)
assert c.recv(timeout=0.5) is None, "an event below the threshold"
assert image("p.img")["allocated-bytes"] == 6 * M
write(6, 4)
e = c.event("BLOCK_WRITE_THRESHOLD", timeout=10, **{"node-name": "p.img"})
assert e["data"]["write-threshold"] == 8 * M and e["data"]["amount-exceeded"] > 0, e
assert set(e["timestamp"]) == {"seconds", "microseconds"}, e
assert image("p.img")["write-threshold"] == 0
write(10, 4)
assert c.recv(timeout=0.5) is None, "a second event"

# Streaming fills the overlay as well: re-armed at 20M, the stream crosses it.
assert c.ok("block-set-write-threshold", {"node-name": "p.img", "write-threshold": 20 * M}) == {"write-threshold": 20 * M}
assert c.ok("block-stream", {"device": "p.img"}) == {"job-id": "p.img"}
e = c.event("BLOCK_WRITE_THRESHOLD", timeout=20, **{"node-name": "p.img"})
assert e["data"]["write-threshold"] == 20 * M and e["data"]["amount-exceeded"] > 0, e
c.event("BLOCK_JOB_COMPLETED", timeout=20, device="p.img")
assert image("p.img")["write-threshold"] == 0 and image("p.img")["state"] == "standalone"
assert [x["event"] for x in c.events] == [], c.events
PY
barrier
[ "$(threshold_events | grep -c '"node-name": "p.img"')" -eq 2 ] || fail "corfs events did not see the p.img events: $(threshold_events)"

step "the data written is where it belongs"
cmp -n $((21 * M)) data.raw mnt/w.img || fail "w.img: written data"
cmp -i $((21 * M)) t.raw mnt/w.img || fail "w.img: template data"
cmp -n $((14 * M)) data.raw mnt/p.img || fail "p.img: written data"
cmp -i $((14 * M)) t.raw mnt/p.img || fail "p.img: template data"
stop_bg "$EVENTS_PID"
stop_mount mnt
for o in w p probe; do "$CORFS" check overlays/$o.img > /dev/null || fail "check $o"; done
