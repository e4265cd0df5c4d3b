#!/usr/bin/env bash
# The commit job against the copy limit: an active commit of 256 MiB of
# overlay data into a 1 GiB raw base (`corfs commit IMAGE --wait`, which
# completes it once READY), timed against `cp` + `sync` of 256 MiB in the
# same run (target: at most 1.25x); then the same commit with two other
# images of the mount over the base (the safe commit copies the clusters
# it changes into each of them first), reported.
#
#   bench/commit.sh [--data 256M] [--base 1G] [--dir DIR] [--keep] [--corfs BINARY]
#
# Prints "key value" lines and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
  cat >&2 <<USAGE
usage: bench/commit.sh [options]
  --data SIZE          overlay data to commit (default 256M, a multiple of 1M)
  --base SIZE          size of the raw base (default 1G)
$bench_usage
USAGE
  exit 2
}

data=256M
base_size=1G
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=${2:?}; shift 2 ;;
    --base) base_size=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) bench_option "$@"; shift "$took" ;;
  esac
done
numfmt --from=iec "$data" > /dev/null || usage
build_unless_corfs
require_tools "$corfs" python3 fusermount3
make_work_folder corfs-bench-commit
record load_start "$(cut -d' ' -f1 /proc/loadavg)"
say "work folder $dir; $data of overlay data into a $base_size base; $(nproc) cores"

head -c "$base_size" /dev/urandom > base.orig
head -c "$data" /dev/urandom > data.bin
mkdir -p overlays mnt
mounts+=("$dir/mnt")

# One mount of vm.img over base.raw, and `siblings` more images over it.
mount_images() {  # siblings
  {
    echo "images:"
    printf '  vm.img:\n    overlay: overlays/vm.img\n    backing: [base.raw]\n'
    for i in $(seq 1 "$1"); do printf '  sib%s.img:\n    overlay: overlays/sib%s.img\n    backing: [base.raw]\n' "$i" "$i"; done
  } > mount.yaml
  "$corfs" mount mount.yaml mnt 2>>corfs.log &
  mount_pid=$!
  pids+=("$mount_pid")
  wait_mounted "$dir/mnt" "$mount_pid"
}

# Times the active commit of $data written into vm.img; sets took.
time_commit() {  # siblings
  rm -f overlays/*
  cp base.orig base.raw
  mount_images "$1"
  dd if=data.bin of=mnt/vm.img bs=1M seek=128 conv=notrunc,fsync status=none
  sync; sleep 2
  local start
  start=$(now)
  "$corfs" commit vm.img --wait -m mnt > /dev/null
  took=$(elapsed "$start")
  stop_pid "$mount_pid" INT
}

time_copy() {  # sets took: cp + sync of the data
  rm -f copy.bin
  sync; sleep 2
  local start
  start=$(now)
  cp data.bin copy.bin
  sync
  took=$(elapsed "$start")
}

time_copy; copy=$took
time_commit 0; commit=$took
time_commit 2; commit_siblings=$took
record copy_seconds "$copy"
record commit_seconds "$commit"
record commit_two_siblings_seconds "$commit_siblings"
record load_end "$(cut -d' ' -f1 /proc/loadavg)"
cat "$results"
ratio=$(awk -v a="$commit" -v b="$copy" 'BEGIN { printf "%.2f", a / b }')
ratio_siblings=$(awk -v a="$commit_siblings" -v b="$copy" 'BEGIN { printf "%.2f", a / b }')
ok=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.25) ? "ok" : "MISS" }')
echo "commit of $data into a $base_size base: ${commit}s; cp + sync: ${copy}s; ratio $ratio (target <= 1.25: $ok)"
echo "with two siblings over the base: ${commit_siblings}s (ratio $ratio_siblings, reported)"
