#!/usr/bin/env bash
# The backup job under a guest's writes: a full backup started while fio
# (randwrite, paused with SIGSTOP) stands still equals the copy dd took of
# the disk at that moment, though fio goes on writing during the backup (to
# a file, and to an NBD export); an
# incremental one after more writes (zeros over data included), taken the
# same way, read through a mount of it over the full one, equals the disk at
# its own start; the bitmap survives a remount with its count; kill -9 of
# the mount leaves it inconsistent, and an incremental with it is refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"
command -v qemu-nbd > /dev/null || exit 77

random_file template.raw 64M
disk_yaml disk.yaml
start_mount disk.yaml mnt
start_bg "$CORFS" events -m mnt --json > events.log

# bitmap_field FIELD: of bitmap b of disk.img, from `corfs status --json`.
bitmap_field() {
  "$CORFS" status -m mnt --json | python3 -c '
import json, sys
image = next(i for i in json.load(sys.stdin)["images"] if i["name"] == "disk.img")
print(json.dumps(next(b for b in image["dirty-bitmaps"] if b["name"] == "b")[sys.argv[1]]))' "$1"
}
# job_ended ID: its BLOCK_JOB_COMPLETED is in events.log (fails the test if with an error).
job_ended() {
  python3 - "$1" <<'PY'
import json, sys
for line in open("events.log").read().split("\n")[:-1]:
    e = json.loads(line)
    if e["event"] in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED") and e["data"]["device"] == sys.argv[1]:
        if e["event"] != "BLOCK_JOB_COMPLETED" or "error" in e["data"]:
            sys.exit("job %s ended badly: %s" % (sys.argv[1], e))
        sys.exit(0)
sys.exit(1)
PY
}
# stopped PID: every thread of it is stopped (SIGSTOP took), so none has a
# write under way: a write in flight completes before its thread stops.
stopped() { ! grep -qv '^[^)]*) T' /proc/"$1"/task/*/stat; }

# backup_under_fio ID COPY BACKUP-ARGS...: fio writes; paused, the disk is
# copied to COPY with dd and the backup starts (drive-backup answers once
# its point in time is taken); fio resumes and writes during the backup.
backup_under_fio() {
  local id=$1 copy=$2
  shift 2
  start_bg fio --name=guest --thread --filename=mnt/disk.img --rw=randwrite --bs=4k --direct=1 \
    --ioengine=psync --size=64M --time_based --runtime=120 --randseed="$RANDOM" --output=/dev/null
  local fio=$BG_PID
  sleep 1
  kill -STOP "$fio"
  wait_for 10 stopped "$fio"
  dd if=mnt/disk.img of="$copy" bs=1M iflag=direct status=none
  "$CORFS" backup disk.img "$@" --job-id "$id" --speed 32M -m mnt
  kill -CONT "$fio"
  wait_for 60 job_ended "$id"
  stop_bg "$fio"
}

step "a bitmap, then a full backup under fio"
"$CORFS" bitmap add disk.img b -m mnt
backup_under_fio full full-start.raw "$WORK/full.raw" --bitmap b
cmp full.raw full-start.raw || fail "the full backup is not the disk at its start"
[ "$(bitmap_field count)" -gt 0 ] || fail "fio's writes during the backup are not in the bitmap"

step "a full backup to an NBD export under fio (qemu-nbd -e 4: multi-conn)"
truncate -s 64M nbd.raw
start_qemu_nbd nbd -e 4 -f raw -k "$WORK/nbd.sock" nbd.raw
nbd_pid=$SERVER_PID
backup_under_fio nbdfull nbd-start.raw "nbd+unix:///?socket=$WORK/nbd.sock"
stop_bg "$nbd_pid"
cmp nbd.raw nbd-start.raw || fail "the backup over NBD is not the disk at its start"

step "zeros over data, then an incremental backup under fio"
dd if=/dev/zero of=mnt/disk.img bs=1M seek=8 count=2 conv=notrunc oflag=direct status=none
cmp -s -n 2M -i 8M full.raw /dev/zero && fail "the full backup held zeros there already"
backup_under_fio inc inc-start.raw "$WORK/inc.img" --sync incremental --bitmap b
[ -f inc.img.cor ] || fail "the incremental is not a corfs overlay"

step "the incremental over the full backup reads as the disk at its start"
write_yaml restore.yaml <<YAML
images:
  restored.img:
    overlay: inc.img
    backing: [full.raw]
    read_only: true
    create: false
YAML
DISK_PID=$MOUNT_PID
start_mount restore.yaml restore
cmp restore/restored.img inc-start.raw || fail "full + incremental is not the disk at the incremental's start"
stop_mount restore
MOUNT_PID=$DISK_PID

step "the bitmap survives a remount"
dd if=/dev/urandom of=mnt/disk.img bs=64k seek=100 count=3 conv=notrunc oflag=direct status=none
count=$(bitmap_field count)
[ "$count" -gt 0 ] || fail "no bits after writes"
stop_mount mnt
[ -f overlays/disk.img.bitmaps ] || fail "no bitmap file beside the overlay"
start_mount disk.yaml mnt
[ "$(bitmap_field count)" = "$count" ] || fail "the count changed over a remount"
[ "$(bitmap_field inconsistent)" = false ] || fail "a clean remount made the bitmap inconsistent"

step "kill -9 makes the bitmap inconsistent, and an incremental with it is refused"
dd if=/dev/urandom of=mnt/disk.img bs=64k seek=200 count=1 conv=notrunc oflag=direct status=none
kill -KILL "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
fusermount3 -u mnt 2>/dev/null || umount -l mnt
start_mount disk.yaml mnt
[ "$(bitmap_field inconsistent)" = true ] || fail "a crash left the bitmap consistent"
if "$CORFS" backup disk.img "$WORK/inc2.img" --sync incremental --bitmap b -m mnt 2>refused.txt; then
  fail "an incremental with an inconsistent bitmap was accepted"
fi
grep -q inconsistent refused.txt || fail "the refusal does not say why: $(cat refused.txt)"
[ ! -e inc2.img ] || fail "a refused backup made its target"
step "a full backup with it makes it consistent again"
"$CORFS" backup disk.img "$WORK/full2.raw" --bitmap b --wait -m mnt > /dev/null
[ "$(bitmap_field inconsistent)" = false ] || fail "a full backup left the bitmap inconsistent"
stop_mount mnt
