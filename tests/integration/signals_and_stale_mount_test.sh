#!/usr/bin/env bash
# SIGTERM and SIGINT unmount cleanly after committing, and so does QMP
# `quit`; SIGHUP never unmounts (it logs and the mount keeps serving); a
# daemon killed with
# -9 leaves a stale mount that the next `corfs mount` names with advice; a
# flushed write survives the kill; a busy mountpoint is refused.
source "$(dirname "$0")/lib.sh"

random_file template.raw 8M
disk_yaml disk.yaml

step "SIGTERM unmounts and commits"
start_mount disk.yaml mnt
printf 'durable' | dd of=mnt/disk.img bs=1 seek=4096 conv=notrunc status=none
kill -TERM "$MOUNT_PID"; wait "$MOUNT_PID" || fail "exit status after SIGTERM"
is_mounted mnt && fail "still mounted after SIGTERM"
"$CORFS" check overlays/disk.img

step "SIGHUP keeps the mount serving; QMP quit unmounts and commits"
start_mount disk.yaml mnt
write_qmp_client
kill -HUP "$MOUNT_PID"
wait_for 10 grep -q "SIGHUP" "$WORK/corfs.log"
kill -0 "$MOUNT_PID" 2>/dev/null || fail "the daemon exited on SIGHUP"
is_mounted mnt || fail "SIGHUP unmounted"
cmp -n 4096 mnt/disk.img template.raw || fail "the mount does not serve reads after SIGHUP"
printf 'quitted' | dd of=mnt/disk.img bs=1 seek=12288 conv=notrunc status=none
python3 - <<'PY'
from qmp import *
c = Qmp("mnt.sock")
c.err("quit", {"now": True}, "GenericError")  # unknown argument: still mounted
assert c.ok("quit") == {}, "quit reply"
PY
wait "$MOUNT_PID" || fail "exit status after quit"
is_mounted mnt && fail "still mounted after quit"
"$CORFS" check overlays/disk.img
# Unfinished, so the data file is NAME.part.
[ "$(dd if=overlays/disk.img.part bs=1 skip=12288 count=7 status=none)" = quitted ] || fail "the write before quit is lost"

step "a busy mountpoint is refused, and changes nothing"
start_mount disk.yaml mnt
first=$MOUNT_PID
mkdir -p other
write_yaml other.yaml <<YAML
images:
  new.img:
    overlay: overlays/new.img
    backing: [template.raw]
YAML
out=$("$CORFS" mount other.yaml mnt 2>&1) && fail "a second mount on a busy mountpoint worked"
grep -qi "busy" <<<"$out" || fail "no clear message for a busy mountpoint: $out"
[ -e overlays/new.img ] || [ -e overlays/new.img.part ] || [ -e overlays/new.img.cor ] &&
  fail "the refused mount created an overlay"

step "kill -9 after a flushed write: stale mount, clear message, data intact"
printf 'flushed!' | dd of=mnt/disk.img bs=1 seek=8192 conv=notrunc,fsync status=none
kill -KILL "$first"; wait "$first" 2>/dev/null || true
out=$("$CORFS" mount disk.yaml mnt 2>&1) && fail "mount over a stale mount worked"
grep -qi "stale" <<<"$out" || fail "no clear message for a stale mount: $out"
grep -q "fusermount3 -u" <<<"$out" || fail "the message does not say what to do: $out"
fusermount3 -u mnt 2>/dev/null || umount -l mnt
start_mount disk.yaml mnt
[ "$(dd if=mnt/disk.img bs=1 skip=8192 count=8 status=none)" = "flushed!" ] || fail "flushed write lost"
[ "$(dd if=mnt/disk.img bs=1 skip=4096 count=7 status=none)" = "durable" ] || fail "committed write lost"
stop_mount mnt
"$CORFS" check overlays/disk.img
