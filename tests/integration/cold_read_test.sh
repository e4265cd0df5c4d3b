#!/usr/bin/env bash
# Cold reads are copied into the overlay inside the kernel and answered by
# splice from its data file (Overlay::FaultIn): whatever the request size
# and alignment, O_DIRECT or buffered, the reader gets the template's bytes
# (and a guest's own writes where it wrote), and the overlay keeps them.
source "$(dirname "$0")/lib.sh"

# 24 MiB: random data, a hole (2 MiB at 8 MiB) and explicit zeros (1 MiB at
# 12 MiB), and a size that is not a multiple of the 64 KiB cluster.
random_file template.raw 24M
truncate -s $(( (24 << 20) + 5000 )) template.raw
fallocate -p -o $((8 << 20)) -l $((2 << 20)) template.raw
dd if=/dev/zero of=template.raw bs=1M seek=12 count=1 conv=notrunc status=none
write_yaml cold.yaml <<YAML
images:
  direct.img:
    overlay: overlays/direct.img
    backing: [template.raw]
  buffered.img:
    overlay: overlays/buffered.img
    backing: [template.raw]
  pieces.img:
    overlay: overlays/pieces.img
    backing: [template.raw]
YAML
start_mount cold.yaml mnt

# expect_patterns IMAGE: the guest's two writes read back, O_DIRECT.
expect_patterns() {
  local out
  out=$(qemu-io -r -f raw -t none -c "read -P 0xab $((3 << 20)) 4k" -c "read -P 0xcd $((5 << 20)) 256k" "$1") ||
    fail "qemu-io could not read $1"
  echo "$out" | grep -q "Pattern verification failed" && fail "$1: a guest write was overwritten or lost"
  [ "$(echo "$out" | grep -c '^read ')" = 2 ] || fail "$1: qemu-io did not do both reads: $out"
}

step "guest writes first: a part of a cluster and whole clusters"
qemu-io -f raw -c "write -P 0xab $((3 << 20)) 4k" -c "write -P 0xcd $((5 << 20)) 256k" mnt/direct.img > /dev/null
cp template.raw expected.raw
qemu-io -f raw -c "write -P 0xab $((3 << 20)) 4k" -c "write -P 0xcd $((5 << 20)) 256k" expected.raw > /dev/null

step "1 MiB O_DIRECT reads of a cold disk (each two requests of 512 KiB, spliced)"
dd if=mnt/direct.img of=direct.out bs=1M iflag=direct status=none
cmp expected.raw direct.out || fail "O_DIRECT cold read differs"
expect_patterns mnt/direct.img

step "buffered read of a cold disk (kernel read-ahead)"
cmp template.raw mnt/buffered.img || fail "buffered cold read differs"

step "unaligned O_DIRECT and buffered reads of every size, each cold"
for spec in "1 4096 3" "37 8192 1" "100 65536 2" "31 524288 1" "7 1048576 3" "2 786432 4"; do
  read -r skip bs count <<< "$spec"
  dd if=mnt/pieces.img of=piece.out bs="$bs" skip="$skip" count="$count" iflag=direct status=none
  dd if=template.raw of=piece.exp bs="$bs" skip="$skip" count="$count" status=none
  cmp piece.exp piece.out || fail "O_DIRECT read of $count x $bs at block $skip differs"
done
dd if=mnt/pieces.img of=piece.out bs=1 skip=$(( (24 << 20) + 1000 )) status=none
dd if=template.raw of=piece.exp bs=1 skip=$(( (24 << 20) + 1000 )) status=none
cmp piece.exp piece.out || fail "the partial last cluster differs"
[ "$(stat -c %s piece.out)" = 4000 ] || fail "read past the end of the disk"
cmp template.raw mnt/pieces.img || fail "pieces.img differs after partial cold reads"

step "the overlays hold what was read, and read the same after a remount"
stop_mount mnt
cmp expected.raw overlays/direct.img.part || fail "direct.img's data file differs"
cmp template.raw overlays/buffered.img.part || fail "buffered.img's data file differs"
"$CORFS" check overlays/direct.img > /dev/null || fail "corfs check finds a problem"
start_mount cold.yaml mnt
cmp expected.raw mnt/direct.img || fail "direct.img differs after a remount"
expect_patterns mnt/direct.img
stop_mount mnt
