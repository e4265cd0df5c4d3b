#!/usr/bin/env bash
# The stream job's on-error policy, with a backing image that fails chosen
# reads (the blkdebug format):
#   report: the job ends with an error event; the link stays;
#   ignore: the job skips the bad range, completes, and keeps the link; a
#           range that fails once is tried again later, and the job then
#           completes standalone; a backing image that fails every read
#           gives a few error events whose `count`s add up to the errors;
#   stop:   the job pauses, reporting io-status failed (nospace for ENOSPC)
#           and no ETA; resume retries, and it completes standalone; a
#           cancel instead ends it with BLOCK_JOB_CANCELLED.
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
cp once.rules once-ignore.rules  # a rules file of its own: its own count
cat > nospace.rules <<RULES
image template.raw
format raw
read-error 6M 64K ENOSPC
RULES
cat > every.rules <<RULES
image template.raw
format raw
read-error 0 16M EIO
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
  nospace.img:
    overlay: overlays/nospace.img
    backing: [{path: nospace.rules, format: blkdebug}]
    copy_on_read: false
    stream: {on_error: stop}
  retry.img:
    overlay: overlays/retry.img
    backing: [{path: once-ignore.rules, format: blkdebug}]
    copy_on_read: false
    stream: {on_error: ignore}
  every.img:
    overlay: overlays/every.img
    backing: [{path: every.rules, format: blkdebug}]
    copy_on_read: false
    stream: {on_error: ignore, chunk_size: 64K}
YAML
start_mount errors.yaml mnt
# saw_event NAME DEVICE: events.log holds event NAME of job DEVICE.
saw_event() {
  python3 -c '
import json, sys
sys.exit(not any(e["event"] == sys.argv[1] and e["data"]["device"] == sys.argv[2]
                 for e in map(json.loads, open("events.log"))))' "$1" "$2"
}
"$CORFS" events -m mnt --json > events.log &
STARTED_PIDS+=("$!")
sleep 0.5

step "report: the job fails and says why"
"$CORFS" stream report.img -m mnt --wait > report.log && fail "the stream should have failed"
grep -q "failed" report.log || fail "no failure message: $(cat report.log)"
[ "$(info_field overlays/report.img state)" = has-backing ] || fail "report: link dropped"

step "ignore: the job completes but keeps the backing link"
"$CORFS" stream ignore.img -m mnt --wait > ignore.log || fail "ignore: the job did not complete"
[ "$(info_field overlays/ignore.img state)" = has-backing ] || fail "ignore: link dropped despite a skipped range"
[ "$(info_field overlays/ignore.img allocated-bytes)" -lt $((16 << 20)) ] || fail "ignore: bad range counted as copied"

step "stop: the job pauses on the error; resume retries and completes"
"$CORFS" stream stop.img -m mnt > /dev/null
wait_for 20 job_is mnt stop.img paused
[ "$(job_field mnt stop.img io-status)" = failed ] || fail "stopped on EIO: io-status $(job_field mnt stop.img io-status)"
job_field mnt stop.img error | grep -q "injected" || fail "stopped on EIO: no error shown"
eta=$(job_field mnt stop.img eta-seconds)
[ "$eta" = -1 ] || [ "$eta" = -1.0 ] || fail "stopped on EIO: an ETA is shown ($eta)"
"$CORFS" resume stop.img -m mnt > /dev/null
wait_for 20 overlay_is overlays/stop.img standalone
cmp template.raw mnt/stop.img

step "stop on ENOSPC: io-status nospace; a cancel ends the job cancelled"
"$CORFS" stream nospace.img -m mnt > /dev/null
wait_for 20 job_is mnt nospace.img paused
[ "$(job_field mnt nospace.img io-status)" = nospace ] || fail "io-status $(job_field mnt nospace.img io-status)"
"$CORFS" cancel nospace.img -m mnt > /dev/null
wait_for 20 job_gone mnt nospace.img
wait_for 10 saw_event BLOCK_JOB_CANCELLED nospace.img
saw_event BLOCK_JOB_COMPLETED nospace.img && fail "a cancelled job was reported completed"
[ "$(info_field overlays/nospace.img state)" = has-backing ] || fail "nospace: link dropped"

step "ignore: a range that fails once is tried again later; the job ends standalone"
"$CORFS" stream retry.img -m mnt --wait > retry.log || fail "retry: the job did not complete: $(cat retry.log)"
[ "$(info_field overlays/retry.img state)" = standalone ] || fail "retry: the skipped range was not tried again"
cmp template.raw mnt/retry.img

step "ignore over a backing image that fails every read: few error events, counts add up"
started=$(date +%s.%N)
"$CORFS" stream every.img -m mnt --wait > every.log || fail "every: the job did not complete: $(cat every.log)"
ended=$(date +%s.%N)
[ "$(info_field overlays/every.img state)" = has-backing ] || fail "every: link dropped"
wait_for 10 saw_event BLOCK_JOB_COMPLETED every.img
python3 - "$started" "$ended" <<'PY' || fail "error events of every.img"
import json, math, sys
seconds = float(sys.argv[2]) - float(sys.argv[1])
errors = [e["data"] for e in map(json.loads, open("events.log"))
          if e["event"] == "BLOCK_JOB_ERROR" and e["data"]["device"] == "every.img"]
# Every 64K chunk of the 16M fails on both passes, once each.
assert sum(e["count"] for e in errors) == 2 * 256, errors
assert errors[0]["count"] == 1, errors  # the first is out at once
# At most one a second, and the last one out at the end.
assert len(errors) <= math.ceil(seconds) + 2, (len(errors), seconds)
assert all(e["action"] == "ignore" and e["operation"] == "read" for e in errors), errors
report = [e["data"] for e in map(json.loads, open("events.log"))
          if e["event"] == "BLOCK_JOB_ERROR" and e["data"]["device"] == "report.img"]
assert len(report) == 1 and report[0]["count"] == 1, report
PY

step "the events were seen by a subscriber"
sleep 0.5
grep -q '"BLOCK_JOB_ERROR"' events.log || fail "no BLOCK_JOB_ERROR event"
grep -q '"action":"stop"' events.log || fail "no stop action in the error events"
grep -q '"BLOCK_JOB_COMPLETED"' events.log || fail "no BLOCK_JOB_COMPLETED event"
stop_mount mnt
