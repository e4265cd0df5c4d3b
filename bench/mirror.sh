#!/usr/bin/env bash
# The mirror job (drive-mirror) against plain copies of the same bytes on
# the same machine, measured in one run:
#   - a mirror of a SIZE image (a mount over a template of random data) to a
#     local file, to READY and through complete, vs `cp` + `sync` of the
#     template (target: at most 1.25x the time);
#   - the time to READY of a mirror while fio writes 20 MiB/s into the
#     image (reported);
#   - sync: top of a TOP_SIZE image whose overlay holds TOP_DATA, into a
#     target that reads as the template, vs `cp` + `sync` of a TOP_DATA file
#     to the same file system (target: at most 1.2x), and the same over NBD
#     (qemu-nbd on loopback, as on a destination host) vs nbdcopy of
#     TOP_DATA to the same server (target: at most 1.2x).
#
#   bench/mirror.sh [--size 1G] [--top-size 4G] [--top-data 256M]
#                   [--dir DIR] [--keep] [--corfs BINARY]
#
# Prints a table (figure, corfs, copy, ratio, target, ok/MISS) and writes
# the figures as JSON under bench/results/. On a machine shared with other
# work the figures are noisy; the script says so when the load was high.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

usage() {
  cat >&2 <<USAGE
usage: bench/mirror.sh [options]
  --size SIZE          image of the full-mirror figures (default 1G)
  --top-size SIZE      image of the sync-top figure (default 4G)
  --top-data SIZE      what its overlay holds (default 256M)
  --rounds N           rounds of the sync-top figures; the median counts (default 3)
$bench_usage
USAGE
  exit 2
}

size=1G
top_size=4G
top_data=256M
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=${2:?}; shift 2 ;;
    --top-size) top_size=${2:?}; shift 2 ;;
    --top-data) top_data=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) bench_option "$@"; shift "$took" ;;
  esac
done
bytes=$(numfmt --from=iec "$size") || usage
top_bytes=$(numfmt --from=iec "$top_size") || usage
top_data_bytes=$(numfmt --from=iec "$top_data") || usage
[ $((top_data_bytes % MiB)) -eq 0 ] && [ "$top_data_bytes" -lt "$top_bytes" ] || usage

build_unless_corfs
require_tools "$corfs" fio python3 fusermount3 qemu-nbd nbdcopy nbdinfo

make_work_folder corfs-mirror-bench
record load_start "$(cut -d' ' -f1 /proc/loadavg)"

# mount NAME YAML: a corfs mount at NAME.mnt; sets mnt_pid.
mount_corfs() {
  mkdir -p "$1.mnt" overlays
  "$corfs" mount "$2" "$1.mnt" 2>>"$1.log" &
  mnt_pid=$!
  pids+=("$mnt_pid")
  mounts+=("$dir/$1.mnt")
  wait_mounted "$dir/$1.mnt" "$mnt_pid"
}

say "template of $size (random data)"
head -c "$bytes" /dev/urandom > template.raw
cat template.raw > /dev/null  # in the page cache for both, as far as it fits
printf 'images:\n  disk.img: {overlay: overlays/disk.img, backing: [template.raw]}\n' > full.yaml
mount_corfs full full.yaml

say "cp + sync of the template"
sync
t=$(now); cp template.raw cp.raw; sync; record cp_full "$(elapsed "$t")"
rm -f cp.raw; sync

say "mirror to a local file, to READY and complete"
t=$(now)
"$corfs" mirror disk.img "$dir/mirror.raw" --wait-ready -m full.mnt > /dev/null
"$corfs" complete disk.img --wait -m full.mnt > /dev/null
record mirror_full "$(elapsed "$t")"
cmp -s template.raw mirror.raw || fail "the mirror differs from the image"
rm -f mirror.raw; sync

say "time to READY under a 20 MiB/s guest write load"
fio --name=load --filename=full.mnt/disk.img --rw=randwrite --bs=64k --direct=1 --ioengine=psync \
  --rate=20m --time_based --runtime=600 --output=fio-load.log &
fio_pid=$!
pids+=("$fio_pid")
sleep 1
t=$(now)
"$corfs" mirror disk.img "$dir/loaded.raw" --wait-ready -m full.mnt > /dev/null
record ready_loaded "$(elapsed "$t")"
stop_pid "$fio_pid" TERM
"$corfs" complete disk.img --wait -m full.mnt > /dev/null
cmp -s full.mnt/disk.img loaded.raw || fail "the loaded mirror differs from the image"
rm -f loaded.raw
stop_pid "$mnt_pid" INT

say "sync top: $top_size image whose overlay holds $top_data"
truncate -s "$top_size" top-template.raw
printf 'images:\n  disk.img: {overlay: overlays/top.img, backing: [top-template.raw]}\n' > top.yaml
mount_corfs top top.yaml
chunks=$((top_data_bytes / MiB))
stride=$((top_bytes / MiB / chunks))
head -c "$top_data_bytes" /dev/urandom > data.raw
for i in $(seq 0 $((chunks - 1))); do
  dd if=data.raw of=top.mnt/disk.img bs=1M skip="$i" seek=$((i * stride)) count=1 conv=notrunc status=none
