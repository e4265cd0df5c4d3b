#!/usr/bin/env bash
# Stream modes and control: one range (with the offset to continue from),
# down to a base over a 3-layer chain (the chain is shortened), pause,
# resume, speed change while running, cancel.
source "$(dirname "$0")/lib.sh"

random_file base.raw 64M
truncate -s 64M mid.raw top.raw
dd if=/dev/urandom of=mid.raw bs=1M seek=10 count=6 conv=notrunc status=none
dd if=/dev/urandom of=top.raw bs=1M seek=12 count=2 conv=notrunc status=none
dd if=/dev/urandom of=top.raw bs=1M seek=40 count=1 conv=notrunc status=none
cp base.raw expected.raw
dd if=mid.raw of=expected.raw bs=1M skip=10 seek=10 count=6 conv=notrunc status=none
dd if=top.raw of=expected.raw bs=1M skip=12 seek=12 count=2 conv=notrunc status=none
dd if=top.raw of=expected.raw bs=1M skip=40 seek=40 count=1 conv=notrunc status=none
random_file plain.raw 64M

write_yaml modes.yaml <<YAML
templates:
  layered: [top.raw, mid.raw, base.raw]
images:
  layered.img:
    overlay: overlays/layered.img
    backing: layered
  ranged.img:
    overlay: overlays/ranged.img
    backing: [plain.raw]
  slow.img:
    overlay: overlays/slow.img
    backing: [plain.raw]
    stream: {speed: 4M}
YAML
start_mount modes.yaml mnt

step "range mode: only the range is copied; the next offset is reported"
out=$("$CORFS" stream ranged.img --range 0:8M -m mnt --json)
[ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["next-offset"])' "$out")" -eq $((8 << 20)) ] ||
  fail "next-offset: $out"
wait_for 30 job_gone mnt ranged.img
[ "$(info_field overlays/ranged.img allocated-bytes)" -eq $((8 << 20)) ] || fail "range copied the wrong amount"
[ "$(info_field overlays/ranged.img state)" = "has-backing" ] || fail "a range must not drop the backing link"
cmp plain.raw mnt/ranged.img

step "base mode: copy what lies above base.raw; then base.raw is the only backing image"
"$CORFS" stream layered.img --base base.raw -m mnt --wait > base.log || { cat base.log; fail "base stream"; }
chain=$(info_field overlays/layered.img backing-chain)
python3 -c 'import json,os,sys; c=json.loads(sys.argv[1]); assert [os.path.basename(e["path"]) for e in c] == ["base.raw"], c' "$chain" ||
  fail "chain after a base stream: $chain"
allocated=$(info_field overlays/layered.img allocated-bytes)
[ "$allocated" -lt $((16 << 20)) ] || fail "base stream copied $allocated bytes: it should leave the base's data"
cmp expected.raw mnt/layered.img

step "pause, resume, speed change, cancel"
"$CORFS" stream slow.img -m mnt > /dev/null
wait_for 10 job_is mnt slow.img running
"$CORFS" pause slow.img -m mnt > /dev/null
wait_for 10 job_is mnt slow.img paused
at=$(job_field mnt slow.img offset)
sleep 1
[ "$(job_field mnt slow.img offset)" -eq "$at" ] || fail "a paused job went on"
"$CORFS" resume slow.img -m mnt > /dev/null
wait_for 10 job_offset_above mnt slow.img "$at"
"$CORFS" set-speed slow.img 1M -m mnt > /dev/null
[ "$(job_field mnt slow.img speed)" -eq $((1 << 20)) ] || fail "speed change not shown"
"$CORFS" cancel slow.img -m mnt > /dev/null
wait_for 10 job_gone mnt slow.img
[ "$(info_field overlays/slow.img state)" = "has-backing" ] || fail "a cancelled stream dropped the backing link"
cmp plain.raw mnt/slow.img

step "after a remount, the shortened chain still reads right"
stop_mount mnt
start_mount modes.yaml mnt
cmp expected.raw mnt/layered.img
stop_mount mnt
for o in layered ranged slow; do "$CORFS" check overlays/$o.img > /dev/null || fail "check $o"; done
