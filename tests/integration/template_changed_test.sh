#!/usr/bin/env bash
# A template whose size changes under a mount (truncated, or grown) is an
# I/O error, never zeros: reads past the new end fail with EIO, a stream
# reports BLOCK_JOB_ERROR, and the overlay never becomes standalone over it.
source "$(dirname "$0")/lib.sh"

# 256 MiB, sparse: 1 MiB of data every 25 MiB, and at the very end.
truncate -s 256M template.raw
for mib in 0 25 50 75 100 125 150 175 200 225 255; do
  head -c 1M /dev/urandom | dd of=template.raw bs=1M seek=$mib conv=notrunc status=none
done
cp --sparse=always template.raw original.raw
random_file grow.raw 16M
write_yaml disk.yaml <<YAML
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [template.raw]
  grow.img:
    overlay: overlays/grow.img
    backing: [grow.raw]
YAML
start_mount disk.yaml mnt
"$CORFS" events -m mnt --json > events.log &
STARTED_PIDS+=("$!")
sleep 0.5

step "the template is truncated to 100M under the mount"
truncate -s 100M template.raw
for mib in 150 120 255; do  # data, a hole, the last MiB
  if dd if=mnt/disk.img of=/dev/null bs=1M skip=$mib count=1 iflag=direct status=none 2> read.err; then
    fail "a read at ${mib}M past the template's new end succeeded"
  fi
  grep -q "Input/output error" read.err || fail "not EIO at ${mib}M: $(cat read.err)"
done
dd if=mnt/disk.img bs=1M skip=50 count=1 iflag=direct status=none |
  cmp - <(dd if=original.raw bs=1M skip=50 count=1 status=none) || fail "data before the new end is wrong"

step "a stream over it fails and the overlay keeps its chain"
"$CORFS" stream disk.img -m mnt --wait > stream.log 2>&1 && fail "the stream over a truncated template succeeded"
[ "$(info_field overlays/disk.img state)" = has-backing ] || fail "the overlay became standalone"
sleep 0.5
grep '"BLOCK_JOB_ERROR"' events.log | grep -q '"device":"disk.img"' || fail "no BLOCK_JOB_ERROR for disk.img: $(cat events.log)"

step "a template grown under the mount: the stream fails at the end, the chain stays"
truncate -s +1M grow.raw
"$CORFS" stream grow.img -m mnt --wait > grow.log 2>&1 && fail "the stream over a grown template succeeded"
grep -q "changed" grow.log || fail "the failure does not say the template changed: $(cat grow.log)"
[ "$(info_field overlays/grow.img state)" = has-backing ] || fail "the overlay became standalone over a grown template"
sleep 0.5
grep '"BLOCK_JOB_ERROR"' events.log | grep -q '"device":"grow.img"' || fail "no BLOCK_JOB_ERROR for grow.img: $(cat events.log)"
stop_mount mnt
