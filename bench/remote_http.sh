#!/usr/bin/env bash
# Remote templates over HTTP: corfs against the copy limit (`curl -o`) and
# against qemu-storage-daemon over its http blockdev (QEMU's curl driver),
# all reading one template from one nginx on 127.0.0.1, in one run.
#
#   bench/remote_http.sh [--size 1G] [--delay 2ms] [--rounds 1] [--dir DIR]
#                        [--keep] [--corfs BINARY]
#
# Prints one table (figure, corfs, other, ratio, target, ok/MISS) and writes
# the figures as JSON under bench/results/. bench/README.md ("Remote
# templates over HTTP") says what each figure means.
#
# The server is made slow on purpose, as nbdkit's delay filter makes the
# NBD one: every client reaches nginx through bench/delay_proxy.py, which
# holds each request for --delay before passing it on (nginx cannot delay
# a reply, and this kernel has no netem); --delay 0 reads nginx directly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"   # build_unless_corfs, the work folder and its cleanup, say/fail/record...

usage() {
  cat >&2 <<USAGE
usage: bench/remote_http.sh [options]
  --size SIZE          template size (default 1G; a multiple of 1M, at least 64M)
  --delay TIME         each request held this long (default 2ms; 0 = no proxy)
  --rounds N           rounds of every figure, taking turns; the median is judged (default 1, at most 9)
$bench_usage
USAGE
  exit 2
}

size=1G
delay=2ms
rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --delay) delay=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) bench_option "$@"; shift "$took" ;;
  esac
done

delay_ms=$(python3 -c '
import re, sys
m = re.fullmatch(r"([0-9]*\.?[0-9]+)(ms|s)?", sys.argv[1])
print(float(m.group(1)) * (1000 if m.group(2) == "s" else 1) if m else "bad")' "$delay")
[ "$delay_ms" != bad ] || { echo "bench: --delay must be a time such as 2ms, 0.5ms or 0" >&2; exit 2; }
require_rounds "$rounds"
bytes=$(numfmt --from=iec "$size") || usage
if [ $((bytes % MiB)) -ne 0 ] || [ "$bytes" -lt $((64 * MiB)) ]; then
  echo "bench: --size must be a multiple of 1M and at least 64M" >&2; exit 2
fi
build_unless_corfs
require_tools "$corfs" nginx curl qemu-img qemu-storage-daemon python3 fusermount3

make_work_folder corfs-bench-http

# Before every figure: dirty data out, then the template back in the page
# cache (nginx serves it from there), as bench/run.sh does.
settle() { sync; sleep 3; cat www/template.raw > /dev/null; }

cores=$(nproc)
record load_start "$(cut -d' ' -f1 /proc/loadavg)"
say "work folder $dir; template $size; delay $delay a request; $cores cores"

# --- the server ----------------------------------------------------------------
mkdir -p www nginx/tmp
say "writing a random template of $size"
head -c "$bytes" /dev/urandom > www/template.raw
port=$(free_port)
cat > nginx/nginx.conf <<CONF
daemon off;
user root;  # the work folder is private (mktemp -d)
worker_processes 2;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $dir/nginx/tmp/body;
  proxy_temp_path $dir/nginx/tmp/proxy;
  fastcgi_temp_path $dir/nginx/tmp/fastcgi;
  uwsgi_temp_path $dir/nginx/tmp/uwsgi;
  scgi_temp_path $dir/nginx/tmp/scgi;
  types { application/octet-stream raw; }
  server { listen 127.0.0.1:$port; root $dir/www; }
}
CONF
nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" &
pids+=("$!")
url="http://127.0.0.1:$port/template.raw"
for _ in $(seq 1 100); do curl -s -o /dev/null -r 0-0 "$url" && break; sleep 0.05; done
curl -s -o /dev/null -r 0-0 "$url" || fail "nginx does not answer on port $port"
if [ "$delay_ms" != 0.0 ]; then
  proxy_port=$(free_port)
  python3 "$root/bench/delay_proxy.py" "$proxy_port" "$port" "$delay_ms" &
  pids+=("$!")
  url="http://127.0.0.1:$proxy_port/template.raw"
  for _ in $(seq 1 100); do curl -s -o /dev/null -r 0-0 "$url" && break; sleep 0.05; done
  curl -s -o /dev/null -r 0-0 "$url" || fail "the delay proxy does not answer on port $proxy_port"
fi

# --- qemu-storage-daemon: its http blockdev --------------------------------------
# Does this QEMU have the http blockdev? A daemon with one such node runs.
qemu-storage-daemon --blockdev "driver=http,node-name=probe,url=$url,read-only=on" \
  --chardev socket,path=probe.sock,server=on,wait=off,id=c0 --monitor chardev=c0 2>qsd-probe.log &
