#!/usr/bin/env bash
# Both storage migrations of docs/migration.md, end to end, between two
# network namespaces on this machine joined by a veth pair (nothing leaves
# the machine): "src" (10.214.0.1) and "dst" (10.214.0.2), each with its own
# folder standing for its host's disk and its own copy of the template.
#
#   1. pre-copy src -> dst: a guest workload (fio randwrite, crc32c verify)
#      runs on the source while `corfs mirror --sync top` copies what the
#      source's overlay holds into an NBD export of an overlay over the same
#      template at the destination; `corfs complete`, the switch, and fio
#      verifies the pattern at the destination;
#   2. post-copy dst -> src: a second workload at the destination, then
#      `corfs export-prep`, qemu-nbd -r exports the image through the mount,
#      the source mounts an overlay over that export and verifies both
#      patterns while its stream pulls the rest; standalone, server stopped.
#
# Usage: migrate.sh [--size SIZE] [--skip-precopy] [--workdir DIR]   (as root)
#   --size     the disk's size (default 1G; the test suite uses 64M)
#   --skip-precopy  only the post-copy half (the guest starts at the
#              destination), for a corfs without the mirror job
#   --workdir  where the two hosts' folders go (default: a new folder in
#              $TMPDIR, removed at the end); must not exist yet
# The corfs binary is $CORFS, else `corfs` on the PATH. Needs ip (iproute2),
# nsenter (util-linux), qemu-nbd, qemu-img and fio.
#
# Everything this script starts it stops by pid, and it removes the
# namespaces, mounts and folder it made, whether it succeeds or fails.

set -euo pipefail

SIZE=1G
WORKDIR=""
PRECOPY=1
while [ $# -gt 0 ]; do
  case $1 in
    --size) SIZE=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --skip-precopy) PRECOPY=0; shift ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "migrate.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

CORFS=${CORFS:-$(command -v corfs || true)}
die() { echo "migrate.sh: $*" >&2; exit 1; }
[ -n "$CORFS" ] || die "no corfs binary: set CORFS or put corfs on the PATH"
for tool in ip nsenter qemu-nbd qemu-img fio; do
  command -v "$tool" > /dev/null || die "$tool is needed"
done
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, FUSE mounts)"
# Pre-copy needs the mirror job; say so at once rather than hang later.
[ "$PRECOPY" = 0 ] || "$CORFS" help mirror > /dev/null 2>&1 || die "this corfs has no 'mirror' command: pre-copy needs the mirror job"

BYTES=$(numfmt --from=iec "$SIZE")
[ "$BYTES" -ge $((16 << 20)) ] || die "--size must be at least 16M"
if [ -n "$WORKDIR" ]; then
  [ ! -e "$WORKDIR" ] || die "$WORKDIR exists already"
  mkdir -p "$WORKDIR"
  W=$(realpath "$WORKDIR")
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/corfs-migrate.XXXXXX")
fi
NS_SRC=corfs-mig-src-$$
NS_DST=corfs-mig-dst-$$
VETH_SRC=vms$$
VETH_DST=vmd$$
ADDR_SRC=10.214.0.1
ADDR_DST=10.214.0.2
PIDS=()
MOUNTS=()

cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2> /dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
  done
  for m in "${MOUNTS[@]}"; do
    grep -q " $m " /proc/self/mountinfo && { fusermount3 -u "$m" 2> /dev/null || umount -l "$m"; }
  done
  ip netns del "$NS_SRC" 2> /dev/null  # takes the veth pair with it
  ip netns del "$NS_DST" 2> /dev/null
  rm -rf "$W"
  if [ $status -eq 0 ] && [ "$PRECOPY" = 1 ]; then
    echo "migrate.sh: both migrations done, data verified"
  elif [ $status -eq 0 ]; then
    echo "migrate.sh: post-copy done (pre-copy skipped), data verified"
  else echo "migrate.sh: FAILED" >&2; fi
  exit $status
}
trap cleanup EXIT

