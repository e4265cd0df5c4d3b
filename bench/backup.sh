#!/usr/bin/env bash
# The backup job's cost to the guest: fio writes 4 KiB at random (O_DIRECT,
# psync) to a 1 GiB image of a mount, first with nothing else going on
# (idle), then while a full backup of the image goes to a local raw file.
# Reported: the guest's write clat p50/p99/p99.9 in both runs (fio's
# completion latency percentiles), their ratio, the backup's time and rate,
# and how much of it the guest's writes copied first (copy-before-write).
#
#   bench/backup.sh [--size 1G] [--runtime 20] [--dir DIR] [--keep] [--corfs BINARY]
#
# Prints "key value" lines (results.txt in the work folder) and one JSON
# file under bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
  cat >&2 <<USAGE
usage: bench/backup.sh [options]
  --size SIZE          the disk (default 1G)
  --runtime SECS       fio's idle run (default 20); the backup run lasts as long as the backup
$bench_usage
USAGE
  exit 2
}

size=1G
runtime=20
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=${2:?}; shift 2 ;;
    --runtime) runtime=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) bench_option "$@"; shift "$took" ;;
  esac
done

build_unless_corfs
require_tools "$corfs" fio python3 fusermount3
make_work_folder corfs-backup-bench

say "template of $size"
head -c "$(numfmt --from=iec "$size")" /dev/urandom > template.raw
mkdir overlays mnt
cat > disk.yaml <<YAML
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [template.raw]
YAML
"$corfs" mount disk.yaml mnt 2>>corfs.log &
pids+=($!)
mounts+=("$dir/mnt")
wait_mounted "$dir/mnt" "${pids[-1]}"

# The image is made local first, so the idle run and the backup run write
# to the same kind of clusters (no copy-on-write from the template).
say "streaming the image local"
"$corfs" stream disk.img --wait -m mnt > /dev/null

# fio_args NAME [fio options]: sets args to a 4 KiB random write job whose
# JSON goes to NAME.json (an array, so the background run is fio's own pid).
fio_args() {
  local name=$1
  shift
  args=(fio --name="$name" --filename=mnt/disk.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync
    --size="$size" --randrepeat=0 --output-format=json --output="$name.json" "$@")
}
# clat NAME PERCENTILE: in microseconds. A fio stopped by a signal says so
# before its JSON.
clat() {
  python3 -c '
import json, sys
text = open(sys.argv[1] + ".json").read()
w = json.loads(text[text.index("{"):])["jobs"][0]["write"]
print("%.1f" % (w["clat_ns"]["percentile"][sys.argv[2]] / 1000))' "$1" "$2"
}

say "idle: fio ${runtime}s"
fio_args idle --time_based --runtime="$runtime"
"${args[@]}"

say "backup of $size while fio writes"
fio_args during --time_based --runtime=3600
"${args[@]}" &
fio_pid=$!
pids+=("$fio_pid")
sleep 2
start=$(now)
"$corfs" backup disk.img "$dir/backup.raw" --wait --json -m mnt > backup.json
backup_seconds=$(elapsed "$start")
stop_pid "$fio_pid" INT

for p in 50.000000 99.000000 99.900000; do
  short=${p%%.*}
  [ "$p" = 99.900000 ] && short=99.9
  idle=$(clat idle $p)
  during=$(clat during $p)
  record "idle_write_p${short}_us" "$idle"
  record "backup_write_p${short}_us" "$during"
  [ "$short" = 99 ] && p99_ratio=$(awk -v a="$idle" -v b="$during" 'BEGIN { printf "%.2f", b / a }')
done
record backup_seconds "$backup_seconds"
record backup_mib_per_s "$(awk -v s="$backup_seconds" -v b="$(numfmt --from=iec "$size")" 'BEGIN { printf "%.1f", b / 1048576 / s }')"
record p99_ratio "$p99_ratio"
cat "$results"
stamp=$(date +%Y%m%d-%H%M%S)
python3 -c '
import json, sys
print(json.dumps(dict(l.split() for l in open(sys.argv[1]) if l.strip()), indent=1))' "$results" \
  > "$root/bench/results/backup-$size-$stamp.json"
say "written bench/results/backup-$size-$stamp.json"
