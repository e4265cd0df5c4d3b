#!/usr/bin/env bash
# kill -9 of the daemon in the middle of a stream and of writes: after a
# remount, flushed data is intact, the stream (auto) resumes from the
# committed bitmap and completes, the content is right, `corfs check` is clean.
source "$(dirname "$0")/lib.sh"

random_file template.raw 96M
disk_yaml slow.yaml 'stream: {auto: true, speed: 16M}'
disk_yaml fast.yaml 'stream: {auto: true}'
start_mount slow.yaml mnt
victim=$MOUNT_PID
cp template.raw expected.raw

step "flushed writes while the stream runs"
random_file a.bin 1M
random_file b.bin 300K
dd if=a.bin of=mnt/disk.img bs=1M seek=70 conv=notrunc,fsync status=none
dd if=b.bin of=mnt/disk.img bs=1K seek=5000 conv=notrunc,fsync status=none
dd if=a.bin of=expected.raw bs=1M seek=70 conv=notrunc status=none
dd if=b.bin of=expected.raw bs=1K seek=5000 conv=notrunc status=none
step "unflushed writes in flight, then kill -9"
( while true; do dd if=/dev/urandom of=mnt/disk.img bs=64k seek=$((RANDOM % 16 + 1200)) count=1 conv=notrunc status=none 2>/dev/null || break; done ) &
writer=$!
STARTED_PIDS+=("$writer")
sleep 2
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
fusermount3 -u mnt 2>/dev/null || umount -l mnt
percent=$(info_field overlays/disk.img allocated-percent)
echo "overlay was $percent% local when killed"
python3 -c "import sys; sys.exit(0 if 0 < float(sys.argv[1]) < 100 else 1)" "$percent" ||
  fail "the kill did not land mid-stream ($percent%)"

step "remount: the stream resumes and completes"
start_mount fast.yaml mnt
wait_for 120 overlay_is overlays/disk.img standalone
# The region the unflushed writer hit may hold its data or the template's;
# everything else must be exactly as expected.
cmp -n $((1200 * 65536)) expected.raw mnt/disk.img || fail "content before the writer's region"
cmp -i $((1216 * 65536)) expected.raw mnt/disk.img || fail "content after the writer's region"
stop_mount mnt
"$CORFS" check overlays/disk.img
