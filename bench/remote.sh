#!/usr/bin/env bash
# Remote templates: corfs over NBD against the copy limit (nbdcopy) and
# qemu-storage-daemon over an nbd blockdev, all from one nbdkit server made
# slow on purpose (its delay filter), measured in one run.
#
#   bench/remote.sh [--size 1G] [--fleet-size 256M] [--fleet "1 4 8"]
#                   [--delay 2ms] [--rate 800M] [--rounds 1] [--dir DIR]
#                   [--keep] [--corfs BINARY]
#
# Prints one table (figure, corfs, peer or limit, ratio, target, ok/MISS)
# and writes every figure as JSON under bench/results/. Rate-limited runs
# (nbdkit's rate filter, bits per second) bind every client equally: they
# are reported, not judged. With --rounds N every figure but the
# rate-limited ones runs N times, taking turns, and the median is judged. If bench/remote_http.sh exists it runs next,
# with the same options. bench/README.md ("Remote templates") says what
# each figure means.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"   # build_unless_corfs, the work folder and its cleanup, say/fail/record...

usage() {
  cat >&2 <<USAGE
usage: bench/remote.sh [options]
  --size SIZE          template of the stream and cold-read figures (default 1G)
  --fleet-size SIZE    template of each fleet mount (default 256M)
  --fleet "N..."       fleet sizes (default "1 4 8")
  --delay TIME         nbdkit delay-read (default 2ms)
  --rate BITS          rate of the reported rate-limited runs (default 800M; 0 = none)
  --rounds N           rounds of the other figures; the median is judged (default 1, at most 9)
$bench_usage
USAGE
  exit 2
}

size=1G
fleet_size=256M
fleet="1 4 8"
delay=2ms
rate=800M
rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=${2:?}; shift 2 ;;
    --fleet-size) fleet_size=${2:?}; shift 2 ;;
    --fleet) fleet=${2:?}; shift 2 ;;
    --delay) delay=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) bench_option "$@"; shift "$took" ;;
  esac
done
require_rounds "$rounds"
bytes=$(numfmt --from=iec "$size") || usage
fleet_bytes=$(numfmt --from=iec "$fleet_size") || usage
for b in "$bytes" "$fleet_bytes"; do
  [ $((b % MiB)) -eq 0 ] && [ "$b" -ge $((16 * MiB)) ] || { echo "bench: sizes must be multiples of 1M, at least 16M" >&2; exit 2; }
done

build_unless_corfs
require_tools "$corfs" nbdkit nbdcopy qemu-img qemu-storage-daemon python3 fusermount3

make_work_folder corfs-remote-bench

settle() { sync; sleep 2; }

