#!/usr/bin/env bash
# An NBD server that fails or lies:
#   - killed in the middle of a stream and restarted soon: the job goes on
#     (the driver reconnects) and ends standalone with the template's data;
#   - shut down cleanly and restarted: nbdkit answers NBD_ESHUTDOWN until
#     its clients leave; a guest read drops the connection, waits for the
#     new server and gets the template's data;
#   - gone longer than the retries: the stream stops per on_error (stop),
#     and once the server is back a resume completes it;
#   - back with an export of another size: reads are EIO, a stream fails
#     saying the export changed, the overlay keeps its chain;
#   - back without the export: reads are EIO saying there is no such export;
# and when the right server returns, the image still equals the template:
# nothing wrong was copied.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"

random_file template.raw 32M
random_file other.raw 40M
port=$(free_port)
serve() {  # serve FILE [FILTER ARGS...]: nbdkit on $port, slow enough to stop mid-stream
  local file=$1
  shift
  start_nbdkit tcp -i 127.0.0.1 -p "$port" --filter=delay file "$file" delay-read=10ms "$@"
  tcp_pid=$SERVER_PID
}
serve template.raw
start_qemu_nbd unix -r -f raw -x disk -k "$WORK/nbd.sock" template.raw
unix_pid=$SERVER_PID

write_yaml disk.yaml <<YAML
images:
  restart.img:
    overlay: overlays/restart.img
    backing: ["nbd://127.0.0.1:$port/"]
    copy_on_read: false
    stream: {chunk_size: 64K}
  graceful.img:
    overlay: overlays/graceful.img
    backing: ["nbd://127.0.0.1:$port/"]
  stop.img:
    overlay: overlays/stop.img
    backing: ["nbd://127.0.0.1:$port/"]
    copy_on_read: false
    stream: {on_error: stop, chunk_size: 64K}
  size.img:
    overlay: overlays/size.img
    backing: ["nbd://127.0.0.1:$port/"]
    copy_on_read: false
  gone.img:
    overlay: overlays/gone.img
    backing: ["nbd+unix:///disk?socket=$WORK/nbd.sock"]
    copy_on_read: false
YAML
start_mount disk.yaml mnt

step "the server is killed mid-stream and restarted: the job completes"
"$CORFS" stream restart.img -m mnt > /dev/null
wait_for 20 job_offset_above mnt restart.img $((2 << 20))
kill_server "$tcp_pid"
sleep 0.3
serve template.raw
wait_for 60 overlay_is overlays/restart.img standalone
qemu-img compare -q -f raw -F raw template.raw mnt/restart.img || fail "restart.img differs from the template"

step "the server shuts down cleanly and restarts: a guest read waits for the new one"
dd if=mnt/graceful.img of=/dev/null bs=64K count=1 iflag=direct status=none  # its connection is open, then idle
kill -TERM "$tcp_pid"
start_bg dd if=mnt/graceful.img of=graceful.part bs=1M skip=8 count=2 iflag=direct status=none
read_pid=$BG_PID
server_gone() { ! kill -0 "$tcp_pid" 2>/dev/null; }
wait_for 20 server_gone  # it leaves once corfs has dropped the connection it answered with ESHUTDOWN
wait "$tcp_pid" 2>/dev/null || true
serve template.raw
wait "$read_pid" || fail "a guest read across a clean server restart failed: $(grep -a warning corfs.log | tail -1)"
cmp graceful.part <(dd if=template.raw bs=1M skip=8 count=2 status=none) || fail "graceful.img read wrong data"

step "the server is gone longer than the retries: the stream stops; resume completes it"
"$CORFS" stream stop.img -m mnt > /dev/null
wait_for 20 job_offset_above mnt stop.img $((2 << 20))
kill_server "$tcp_pid"
wait_for 60 job_is mnt stop.img paused
job_field mnt stop.img error | grep -q "127.0.0.1:$port" || fail "the error does not name the server: $(job_field mnt stop.img error)"
serve template.raw
# A read that was still retrying when the job paused may fail after the
# server is back, and pause the job once more: resume until it completes.
resume_if_paused() {
  if job_is mnt stop.img paused; then "$CORFS" resume stop.img -m mnt > /dev/null; fi
  overlay_is overlays/stop.img standalone
}
wait_for 60 resume_if_paused
qemu-img compare -q -f raw -F raw template.raw mnt/stop.img || fail "stop.img differs from the template"

step "the server comes back with an export of another size: refused"
dd if=mnt/size.img of=/dev/null bs=1M count=1 iflag=direct status=none  # a connection is open
kill_server "$tcp_pid"
serve other.raw
dd if=mnt/size.img of=/dev/null bs=1M skip=4 count=1 iflag=direct status=none 2> read.err \
  && fail "a read from an export that changed size succeeded"
grep -q "Input/output error" read.err || fail "not EIO: $(cat read.err)"
"$CORFS" stream size.img -m mnt --wait > size.log 2>&1 && fail "a stream from an export that changed size succeeded"
grep -q "changed size" size.log corfs.log || fail "no message says the export changed size: $(cat size.log)"
[ "$(info_field overlays/size.img state)" = has-backing ] || fail "size.img dropped its chain"

step "the export vanished: refused with a clear message"
kill_server "$unix_pid"
rm -f "$WORK/nbd.sock"
start_qemu_nbd unix -r -f raw -x other -k "$WORK/nbd.sock" template.raw
unix_pid=$SERVER_PID
dd if=mnt/gone.img of=/dev/null bs=1M count=1 iflag=direct status=none 2> read.err \
  && fail "a read from a vanished export succeeded"
"$CORFS" stream gone.img -m mnt --wait > gone.log 2>&1 && fail "a stream from a vanished export succeeded"
grep -q "no such export" gone.log corfs.log || fail "no message says the export is gone: $(cat gone.log)"

step "the right servers return: nothing wrong was copied"
kill_server "$tcp_pid"
serve template.raw
kill_server "$unix_pid"
rm -f "$WORK/nbd.sock"
start_qemu_nbd unix -r -f raw -x disk -k "$WORK/nbd.sock" template.raw
qemu-img compare -q -f raw -F raw template.raw mnt/size.img || fail "size.img differs from the template"
qemu-img compare -q -f raw -F raw template.raw mnt/gone.img || fail "gone.img differs from the template"
stop_mount mnt
