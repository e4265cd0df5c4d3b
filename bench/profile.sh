#!/usr/bin/env bash
# Boot profiles, measured side by side in one run (bench/README.md, "Boot
# profiles"): a Linux guest under qemu (TCG) boots from an ext4 root whose
# init reads files scattered over more than 64 MiB and prints a marker; the
# figure is the time from qemu's start to the marker (the median of
# --rounds boots, taking turns)
#   limit     from the template file itself, on this machine;
#   stream    through corfs, a stream from mount in disk order, no profile;
#   profile   through corfs, the same stream start with a profile recorded
#             by an earlier boot (the recording boot is timed too);
#   qsd       through qemu-storage-daemon: a qcow2 overlay with the
#             copy-on-read filter, exported over FUSE;
# and the cost of recording to a guest: 4 KiB random cold-read IOPS on a
# fresh overlay, with and without `boot_profile:` recording.
#
#   bench/profile.sh [--source local|nbdfuse|nbd] [--delay 5ms] [--rate 200M]
#                    [--runtime 10] [--rounds 3] [--corfs BINARY]
#
# --source says where the template is for corfs and qsd:
#   local    the template file (no slow link: the figures show the overhead
#            of each path, not what a profile saves);
#   nbdfuse  nbdkit serving the file with --filter=delay --filter=rate
#            (delay-read, rate in bits per second), seen by corfs through
#            nbdfuse as a local file, by qsd as an nbd blockdev;
#   nbd      the same server, named by corfs as nbd+unix:// (corfs's own
#            NBD client; qsd as with nbdfuse).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

source_kind=local
delay=5ms
rate=200M
runtime=10
rounds=3
corfs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_kind=${2:?}; shift 2 ;;
    --delay) delay=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --runtime) runtime=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --corfs) corfs=$(realpath "${2:?}"); shift 2 ;;
    -h|--help) sed -n '2,26p' "$0" >&2; exit 2 ;;
    *) echo "bench: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$source_kind" in local|nbdfuse|nbd) ;; *) echo "bench: --source local, nbdfuse or nbd" >&2; exit 2 ;; esac
[ -n "$corfs" ] || corfs="$root/build/cli/corfs"
export CORFS=$corfs
for tool in "$corfs" qemu-img qemu-storage-daemon qemu-system-x86_64 fio python3 mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
if [ "$source_kind" != local ]; then
  for tool in nbdkit nbdfuse; do command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }; done
fi

# lib.sh: the work folder, fail/step, and the EXIT trap that stops what this
# script started (by pid) and unmounts what it mounted.
source "$root/tests/integration/lib.sh"
source "$root/tests/integration/guest_lib.sh"

now() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
results=$WORK/results.txt
: >"$results"
record() { echo "$1 $2" >>"$results"; echo "bench: $1 = $2" >&2; }

guest_require_tools
guest_kernel

step "the template: an ext4 root whose init reads 32 files spread over 144 MiB"
mkdir -p tree/data
for i in $(seq -w 0 31); do
  head -c 512K /dev/urandom >"tree/data/$i-a.read"
  head -c 4M /dev/urandom >"tree/data/$i-b.skip"
done
cat >tree/init <<'EOF'
cd "$(dirname "$0")"
# In the order of a boot that is not the disk's: odd files, then even ones.
for i in $(seq 1 2 31) $(seq 0 2 31); do cat "data/$(printf %02d "$i")-a.read" >/dev/null; done
echo "BOOT-MARKER"
EOF
truncate -s 256M template.raw
mkfs.ext4 -q -F -d tree template.raw
rm -rf tree

cat >guest.sh <<'EOF'
for _ in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -t ext4 -o ro,noload /dev/vda /mnt
sh /mnt/init
umount /mnt
EOF
guest_initramfs initrd.gz guest.sh

# boot NAME DISK: boots the guest from DISK; records NAME as the seconds
# from qemu's start to the marker on the console.
boot() {
  local name=$1 disk=$2 start
  rm -f "console-$name.log"
  guest_libvirt_disk "$disk"
  start=$(now)
  # The marker is written a moment before the guest powers off; poll for it.
  (
    until grep -qa BOOT-MARKER "console-$name.log" 2>/dev/null; do sleep 0.02; done
    seconds_since "$start" >"marker-$name.txt"
  ) &
  local poller=$!
  STARTED_PIDS+=("$poller")
  guest_run "console-$name.log" 600 initrd.gz "${GUEST_DISK_ARGS[@]}"
  wait "$poller" 2>/dev/null || true
  forget_pid "$poller"
  record "boot_$name" "$(cat "marker-$name.txt")"
}

