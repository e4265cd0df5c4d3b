#!/usr/bin/env bash
# A full stream while fio writes and verifies the same image: the verify
# passes, the overlay becomes standalone; with the template deleted, a
# remount shows exactly the template plus the writes.
source "$(dirname "$0")/lib.sh"

random_file template.raw 192M
disk_yaml disk.yaml 'stream: {workers: 2}'
start_mount disk.yaml mnt

step "fio randwrite+verify runs while the image streams"
fio --name=verify --filename=mnt/disk.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=64M --size=32M --verify=crc32c --do_verify=1 --randseed=42 --output=fio.log &
fio_pid=$!
STARTED_PIDS+=("$fio_pid")
"$CORFS" stream disk.img -m mnt --wait > stream.log || { cat stream.log; fail "stream did not complete"; }
wait "$fio_pid" || { cat fio.log; fail "fio verify failed during the stream"; }
[ "$(info_field overlays/disk.img state)" = "standalone" ] || fail "overlay is not standalone after the stream"
[ "$(info_field overlays/disk.img allocated-percent)" = "100.0" ] || fail "not everything is local"

step "the expected disk: template plus what fio wrote"
cp template.raw expected.raw
dd if=mnt/disk.img of=expected.raw bs=1M skip=64 seek=64 count=32 conv=notrunc status=none
cmp expected.raw mnt/disk.img
stop_mount mnt

step "delete the template, remount: same content, no chain"
rm template.raw
start_mount disk.yaml mnt
cmp expected.raw mnt/disk.img
fio --name=verify --filename=mnt/disk.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=64M --size=32M --verify=crc32c --verify_only --randseed=42 --output=fio2.log \
  || { cat fio2.log; fail "fio verify after remount"; }
stop_mount mnt
"$CORFS" check overlays/disk.img
step "the data file alone is a plain raw image"
cmp expected.raw overlays/disk.img
