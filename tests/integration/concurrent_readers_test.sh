#!/usr/bin/env bash
# Several processes reading the same unallocated region at once all get the
# template's bytes, and the overlay ends up holding that region once.
source "$(dirname "$0")/lib.sh"

random_file template.raw 64M
disk_yaml disk.yaml
start_mount disk.yaml mnt
dd if=template.raw of=expected.bin bs=1M skip=8 count=16 status=none
pids=()
for i in 1 2 3 4 5 6; do
  flag=""; [ $((i % 2)) -eq 0 ] && flag="iflag=direct"
  dd if=mnt/disk.img of=out.$i bs=64k skip=128 count=256 $flag status=none &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a reader failed"; done
for i in 1 2 3 4 5 6; do cmp expected.bin out.$i || fail "reader $i got other bytes"; done
stop_mount mnt
allocated=$("$CORFS" info --json overlays/disk.img | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocated-bytes"])')
# Buffered readers let the kernel read ahead a little past the region.
[ "$allocated" -ge $((16 << 20)) ] && [ "$allocated" -le $((18 << 20)) ] ||
  fail "overlay holds $allocated bytes, expected the 16 MiB read (plus read-ahead)"
