#!/usr/bin/env bash
# Post-copy migration (docs/migration.md) between two network namespaces
# joined by a veth pair. The source mount's guest writes a pattern (fio,
# crc32c); `corfs export-prep` makes the image read-only (writes through a
# file already open, truncates, writable opens, a chmod adding a write bit
# and block_resize are refused) and flushes it; qemu-nbd exports the image
# through the mount, read-only, inside namespace A. The destination, inside
# namespace B, creates an overlay over nbd://10.213.0.1:10809/ and mounts
# it: fio verifies the pattern while the stream runs (reads fault in across
# the veth), the stream ends standalone, the server stops, and the
# destination's disk equals a copy of the source taken after export-prep
# (cmp, qemu-img compare), also after a remount without any backing.
#
# The mounts are in the test's own mount namespace; only their network
# differs (nsenter --net), so every command sees both mounts while the NBD
# traffic crosses the veth (checked on its byte counters).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"

for tool in ip nsenter qemu-nbd qemu-img fio; do
  command -v "$tool" > /dev/null || { echo "no $tool"; exit 77; }
done
NS_A=corfs-pc-a-$$
NS_B=corfs-pc-b-$$
VETH_A=vpa$$
VETH_B=vpb$$
ADDR_A=10.213.0.1
ADDR_B=10.213.0.2
PORT=10809
remove_namespaces() {
  ip netns del "$NS_A" 2>/dev/null || true  # takes the veth pair with it
  ip netns del "$NS_B" 2>/dev/null || true
}
ip netns add "$NS_A" 2>/dev/null || { echo "ip netns is not available here"; exit 77; }
CLEANUP_HOOK=remove_namespaces
ip netns add "$NS_B"
ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
ip -n "$NS_A" addr add "$ADDR_A/24" dev "$VETH_A"
ip -n "$NS_B" addr add "$ADDR_B/24" dev "$VETH_B"
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$VETH_A" up
ip -n "$NS_B" link set "$VETH_B" up

# corfs in namespace B's network (same mounts as everyone).
cat > corfs-b <<SH
#!/bin/sh
exec nsenter --net=/run/netns/$NS_B "$CORFS" "\$@"
SH
chmod +x corfs-b

# veth_tx_bytes: the bytes namespace A sent over the veth.
veth_tx_bytes() {
  ip -n "$NS_A" -j -s link show dev "$VETH_A" | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['tx']['bytes'])"
}

# 32 MiB template, sparse: random data at 0-4 and 20-24 MiB.
truncate -s 32M template.raw
for mib in 0 20; do
  head -c 4M /dev/urandom | dd of=template.raw bs=1M seek=$mib conv=notrunc status=none
done
disk_yaml src.yaml
sed -i 's/disk.img/src.img/g' src.yaml
start_mount src.yaml mnt-src
SRC_PID=$MOUNT_PID

FIO_PATTERN=(--name=pattern --rw=randwrite --bs=4k --direct=1 --ioengine=psync --offset=2M --size=8M
  --verify=crc32c --randseed=4321)

step "the source's guest writes a pattern (fio randwrite, crc32c verify)"
fio "${FIO_PATTERN[@]}" --filename=mnt-src/src.img --do_verify=1 --output=fio-src.log \
  || { cat fio-src.log; fail "fio on the source"; }

step "export-prep: the source image is read-only and flushed"
write_qmp_client
python3 - "$CORFS" <<'PY'
import errno, os, subprocess, sys
from qmp import *
corfs = sys.argv[1]
path = "mnt-src/src.img"
fd = os.open(path, os.O_RDWR)  # the guest's file, open before the export
out = subprocess.run([corfs, "export-prep", "src.img", "-m", "mnt-src"], capture_output=True, text=True)
assert out.returncode == 0, out
assert "read-only" in out.stdout, out.stdout

def refused(what, call):
    try:
        call()
    except OSError as e:
        assert e.errno == errno.EROFS, f"{what}: {e}"
        return
    raise AssertionError(f"{what} was not refused")

