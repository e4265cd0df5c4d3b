#!/usr/bin/env bash
# SEEK_DATA / SEEK_HOLE answer for the whole chain, so `cp --sparse=always`
# of a mostly empty 10 GiB disk is quick and gives an equal, sparse file.
source "$(dirname "$0")/lib.sh"

truncate -s 10G template.raw
dd if=/dev/urandom of=template.raw bs=1M seek=100 count=4 conv=notrunc status=none
dd if=/dev/urandom of=template.raw bs=1M seek=7000 count=2 conv=notrunc status=none
write_yaml sparse.yaml <<YAML
images:
  big.img:
    overlay: overlays/big.img
    backing: [template.raw]
YAML
start_mount sparse.yaml mnt
step "a write into a hole of the template shows as data too"
printf 'hello' | dd of=mnt/big.img bs=1 seek=$((5 * 1024 * 1024 * 1024)) conv=notrunc status=none
step "cp --sparse=always finishes quickly (holes are skipped, not read)"
start=$(date +%s)
timeout 120 cp --sparse=always mnt/big.img copy.raw || fail "cp took too long or failed"
echo "cp took $(( $(date +%s) - start )) s"
step "the copy equals the disk and is sparse"
printf 'hello' | dd of=template.raw bs=1 seek=$((5 * 1024 * 1024 * 1024)) conv=notrunc status=none
qemu-img compare -q -f raw -F raw template.raw copy.raw
used=$(du -k copy.raw | cut -f1)
[ "$used" -lt 65536 ] || fail "copy uses $used KiB: holes were not kept"
stop_mount mnt
