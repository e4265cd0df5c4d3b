#!/usr/bin/env bash
# Images whose template is on a web server (nginx, started by the test on
# 127.0.0.1): the mount reads it over http://, cmp-equal to the template;
# fio verifies its writes; a stream makes an image standalone, and with
# the server stopped it is still served and cmp-equal. A URL with
# credentials (nginx auth_basic) works, and the password is in no output:
# not the log, events, `corfs info`, `corfs jobs` (query-block-jobs), nor
# the .cor header.
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
source "$HERE/http_lib.sh"

PASSWORD='Pw-7f3a9c21e5'
mkdir -p www/private
random_file www/template.raw 24M
cp www/template.raw www/private/template.raw
make_htpasswd alice "$PASSWORD"
PORT=$(free_port)
start_nginx "$WORK/www" "$PORT"
URL="http://127.0.0.1:$PORT/template.raw"
write_yaml http.yaml <<YAML
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [$URL]
  fio.img:
    overlay: overlays/fio.img
    backing: [$URL]
  stream.img:
    overlay: overlays/stream.img
    backing: [$URL]
    copy_on_read: false
  secret.img:
    overlay: overlays/secret.img
    backing: ["http://alice:$PASSWORD@127.0.0.1:$PORT/private/template.raw"]
    copy_on_read: false
YAML
start_mount http.yaml mnt
"$CORFS" events -m mnt --json > events.log &
STARTED_PIDS+=("$!")

step "the image reads as the template on the server"
cmp www/template.raw mnt/disk.img
[ "$(info_field overlays/disk.img state)" = has-backing ] || fail "disk.img lost its backing link"

step "fio verifies its writes over the http template"
fio --name=verify --filename=mnt/fio.img --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
    --offset=4M --size=8M --verify=crc32c --do_verify=1 --randseed=7 --output=fio.log \
  || { cat fio.log; fail "fio verify"; }
cmp <(head -c 4M www/template.raw) <(head -c 4M mnt/fio.img) || fail "fio.img before the writes"
cmp <(tail -c 12M www/template.raw) <(tail -c 12M mnt/fio.img) || fail "fio.img after the writes"

step "a stream from http makes the image standalone"
"$CORFS" stream stream.img -m mnt --wait > stream.log || { cat stream.log; fail "stream did not complete"; }
[ "$(info_field overlays/stream.img state)" = standalone ] || fail "stream.img is not standalone"

step "a URL with credentials: shown without them, and streamed"
"$CORFS" info overlays/secret.img > info.txt
"$CORFS" info --json overlays/secret.img > info.json
grep -q "http://127.0.0.1:$PORT/private/template.raw" info.txt || { cat info.txt; fail "info does not name the URL"; }
"$CORFS" stream secret.img -m mnt --speed 4M > /dev/null
wait_for 20 job_offset_above mnt secret.img 0
"$CORFS" jobs -m mnt --json > jobs.json
"$CORFS" jobs -m mnt > jobs.txt
"$CORFS" status -m mnt > status.txt
"$CORFS" set-speed -m mnt secret.img 0
wait_for 60 job_gone mnt secret.img
[ "$(info_field overlays/secret.img state)" = standalone ] || fail "secret.img is not standalone"
cmp www/template.raw mnt/secret.img
"$CORFS" info overlays/secret.img >> info.txt

step "with the server stopped, the standalone images are still served"
stop_nginx
cmp www/template.raw mnt/stream.img
cmp www/template.raw mnt/secret.img
cmp www/template.raw mnt/disk.img  # read whole above: every cluster is local
stop_mount mnt

step "the password is in no output and not in any .cor"
for file in corfs.log events.log jobs.json jobs.txt status.txt info.txt info.json stream.log; do
  [ "$(grep -c -- "$PASSWORD" "$file")" = 0 ] || fail "the password is in $file"
  [ "$(grep -c -- "alice:" "$file")" = 0 ] || fail "the user:password form is in $file"
done
for cor in overlays/*.cor; do
  [ "$(grep -c -a -- "$PASSWORD" "$cor")" = 0 ] || fail "the password is in $cor"
done