step() { echo "=== $*"; }
in_src() { nsenter --net="/run/netns/$NS_SRC" "$@"; }
# bg COMMAND...: in the background, stopped by cleanup; sets BG_PID. SIGINT
# is put back (a script's background commands ignore it).
bg() {
  ( trap - INT; exec "$@" ) &
  BG_PID=$!
  PIDS+=("$BG_PID")
}
# stop PID: SIGINT (a corfs mount commits and unmounts; qemu-nbd flushes).
stop() {
  kill -INT "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

# mount_in NAMESPACE YAML MOUNTPOINT: corfs mount in a namespace's network
# (the mount itself is visible to every command here); sets BG_PID.
mount_in() {
  local ns=$1 yaml=$2 mnt=$3
  mkdir -p "$mnt"
  bg nsenter --net="/run/netns/$ns" "$CORFS" mount "$yaml" "$mnt" 2>> "$W/corfs.log"
  MOUNTS+=("$mnt")
  for _ in $(seq 1 200); do
    grep -q " $mnt " /proc/self/mountinfo && return 0
    kill -0 "$BG_PID" 2> /dev/null || { cat "$W/corfs.log" >&2; die "corfs mount $mnt exited"; }
    sleep 0.05
  done
  die "mount $mnt did not appear"
}

# nbd_in NAMESPACE ADDRESS PORT QEMU-NBD-ARGS...: qemu-nbd on ADDRESS:PORT in a
# namespace; returns once it listens. Sets BG_PID.
nbd_in() {
  local ns=$1 addr=$2 port=$3
  shift 3
  rm -f "$W/nbd-$port.pid"
  bg nsenter --net="/run/netns/$ns" qemu-nbd -t -e 16 -f raw -b "$addr" -p "$port" --pid-file "$W/nbd-$port.pid" "$@" 2>> "$W/qemu-nbd.log"
  for _ in $(seq 1 100); do [ -s "$W/nbd-$port.pid" ] && return 0; sleep 0.1; done
  die "qemu-nbd did not start: $(cat "$W/qemu-nbd.log")"
}

# job_gone MOUNTPOINT JOB SECONDS: waits until the job is no longer listed.
job_gone() {
  for _ in $(seq 1 $(($3 * 10))); do
    "$CORFS" jobs --json -m "$1" | python3 -c "
import json,sys
sys.exit(any(j['device'] == sys.argv[1] for j in json.load(sys.stdin)))" "$2" && return 0
    sleep 0.1
  done
  die "job $2 on $1 did not end within $3 s"
}

state() { "$CORFS" info --json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])"; }

# The guest's two workloads: fio writes a crc32c-verified pattern; run again
# with --verify_only it checks the pattern wherever the disk now is.
REGION=$((BYTES / 4))
WORKLOAD1=(--name=precopy --rw=randwrite --bs=4k --direct=1 --ioengine=psync --offset=$((BYTES / 8))
  --size=$REGION --verify=crc32c --verify_state_save=0 --randseed=11)
WORKLOAD2=(--name=postcopy --rw=randwrite --bs=64k --direct=1 --ioengine=psync --offset=$((BYTES / 2))
  --size=$REGION --verify=crc32c --verify_state_save=0 --randseed=22)

step "two hosts: namespaces $NS_SRC ($ADDR_SRC) and $NS_DST ($ADDR_DST), a veth pair between them"
ip netns add "$NS_SRC" || die "cannot create network namespaces (ip netns)"
ip netns add "$NS_DST"
ip link add "$VETH_SRC" netns "$NS_SRC" type veth peer name "$VETH_DST" netns "$NS_DST"
ip -n "$NS_SRC" addr add "$ADDR_SRC/24" dev "$VETH_SRC"
ip -n "$NS_DST" addr add "$ADDR_DST/24" dev "$VETH_DST"
for ns in "$NS_SRC" "$NS_DST"; do ip -n "$ns" link set lo up; done
ip -n "$NS_SRC" link set "$VETH_SRC" up
ip -n "$NS_DST" link set "$VETH_DST" up

step "the template (sparse, some data), on both hosts"
mkdir -p "$W/src/overlays" "$W/dst/overlays"
truncate -s "$BYTES" "$W/src/template.raw"
for part in 0 3 6; do
  head -c $((BYTES / 16)) /dev/urandom | dd of="$W/src/template.raw" bs=64K seek=$((part * BYTES / 8 / 65536)) \
    conv=notrunc status=none
done
cp --sparse=always "$W/src/template.raw" "$W/dst/template.raw"

cat > "$W/src/vm1.yaml" << YAML
images:
  vm1.img:
    overlay: overlays/vm1.img
    backing: [template.raw]
YAML
cp "$W/src/vm1.yaml" "$W/dst/vm1.yaml"

