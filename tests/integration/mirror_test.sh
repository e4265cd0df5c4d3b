#!/usr/bin/env bash
# The mirror job (drive-mirror, `corfs mirror`, `corfs complete`) on a real
# mount, checked with cmp, qemu-img compare and fio's crc32c verify:
#   - sync full to a new file under a fio randwrite workload with verify;
#   - sync full to an NBD export (qemu-nbd -t -e 4 on a Unix socket); a
#     read-only export and an existing file without mode existing are
#     refused, leaving nothing behind;
#   - sync top into a corfs overlay over the same template (corfs create,
#     served by a second mount);
#   - write-blocking converges under a writer faster than the job's speed;
#   - cancel before READY (CANCELLED) and after READY (COMPLETED);
#   - the target server killed mid-mirror: on-target-error report ends the
#     job with an error, stop pauses it with io-status failed until the
#     server is back and the job resumed;
#   - pause, resume and a speed change.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"
command -v fio > /dev/null || exit 77
command -v qemu-nbd > /dev/null || exit 77
command -v qemu-img > /dev/null || exit 77

random_file template.raw 64M
disk_yaml disk.yaml
start_mount disk.yaml mnt
write_qmp_client

# The fio job of the verify steps: 24 MiB written once in random order.
FIO_JOB=(--name=mirror --rw=randwrite --bs=4k --ioengine=psync --offset=8M --size=24M --verify=crc32c
         --randseed=4321)

# same DISK TARGET: byte-identical, by cmp and by qemu-img compare.
same() {
  cmp "$1" "$2" || fail "$2 differs from $1"
  qemu-img compare -q -f raw -F raw "$1" "$2" || fail "qemu-img compare: $2 differs from $1"
}

step "sync full to a new file under fio randwrite with verify"
start_bg fio "${FIO_JOB[@]}" --filename=mnt/disk.img --direct=1 --do_verify=1 --rate=6m --output=fio.log
fio_pid=$BG_PID
"$CORFS" mirror disk.img full.raw --wait-ready -m mnt > mirror1.log || fail "mirror: $(cat mirror1.log)"
grep -q "is ready" mirror1.log || fail "no ready line: $(cat mirror1.log)"
wait "$fio_pid" || { cat fio.log; fail "fio verify on the image"; }
"$CORFS" complete disk.img -m mnt > /dev/null
wait_for 30 job_gone mnt disk.img
# Mirroring read the template without copying it into the overlay: the
# overlay holds what fio wrote (24 MiB), not the 64 MiB disk. (Asked
# before cmp reads the whole disk through the mount, which copies on read.)
python3 - <<'PY'
from qmp import *
image = [i for i in Qmp("mnt.sock").ok("query-images") if i["name"] == "disk.img"][0]
assert image["allocated-bytes"] <= 32 << 20, image
PY
same mnt/disk.img full.raw
fio "${FIO_JOB[@]}" --filename=full.raw --verify_only --output=fio-target.log \
  || { cat fio-target.log; fail "fio --verify_only on the target"; }

step "an existing target without mode existing is refused and left alone"
cp full.raw before.raw
"$CORFS" mirror disk.img full.raw -m mnt 2> refused.log && fail "an existing target was accepted"
grep -q "exists already" refused.log || fail "no clear message: $(cat refused.log)"
cmp before.raw full.raw || fail "the refused target changed"

step "a target the mount uses is refused (its template, its overlay, a file in the mount), and stays as it was"
cp template.raw template-before.raw
ln -sf template.raw template-link.raw
data=$(info_field overlays/disk.img data-file)
cp "$data" data-before.raw
# refused TARGET MESSAGE [CLI...]: the job is refused with MESSAGE.
refused() {
  local target=$1 message=$2
  shift 2
  "$@" disk.img "$target" --mode existing -m mnt 2> refused.log && fail "$* into $target was accepted"
  grep -qF "$message" refused.log || fail "no clear message for $target: $(cat refused.log)"
}
refused template.raw "is a backing image of image 'disk.img'" "$CORFS" mirror
refused template-link.raw "is a backing image of image 'disk.img'" "$CORFS" mirror
refused "$data" "is the data file of image 'disk.img'" "$CORFS" mirror
refused overlays/disk.img.cor "is the metadata file of image 'disk.img'" "$CORFS" mirror
refused mnt/disk.img "is inside the mount" "$CORFS" mirror
# A backup into its own disk, through the mount, waited for itself for good.
refused mnt/disk.img "is inside the mount" "$CORFS" backup
refused template.raw "is a backing image of image 'disk.img'" "$CORFS" backup
cmp template-before.raw template.raw || fail "a refused job changed the template"
cmp data-before.raw "$data" || fail "a refused job changed the overlay's data"
"$CORFS" jobs -m mnt | grep -q disk.img && fail "a refused job is listed"
rm template-before.raw template-link.raw data-before.raw

