#!/usr/bin/env bash
# The Quick start of README.md runs as it is written: its indented code
# block is taken from README.md itself (so the README cannot drift from what
# works) and run with bash -e in a temporary copy of examples/, with corfs
# on PATH. The one change: its mountpoint /mnt/vms becomes a folder of the
# test's own, so the test never touches /mnt.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"

step "extract the Quick start from README.md"
awk '/^## Quick start/ { inside = 1; next } /^## / { inside = 0 } inside' "$ROOT/README.md" |
  sed -n 's/^    //p' > quick_start.sh
grep -q "corfs mount" quick_start.sh || fail "no Quick start commands found in README.md: $(cat quick_start.sh)"
grep -q "/mnt/vms" quick_start.sh || fail "the Quick start no longer mounts at /mnt/vms: update this test"
sed -i "s|/mnt/vms|$WORK/mnt/vms|g" quick_start.sh
cat quick_start.sh

step "run it in a copy of examples/, with corfs on PATH"
mkdir clone bin
cp -r "$ROOT/examples" clone/
rm -rf clone/examples/templates clone/examples/overlays clone/examples/clones
ln -s "$CORFS" bin/corfs
MOUNTED+=("$WORK/mnt/vms")
(cd clone && PATH="$WORK/bin:$PATH" timeout 600 bash -euxo pipefail "$WORK/quick_start.sh") > quick_start.log 2>&1 ||
  { cat quick_start.log >&2; fail "the Quick start failed"; }
cat quick_start.log

step "it did what it says"
is_mounted mnt/vms && fail "the Quick start left its mount"
grep -q "state: *standalone" quick_start.log || fail "the overlay did not end standalone"
grep -qE "^vm1.img +64 MiB" quick_start.log || fail "status did not list vm1.img"
"$CORFS" check clone/examples/overlays/vm1.img || fail "check of the Quick start's overlay"
cmp clone/examples/templates/debian-12.raw clone/examples/overlays/vm1.img || fail "the streamed disk differs from its template"
