#!/usr/bin/env bash
# A power cut in the middle of a stream and of O_DIRECT writes with fsyncs:
# every write whose fsync returned before the cut is there afterwards, every
# other block holds one of the contents it may hold, `corfs check` is clean.
#
# kill -9 of the daemon keeps the page cache, so it cannot show what a power
# cut loses. Here the overlay and its template live on an "inner" file system
# (ext4 or XFS) on a loop device whose disk is a file of an "outer" XFS.
# `cp --reflink=always` of that disk file is the power cut: it holds what the
# inner file system had sent to its device and nothing of its page cache.
# The snapshot is mounted where the inner file system was (the overlay names
# its template by absolute path), checked, and served by corfs again.
#
# The writer logs each write ("W seq offset blocks", before it starts) and
# each fsync that returned ("S seq": writes up to seq are flushed) to a log
# outside the snapshot. The log's size when the snapshot starts says which
# fsyncs returned before it; its size when the snapshot ends, which writes
# may have begun before it ended. Every 4 KiB block a write makes names the
# write (seq and offset) and is otherwise a hash of that name, so the
# verifier can tell which write, if any, a block holds.
#
# Skips (exit 0, "SKIP: ...") only where loop devices or XFS are unavailable.
# POWER_CUT_CYCLES picks the cycles (CLUSTER_SIZE:INNER_FS, blank-separated).
set -euo pipefail

