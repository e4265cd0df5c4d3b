#!/usr/bin/env bash
# A web server that fails or lies, under a running mount:
# - a range server told to lie (200 for a Range, a short body, another range
#   or size, a changed ETag, a 412): the guest's read is EIO, the log says
#   what the server did, and nothing is copied into the overlay; a stream
#   over it fails and copies nothing; told to behave, both work;
# - 503s and a 429 with Retry-After: retried, the reads work; 503s that
#   outlast the retries: EIO, and a later read works;
# - nginx stopped in the middle of two streams and started again: the
#   `stop` job pauses and, resumed, completes; the `report` job fails and a
#   new stream completes; both images are then the template (qemu-img
#   compare).
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
source "$HERE/http_lib.sh"

random_file template.raw 8M
mkdir www
random_file www/big.raw 32M
start_liar "$WORK/template.raw"
LIAR_URL="http://127.0.0.1:$LIAR_PORT/template.raw"
PORT=$(free_port)
start_nginx "$WORK/www" "$PORT"
NGINX_URL="http://127.0.0.1:$PORT/big.raw"
write_yaml faults.yaml <<YAML
images:
  lie.img:
    overlay: overlays/lie.img
    backing: [$LIAR_URL]
  job.img:
    overlay: overlays/job.img
    backing: [$LIAR_URL]
    copy_on_read: false
  stop.img:
    overlay: overlays/stop.img
    backing: [$NGINX_URL]
    copy_on_read: false
    stream: {on_error: stop}
  report.img:
    overlay: overlays/report.img
    backing: [$NGINX_URL]
    copy_on_read: false
YAML
start_mount faults.yaml mnt
"$CORFS" events -m mnt --json > events.log &
STARTED_PIDS+=("$!")
sleep 0.3

# read_block IMAGE N: reads 64K block N of IMAGE (one FUSE read) into block.out.
read_block() { dd if="mnt/$1" of=block.out bs=64K count=1 skip="$2" iflag=direct status=none 2> dd.err; }
# block_is N: block.out is block N of the template.
block_is() { cmp block.out <(dd if=template.raw bs=64K count=1 skip="$1" status=none); }

step "each lie is EIO with a clear message; nothing is copied"
declare -A SAYS=(
  [ignore-range]="answered HTTP 200 (the whole file) to a range request: it ignores Range"
  [short]="(a short body)"
  [wrong-range]="to a request for"
  [wrong-size]="the server says the file has 8392704 bytes, not the 8388608"
  [change-etag]='now says etag:"corfs-test-v2", not etag:"corfs-test-v1"'
  [modified]="(If-Match failed): the image changed on the server"
)
block=0
for mode in ignore-range short wrong-range wrong-size change-etag modified; do
  liar "$mode"
  read_block lie.img $block && fail "a read from a server in mode '$mode' worked"
  grep -q "Input/output error" dd.err || fail "$mode: not EIO: $(cat dd.err)"
  grep -F -- "$LIAR_URL" corfs.log | grep -q -F -- "${SAYS[$mode]}" || { cat corfs.log; fail "$mode: no clear message"; }
  block=$((block + 16))
done
[ "$(info_field overlays/lie.img allocated-bytes)" = 0 ] || fail "something was copied from a lying server"

step "the server behaves again: the same reads work and are the template"
liar ok
for block in 0 16 32 48 64 80; do
  read_block lie.img $block || fail "block $block: $(cat dd.err)"
  block_is $block || fail "block $block differs from the template"
done

step "a stream over a lying server fails and copies nothing; then it completes"
liar wrong-size
"$CORFS" stream job.img -m mnt --wait > job.log 2>&1 && fail "a stream over a lying server completed"
[ "$(info_field overlays/job.img allocated-bytes)" = 0 ] || fail "the stream copied from a lying server"
grep -q "BLOCK_JOB_ERROR" events.log || fail "no BLOCK_JOB_ERROR for the lying server"
liar ok
"$CORFS" stream job.img -m mnt --wait > job.log || { cat job.log; fail "the stream did not complete"; }
cmp template.raw mnt/job.img

step "503s and a 429 with Retry-After are retried; the reads work"
: > "$WORK/liar.log"
liar fail 3 503
read_block lie.img 96 || fail "after 503s: $(cat dd.err)"
block_is 96 || fail "block 96 after 503s"
[ "$(grep -c "fail 3 503" "$WORK/liar.log")" -ge 3 ] || fail "the 503s were not retried: $(cat "$WORK/liar.log")"
liar fail 1 429 1
read_block lie.img 97 || fail "after a 429: $(cat dd.err)"
block_is 97 || fail "block 97 after a 429"
grep -q "HTTP 429" corfs.log || fail "the 429 was not logged"

step "503s that outlast the retries: EIO; then a read works"
liar fail 100000 503
read_block lie.img 98 && fail "a read worked while the server answers 503"
grep -q "HTTP 503 (gave up after 6 tries)" corfs.log || fail "no message of the tries running out"
liar ok
read_block lie.img 98 || fail "the server is back but the read fails: $(cat dd.err)"
block_is 98 || fail "block 98"

step "nginx stops in the middle of two streams and starts again"
"$CORFS" stream stop.img -m mnt --speed 2M > /dev/null
"$CORFS" stream report.img -m mnt --speed 2M > /dev/null
wait_for 30 job_offset_above mnt stop.img $((4 << 20))
wait_for 30 job_offset_above mnt report.img $((4 << 20))
# Paused while nginx goes, so that neither job can finish in between on a
# loaded machine (a stream takes 4 MiB steps from a server).
"$CORFS" pause stop.img -m mnt > /dev/null
"$CORFS" pause report.img -m mnt > /dev/null
stop_nginx
"$CORFS" resume stop.img -m mnt > /dev/null
"$CORFS" resume report.img -m mnt > /dev/null
wait_for 60 job_is mnt stop.img paused
[ "$(job_field mnt stop.img io-status)" = failed ] || fail "stop.img: io-status $(job_field mnt stop.img io-status)"
wait_for 60 job_gone mnt report.img
[ "$(info_field overlays/report.img state)" = has-backing ] || fail "report.img dropped its link"
start_nginx "$WORK/www" "$PORT"
"$CORFS" set-speed -m mnt stop.img 0 > /dev/null
# Each worker's read that was still being retried when the job paused
# stops it again when its tries run out: resume until it is done, as a
# management layer would.
resume_until_standalone() {
  [ "$(job_field mnt stop.img status)" != paused ] || "$CORFS" resume stop.img -m mnt > /dev/null
  overlay_is overlays/stop.img standalone
}
wait_for 90 resume_until_standalone
"$CORFS" stream report.img -m mnt --wait > report.log || { cat report.log; fail "report.img: a new stream failed"; }
[ "$(info_field overlays/report.img state)" = standalone ] || fail "report.img is not standalone"
stop_mount mnt
qemu-img compare -q -f raw -F raw www/big.raw overlays/stop.img || fail "stop.img differs from the template"
qemu-img compare -q -f raw -F raw www/big.raw overlays/report.img || fail "report.img differs from the template"
