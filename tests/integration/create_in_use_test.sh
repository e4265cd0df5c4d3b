#!/usr/bin/env bash
# `corfs create` on an overlay that a running mount uses: with or without
# --force it takes the lock a mount takes, refuses naming the holder, and
# changes nothing on disk; the mount's flushed writes stay. A free overlay
# is still replaced by --force.
source "$(dirname "$0")/lib.sh"

random_file template.raw 16M
random_file data.bin 1M
disk_yaml disk.yaml
start_mount disk.yaml mnt

step "a flushed write through the mount"
dd if=data.bin of=mnt/disk.img bs=1M seek=3 conv=fsync,notrunc oflag=direct status=none
# Unfinished, so its data file is NAME.part (and no NAME may appear).
before=$(sha256sum overlays/disk.img.part overlays/disk.img.cor)

for force in "" --force; do
  step "create ${force:-without --force} is refused while mounted"
  if "$CORFS" create overlays/disk.img --backing template.raw $force > create.log 2>&1; then
    fail "create $force replaced an overlay in use"
  fi
  grep -q "in use" create.log || fail "no clear message: $(cat create.log)"
  grep -q "pid $MOUNT_PID" create.log || fail "the message does not name the mount (pid $MOUNT_PID): $(cat create.log)"
  [ "$(sha256sum overlays/disk.img.part overlays/disk.img.cor)" = "$before" ] || fail "create changed the overlay's files"
  [ ! -e overlays/disk.img ] || fail "create made a second data file"
  [ ! -e overlays/disk.img.cor.tmp ] || fail "create left a temporary file"
done

step "the data reads back, mounted and after a remount"
dd if=mnt/disk.img bs=1M skip=3 count=1 iflag=direct status=none | cmp - data.bin
stop_mount mnt
"$CORFS" check overlays/disk.img > /dev/null || fail "check found problems"
start_mount disk.yaml mnt
dd if=mnt/disk.img bs=1M skip=3 count=1 iflag=direct status=none | cmp - data.bin
stop_mount mnt

step "a free overlay is replaced by --force"
"$CORFS" create overlays/disk.img --backing template.raw --force > /dev/null
[ "$(info_field overlays/disk.img allocated-bytes)" = 0 ] || fail "the replaced overlay is not empty"