# The slow server, for --source nbdfuse and nbd: a new one (and a new
# nbdfuse, so no page cache carries over) for every boot.
SERVER_PIDS=()
serve_template() {
  rm -f nbd.sock
  nbdkit --foreground --exit-with-parent --unix "$WORK/nbd.sock" --filter=delay --filter=rate \
    file "$WORK/template.raw" delay-read="$delay" rate="$rate" 2>nbdkit.log &
  SERVER_PIDS+=($!)
  STARTED_PIDS+=($!)
  for _ in $(seq 1 100); do [ -S nbd.sock ] && break; sleep 0.05; done
  [ -S nbd.sock ] || fail "nbdkit did not start (nbdkit.log)"
  if [ "$source_kind" = nbdfuse ]; then
    # nbdfuse mounts the folder `remote` with one file in it.
    mkdir -p remote
    nbdfuse --readonly remote/template.raw --unix "$WORK/nbd.sock" 2>nbdfuse.log &
    SERVER_PIDS+=($!)
    STARTED_PIDS+=($!)
    MOUNTED+=("$WORK/remote")
    for _ in $(seq 1 100); do [ -e remote/template.raw ] && break; sleep 0.05; done
    [ -e remote/template.raw ] || fail "nbdfuse did not mount (nbdfuse.log)"
  fi
}
stop_server() {
  local pid
  if [ "$source_kind" = nbdfuse ] && is_mounted remote; then fusermount3 -u remote || true; fi
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
  done
  SERVER_PIDS=()
}
# What corfs names as its backing image.
backing() {
  case "$source_kind" in
    local) echo "template.raw" ;;
    nbdfuse) echo "remote/template.raw" ;;
    nbd) echo "nbd+unix:///?socket=$WORK/nbd.sock" ;;
  esac
}

# corfs_boot NAME [KEY: VALUE...]: a fresh overlay over the template, its
# image keys given, mounted; boots from it and unmounts.
corfs_boot() {
  local name=$1
  shift
  [ "$source_kind" = local ] || serve_template
  rm -rf overlays && mkdir overlays
  {
    printf 'images:\n  disk.img:\n    overlay: overlays/disk.img\n    backing: ["%s"]\n' "$(backing)"
    for key in "$@"; do printf '    %s\n' "$key"; done
  } >"$name.yaml"
  start_mount "$name.yaml" mnt
  boot "$name" mnt/disk.img
  stop_mount mnt
  [ "$source_kind" = local ] || stop_server
}

# qsd_boot: qemu-storage-daemon, copy-on-read over a fresh qcow2 overlay of
# the template, exported over FUSE; boots from it.
qsd_boot() {
  [ "$source_kind" = local ] || serve_template
  if [ "$source_kind" = local ]; then
    base_file='{"driver":"file","node-name":"base-file","filename":"'"$WORK"'/template.raw","read-only":true}'
  else
    base_file='{"driver":"nbd","node-name":"base-file","server":{"type":"unix","path":"'"$WORK"'/nbd.sock"},"read-only":true}'
  fi
  rm -f qsd.qcow2
  # The backing node is given on the command line, not named in the qcow2.
  qemu-img create -q -f qcow2 qsd.qcow2 256M
  touch qsd-export.img
  qemu-storage-daemon \
    --blockdev "$base_file" \
    --blockdev '{"driver":"raw","node-name":"base","file":"base-file","read-only":true}' \
    --blockdev '{"driver":"qcow2","node-name":"ov","file":{"driver":"file","filename":"'"$WORK"'/qsd.qcow2"},"backing":"base"}' \
    --blockdev '{"driver":"copy-on-read","node-name":"cor","file":"ov"}' \
    --export type=fuse,id=e0,node-name=cor,mountpoint=qsd-export.img,writable=on 2>qsd.log &
  qsd_pid=$!
  STARTED_PIDS+=("$qsd_pid")
  MOUNTED+=("$WORK/qsd-export.img")
  for _ in $(seq 1 200); do is_mounted qsd-export.img && break; sleep 0.05; done
  is_mounted qsd-export.img || { cat qsd.log >&2; fail "qsd export did not appear"; }
  boot qsd qsd-export.img
  kill -TERM "$qsd_pid"
  wait "$qsd_pid" 2>/dev/null || true
  forget_pid "$qsd_pid"
  [ "$source_kind" = local ] || stop_server
}

