#!/usr/bin/env bash
# The mount behaves like a folder of fixed disks: st_size is the virtual
# size and st_blocks what the overlay holds; chmod works; creating, renaming,
# deleting and shrinking are refused (growing: ownership_and_resize_test.sh); a read-only image refuses writes with
# EROFS; discard and zero-range read back as zeros.
source "$(dirname "$0")/lib.sh"

random_file template.raw 16M
write_yaml fs.yaml <<YAML
images:
  rw.img:
    overlay: overlays/rw.img
    backing: [template.raw]
    mode: 0640
  ro.img:
    overlay: overlays/ro.img
    backing: [template.raw]
    read_only: true
    create: true
YAML
# a read-only image cannot be created by the mount: make its overlay first
mkdir -p overlays
"$CORFS" create overlays/ro.img --backing template.raw
start_mount fs.yaml mnt

step "two images over one template share one open file"
opened=$(ls -l /proc/$MOUNT_PID/fd | grep -c "template.raw" || true)
[ "$opened" -eq 1 ] || fail "the template is open $opened times"

step "listing, sizes, modes"
[ "$(ls mnt | tr '\n' ' ')" = "ro.img rw.img " ] || fail "unexpected listing: $(ls mnt)"
[ "$(stat -c %s mnt/rw.img)" -eq $((16 << 20)) ] || fail "st_size"
[ "$(stat -c %a mnt/rw.img)" = "640" ] || fail "mode from the YAML file"
[ "$(stat -c %b mnt/rw.img)" -eq 0 ] || fail "st_blocks should be 0 before any read"
dd if=mnt/rw.img of=/dev/null bs=1M count=2 iflag=direct status=none
sleep 1.1  # attribute cache
[ "$(du -k mnt/rw.img | cut -f1)" -ge 2048 ] || fail "du does not show what the overlay holds"
chmod 600 mnt/rw.img
[ "$(stat -c %a mnt/rw.img)" = "600" ] || fail "chmod"

step "the folder's contents are fixed"
touch mnt/new.img 2>/dev/null && fail "creating a file worked"
mkdir mnt/dir 2>/dev/null && fail "mkdir worked"
mv mnt/rw.img mnt/other.img 2>/dev/null && fail "rename worked"
rm -f mnt/rw.img 2>/dev/null && fail "unlink worked"
truncate -s 1M mnt/rw.img 2>/dev/null && fail "shrinking worked"
[ -e mnt/rw.img ] || fail "rw.img vanished"

step "O_TRUNC is refused; a direct write past the end fails and changes nothing; times before 1970"
cp mnt/rw.img rw-before.raw
# cp onto an image opens it with O_TRUNC, then skips the holes of its source.
truncate -s 16M holes.raw
cp --sparse=always holes.raw mnt/rw.img 2>/dev/null && fail "cp onto an image (O_TRUNC) worked"
python3 - mnt/rw.img <<'PY'
import errno, mmap, os, sys
path = sys.argv[1]
size = os.stat(path).st_size
try:
    os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))
    raise SystemExit("O_TRUNC was accepted")
except PermissionError:
    pass
# 8 KiB from 4 KiB before the end: refused whole, as no space.
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 8192)
buf.write(b"ab" * 4096)
try:
    os.pwritev(fd, [buf], size - 4096)
    raise SystemExit("a direct write past the end was accepted")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
os.close(fd)
assert os.stat(path).st_size == size
os.utime(path, ns=(0, -1500000000))
assert os.stat(path).st_mtime_ns == -1500000000, os.stat(path).st_mtime_ns
PY
cmp rw-before.raw mnt/rw.img || fail "a refused write changed the disk"
rm rw-before.raw holes.raw

step "read-only image: reads work, writes get EROFS"
cmp template.raw mnt/ro.img
out=$(dd if=/dev/zero of=mnt/ro.img bs=4k count=1 conv=notrunc 2>&1) && fail "write to a read-only image worked"
grep -q "Read-only file system" <<<"$out" || fail "expected EROFS, got: $out"

step "punch hole and zero range read back as zeros"
fallocate --punch-hole --keep-size -o 1M -l 256K mnt/rw.img
fallocate --zero-range --keep-size -o 3000000 -l 10000 mnt/rw.img
cp template.raw expected.raw
dd if=/dev/zero of=expected.raw bs=1k seek=1024 count=256 conv=notrunc status=none
dd if=/dev/zero of=expected.raw bs=1 seek=3000000 count=10000 conv=notrunc status=none
cmp expected.raw mnt/rw.img
stop_mount mnt
