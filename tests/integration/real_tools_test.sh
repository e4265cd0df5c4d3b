#!/usr/bin/env bash
# Through a real mount, tools we did not write agree with us: cmp and
# qemu-img compare see the template; qemu-io -t none (O_DIRECT) writes and
# pattern-reads; fio randwrite with crc32c verify passes; all of it
# survives unmount and remount.
source "$(dirname "$0")/lib.sh"

qemu_io() {  # fails on any failed command or pattern mismatch
  local out
  out=$(qemu-io -f raw -t none "$@" 2>&1) || { echo "$out"; fail "qemu-io $*"; }
  if grep -qiE "fail|error" <<<"$out"; then echo "$out"; fail "qemu-io reported a failure"; fi
}

random_file template.raw 64M
disk_yaml disk.yaml
start_mount disk.yaml mnt

step "cmp and qemu-img compare against the template"
cmp template.raw mnt/disk.img
qemu-img compare -q -f raw -F raw template.raw mnt/disk.img

step "qemu-io -t none: writes, then pattern reads"
qemu_io -c "write -P 0xab 1M 64k" -c "write -P 0xcd 3M 5k" -c "write -P 0x11 8388000 9000" mnt/disk.img
qemu_io -c "read -P 0xab 1M 64k" -c "read -P 0xcd 3M 5k" -c "read -P 0x11 8388000 9000" mnt/disk.img

step "fio randwrite with crc32c verify (O_DIRECT)"
fio --name=verify --filename=mnt/disk.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=32M --size=16M --verify=crc32c --do_verify=1 --randseed=1234 --output=fio.log \
  || { cat fio.log; fail "fio verify"; }

step "untouched regions still equal the template"
cmp -n 1M template.raw mnt/disk.img
cmp -i 16M:16M -n 16M template.raw mnt/disk.img

step "unmount, remount: everything is still there"
stop_mount mnt
start_mount disk.yaml mnt
qemu_io -c "read -P 0xab 1M 64k" -c "read -P 0xcd 3M 5k" -c "read -P 0x11 8388000 9000" mnt/disk.img
fio --name=verify --filename=mnt/disk.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=32M --size=16M --verify=crc32c --verify_only --randseed=1234 --output=fio2.log \
  || { cat fio2.log; fail "fio verify after remount"; }
cmp -i 16M:16M -n 16M template.raw mnt/disk.img
stop_mount mnt
"$CORFS" check overlays/disk.img