refused("a write through an open file", lambda: os.pwrite(fd, b"x" * 4096, 0))
refused("a truncate", lambda: os.ftruncate(fd, 64 << 20))
refused("a writable open", lambda: os.open(path, os.O_WRONLY))
mode = os.stat(path).st_mode & 0o7777
refused("a chmod adding a write bit", lambda: os.chmod(path, mode | 0o022))
os.chmod(path, mode)  # no write bit added: allowed
os.close(fd)
c = Qmp("mnt-src.sock")
image = [i for i in c.ok("query-images") if i["name"] == "src.img"][0]
assert image["exporting"] is True, image
c.err("block_resize", {"device": "src.img", "size": 64 << 20}, "GenericError")
assert c.ok("image-export-prep", {"device": "src.img"}) == {}  # again: a flush, nothing else
c.err("image-export-prep", {"device": "nope"}, "DeviceNotFound")
c.err("image-export-prep", {"device": "src.img", "force": True}, "GenericError")
PY
# What the guest saw at the export: the disk the destination must end with.
cp --sparse=always mnt-src/src.img source-copy.raw
fio "${FIO_PATTERN[@]}" --filename=source-copy.raw --direct=0 --verify_only --output=fio-copy.log \
  || { cat fio-copy.log; fail "the copy of the source does not hold the pattern"; }

step "qemu-nbd exports the image through the mount, read-only, in namespace A"
rm -f "$WORK/nbd.pid"
start_bg nsenter --net="/run/netns/$NS_A" qemu-nbd -t -r -e 16 -f raw -b "$ADDR_A" -p "$PORT" \
  --pid-file "$WORK/nbd.pid" "$WORK/mnt-src/src.img" 2>> qemu-nbd.log
NBD_PID=$BG_PID
wait_for 10 test -s "$WORK/nbd.pid"
tx_before=$(veth_tx_bytes)

step "the destination (namespace B) creates an overlay over the export and mounts it"
URI="nbd://$ADDR_A:$PORT/"
./corfs-b create overlays/dst.img -b "$URI" > create.log || fail "create over $URI: $(cat create.log)"
write_yaml dst.yaml <<YAML
images:
  dst.img:
    overlay: overlays/dst.img
    backing: ["$URI"]
YAML
CORFS="$WORK/corfs-b" start_mount dst.yaml mnt-dst
DST_PID=$MOUNT_PID
[ "$(stat -c %s mnt-dst/dst.img)" = $((32 << 20)) ] || fail "destination size $(stat -c %s mnt-dst/dst.img)"

step "fio verifies the pattern at the destination while the stream runs"
"$CORFS" stream dst.img -m mnt-dst --speed 4M > stream.log || fail "stream: $(cat stream.log)"
fio "${FIO_PATTERN[@]}" --filename=mnt-dst/dst.img --verify_only --output=fio-dst.log \
  || { cat fio-dst.log; fail "fio verify at the destination"; }
"$CORFS" set-speed dst.img 0 -m mnt-dst > /dev/null 2>&1 || true  # the stream may have ended already
wait_for 120 job_gone mnt-dst dst.img
[ "$(info_field overlays/dst.img state)" = standalone ] || fail "dst.img is not standalone: $(info_field overlays/dst.img state)"
sent=$(($(veth_tx_bytes) - tx_before))
[ "$sent" -ge $((12 << 20)) ] || fail "only $sent bytes crossed the veth for 12 MiB of data"

step "the source stops; the destination's disk is the source's at the export"
stop_bg "$NBD_PID"
cmp source-copy.raw mnt-dst/dst.img || fail "destination differs from the source"
qemu-img compare -f raw -F raw source-copy.raw mnt-dst/dst.img || fail "qemu-img compare"
MOUNT_PID=$SRC_PID
"$CORFS" export-end src.img -m mnt-src > /dev/null || fail "export-end"
dd if=/dev/zero of=mnt-src/src.img bs=4k count=1 conv=notrunc status=none || fail "write after export-end"
stop_mount mnt-src
MOUNT_PID=$DST_PID
stop_mount mnt-dst

step "after a remount, with no backing at all, the data is intact"
[ ! -e overlays/dst.img.part ] || fail "dst.img.part is still there"
cmp source-copy.raw overlays/dst.img || fail "the standalone data file differs"
write_yaml dst2.yaml <<YAML
images:
  dst.img:
    overlay: overlays/dst.img
    size: 32M
YAML
start_mount dst2.yaml mnt-dst
cmp source-copy.raw mnt-dst/dst.img || fail "destination differs after the remount"
fio "${FIO_PATTERN[@]}" --filename=mnt-dst/dst.img --verify_only --output=fio-dst2.log \
  || { cat fio-dst2.log; fail "fio verify after the remount"; }
stop_mount mnt-dst
