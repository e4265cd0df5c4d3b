#!/usr/bin/env bash
# Honest progress: over a sparse template, the rate counts copied bytes and
# stays at the speed limit; `corfs jobs --watch` and `corfs stream --wait`
# end with the job's summary (time, copied, holes, local, average rate),
# which BLOCK_JOB_COMPLETED carries too; on a terminal the bar fits the
# terminal, follows a resize and ends drawn at 100%; and a watch whose
# mount goes away ends with a message and exit 2, not a broken pipe.
source "$(dirname "$0")/lib.sh"

# 64 MiB: 8 MiB of data at 0 and 4 MiB at 32 MiB, holes elsewhere.
truncate -s 64M template.raw
dd if=/dev/urandom of=template.raw bs=1M count=8 conv=notrunc status=none
dd if=/dev/urandom of=template.raw bs=1M seek=32 count=4 conv=notrunc status=none
{
  echo "images:"
  for name in a b c d; do
    printf '  %s.img:\n    overlay: overlays/%s.img\n    backing: [template.raw]\n' "$name" "$name"
  done
} > progress.yaml
start_mount progress.yaml mnt

step "jobs --watch: rate on copied bytes, at the speed limit; the summary at the end"
"$CORFS" stream a.img -m mnt --speed 4M > /dev/null
"$CORFS" jobs --watch -m mnt > watch.out || fail "jobs --watch exited $?"
cat watch.out
grep -q '^job=a.img .* copied=' watch.out || fail "no progress line"
python3 - watch.out <<'PY' || fail "a rate above the speed limit"
import re, sys
# The old rate counted holes walked: about 25 MB/s under a 4M limit here.
for line in open(sys.argv[1]):
    m = re.search(r" rate=(\d+) ", line)
    if m and int(m.group(1)) > 3 * 4 * 1024 * 1024:
        sys.exit(f"rate {m.group(1)} under --speed 4M: {line}")
PY
grep -Eq '^job a.img completed in [0-9:]+: 12 MiB copied, 52 MiB holes, 0 B local, [0-9.]+ [KM]iB/s average$' watch.out ||
  fail "no summary line in the watch"

step "stream --wait --json: the summary in BLOCK_JOB_COMPLETED"
dd if=mnt/b.img of=/dev/null bs=1M skip=32 count=1 status=none  # 1 MiB or more local by copy-on-read
"$CORFS" stream b.img -m mnt --wait --json > b.json || fail "stream --wait exited $?"
tail -1 b.json | python3 -c '
import json, sys
e = json.load(sys.stdin)
assert e["event"] == "BLOCK_JOB_COMPLETED", e
d = e["data"]
M = 1 << 20
assert d["len"] == d["offset"] == 64 * M, d  # QEMU semantics: the range walked
# The read before (and the read-ahead of the kernel) made some data local.
assert d["local"] >= M and d["copied"] + d["local"] == 12 * M, d
assert (d["holes"], d["remaining"]) == (52 * M, 0), d
assert d["elapsed-seconds"] > 0 and d["average-rate"] > 0, d
' || fail "BLOCK_JOB_COMPLETED without the summary: $(tail -1 b.json)"

step "stream --wait on a terminal: the bar fits, follows a resize, ends at 100%"
# A pseudo-terminal 50 columns wide, narrowed to 30 while the job runs.
script -qec "sh -c 'stty cols 50; ($CORFS stream c.img -m mnt --speed 4M --wait; echo EXIT=\$?) & sleep 1; stty cols 30; wait'" \
  pty.out > /dev/null
python3 - pty.out <<'PY' || { cat -v pty.out; fail "the bar on a terminal"; }
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace", newline="").read()
text = text[text.find("\r"):]  # after script's own header line
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
frames = [f for f in re.split(r"[\r\n]+", text) if f.startswith("[")]
assert frames, text
assert all(len(f) <= 49 for f in frames), [f for f in frames if len(f) > 49]
narrow = [i for i, f in enumerate(frames) if len(f) <= 29]
assert narrow and all(len(f) <= 29 for f in frames[narrow[0]:]), frames
assert "100.0%" in frames[-1] and "." not in frames[-1].split("]")[0], frames[-1]
assert re.search(r"^job c.img completed in [0-9:]+: 12 MiB copied", text, re.M), text
assert "EXIT=0" in text, text
PY

step "jobs --watch ends cleanly when the mount goes away"
"$CORFS" stream d.img -m mnt --speed 1M > /dev/null
start_bg "$CORFS" jobs --watch -m mnt > watch_d.out 2> watch_d.err
watcher=$BG_PID
wait_for 20 grep -q '^job=d.img' watch_d.out
fusermount3 -u mnt
wait "$MOUNT_PID" || fail "corfs mount exited with an error after fusermount3 -u"
status=0
wait "$watcher" || status=$?
cat watch_d.err
[ "$status" = 2 ] || fail "jobs --watch exited $status when the mount went away (want 2)"
grep -q 'the mount went away' watch_d.err || fail "no clear message"
grep -qi 'broken pipe' watch_d.err && fail "a broken pipe"
exit 0
