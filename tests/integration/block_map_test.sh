#!/usr/bin/env bash
# corfs map against qemu-img map: the same data layout made twice, once as
# a corfs overlay over a qcow2 chain (through a real mount: writes, a zeroed
# range, copy-on-read), once as a qcow2 image over the same chain with
# qemu-io, must map the same (qemu-img's host offsets aside). Live over the
# control socket (query-block-map), offline from the overlay's files while
# the mount has it open, and after unmount.
source "$(dirname "$0")/lib.sh"

# The chain: base.qcow2 (data and zero clusters, every cluster allocated:
# where a qcow2 image without a backing file has none, corfs and qemu-img
# differ, see overlay/block_map.h) under mid.qcow2 (data over zeros, zeros
# over data, unallocated elsewhere).
qemu-img create -q -f qcow2 base.qcow2 4M
qemu-io -c 'write -P 1 0 256k' -c 'write -z 256k 768k' -c 'write -P 2 1M 64k' -c 'write -z 1088k 3008k' \
  base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qemu-io -c 'write -P 3 128k 64k' -c 'write -z 1M 64k' mid.qcow2 >/dev/null

# The reference: top.qcow2 over mid.qcow2, given the same I/O by qemu-io
# (-C: copy-on-read, as corfs does).
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 4 2M 64k' -c 'write -z 3M 64k' top.qcow2 >/dev/null
qemu-io -C -c 'read 0 192k' -c 'read 512k 64k' top.qcow2 >/dev/null

write_yaml map.yaml <<YAML
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [mid.qcow2]
    cluster_size: 64K
YAML
start_mount map.yaml mnt
head -c 64K /dev/zero | tr '\0' '\4' > fours
dd if=fours of=mnt/disk.img bs=64K seek=32 conv=notrunc oflag=direct status=none   # 2M
fallocate -z -o 3M -l 64K mnt/disk.img
dd if=mnt/disk.img of=/dev/null bs=64K count=3 iflag=direct status=none            # 0..192K
dd if=mnt/disk.img of=/dev/null bs=64K skip=8 count=1 iflag=direct status=none     # 512K

# same_map A B: the two JSON maps name the same runs, once host offsets
# (qemu-img's "offset", "compressed") are left out and runs that then say
# the same are merged.
same_map() {
  python3 - "$1" "$2" <<'PY'
import json, sys
def runs(path):
    out = []
    for r in json.load(open(path)):
        r = {k: r[k] for k in ("start", "length", "depth", "present", "zero", "data")}
        if out and all(out[-1][k] == r[k] for k in ("depth", "present", "zero", "data")) \
                and out[-1]["start"] + out[-1]["length"] == r["start"]:
            out[-1]["length"] += r["length"]
        else:
            out.append(r)
    return out
a, b = runs(sys.argv[1]), runs(sys.argv[2])
if a != b:
    print("corfs:   ", json.dumps(a, indent=None), "\nqemu-img:", json.dumps(b, indent=None), file=sys.stderr)
    sys.exit(1)
PY
}

qemu-img map --output=json top.qcow2 > qemu.json

step "live: corfs map -m matches qemu-img map of the equivalent qcow2 chain"
"$CORFS" map -m mnt disk.img --json > live.json
same_map live.json qemu.json || fail "the live map differs from qemu-img's"
"$CORFS" map -m mnt disk.img --output=json > live2.json
cmp -s live.json live2.json || fail "--output=json and --json differ"
# Adjacent equal runs are merged: no two neighbours say the same.
python3 - <<'PY' || fail "adjacent runs not merged"
import json
runs = json.load(open("live.json"))
keys = ("depth", "present", "zero", "data")
assert all(any(a[k] != b[k] for k in keys) for a, b in zip(runs, runs[1:])), runs
assert sum(r["length"] for r in runs) == 4 << 20
PY

step "the table names the layers"
"$CORFS" map -m mnt disk.img > table.txt
grep -Eq "^2097152 .* data in overlay" table.txt || { cat table.txt; fail "no overlay data run at 2M"; }
grep -Eq "^1048576 .* zeros in .*mid.qcow2" table.txt || { cat table.txt; fail "no zero run of mid.qcow2 at 1M"; }

step "offline, while mounted: the last commit's map (the flock is not taken)"
# A guest's flush commits its writes, not what copy-on-read brought in
# (nothing of that is lost in a crash: it is fetched again); the mount
# commits that about once a second.
sync mnt/disk.img
offline_map_matches() {
  "$CORFS" map overlays/disk.img --json > offline.json || fail "offline map of an overlay in use"
  same_map offline.json qemu.json 2>offline.err
}
wait_for 10 offline_map_matches || { cat offline.err; fail "the offline map differs from qemu-img's"; }

step "offline, after unmount"
stop_mount mnt
"$CORFS" map overlays/disk.img --output=json > after.json
same_map after.json qemu.json || fail "the map after unmount differs from qemu-img's"

step "bad input: a missing overlay, an unknown image"
"$CORFS" map overlays/nothing.img 2> err.txt && fail "map of a missing overlay succeeded"
grep -q "^corfs: .*nothing.img" err.txt || { cat err.txt; fail "no clear message: $(cat err.txt)"; }
start_mount map.yaml mnt
"$CORFS" map -m mnt nosuch.img 2> err.txt && fail "map of an unknown image succeeded"
grep -q "nosuch.img' not found" err.txt || fail "unclear message: $(cat err.txt)"
stop_mount mnt