skip() { echo "SKIP: $(basename "$0"): $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "loop devices and block mounts need root"
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
[ -e /dev/loop-control ] || skip "no loop devices (/dev/loop-control is missing and modprobe loop failed)"
losetup -f > /dev/null 2>&1 || skip "no free loop device (losetup -f failed)"
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null || true
grep -qw xfs /proc/filesystems || skip "this kernel has no XFS (not in /proc/filesystems, modprobe xfs failed)"
command -v mkfs.xfs > /dev/null || { echo "FAILED: mkfs.xfs is missing: run scripts/install-deps.sh (xfsprogs)" >&2; exit 1; }

source "$(dirname "$0")/lib.sh"

# The loop devices this test attached, and whether it has the inner file
# system (or the snapshot) mounted. Cleanup undoes what is set, inner first.
OUTER_DEV=""
INNER_DEV=""
CLEANUP_HOOK=power_cut_cleanup

# detach DEV FILE: detaches the loop device DEV if it still serves FILE (a
# number once detached may serve someone else's file by now).
detach() {
  [ -n "$1" ] || return 0
  [ "$(losetup -n -O BACK-FILE "$1" 2>/dev/null)" = "$(realpath "$2")" ] || return 0
  losetup -d "$1"
}

unmount_block() {
  if is_mounted "$1"; then umount "$1" 2>/dev/null || umount -l "$1"; fi
}

power_cut_cleanup() {
  unmount_block inner
  detach "$INNER_DEV" outer/disk.img
  detach "$INNER_DEV" outer/snapshot.img
  unmount_block outer
  detach "$OUTER_DEV" outer.xfs
}

write_writer() {
  cat > "$WORK/writer.py" <<'PY'
import hashlib, mmap, os, random, struct, sys

def block(seq, offset):
    name = struct.pack("<8sQQ", b"PWRCUT\0\0", seq, offset)
    return name + hashlib.shake_128(name).digest(4096 - len(name))

disk, log_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
fd = os.open(disk, os.O_WRONLY | os.O_DIRECT)
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
# The writes go to the even MiBs of the first half of the disk, half of them
# to one MiB written over and over (so that writes overwrite flushed ones).
# The odd MiBs and the second half are the stream's alone: with 1 MiB
# clusters the writes soon hold every cluster they touch, and the stream must
# still be copying at the cut.
stripes = os.lseek(fd, 0, os.SEEK_END) // (1 << 20) // 4
buf = mmap.mmap(-1, 32 * 4096)  # page-aligned, as O_DIRECT needs
seq = 0
while True:
    seq += 1
    n = rng.choice([1, 1, 2, 3, 4, 8, 16, 32])
    stripe = stripes // 2 if rng.random() < 0.5 else rng.randrange(stripes)
    first = stripe * 512 + rng.randrange(256 - n + 1)
    for i in range(n):
        buf[i * 4096:(i + 1) * 4096] = block(seq, (first + i) * 4096)
    os.write(log, f"W {seq} {first * 4096} {n}\n".encode())
    written = os.pwrite(fd, memoryview(buf)[:n * 4096], first * 4096)
    assert written == n * 4096, f"short write: {written} of {n * 4096}"
    if rng.random() < 0.15:
        os.fsync(fd)
        os.write(log, f"S {seq}\n".encode())
PY
}

write_verifier() {
  cat > "$WORK/verify.py" <<'PY'
import hashlib, struct, sys

def block(seq, offset):
    name = struct.pack("<8sQQ", b"PWRCUT\0\0", seq, offset)
    return name + hashlib.shake_128(name).digest(4096 - len(name))

def lines(data, limit):
    """The whole lines among the first `limit` bytes of the log."""
    return data[:limit].decode().split("\n")[:-1]

disk, template, log_path = sys.argv[1], sys.argv[2], sys.argv[3]
at_start, at_end = int(sys.argv[4]), int(sys.argv[5])
log = open(log_path, "rb").read()
flushed = max([int(l.split()[1]) for l in lines(log, at_start) if l[0] == "S"], default=0)
writes = [tuple(map(int, l.split()[1:])) for l in lines(log, at_end) if l[0] == "W"]
image = open(disk, "rb").read()
base = open(template, "rb").read()
assert len(image) == len(base), f"the disk is {len(image)} bytes, the template {len(base)}"

# For each block written: the writes that wrote it, in order (0: the template).
history = {}
for seq, offset, n in writes:
    for b in range(offset // 4096, offset // 4096 + n):
        history.setdefault(b, [0]).append(seq)

def holds(b):
    """What block b holds: a write's seq, 0 for the template, None for neither."""
    data = image[b * 4096:(b + 1) * 4096]
    if data == base[b * 4096:(b + 1) * 4096]:
        return 0
    if data[:8] == b"PWRCUT\0\0":
        seq, offset = struct.unpack("<QQ", data[8:24])
        if offset == b * 4096 and data == block(seq, offset):
            return seq
    return None

def describe(data):
    if data == bytes(4096):
        return "zeros"
    if data[:8] == b"PWRCUT\0\0":
        return "a torn or misplaced block of write %d (for offset %d)" % struct.unpack("<QQ", data[8:24])
    return "unknown bytes " + data[:16].hex()

problems, unflushed_new, unflushed_old = [], 0, 0
for b in range(len(image) // 4096):
    seqs = history.get(b, [0])
    durable = max(i for i, s in enumerate(seqs) if s <= flushed)
    allowed = seqs[durable:]
    got = holds(b)
    if got in allowed:
        if len(allowed) > 1:
            unflushed_new += got != seqs[durable]
            unflushed_old += got == seqs[durable]
        continue
    what = describe(image[b * 4096:(b + 1) * 4096]) if got is None else \
        ("the template" if got == 0 else f"write {got}")
    need = "the template" if seqs[durable] == 0 else f"write {seqs[durable]} (flushed before the cut)"
    problems.append(f"block {b} (offset {b * 4096}): holds {what}; wanted {need} or a later write of {allowed[1:]}")
print(f"{len(writes)} writes began before the cut ended, those up to {flushed} were flushed before it began; "
      f"blocks with unflushed writes: {unflushed_new} hold the new data, {unflushed_old} the old")
if flushed == 0:
    problems.append("no fsync returned before the cut: nothing was tested")
for p in problems[:20]:
    print("PROBLEM:", p)
if problems:
    print(f"{len(problems)} block(s) wrong")
    sys.exit(1)
PY
}

# flushes_at_least LOG N: at least N fsyncs have returned.
flushes_at_least() { [ "$(grep -c '^S' "$1")" -ge "$2" ]; }

# mkfs_inner TYPE FILE
mkfs_inner() {
  case $1 in
    ext4) mkfs.ext4 -q -F "$2" ;;
    xfs) mkfs.xfs -q -f "$2" ;;
    *) fail "unknown inner file system $1" ;;
  esac
}