step "sync full to an NBD export (qemu-nbd -t -e 4 on a Unix socket: multi-conn, writes on 4 connections)"
truncate -s 64M nbd.raw
start_qemu_nbd nbd -e 4 -f raw -k "$WORK/nbd.sock" nbd.raw
nbd_pid=$SERVER_PID
dd if=/dev/urandom of=mnt/disk.img bs=64k count=16 seek=100 conv=notrunc,fsync status=none
"$CORFS" mirror disk.img "nbd+unix:///?socket=$WORK/nbd.sock" --wait-ready -m mnt > mirror2.log \
  || fail "mirror to NBD: $(cat mirror2.log)"
dd if=/dev/urandom of=mnt/disk.img bs=4k count=64 seek=9000 conv=notrunc,fsync status=none  # after READY, past fio's 8M..32M
"$CORFS" complete disk.img -m mnt > /dev/null
wait_for 30 job_gone mnt disk.img
stop_bg "$nbd_pid"
same mnt/disk.img nbd.raw
fio "${FIO_JOB[@]}" --filename=nbd.raw --verify_only --output=fio-nbd.log \
  || { cat fio-nbd.log; fail "fio --verify_only on the NBD target"; }

step "a read-only export is refused"
start_qemu_nbd ro -r -f raw -k "$WORK/ro.sock" nbd.raw
ro_pid=$SERVER_PID
"$CORFS" mirror disk.img "nbd+unix:///?socket=$WORK/ro.sock" -m mnt 2> ro.log && fail "a read-only export was accepted"
grep -q "read-only" ro.log || fail "no clear message: $(cat ro.log)"
stop_bg "$ro_pid"

step "sync top into a corfs overlay over the same template"
"$CORFS" create overlays/dst.img --backing template.raw > /dev/null
write_yaml dst.yaml <<YAML
images:
  dst.img: {overlay: overlays/dst.img, backing: [template.raw], create: false}
YAML
mount1_pid=$MOUNT_PID
start_mount dst.yaml mnt2
mount2_pid=$MOUNT_PID
MOUNT_PID=$mount1_pid
start_bg fio "${FIO_JOB[@]}" --filename=mnt/disk.img --direct=1 --do_verify=1 --rate=8m --randseed=99 \
  --output=fio-top.log
fio_pid=$BG_PID
"$CORFS" mirror disk.img mnt2/dst.img --sync top --mode existing --wait-ready -m mnt > mirror3.log \
  || fail "mirror top: $(cat mirror3.log)"
wait "$fio_pid" || { cat fio-top.log; fail "fio verify on the image (top)"; }
# complete --wait follows the job to its end: exit 0 once COMPLETED.
"$CORFS" complete disk.img --wait -m mnt > complete3.log || fail "complete --wait: $(cat complete3.log)"
grep -q "completed" complete3.log || fail "no summary of the end: $(cat complete3.log)"
job_gone mnt disk.img || fail "complete --wait returned before the job ended"
same mnt/disk.img mnt2/dst.img
[ "$(info_field overlays/dst.img state)" = has-backing ] || fail "dst.img is not an overlay over the template"

step "write-blocking converges under a writer faster than the job's speed"
start_bg fio --name=hammer --filename=mnt/disk.img --rw=randwrite --bs=64k --direct=1 --ioengine=psync \
  --size=64M --time_based --runtime=30 --output=hammer.log
hammer_pid=$BG_PID
"$CORFS" mirror disk.img wb.raw --copy-mode write-blocking --speed 16M --wait-ready -m mnt > mirror4.log \
  || fail "write-blocking mirror: $(cat mirror4.log)"
kill -0 "$hammer_pid" 2>/dev/null || fail "the writer ended before READY: the test proves nothing"
stop_bg "$hammer_pid"
"$CORFS" complete disk.img -m mnt > /dev/null
wait_for 30 job_gone mnt disk.img
same mnt/disk.img wb.raw

