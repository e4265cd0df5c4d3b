#!/usr/bin/env bash
# Side-by-side benchmark: corfs against qemu-storage-daemon's FUSE export of
# the same template, plus the machine's own limits, all in one run.
#
#   bench/run.sh [--size 1G] [--runtime 10] [--dir DIR]
#
# Prints one table (figure, corfs, qsd, ratio) and writes it as JSON under
# bench/results/. bench/README.md says what each figure means.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
size=1G
runtime=10
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--size 1G] [--runtime SECONDS] [--dir DIR]" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
corfs="$root/build/cli/corfs"

[ -n "$dir" ] || dir=$(mktemp -d /tmp/corfs-bench.XXXXXX)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for m in "$dir/mnt" "$dir/qsd-export.img"; do
    grep -q " $m " /proc/self/mountinfo 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
  done
  true
}
trap cleanup EXIT

is_mounted() { grep -q " $1 " /proc/self/mountinfo; }
wait_mounted() {
  for _ in $(seq 1 200); do is_mounted "$1" && return 0; sleep 0.05; done
  echo "bench: $1 did not appear" >&2; return 1
}
now() { date +%s%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
bytes_of() { numfmt --from=iec "$1"; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# fio figures: MB/s of a sequential read, IOPS of a random read.
fio_seq_mbps() {  # file
  fio --name=seq --filename="$1" --rw=read --bs=1M --direct=1 --ioengine=psync --numjobs=1 \
      --output-format=json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; print("%.1f" % (j["bw_bytes"]/1048576))'
}
fio_rand_iops() {  # file
  fio --name=rand --filename="$1" --rw=randread --bs=4k --direct=1 --ioengine=psync --numjobs=2 \
      --group_reporting --time_based --runtime="$runtime" --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; print("%.0f" % j["iops"])'
}

echo "bench: template of $size in $dir" >&2
bytes=$(bytes_of "$size")
head -c "$bytes" /dev/urandom > template.raw

# --- the machine's own limits ------------------------------------------------
cat template.raw > /dev/null
t=$(now); cat template.raw > /dev/null; page_cache=$(elapsed "$t")
t=$(now); cp template.raw copy.raw; sync copy.raw; plain_cp=$(elapsed "$t"); rm -f copy.raw
t=$(now)
qemu-img create -q -f qcow2 -b template.raw -F raw offline.qcow2
qemu-img rebase -q -b '' -F raw offline.qcow2
offline_fill=$(elapsed "$t"); rm -f offline.qcow2

# --- corfs -------------------------------------------------------------------
mkdir -p mnt
cat > corfs.yaml <<YAML
mountpoint: mnt
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [template.raw]
YAML
"$corfs" mount corfs.yaml 2>corfs.log &
pids+=($!)
wait_mounted "$dir/mnt"
t=$(now); dd if=mnt/disk.img of=/dev/null bs=1M iflag=direct status=none; corfs_cold=$(elapsed "$t")
corfs_warm=$(fio_seq_mbps mnt/disk.img)
corfs_rand=$(fio_rand_iops mnt/disk.img)
cmp template.raw mnt/disk.img || { echo "bench: corfs content differs from the template" >&2; exit 1; }
kill -INT "${pids[-1]}"; wait "${pids[-1]}" || true

# --- qemu-storage-daemon: FUSE export of a qcow2 overlay with copy-on-read ---
qemu-img create -q -f qcow2 -b template.raw -F raw qsd-overlay.qcow2
touch qsd-export.img
qemu-storage-daemon \
  --blockdev driver=file,node-name=f0,filename=qsd-overlay.qcow2 \
  --blockdev driver=qcow2,node-name=q0,file=f0 \
  --blockdev driver=copy-on-read,node-name=top,file=q0 \
  --export type=fuse,id=e0,node-name=top,mountpoint=qsd-export.img,writable=on \
  --chardev socket,path=qmp.sock,server=on,wait=off,id=c0 --monitor chardev=c0 2>qsd.log &
pids+=($!)
wait_mounted "$dir/qsd-export.img"
t=$(now); dd if=qsd-export.img of=/dev/null bs=1M iflag=direct status=none; qsd_cold=$(elapsed "$t")
qsd_warm=$(fio_seq_mbps qsd-export.img)
qsd_rand=$(fio_rand_iops qsd-export.img)
printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' | socat - UNIX-CONNECT:qmp.sock >/dev/null || true
wait "${pids[-1]}" || true

# --- the table ---------------------------------------------------------------
python3 - "$root/bench/results" "$size" <<PY
import json, sys, time, os
rows = [
  # name, unit, corfs, qsd, better (higher/lower), target ratio
  ("cold sequential read (copy-on-read fault-in)", "s", $corfs_cold, $qsd_cold, "lower", 2.0),
  ("warm 1 MiB sequential read, O_DIRECT", "MB/s", $corfs_warm, $qsd_warm, "higher", 1.5),
  ("warm 4 KiB random read, O_DIRECT, 2 jobs", "IOPS", $corfs_rand, $qsd_rand, "higher", 2.0),
]
limits = {"page-cache read of the template (s)": $page_cache,
          "plain cp of the template (s)": $plain_cp,
          "offline fill, qemu-img rebase (s)": $offline_fill}
out = {"size": sys.argv[2], "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "figures": [], "limits": limits}
print("%-46s %10s %10s %8s %8s" % ("figure (" + sys.argv[2] + " template)", "corfs", "qsd", "ratio", "target"))
for name, unit, c, q, better, target in rows:
    ratio = (q / c) if better == "lower" else (c / q if q else float("inf"))
    ok = "ok" if ratio >= target else "MISS"
    print("%-46s %9.2f%s %9.2f%s %7.2fx %5.1fx %s" % (name, c, unit[0] if unit=="s" else "", q, unit[0] if unit=="s" else "", ratio, target, ok))
    out["figures"].append({"name": name, "unit": unit, "corfs": c, "qsd": q, "ratio": ratio, "target": target})
print()
for k, v in limits.items():
    print("machine limit: %-40s %8.2f" % (k, v))
os.makedirs(sys.argv[1], exist_ok=True)
path = os.path.join(sys.argv[1], "fuse-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
json.dump(out, open(path, "w"), indent=2)
print("\nwritten to bench/results/" + os.path.basename(path))
PY