# power_cut CLUSTER_SIZE INNER_FS: one cycle.
power_cut() {
  local cluster=$1 fs=$2 seed=$RANDOM at_start at_end percent
  step "cluster $cluster, inner $fs: setup (writer seed $seed)"
  truncate -s 384M outer/disk.img
  mkfs_inner "$fs" outer/disk.img
  INNER_DEV=$(losetup -f --show outer/disk.img)
  mount "$INNER_DEV" inner
  random_file inner/template.raw 64M
  mkdir inner/overlays
  write_yaml inner/stream.yaml <<YAML
defaults: {cluster_size: $cluster}
images:
  disk.img: {overlay: overlays/disk.img, backing: [template.raw], stream: {auto: true, speed: 2M}}
YAML
  write_yaml inner/serve.yaml <<YAML
images:
  disk.img: {overlay: overlays/disk.img, backing: [template.raw]}
YAML
  sync -f inner/template.raw  # the template was there long before the power cut

  step "cluster $cluster, inner $fs: writes and fsyncs while the stream runs, then the cut"
  rm -f writes.log
  start_mount inner/stream.yaml mnt
  wait_for 30 job_offset_above mnt disk.img 0
  start_bg python3 "$WORK/writer.py" mnt/disk.img writes.log "$seed" 2> writer.err
  local writer=$BG_PID
  sleep 2
  wait_for 60 flushes_at_least writes.log 10
  job_is mnt disk.img running || fail "the stream is not running when the cut starts"
  at_start=$(stat -c %s writes.log)
  cp --reflink=always outer/disk.img outer/snapshot.img
  at_end=$(stat -c %s writes.log)
  job_is mnt disk.img running || fail "the stream is not running when the cut ends"
  sleep 0.3
  kill -0 "$writer" 2>/dev/null || { cat writer.err >&2; fail "the writer stopped on its own"; }
  stop_bg "$writer"
  [ ! -s writer.err ] || { cat writer.err >&2; fail "the writer failed"; }
  stop_mount mnt
  umount inner
  detach "$INNER_DEV" outer/disk.img
  rm outer/disk.img

  step "cluster $cluster, inner $fs: after the cut, check and serve the overlay again"
  INNER_DEV=$(losetup -f --show outer/snapshot.img)
  mount "$INNER_DEV" inner
  "$CORFS" check inner/overlays/disk.img || fail "corfs check after the cut"
  overlay_is inner/overlays/disk.img has-backing || fail "the cut did not land mid-stream: the overlay is standalone"
  percent=$(info_field inner/overlays/disk.img allocated-percent)
  start_mount inner/serve.yaml mnt
  python3 "$WORK/verify.py" mnt/disk.img inner/template.raw writes.log "$at_start" "$at_end" ||
    fail "cluster $cluster, inner $fs: the overlay after the cut lost or mangled data (writer seed $seed)"
  stop_mount mnt
  "$CORFS" check inner/overlays/disk.img || fail "corfs check after serving the cut overlay"
  echo "overlay was $percent% local at the cut"
  umount inner
  detach "$INNER_DEV" outer/snapshot.img
  INNER_DEV=""
  rm outer/snapshot.img
}

step "the outer XFS (reflink) on a loop device"
mkdir outer inner
truncate -s 1G outer.xfs
mkfs.xfs -q -m reflink=1 outer.xfs
OUTER_DEV=$(losetup -f --show outer.xfs)
mount "$OUTER_DEV" outer
write_writer
write_verifier

for cycle in ${POWER_CUT_CYCLES:-4K:ext4 64K:xfs 1M:ext4}; do
  power_cut "${cycle%%:*}" "${cycle#*:}"
done