port=$(free_port)
uri="nbd://127.0.0.1:$port/"
# serve NAME [RATE]: nbdkit on $port serving the folder's templates
# (export = file name), reads delayed by $delay, limited to RATE bits per
# second if given, the bytes it sends counted into NAME.stats (written when
# it stops: unserve).
serve() {
  local name=$1 limit=()
  [ -n "${2:-}" ] && limit=(--filter=rate)
  rm -f "$name.stats" nbdkit.pid
  nbdkit -f -P "$dir/nbdkit.pid" -i 127.0.0.1 -p "$port" --filter=stats "${limit[@]}" --filter=delay \
    file dir="$dir/templates" delay-read="$delay" statsfile="$dir/$name.stats" ${2:+rate=$2} 2>>nbdkit.log &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 200); do [ -s nbdkit.pid ] && return 0; sleep 0.05; done
  fail "nbdkit did not start (see nbdkit.log)"
}
unserve() { stop_pid "$server_pid" TERM; }
served_mib() {  # NAME: MiB the server sent, from its stats filter
  python3 - "$1.stats" <<'PY'
import re, sys
units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
for line in open(sys.argv[1]):
    m = re.match(r"read: .*?, ([0-9.]+) (B|KiB|MiB|GiB),", line)
    if m:
        print("%.1f" % (float(m.group(1)) * units[m.group(2)]))
        break
else:
    print("-1")  # no stats written
PY
}
# mount_one NAME YAML: a corfs mount at NAME.mnt; sets mount_pid.
mount_one() {
  mkdir -p "$1.mnt"
  "$corfs" mount "$2" "$dir/$1.mnt" 2>>"$1.log" &
  mount_pid=$!
  pids+=("$mount_pid")
  mounts+=("$dir/$1.mnt")
  wait_mounted "$dir/$1.mnt" "$mount_pid"
}
image_yaml() {  # PATH [NAME TEMPLATE]...: one image NAME per pair, overlay overlays/NAME
  local path=$1
  shift
  { echo "images:"
    while [ $# -gt 0 ]; do
      printf '  %s:\n    overlay: overlays/%s\n    backing: ["%s%s"]\n' "$1" "$1" "$uri" "$2"
      shift 2
    done; } > "$path"
}
# qsd_over_nbd TEMPLATE MODE: qemu-storage-daemon with a qcow2 overlay over
# the export (MODE cor: copy-on-read filter, writable export; stream: the
# qcow2 node exported read-only, for block-stream). Sets qsd_pid.
qsd_over_nbd() {
  rm -f qsd.qcow2 qmp.sock
  qemu-img create -q -f qcow2 -b "$uri$1" -F raw qsd.qcow2
  touch qsd-export.img
  mounts+=("$dir/qsd-export.img")
  local top=(--blockdev driver=copy-on-read,node-name=top,file=q0 --export
    type=fuse,id=e0,node-name=top,mountpoint=qsd-export.img,writable=on)
  [ "$2" = stream ] && top=(--export type=fuse,id=e0,node-name=q0,mountpoint=qsd-export.img,writable=off)
  qemu-storage-daemon --blockdev driver=file,node-name=f0,filename=qsd.qcow2 \
    --blockdev driver=qcow2,node-name=q0,file=f0 "${top[@]}" \
    --chardev socket,path=qmp.sock,server=on,wait=off,id=c0 --monitor chardev=c0 2>>qsd.log &
  qsd_pid=$!
  pids+=("$qsd_pid")
  wait_mounted "$dir/qsd-export.img" "$qsd_pid"
}
qsd_quit() { python3 "$qmp" qmp.sock quit || true; stop_pid "$qsd_pid" TERM; rm -f qsd.qcow2 qmp.sock; }

cores=$(nproc)
record load_start "$(cut -d' ' -f1 /proc/loadavg)"
max_fleet=$(echo "$fleet" | tr ' ' '\n' | sort -n | tail -1)
say "work folder $dir; template $size; fleet $fleet x $fleet_size; delay-read $delay; $cores cores"

# --- templates -----------------------------------------------------------------
mkdir -p templates overlays
head -c "$bytes" /dev/urandom > templates/big.raw
for i in $(seq 1 "$max_fleet"); do head -c "$fleet_bytes" /dev/urandom > "templates/fleet$i.raw"; done
cat templates/* > /dev/null

# single_figures R: the copy limit, corfs and qsd on the big template;
# each figure recorded as KEY@R.
single_figures() {
  local r=$1 t of=""
  [ "$rounds" = 1 ] || of=" (round $r of $rounds)"
  # --- the copy limit: nbdcopy
  say "nbdcopy of $size$of"
  serve nbdcopy
  settle
  t=$(now); nbdcopy --flush "${uri}big.raw" copy.raw; record "nbdcopy@$r" "$(elapsed "$t")"
  unserve
  cmp templates/big.raw copy.raw || fail "nbdcopy's copy differs from the template"
  rm -f copy.raw

  # --- corfs: stream and cold read
  # Each figure has a mount of its own, made after its server started: a
  # mount's idle connections would keep a stopping nbdkit waiting, and the
  # cold read would measure the reconnect, not the cold path.
  image_yaml stream.yaml stream.img big.raw
  serve corfs_stream
  mount_one corfs stream.yaml
  settle
  say "corfs: stream of $size$of"
  t=$(now)
  "$corfs" stream stream.img -m "$dir/corfs.mnt" --wait > stream.out || fail "corfs stream failed: $(tail -1 stream.out)"
  record "corfs_stream@$r" "$(elapsed "$t")"
  cmp templates/big.raw overlays/stream.img || fail "corfs: the streamed overlay differs from the template"
  stop_pid "$mount_pid" INT
  unserve
  record "corfs_stream_mib@$r" "$(served_mib corfs_stream)"
  image_yaml cold.yaml cold.img big.raw
  serve corfs_cold
  mount_one corfs cold.yaml
  settle
  say "corfs: cold sequential read of $size$of"
  t=$(now); dd if=corfs.mnt/cold.img of=/dev/null bs=1M iflag=direct status=none; record "corfs_cold@$r" "$(elapsed "$t")"
  cmp templates/big.raw corfs.mnt/cold.img || fail "corfs: cold.img differs from the template"
  stop_pid "$mount_pid" INT
  unserve
  rm -f overlays/*

  # --- qemu-storage-daemon over an nbd blockdev
  serve qsd
  say "qsd: block-stream of $size$of"
  qsd_over_nbd big.raw stream
  settle
  record "qsd_stream@$r" "$(python3 "$qmp" qmp.sock stream q0)"
  qsd_quit
  say "qsd: copy-on-read cold sequential read of $size$of"
  qsd_over_nbd big.raw cor
  settle
  t=$(now); dd if=qsd-export.img of=/dev/null bs=1M iflag=direct status=none; record "qsd_cold@$r" "$(elapsed "$t")"
  qsd_quit
  unserve
}

# --- the fleet: N mounts deploying at once, vs N nbdcopy at once ---------------------
# fleet_run N LABEL [RATE [ROUND]]: records LABEL_corfs_N (seconds until
# every image is standalone), LABEL_corfs_N_mib, LABEL_nbdcopy_N,
# LABEL_nbdcopy_N_mib; each KEY@ROUND with a ROUND.
fleet_run() {
  local n=$1 label=$2 limit=${3:-} at=${4:+@$4}
  local i
  serve "${label}_corfs_$n" "$limit"
  local fleet_pids=()
  for i in $(seq 1 "$n"); do
    image_yaml "fleet$i.yaml" "f$i.img" "fleet$i.raw"
    mount_one "fleet$i" "fleet$i.yaml"
    fleet_pids+=("$mount_pid")
  done
  settle
  local t
  t=$(now)
  local streams=()
  for i in $(seq 1 "$n"); do
    "$corfs" stream "f$i.img" -m "$dir/fleet$i.mnt" --wait > "fleet$i.out" 2>&1 &
    streams+=($!)
  done
  for p in "${streams[@]}"; do wait "$p" || fail "a fleet stream failed: $(cat fleet*.out)"; done
  record "${label}_corfs_$n$at" "$(elapsed "$t")"
  for p in "${fleet_pids[@]}"; do stop_pid "$p" INT; done
  unserve
  record "${label}_corfs_${n}_mib$at" "$(served_mib "${label}_corfs_$n")"
  for i in $(seq 1 "$n"); do cmp "templates/fleet$i.raw" "overlays/f$i.img" || fail "fleet image $i differs"; done
  rm -f overlays/*
  serve "${label}_nbdcopy_$n" "$limit"
  settle
  t=$(now)
  local copies=()
  for i in $(seq 1 "$n"); do
    nbdcopy --flush "${uri}fleet$i.raw" "copy$i.raw" &
    copies+=($!)
  done
  for p in "${copies[@]}"; do wait "$p" || fail "nbdcopy failed"; done
  record "${label}_nbdcopy_$n$at" "$(elapsed "$t")"
  unserve
  record "${label}_nbdcopy_${n}_mib$at" "$(served_mib "${label}_nbdcopy_$n")"
  rm -f copy*.raw
}
for r in $(seq 1 "$rounds"); do
  single_figures "$r"
  for n in $fleet; do
    say "fleet of $n$([ "$rounds" = 1 ] || echo " (round $r of $rounds)")"
    fleet_run "$n" fleet "" "$r"
  done
done
keys="nbdcopy corfs_stream corfs_stream_mib corfs_cold qsd_stream qsd_cold"
for n in $fleet; do keys+=" fleet_corfs_$n fleet_corfs_${n}_mib fleet_nbdcopy_$n fleet_nbdcopy_${n}_mib"; done
# shellcheck disable=SC2086  # a list of keys
median_rounds $keys
if [ "$rate" != 0 ]; then
  say "rate-limited ($rate bits/s): fleet of 1 and of $max_fleet"
  for n in 1 "$max_fleet"; do fleet_run "$n" rate "$rate"; done
fi
record load_end "$(cut -d' ' -f1 /proc/loadavg)"

# --- the table ---------------------------------------------------------------------
mkdir -p "$root/bench/results"
python3 - "$results" "$root/bench/results" "$size" "$fleet_size" "$cores" "$bytes" "$fleet_bytes" "$delay" "$rate" <<'PY'
import json, os, sys, time

values, rounds = {}, {}  # rounds: KEY -> each round's value (KEY@ROUND lines)
for line in open(sys.argv[1]):
    key, value = line.split()
    if "@" in key:
        rounds.setdefault(key.split("@")[0], []).append(float(value))
    else:
        values[key] = float(value)
out_dir, size, fleet_size, cores = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
bytes_, fleet_bytes, delay, rate = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], sys.argv[9]
v = values.get
rows = []
def row(name, corfs, other, other_name, ratio, target, ok, note=""):
    rows.append(dict(figure=name, unit="s", corfs=corfs, other=other, other_name=other_name, ratio=ratio,
                     target=target, ok=ok, note=note))

mbs = lambda b, s: b / 1e6 / s
row("stream %s from NBD vs nbdcopy (throughput)" % size, v("corfs_stream"), v("nbdcopy"), "nbdcopy",
    v("nbdcopy") / v("corfs_stream"), ">= 0.8x", v("nbdcopy") / v("corfs_stream") >= 0.8,
    "%.0f vs %.0f MB/s" % (mbs(bytes_, v("corfs_stream")), mbs(bytes_, v("nbdcopy"))))
row("stream %s from NBD vs qsd block-stream" % size, v("corfs_stream"), v("qsd_stream"), "qsd",
    v("qsd_stream") / v("corfs_stream"), ">= 3x faster", v("qsd_stream") / v("corfs_stream") >= 3)
row("cold seq read from NBD vs qsd copy-on-read", v("corfs_cold"), v("qsd_cold"), "qsd",
    v("qsd_cold") / v("corfs_cold"), ">= 2x faster", v("qsd_cold") / v("corfs_cold") >= 2)
fleet = sorted(int(k.split("_")[2]) for k in values if k.startswith("fleet_corfs_") and not k.endswith("_mib"))
for n in fleet:
    c, p = v("fleet_corfs_%d" % n), v("fleet_nbdcopy_%d" % n)
    judged = n == max(fleet)
    row("fleet of %d x %s: all standalone vs nbdcopy" % (n, fleet_size), c, p, "nbdcopy", c / p,
        "<= 1.25x the time" if judged else "(reported)", c / p <= 1.25 if judged else None,
        "server sent %.0f MiB (corfs), %.0f MiB (nbdcopy)" % (v("fleet_corfs_%d_mib" % n), v("fleet_nbdcopy_%d_mib" % n)))
for n in sorted(int(k.split("_")[2]) for k in values if k.startswith("rate_corfs_") and not k.endswith("_mib")):
    c, p = v("rate_corfs_%d" % n), v("rate_nbdcopy_%d" % n)
    row("rate %s bit/s, fleet of %d vs nbdcopy" % (rate, n), c, p, "nbdcopy", c / p, "(reported)", None,
        "server sent %.0f MiB (corfs), %.0f MiB (nbdcopy)" % (v("rate_corfs_%d_mib" % n), v("rate_nbdcopy_%d_mib" % n)))

title = "figure (NBD, delay-read %s, %d cores)" % (delay, cores)
print("%-46s %9s %9s %-8s %7s %-18s %s" % (title, "corfs", "other", "", "ratio", "target", "result"))
for r in rows:
    result = "-" if r["ok"] is None else ("ok" if r["ok"] else "MISS")
    print("%-46s %8.2fs %8.2fs %-8s %6.2fx %-18s %s%s" % (r["figure"], r["corfs"], r["other"], r["other_name"],
          r["ratio"], r["target"], result, ("  (" + r["note"] + ")") if r["note"] else ""))
if v("corfs_stream_mib") >= 0:  # -1: nbdkit wrote no stats
    print("server sent %.0f MiB for the %s stream" % (v("corfs_stream_mib"), size))
if any(len(x) > 1 for x in rounds.values()):
    print("medians of %d rounds; stream and cold-read rounds (s): %s" % (max(len(x) for x in rounds.values()), "; ".join(
        "%s %s" % (k, " ".join("%.2f" % x for x in rounds[k]))
        for k in ("nbdcopy", "corfs_stream", "qsd_stream", "corfs_cold", "qsd_cold") if k in rounds)))
busy = max(v("load_start"), v("load_end"))
if busy > 0.5 * cores:
    print("warning: the machine was busy (load average %.1f at start, %.1f at end on %d cores); figures are noisy"
          % (v("load_start"), v("load_end"), cores))
out = {"size": size, "fleet_size": fleet_size, "delay": delay, "rate": rate, "cores": cores,
       "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "figures": rows, "values": values, "rounds": rounds}
path = os.path.join(out_dir, "remote-nbd-%s-%s.json" % (size, time.strftime("%Y%m%d-%H%M%S")))
with open(path, "w") as f:
    json.dump(out, f, indent=2)
print("\nwritten to bench/results/" + os.path.basename(path))
PY

# --- HTTP (bench/remote_http.sh, when there is one) ------------------------------------
if [ -x "$root/bench/remote_http.sh" ] || [ -f "$root/bench/remote_http.sh" ]; then
  say "bench/remote_http.sh"
  # It takes only the options both scripts share.
  http_args=(--size "$size" --delay "$delay" --rounds "$rounds" --dir "$parent")
  [ "$keep" = 1 ] && http_args+=(--keep)
  [ -n "$corfs" ] && http_args+=(--corfs "$corfs")
  bash "$root/bench/remote_http.sh" "${http_args[@]}"
fi
