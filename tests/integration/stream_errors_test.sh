#!/usr/bin/env bash
# The stream job's on-error policy, with a backing image that fails chosen
# reads (the blkdebug format):
#   report: the job ends with an error event; the link stays;
#   ignore: the job skips the bad range, completes, and keeps the link;
#   stop:   the job pauses; resume retries, and it completes standalone.
source "$(dirname "$0")/lib.sh"

random_file template.raw 16M
cat > always.rules <<RULES
image template.raw
format raw
read-error 6M 64K EIO
RULES
cat > once.rules <<RULES
image template.raw
format raw
read-error 6M 64K EIO 1
RULES
write_yaml errors.yaml <<YAML
images:
  report.img:
    overlay: overlays/report.img
    backing: [{path: always.rules, format: blkdebug}]
    copy_on_read: false
  ignore.img:
    overlay: overlays/ignore.img
    backing: [{path: always.rules, format: blkdebug}]
    copy_on_read: false
    stream: {on_error: ignore}
  stop.img:
    overlay: overlays/stop.img
    backing: [{path: once.rules, format: blkdebug}]
    copy_on_read: false
    stream: {on_error: stop}
YAML
start_mount errors.yaml mnt
"$CORFS" events -m mnt --json > events.log &
STARTED_PIDS+=("$!")
sleep 0.5

step "report: the job fails and says why"
"$CORFS" stream report.img -m mnt --wait > report.log && fail "the stream should have failed"
grep -q "failed" report.log || fail "no failure message: $(cat report.log)"
[ "$(info_field overlays/report.img state)" = streaming ] || fail "report: link dropped"

step "ignore: the job completes but keeps the backing link"
"$CORFS" stream ignore.img -m mnt --wait > ignore.log || fail "ignore: the job did not complete"
[ "$(info_field overlays/ignore.img state)" = streaming ] || fail "ignore: link dropped despite a skipped range"
[ "$(info_field overlays/ignore.img allocated-bytes)" -lt $((16 << 20)) ] || fail "ignore: bad range counted as copied"

step "stop: the job pauses on the error; resume retries and completes"
"$CORFS" stream stop.img -m mnt > /dev/null
wait_for 20 job_is mnt stop.img paused
"$CORFS" resume stop.img -m mnt > /dev/null
wait_for 20 overlay_is overlays/stop.img standalone
cmp template.raw mnt/stop.img

step "the events were seen by a subscriber"
sleep 0.5
grep -q '"BLOCK_JOB_ERROR"' events.log || fail "no BLOCK_JOB_ERROR event"
grep -q '"action":"stop"' events.log || fail "no stop action in the error events"
grep -q '"BLOCK_JOB_COMPLETED"' events.log || fail "no BLOCK_JOB_COMPLETED event"
stop_mount mnt