if [ "$PRECOPY" = 1 ]; then
  step "source: the guest's disk is mounted; the guest writes (fio, crc32c)"
  mount_in "$NS_SRC" "$W/src/vm1.yaml" "$W/src/mnt"
  SRC_MOUNT=$BG_PID
  bg fio "${WORKLOAD1[@]}" --filename="$W/src/mnt/vm1.img" --do_verify=1 --output="$W/fio-src.log"
  FIO=$BG_PID

  step "destination: an overlay over its own template, exported writable through its mount"
  mount_in "$NS_DST" "$W/dst/vm1.yaml" "$W/dst/mnt"
  DST_MOUNT=$BG_PID
  nbd_in "$NS_DST" "$ADDR_DST" 10809 "$W/dst/mnt/vm1.img"
  TARGET_NBD=$BG_PID

  step "pre-copy: corfs mirror --sync top into the destination's export, while the guest writes"
  # --sync top: the destination has the template; only what the source's
  # overlay holds crosses the link.
  timeout 600 "$CORFS" mirror vm1.img "nbd://$ADDR_DST:10809/" --sync top --mode existing --wait-ready \
    -m "$W/src/mnt" || die "the mirror did not become ready"
  wait "$FIO" || { cat "$W/fio-src.log"; die "the workload failed at the source"; }

  step "switch: the guest stopped, the mirror completes"
  "$CORFS" complete vm1.img -m "$W/src/mnt"
  job_gone "$W/src/mnt" vm1.img 300
  cmp "$W/src/mnt/vm1.img" "$W/dst/mnt/vm1.img" || die "pre-copy: the destination differs from the source"
  stop "$SRC_MOUNT"
  stop "$TARGET_NBD"
  fio "${WORKLOAD1[@]}" --filename="$W/dst/mnt/vm1.img" --verify_only --output="$W/fio-dst.log" \
    || { cat "$W/fio-dst.log"; die "pre-copy: the pattern is wrong at the destination"; }
  echo "pre-copy done: the guest's data is at the destination"

else
  step "no pre-copy (--skip-precopy): the guest starts at the destination and writes"
  mount_in "$NS_DST" "$W/dst/vm1.yaml" "$W/dst/mnt"
  DST_MOUNT=$BG_PID
  fio "${WORKLOAD1[@]}" --filename="$W/dst/mnt/vm1.img" --do_verify=1 --output="$W/fio-dst.log" \
    || { cat "$W/fio-dst.log"; die "the workload failed at the destination"; }
fi

step "the guest runs at the destination and writes again"
fio "${WORKLOAD2[@]}" --filename="$W/dst/mnt/vm1.img" --do_verify=1 --output="$W/fio-dst2.log" \
  || { cat "$W/fio-dst2.log"; die "the workload failed at the destination"; }

step "post-copy back: the destination's disk read-only for export, served through its mount"
"$CORFS" export-prep vm1.img -m "$W/dst/mnt"
nbd_in "$NS_DST" "$ADDR_DST" 10810 -r "$W/dst/mnt/vm1.img"
SOURCE_NBD=$BG_PID

step "the source (the new destination) mounts an overlay over the export and streams it"
rm -rf "$W/src/overlays"/*
in_src "$CORFS" create "$W/src/overlays/vm1.img" -b "nbd://$ADDR_DST:10810/"
cat > "$W/src/back.yaml" << YAML
images:
  vm1.img:
    overlay: overlays/vm1.img
    backing: ["nbd://$ADDR_DST:10810/"]
YAML
mount_in "$NS_SRC" "$W/src/back.yaml" "$W/src/mnt"
SRC_MOUNT=$BG_PID
"$CORFS" stream vm1.img -m "$W/src/mnt" --speed 16M
# The guest runs at once: its reads fault in across the link during the stream.
fio "${WORKLOAD1[@]}" --filename="$W/src/mnt/vm1.img" --verify_only --output="$W/fio-back1.log" \
  || { cat "$W/fio-back1.log"; die "post-copy: the first pattern is wrong"; }
fio "${WORKLOAD2[@]}" --filename="$W/src/mnt/vm1.img" --verify_only --output="$W/fio-back2.log" \
  || { cat "$W/fio-back2.log"; die "post-copy: the second pattern is wrong"; }
"$CORFS" set-speed vm1.img 0 -m "$W/src/mnt" > /dev/null 2>&1 || true  # may have ended already
job_gone "$W/src/mnt" vm1.img 300
[ "$(state "$W/src/overlays/vm1.img")" = standalone ] || die "post-copy: the overlay is not standalone"
cmp "$W/src/mnt/vm1.img" "$W/dst/mnt/vm1.img" || die "post-copy: the disks differ"

step "the old host goes: its server and its mount stop"
stop "$SOURCE_NBD"
stop "$DST_MOUNT"
qemu-img compare -f raw -F raw "$W/src/mnt/vm1.img" "$W/src/overlays/vm1.img" > /dev/null \
  || die "post-copy: the standalone data file differs from the disk"
fio "${WORKLOAD2[@]}" --filename="$W/src/mnt/vm1.img" --verify_only --output="$W/fio-back3.log" \
  || { cat "$W/fio-back3.log"; die "post-copy: the pattern is wrong after the source went"; }
stop "$SRC_MOUNT"
echo "post-copy done: the disk is home again, standalone"