step "cancel before READY, cancel after READY, pause, resume, speed change"
python3 - <<PY
import os
from qmp import *
q = Qmp("mnt.sock")
# Before READY: cancelled.
q.ok("drive-mirror", {"device": "disk.img", "target": "$WORK/c1.raw", "sync": "full", "speed": 1 << 20})
wait_until(lambda: q.ok("query-block-jobs")[0]["offset"] > 0, what="progress")
job = q.ok("query-block-jobs")[0]
assert job["type"] == "mirror" and "dirty-bytes" in job and job["dirty-bytes"] > 0, job
q.ok("block-job-pause", {"device": "disk.img"})
wait_until(lambda: q.ok("query-block-jobs")[0]["status"] == "paused", what="paused")
q.ok("block-job-resume", {"device": "disk.img"})
q.ok("block-job-cancel", {"device": "disk.img"})
e = q.event("BLOCK_JOB_CANCELLED", device="disk.img")
# After READY, without force: completed, the target consistent.
q.ok("drive-mirror", {"device": "disk.img", "target": "$WORK/c2.raw", "sync": "full", "speed": 2 << 20})
wait_until(lambda: q.ok("query-block-jobs")[0]["offset"] > 0, what="progress")
q.ok("block-job-set-speed", {"device": "disk.img", "speed": 0})
q.event("BLOCK_JOB_READY", device="disk.img")
assert q.ok("query-block-jobs")[0]["dirty-bytes"] == 0
q.ok("block-job-cancel", {"device": "disk.img"})
e = q.event("BLOCK_JOB_COMPLETED", device="disk.img")
assert "error" not in e["data"], e
# After READY with force: cancelled.
q.ok("drive-mirror", {"device": "disk.img", "target": "$WORK/c3.raw", "sync": "full"})
q.event("BLOCK_JOB_READY", device="disk.img")
q.ok("block-job-cancel", {"device": "disk.img", "force": True})
q.event("BLOCK_JOB_CANCELLED", device="disk.img")
# Bad arguments are refused, nothing made.
q.err("drive-mirror", {"device": "disk.img", "target": "$WORK/bad.raw", "sync": "none"}, "GenericError")
q.err("drive-mirror", {"device": "disk.img", "target": "$WORK/bad.raw", "sync": "full", "format": "qcow2"},
      "GenericError")
q.err("drive-mirror", {"device": "disk.img", "target": "$WORK/bad.raw", "sync": "full", "bogus": 1},
      "GenericError")
assert not os.path.exists("$WORK/bad.raw")
PY
same mnt/disk.img c2.raw

step "target server killed mid-mirror: report ends the job with an error"
truncate -s 64M kill.raw
start_qemu_nbd kill1 -f raw -k "$WORK/kill.sock" kill.raw
kill_pid=$SERVER_PID
python3 - <<PY
from qmp import *
q = Qmp("mnt.sock")
q.ok("drive-mirror", {"device": "disk.img", "target": "nbd+unix:///?socket=$WORK/kill.sock", "sync": "full",
                      "mode": "existing", "speed": 4 << 20, "on-target-error": "report"})
wait_until(lambda: q.ok("query-block-jobs")[0]["offset"] > 0, what="progress")
import os, signal
os.kill($kill_pid, signal.SIGKILL)
e = q.event("BLOCK_JOB_COMPLETED", device="disk.img")
assert e["data"].get("error"), e
PY
wait "$kill_pid" 2>/dev/null || true

step "target server killed mid-mirror: stop pauses with io-status failed; resume after restart"
start_qemu_nbd kill2 -f raw -k "$WORK/kill.sock" kill.raw
kill_pid=$SERVER_PID
python3 - <<PY
from qmp import *
q = Qmp("mnt.sock")
q.ok("drive-mirror", {"device": "disk.img", "target": "nbd+unix:///?socket=$WORK/kill.sock", "sync": "full",
                      "mode": "existing", "speed": 4 << 20, "on-target-error": "stop"})
wait_until(lambda: q.ok("query-block-jobs")[0]["offset"] > 0, what="progress")
import os, signal
os.kill($kill_pid, signal.SIGKILL)
q.event("BLOCK_JOB_ERROR", device="disk.img", action="stop", operation="write")
job = wait_until(lambda: [j for j in q.ok("query-block-jobs") if j["status"] == "paused"], what="stopped")[0]
assert job["io-status"] == "failed", job
open("$WORK/stopped", "w").close()
PY
wait "$kill_pid" 2>/dev/null || true
start_qemu_nbd kill3 -f raw -k "$WORK/kill.sock" kill.raw
kill_pid=$SERVER_PID
"$CORFS" set-speed disk.img 0 -m mnt > /dev/null
"$CORFS" resume disk.img -m mnt > /dev/null
wait_for 60 job_is mnt disk.img ready
"$CORFS" complete disk.img -m mnt > /dev/null
wait_for 30 job_gone mnt disk.img
stop_bg "$kill_pid"
same mnt/disk.img kill.raw

MOUNT_PID=$mount2_pid
stop_mount mnt2
MOUNT_PID=$mount1_pid
stop_mount mnt