done
sync
# The same over NBD on loopback (a destination host's qemu-nbd), against
# nbdcopy of the same bytes into an export of the same server: "the link".
# nbd_serve FILE: qemu-nbd serving FILE on a new port, to 4 clients at once
# (multi-conn, for both); sets nbd_uri, nbd_pid.
nbd_serve() {
  local port
  port=$(free_port)
  qemu-nbd -f raw -t -e 4 -b 127.0.0.1 -p "$port" "$1" 2>>qemu-nbd.log &
  nbd_pid=$!
  pids+=("$nbd_pid")
  nbd_uri="nbd://127.0.0.1:$port"
  for _ in $(seq 1 200); do nbdinfo --size "$nbd_uri" > /dev/null 2>&1 && return 0; sleep 0.05; done
  fail "qemu-nbd did not start (see qemu-nbd.log)"
}
# Each sync-top figure is the median of $rounds rounds, the copies and the
# mirrors taking turns: the final flush of 256 MiB alone varies by 2x from
# one run to the next here. The mirrors read the overlay without filling
# it, so every round copies the same 256 MiB.
cat data.raw > /dev/null
for round in $(seq 1 "$rounds"); do
  say "sync top, round $round of $rounds: to a file, over NBD, and their copies"
  rm -f cp-top.raw; sync
  t=$(now); cp data.raw cp-top.raw; sync; record "cp_top_$round" "$(elapsed "$t")"
  rm -f top-target.raw; truncate -s "$top_size" top-target.raw  # reads as the template (zeros)
  sync
  t=$(now)
  "$corfs" mirror disk.img "$dir/top-target.raw" --sync top --mode existing --wait-ready -m top.mnt > /dev/null
  "$corfs" complete disk.img --wait -m top.mnt > /dev/null
  record "mirror_top_$round" "$(elapsed "$t")"

  rm -f nbdcopy-target.raw; truncate -s "$top_data" nbdcopy-target.raw
  nbd_serve nbdcopy-target.raw
  sync
  t=$(now); nbdcopy --flush data.raw "$nbd_uri"; record "nbdcopy_top_$round" "$(elapsed "$t")"
  stop_pid "$nbd_pid" TERM
  cmp -s data.raw nbdcopy-target.raw || fail "nbdcopy's copy differs"
  rm -f top-nbd.raw; truncate -s "$top_size" top-nbd.raw
  nbd_serve top-nbd.raw
  sync
  t=$(now)
  "$corfs" mirror disk.img "$nbd_uri" --sync top --mode existing --wait-ready -m top.mnt > /dev/null
  "$corfs" complete disk.img --wait -m top.mnt > /dev/null
  record "mirror_top_nbd_$round" "$(elapsed "$t")"
  stop_pid "$nbd_pid" TERM
done
# Only now read through the mount: reading copies the template's clusters
# into the overlay, and a later sync top would copy them too.
cmp -s top.mnt/disk.img top-target.raw || fail "the top mirror differs from the image"
cmp -s top.mnt/disk.img top-nbd.raw || fail "the top mirror over NBD differs from the image"
stop_pid "$mnt_pid" INT
record load_end "$(cut -d' ' -f1 /proc/loadavg)"

mkdir -p "$root/bench/results"
python3 - "$results" "$root/bench/results" "$size" "$top_size" "$top_data" "$(nproc)" <<'PY'
import json, os, sys, time
results, out_dir, size, top_size, top_data, cores = sys.argv[1:7]
cores = int(cores)
values = {k: float(v) for k, v in (line.split() for line in open(results))}
for key in ("cp_top", "mirror_top", "nbdcopy_top", "mirror_top_nbd"):
    rounds = sorted(x for k, x in values.items() if k.rsplit("_", 1)[0] == key and k.rsplit("_", 1)[1].isdigit())
    values[key] = rounds[len(rounds) // 2]
v = values.get
rows = []
def row(figure, corfs, other, other_name, target, ok, note=""):
    rows.append({"figure": figure, "corfs": corfs, "other": other, "other_name": other_name,
                 "ratio": corfs / other if other else 0, "target": target, "ok": ok, "note": note})
r = v("mirror_full") / v("cp_full")
row("mirror %s to a file vs cp + sync" % size, v("mirror_full"), v("cp_full"), "cp", "<= 1.25x", r <= 1.25)
row("time to READY under 20 MiB/s of writes", v("ready_loaded"), 0, "", "(reported)", None)
r = v("mirror_top") / v("cp_top")
row("sync top of %s holding %s vs cp of %s (median)" % (top_size, top_data, top_data), v("mirror_top"), v("cp_top"), "cp",
    "<= 1.2x", r <= 1.2)
r = v("mirror_top_nbd") / v("nbdcopy_top")
row("the same over NBD vs nbdcopy of %s (median)" % top_data, v("mirror_top_nbd"), v("nbdcopy_top"), "nbdcopy", "<= 1.2x",
    r <= 1.2)
print("%-54s %9s %9s %-4s %7s %-10s %s" % ("figure (%d cores)" % cores, "corfs", "other", "", "ratio", "target",
                                          "result"))
for x in rows:
    result = "-" if x["ok"] is None else ("ok" if x["ok"] else "MISS")
    other = "%8.2fs" % x["other"] if x["other"] else "%9s" % "-"
    ratio = "%6.2fx" % x["ratio"] if x["other"] else "%7s" % "-"
    print("%-54s %8.2fs %s %-4s %s %-10s %s" % (x["figure"], x["corfs"], other, x["other_name"], ratio,
                                                x["target"], result))
busy = max(v("load_start"), v("load_end"))
if busy > 0.5 * cores:
    print("warning: the machine was busy (load average %.1f at start, %.1f at end on %d cores); figures are noisy"
          % (v("load_start"), v("load_end"), cores))
path = os.path.join(out_dir, "mirror-%s-%s.json" % (size, time.strftime("%Y%m%d-%H%M%S")))
with open(path, "w") as f:
    json.dump({"size": size, "top_size": top_size, "top_data": top_data, "cores": cores,
               "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "figures": rows, "values": values}, f, indent=2)
print("\nwritten to bench/results/" + os.path.basename(path))
PY
