#!/usr/bin/env bash
# A qcow2 template on a web server, as cloud images are published: a
# compressed qcow2 served by nginx (Range), read through the HTTP protocol
# driver by the qcow2 driver. The image is the template's data (cmp), a
# stream makes it standalone, and with the server stopped it is still
# served. qcow2 over a protocol comes with the protocol/format seam; a
# build without it skips the test (exit 77).
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
source "$HERE/http_lib.sh"

mkdir www
random_file data.raw 8M
qemu-img convert -c -O qcow2 data.raw www/template.qcow2
PORT=$(free_port)
start_nginx "$WORK/www" "$PORT"
write_yaml qcow2.yaml <<YAML
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [http://127.0.0.1:$PORT/template.qcow2]
    copy_on_read: false
YAML
mkdir -p mnt
"$CORFS" mount qcow2.yaml mnt 2> probe.log &
probe=$!
STARTED_PIDS+=("$probe")
MOUNTED+=("$(realpath -m mnt)")
for _ in $(seq 1 200); do is_mounted mnt && break; kill -0 "$probe" 2>/dev/null || break; sleep 0.05; done
if ! is_mounted mnt; then
  wait "$probe" || true
  # Without the seam, qcow2 chains are expanded as files: the URL is "No
  # such file", or the format is "not supported" over a server.
  if grep -q -e "over a server is not supported" -e "template.qcow2: No such file or directory" probe.log; then
    echo "SKIP: qcow2 over a protocol is not in this build: $(cat probe.log)"
    exit $SKIP
  fi
  cat probe.log >&2
  fail "the mount over a qcow2 on http failed"
fi
MOUNT_PID=$probe

step "the image is the data of the qcow2 on the server"
cmp data.raw mnt/disk.img
step "a stream makes it standalone; with the server stopped it is still served"
"$CORFS" stream disk.img -m mnt --wait > stream.log || { cat stream.log; fail "stream of a qcow2 over http"; }
[ "$(info_field overlays/disk.img state)" = standalone ] || fail "disk.img is not standalone"
stop_nginx
cmp data.raw mnt/disk.img
stop_mount mnt
cmp data.raw overlays/disk.img
