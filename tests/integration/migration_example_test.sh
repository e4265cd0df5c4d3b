#!/usr/bin/env bash
# examples/migration/migrate.sh, shortened (a 64 MiB disk): pre-copy with
# corfs mirror + complete, then post-copy back, between two network
# namespaces; the script checks the data with fio's crc32c verify, cmp and
# qemu-img compare, and cleans up after itself.
source "$(dirname "$0")/lib.sh"

for tool in ip nsenter qemu-nbd qemu-img fio; do
  command -v "$tool" > /dev/null || { echo "no $tool"; exit 77; }
done
probe=corfs-mig-probe-$$
ip netns add "$probe" 2>/dev/null || { echo "ip netns is not available here"; exit 77; }
ip netns del "$probe"

script="$(dirname "$0")/../../examples/migration/migrate.sh"
CORFS="$CORFS" bash "$script" --size 64M --workdir "$WORK/migration" > migrate.log 2>&1 \
  || { cat migrate.log; fail "migrate.sh"; }
grep -q "both migrations done" migrate.log || { cat migrate.log; fail "migrate.sh did not finish"; }