probe_pid=$!
pids+=("$probe_pid")
for _ in $(seq 1 200); do [ -S probe.sock ] && break; kill -0 "$probe_pid" 2>/dev/null || break; sleep 0.05; done
have_http=0
[ -S probe.sock ] && kill -0 "$probe_pid" 2>/dev/null && have_http=1
python3 "$qmp" probe.sock quit > /dev/null 2>&1 || true
stop_pid "$probe_pid" TERM
[ $have_http = 1 ] ||
  say "qsd: no http blockdev in this QEMU (Debian: qemu-block-extra): $(head -1 qsd-probe.log); its figures are left out"

# http_figures R: the limit, corfs and qsd, each figure recorded as KEY@R.
http_figures() {
  local r=$1 t of=""
  [ "$rounds" = 1 ] || of=" (round $r of $rounds)"
  # --- the limit: curl -o
  say "limit: curl -o of the template (+ sync)$of"
  settle
  t=$(now); curl -s -o copy.raw "$url"; sync copy.raw; record "curl_copy@$r" "$(elapsed "$t")"
  cmp www/template.raw copy.raw || fail "curl: the copy differs from the template"
  rm -f copy.raw

  # --- corfs
  mkdir -p mnt overlays
  cat > corfs.yaml <<YAML
mountpoint: mnt
images:
  stream.img:
    overlay: overlays/stream.img
    backing: [$url]
    copy_on_read: false
  cold.img:
    overlay: overlays/cold.img
    backing: [$url]
YAML
  "$corfs" mount corfs.yaml 2>corfs.log &
  corfs_pid=$!
  pids+=("$corfs_pid")
  mounts+=("$dir/mnt")
  wait_mounted "$dir/mnt" "$corfs_pid"

  say "corfs: stream from http$of"
  settle
  t=$(now)
  "$corfs" stream stream.img -m mnt --wait > stream.out || fail "corfs stream failed: $(tail -1 stream.out)"
  record "corfs_stream@$r" "$(elapsed "$t")"
  cmp www/template.raw overlays/stream.img || fail "corfs: the streamed overlay differs from the template"
  rm -f overlays/stream.img

  say "corfs: cold sequential read (copy-on-read)$of"
  settle
  t=$(now); dd if=mnt/cold.img of=/dev/null bs=1M iflag=direct status=none; record "corfs_cold@$r" "$(elapsed "$t")"
  cmp www/template.raw mnt/cold.img || fail "corfs: cold.img differs from the template"
  stop_pid "$corfs_pid" INT
  is_mounted "$dir/mnt" && fail "corfs did not unmount"
  rm -f overlays/*

  # --- qemu-storage-daemon over its http blockdev
  [ $have_http = 1 ] || return 0
  # backing: the http node, read-only; over it a fresh qcow2 overlay.
  http_node="driver=http,node-name=h0,url=$url,read-only=on"
  qemu-img create -q -f qcow2 -u -b "$url" -F raw qsd-stream.qcow2 "$bytes"
  say "qsd: block-stream over the http blockdev$of"
  settle
  qemu-storage-daemon --blockdev "$http_node" \
    --blockdev driver=file,node-name=f0,filename=qsd-stream.qcow2 \
    --blockdev driver=qcow2,node-name=q0,file=f0,backing=h0 \
    --chardev socket,path=qmp.sock,server=on,wait=off,id=c0 --monitor chardev=c0 2>qsd-stream.log &
  qsd_pid=$!
  pids+=("$qsd_pid")
  record "qsd_stream@$r" "$(python3 "$qmp" qmp.sock stream q0)"
  python3 "$qmp" qmp.sock quit || true
  stop_pid "$qsd_pid" TERM
  qemu-img compare -q -f raw -F qcow2 www/template.raw qsd-stream.qcow2 ||
    fail "qsd: the streamed overlay differs from the template"
  rm -f qsd-stream.qcow2 qmp.sock

  say "qsd: cold sequential read through its copy-on-read export$of"
  qemu-img create -q -f qcow2 -u -b "$url" -F raw qsd-cor.qcow2 "$bytes"
  touch qsd-export.img
  mounts+=("$dir/qsd-export.img")
  settle
  qemu-storage-daemon --blockdev "$http_node" \
    --blockdev driver=file,node-name=f0,filename=qsd-cor.qcow2 \
    --blockdev driver=qcow2,node-name=q0,file=f0,backing=h0 \
    --blockdev driver=copy-on-read,node-name=top,file=q0 \
    --export type=fuse,id=e0,node-name=top,mountpoint=qsd-export.img,writable=on \
    --chardev socket,path=qmp.sock,server=on,wait=off,id=c0 --monitor chardev=c0 2>qsd-cor.log &
  qsd_pid=$!
  pids+=("$qsd_pid")
  wait_mounted "$dir/qsd-export.img" "$qsd_pid"
  t=$(now); dd if=qsd-export.img of=/dev/null bs=1M iflag=direct status=none; record "qsd_cold@$r" "$(elapsed "$t")"
  cmp www/template.raw qsd-export.img || fail "qsd: the export differs from the template"
  python3 "$qmp" qmp.sock quit || true
  stop_pid "$qsd_pid" TERM
  rm -f qsd-cor.qcow2 qmp.sock
}
for r in $(seq 1 "$rounds"); do http_figures "$r"; done
median_rounds curl_copy corfs_stream corfs_cold qsd_stream qsd_cold
record load_end "$(cut -d' ' -f1 /proc/loadavg)"

# --- the table and the JSON ----------------------------------------------------
mkdir -p "$root/bench/results"
python3 - "$results" "$root/bench/results" "$size" "$cores" "$bytes" "$delay" <<'PY'
import json, os, sys, time

values, rounds = {}, {}  # rounds: KEY -> each round's value (KEY@ROUND lines)
for line in open(sys.argv[1]):
    key, value = line.split()
    if "@" in key:
        rounds.setdefault(key.split("@")[0], []).append(float(value))
    else:
        values[key] = float(value)
out_dir, size, cores, bytes_, delay = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
v = values.get
rows = []
def row(name, corfs, other, other_name, ratio, target, ok):
    rows.append(dict(figure=name, unit="s", corfs=corfs, other=other, other_name=other_name,
                     ratio=ratio, target=target, ok=ok))

# Throughput ratios: corfs's over the other's (time ratio inverted).
row("http stream vs curl -o (copy limit)", v("corfs_stream"), v("curl_copy"), "curl",
    v("curl_copy") / v("corfs_stream"), ">= 0.8x its rate", v("curl_copy") / v("corfs_stream") >= 0.8)
if v("qsd_stream") is not None:
    row("http stream vs qsd block-stream (http)", v("corfs_stream"), v("qsd_stream"), "qsd",
        v("qsd_stream") / v("corfs_stream"), ">= 3x faster", v("qsd_stream") / v("corfs_stream") >= 3)
if v("qsd_cold") is not None:
    row("http cold seq read (CoR) vs qsd CoR", v("corfs_cold"), v("qsd_cold"), "qsd",
        v("qsd_cold") / v("corfs_cold"), ">= 2x faster", v("qsd_cold") / v("corfs_cold") >= 2)

title = "figure (%s over http, delay %s, %d cores)" % (size, delay, cores)
print("%-44s %10s %10s %-5s %7s %-17s %s" % (title, "corfs", "other", "", "ratio", "target", "result"))
for r in rows:
    result = "-" if r["ok"] is None else ("ok" if r["ok"] else "MISS")
    print("%-44s %9.2fs %9.2fs %-5s %6.2fx %-17s %s" % (r["figure"], r["corfs"], r["other"], r["other_name"],
                                                       r["ratio"], r["target"], result))
print()
mb = lambda seconds: bytes_ / 1e6 / seconds
print("rates: curl -o %.0f MB/s, corfs stream %.0f MB/s, corfs cold read %.0f MB/s"
      % (mb(v("curl_copy")), mb(v("corfs_stream")), mb(v("corfs_cold"))), end="")
if v("qsd_stream") is not None:
    print(", qsd stream %.0f MB/s, qsd cold read %.0f MB/s" % (mb(v("qsd_stream")), mb(v("qsd_cold"))), end="")
print()
if any(len(x) > 1 for x in rounds.values()):
    print("medians of %d rounds (s): %s" % (max(len(x) for x in rounds.values()),
          "; ".join("%s %s" % (k, " ".join("%.2f" % x for x in xs)) for k, xs in rounds.items())))
busy = max(v("load_start"), v("load_end"))
if busy > 0.5 * cores:
    print("warning: the machine was busy (load average %.1f at start, %.1f at end on %d cores); "
          "figures are noisy" % (v("load_start"), v("load_end"), cores))
out = {"size": size, "delay": delay, "cores": cores, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "figures": rows, "values": values, "rounds": rounds}
path = os.path.join(out_dir, "remote-http-%s-%s.json" % (size, time.strftime("%Y%m%d-%H%M%S")))
with open(path, "w") as f:
    json.dump(out, f, indent=2)
print("\nwritten to bench/results/" + os.path.basename(path))
PY