step "corfs: recording a profile (no stream)"
rm -f boot.profile
# Written when the image closes: under TCG a boot may pause for longer than
# any idle time between probing the disk and mounting it.
corfs_boot record "boot_profile: boot.profile" "boot_profile_idle: 1h"
[ -s boot.profile ] || fail "the recording boot left no profile"
"$CORFS" profile show boot.profile | sed -n '1,5p' >&2

# The other boots take turns, $rounds times; each figure is the median. A
# TCG boot's time moves by half a second from one boot to the next with
# the share of the cores the emulated CPU gets, as much as what a profile
# saves here.
for round in $(seq 1 "$rounds"); do
  step "round $round of $rounds: the template file (the limit), corfs without and with the profile, qsd"
  boot limit template.raw
  corfs_boot stream "stream: {auto: true}"
  corfs_boot profile "boot_profile: boot.profile" "stream: {auto: true}"
  qsd_boot
done


step "recording's cost: 4 KiB random cold-read IOPS on a fresh overlay (local template)"
random_file iops.raw 1G
# iops NAME [KEY: VALUE...]: prints the IOPS of one run on a fresh overlay.
iops() {
  local name=$1
  shift
  rm -rf overlays && mkdir overlays
  rm -f iops.profile
  {
    printf 'images:\n  disk.img:\n    overlay: overlays/disk.img\n    backing: [iops.raw]\n'
    for key in "$@"; do printf '    %s\n' "$key"; done
  } >"iops-$name.yaml"
  start_mount "iops-$name.yaml" mnt
  fio --name=cold --filename=mnt/disk.img --direct=1 --ioengine=psync --rw=randread --bs=4k \
    --numjobs=2 --group_reporting --time_based --runtime="$runtime" --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["jobs"][0]["read"]["iops"])'
  stop_mount mnt
}
# Three rounds, alternating, and the median of each: the load of a shared
# machine drifts more between two runs than recording could cost.
plain=() recording=()
for _ in 1 2 3; do
  plain+=("$(iops plain)")
  recording+=("$(iops recording "boot_profile: iops.profile" "boot_profile_idle: 1h")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
echo "bench: iops rounds: plain ${plain[*]}, recording ${recording[*]}" >&2
record iops_plain "$(median "${plain[@]}")"
record iops_recording "$(median "${recording[@]}")"

echo
echo "boot profiles (source: $source_kind$([ "$source_kind" = local ] || echo ", delay-read=$delay rate=$rate bit/s"))"
python3 - "$results" <<'PY'
import sys
import statistics
runs = {}
for line in open(sys.argv[1]):
    key, value = line.split()
    runs.setdefault(key, []).append(float(value))
# The median of each figure's rounds (one value for those run once).
f = {k: statistics.median(v) for k, v in runs.items()}
for k, v in runs.items():
    if len(v) > 1:
        print(f"{k}: rounds {' '.join('%.2f' % x for x in v)}")
limit = f["boot_limit"]
print(f"{'figure':<34} {'value':>10} {'vs limit':>9} {'beyond limit':>13}")
for key, name in [("boot_limit", "boot: template file (limit)"), ("boot_stream", "boot: corfs, stream, no profile"),
                  ("boot_record", "boot: corfs, recording"), ("boot_profile", "boot: corfs, stream with profile"),
                  ("boot_qsd", "boot: qsd copy-on-read")]:
    v = f[key]
    print(f"{name:<34} {v:>9.2f}s {v / limit:>8.2f}x {v - limit:>12.2f}s")
print(f"{'iops: cold 4K random, no profile':<34} {f['iops_plain']:>10.0f}")
print(f"{'iops: cold 4K random, recording':<34} {f['iops_recording']:>10.0f} {f['iops_recording'] / f['iops_plain']:>8.2f}x")
extra_stream = f["boot_stream"] - limit
extra_profile = f["boot_profile"] - limit
ok1 = f["boot_profile"] <= 1.3 * limit
ok2 = extra_profile <= 0.5 * extra_stream if extra_stream > 0 else None
print(f"goal: profile within 1.3x of the limit: {'ok' if ok1 else 'MISS'}; "
      f"time beyond the limit at most half of the stream's: {'ok' if ok2 else ('n/a' if ok2 is None else 'MISS')}")
PY
