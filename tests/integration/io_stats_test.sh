#!/usr/bin/env bash
# Per-image I/O statistics (query-blockstats, `corfs stats`) after known I/O
# through a real mount, and the daemon's log: time and level on each line,
# a guest's EIO logged with image, offset and length, control commands
# logged at info (queries at debug), and --log-level choosing what shows.
source "$(dirname "$0")/lib.sh"

random_file template.raw 8M
cat > bad.rules <<RULES
image template.raw
format raw
read-error 6M 64K EIO
RULES
write_yaml stats.yaml <<YAML
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [template.raw]
    cluster_size: 64K
  bad.img:
    overlay: overlays/bad.img
    backing: [{path: bad.rules, format: blkdebug}]
    copy_on_read: false
YAML

# stat_of IMAGE FIELD: one counter of `corfs stats IMAGE --json`.
stat_of() {
  "$CORFS" stats -m mnt "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats'][sys.argv[1]])" "$2"
}
expect() {  # IMAGE FIELD VALUE
  local got
  got=$(stat_of "$1" "$2")
  [ "$got" = "$3" ] || fail "$1 $2 is $got, expected $3"
}

start_mount stats.yaml mnt --log-level debug

step "a fresh mount counts nothing"
expect disk.img rd_operations 0
expect disk.img wr_bytes 0

step "known I/O: 16 writes of 64K, 8 direct reads of 64K faulting in 8 clusters, an fsync"
dd if=/dev/urandom of=mnt/disk.img bs=64K count=16 conv=notrunc oflag=direct status=none
dd if=mnt/disk.img of=/dev/null bs=64K skip=64 count=8 iflag=direct status=none
python3 -c "import os; fd = os.open('mnt/disk.img', os.O_RDONLY); os.fsync(fd); os.close(fd)"
expect disk.img wr_operations 16
expect disk.img wr_bytes $((1024 * 1024))
expect disk.img rd_operations 8
expect disk.img rd_bytes $((512 * 1024))
expect disk.img corfs_cor_faults 8
expect disk.img corfs_cor_bytes $((512 * 1024))
expect disk.img failed_rd_operations 0
[ "$(stat_of disk.img flush_operations)" -ge 1 ] || fail "the fsync was not counted"
[ "$(stat_of disk.img rd_total_time_ns)" -gt 0 ] || fail "no read time"
# The other image saw none of it.
expect bad.img rd_operations 0
expect bad.img wr_operations 0

step "QEMU's shape over QMP: a list of {device, stats}"
write_qmp_client
python3 - <<'PY' || fail "query-blockstats is not QEMU's shape"
from qmp import *
c = Qmp("mnt.sock")
stats = c.ok("query-blockstats")
assert [s["device"] for s in stats] == ["disk.img", "bad.img"], stats
for key in ("rd_bytes", "wr_bytes", "rd_operations", "wr_operations", "flush_operations",
            "rd_total_time_ns", "wr_total_time_ns", "flush_total_time_ns"):
    assert isinstance(stats[0]["stats"][key], int), key
c.err("query-blockstats", {"bogus": 1}, "GenericError")
# A name with a line break is logged escaped: a client cannot forge a line.
c.err("block-stream", {"device": "no\nforged line"}, "DeviceNotFound")
PY

step "a guest's EIO: counted, and logged with image, offset and length"
dd if=mnt/bad.img of=/dev/null bs=64K skip=96 count=1 iflag=direct status=none 2>/dev/null \
  && fail "the read of a failing range succeeded"
expect bad.img failed_rd_operations 1
grep -Eq " warning image bad.img: guest read of 65536 bytes at 6291456 failed \(Input/output error\)" corfs.log \
  || { cat corfs.log; fail "no log line for the guest's EIO"; }

step "the table"
"$CORFS" stats -m mnt > table.txt
grep -Eq "^disk.img +512 KiB +1 MiB +8 +16 " table.txt || { cat table.txt; fail "unexpected table"; }
"$CORFS" stats -m mnt nosuch.img 2> err.txt && fail "stats of an unknown image succeeded"
grep -q "^corfs: no image 'nosuch.img'" err.txt || fail "unclear message: $(cat err.txt)"

step "log lines carry time and level; debug shows queries, info shows commands"
"$CORFS" threshold disk.img 90% -m mnt >/dev/null
stop_mount mnt
grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} info serving 2 image" corfs.log \
  || { cat corfs.log; fail "no timed info line for the start"; }
grep -Eq " debug control: query-blockstats: ok$" corfs.log || { cat corfs.log; fail "debug does not show queries"; }
grep -Eq " info control: block-set-write-threshold node-name=disk.img: ok$" corfs.log \
  || { cat corfs.log; fail "the threshold command was not logged"; }
grep -q "control: query-blockstats: error GenericError" corfs.log || fail "a failed command was not logged"
grep -Fq ' control: block-stream device="no\nforged line": error DeviceNotFound' corfs.log \
  || { cat corfs.log; fail "a name with a line break was not logged escaped"; }
grep -q "^forged line" corfs.log && fail "a client's name split a log line"
grep -q " info unmounted " corfs.log || fail "no unmount line"

step "--log-level warn hides commands and the start, keeps warnings"
: > corfs.log
start_mount stats.yaml mnt --log-level warn
"$CORFS" threshold disk.img 90% -m mnt >/dev/null
"$CORFS" stats -m mnt >/dev/null
dd if=mnt/bad.img of=/dev/null bs=64K skip=96 count=1 iflag=direct status=none 2>/dev/null || true
stop_mount mnt
grep -q "control:" corfs.log && { cat corfs.log; fail "warn shows control commands"; }
grep -q "serving" corfs.log && fail "warn shows the start"
grep -q "guest read of 65536 bytes at 6291456 failed" corfs.log || fail "warn hides a guest's EIO"

step "a bad --log-level is refused before anything is mounted"
mkdir -p mnt2
"$CORFS" mount stats.yaml mnt2 --log-level loud 2> err.txt && fail "--log-level loud accepted"
grep -q "^corfs: --log-level: log level 'loud': expected trace, debug, info, warn, error or off" err.txt \
  || fail "unclear message: $(cat err.txt)"
is_mounted mnt2 && fail "mounted despite a bad --log-level"
true
