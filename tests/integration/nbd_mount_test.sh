#!/usr/bin/env bash
# Backing images on NBD servers: nbdkit over TCP on 127.0.0.1 and qemu-nbd
# over a Unix socket. Each mount reads as the template (cmp); fio's crc32c
# verify of writes passes; a stream makes each overlay standalone without
# fetching the template's holes; with the servers stopped afterwards the
# images are still served and still equal the template.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/nbd_lib.sh"

# 32 MiB, sparse: 4 MiB of random data at 0, 8 and 20 MiB, 1 MiB at the end.
truncate -s 32M template.raw
for mib in 0 8 20; do
  head -c 4M /dev/urandom | dd of=template.raw bs=1M seek=$mib conv=notrunc status=none
done
head -c 1M /dev/urandom | dd of=template.raw bs=1M seek=31 conv=notrunc status=none

port=$(free_port)
start_nbdkit tcp -i 127.0.0.1 -p "$port" --filter=stats file template.raw statsfile="$WORK/stats.txt"
tcp_pid=$SERVER_PID
start_qemu_nbd unix -r -e 4 -f raw -x disk -k "$WORK/nbd.sock" template.raw
unix_pid=$SERVER_PID

write_yaml disk.yaml <<YAML
images:
  tcp.img:
    overlay: overlays/tcp.img
    backing: ["nbd://127.0.0.1:$port/"]
  unix.img:
    overlay: overlays/unix.img
    backing: ["nbd+unix:///disk?socket=$WORK/nbd.sock"]
YAML
start_mount disk.yaml mnt

step "both images read as the template"
cmp template.raw mnt/tcp.img
cmp template.raw mnt/unix.img
[ "$(info_field overlays/tcp.img state)" = has-backing ] || fail "tcp.img: not has-backing"

step "fio randwrite with crc32c verify over the Unix-socket image"
fio --name=verify --filename=mnt/unix.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=8M --size=4M --verify=crc32c --do_verify=1 --randseed=1234 --output=fio.log \
  || { cat fio.log; fail "fio verify"; }

step "stream both to standalone"
"$CORFS" stream tcp.img -m mnt --wait > stream-tcp.log || fail "tcp stream: $(cat stream-tcp.log)"
"$CORFS" stream unix.img -m mnt --wait > stream-unix.log || fail "unix stream: $(cat stream-unix.log)"
[ "$(info_field overlays/tcp.img state)" = standalone ] || fail "tcp.img is not standalone"
[ "$(info_field overlays/unix.img state)" = standalone ] || fail "unix.img is not standalone"

step "the servers are stopped; the images are still served"
kill -TERM "$tcp_pid"
wait "$tcp_pid" 2>/dev/null || true
kill_server "$unix_pid"
cmp template.raw mnt/tcp.img
cmp -n 8M template.raw mnt/unix.img
cmp -i 12M:12M template.raw mnt/unix.img
fio --name=verify --filename=mnt/unix.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=8M --size=4M --verify=crc32c --verify_only --randseed=1234 --output=fio2.log \
  || { cat fio2.log; fail "fio verify after the servers stopped"; }

step "the holes of the template were never fetched"
# 13 MiB of data; the cmp reads before the stream fetched it once, plus
# the first sectors format detection reads.
read_mib=$(stats_read_mib stats.txt)
python3 -c "import sys; sys.exit(not float(sys.argv[1]) <= 14)" "$read_mib" \
  || fail "nbdkit sent $read_mib MiB for 13 MiB of data: $(cat stats.txt)"
stop_mount mnt
