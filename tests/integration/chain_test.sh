#!/usr/bin/env bash
# A chain of three sparse raw layers with different allocated regions (and a
# top layer shorter than the rest) reads as their merge, through the mount.
source "$(dirname "$0")/lib.sh"

# base: 32 MiB of data; mid: sparse, data at 4M and 20M; top: sparse and
# only 24 MiB long, data at 5M (over mid's), and at 12M.
random_file base.raw 32M
truncate -s 32M mid.raw
dd if=/dev/urandom of=mid.raw bs=1M seek=4 count=2 conv=notrunc status=none
dd if=/dev/urandom of=mid.raw bs=1M seek=20 count=1 conv=notrunc status=none
truncate -s 24M top.raw
dd if=/dev/urandom of=top.raw bs=64k seek=80 count=3 conv=notrunc status=none   # 5M .. 5M+192K
dd if=/dev/urandom of=top.raw bs=1M seek=12 count=1 conv=notrunc status=none

# The expected disk, built by hand: base, then mid's data, then top's;
# past top's end (24M) the disk reads zeros whatever lies below.
cp base.raw expected.raw
dd if=mid.raw of=expected.raw bs=1M skip=4 seek=4 count=2 conv=notrunc status=none
dd if=mid.raw of=expected.raw bs=1M skip=20 seek=20 count=1 conv=notrunc status=none
dd if=top.raw of=expected.raw bs=64k skip=80 seek=80 count=3 conv=notrunc status=none
dd if=top.raw of=expected.raw bs=1M skip=12 seek=12 count=1 conv=notrunc status=none
truncate -s 24M expected.raw
truncate -s 32M expected.raw

write_yaml chain.yaml <<YAML
templates:
  layered: [top.raw, mid.raw, base.raw]
images:
  vm.img:
    overlay: overlays/vm.img
    backing: layered
    size: 32M
YAML
start_mount chain.yaml mnt
step "the mounted disk is the merge of the three layers"
cmp expected.raw mnt/vm.img
step "and again from the overlay's copy, after a remount"
stop_mount mnt
start_mount chain.yaml mnt
cmp expected.raw mnt/vm.img
stop_mount mnt
