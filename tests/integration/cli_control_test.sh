#!/usr/bin/env bash
# The corfs CLI against a running mount: status, jobs (plain, --json,
# --watch), stream (--wait: exit 0 on completion, 1 when cancelled; plain
# progress lines off a terminal, a bar on one; --json that parses), pause,
# resume, set-speed (under 64K only with --force, and acting at once even at
# 50 B/s), cancel, threshold (bytes and percent), events; clear
# failures for an unknown image or job, a busy image, a bad value, and no
# mount named; the ways of naming the mount (-m, -m DIR/, -S, CORFS_SOCKET).
source "$(dirname "$0")/lib.sh"
unset CORFS_SOCKET

random_file t.raw 16M
write_yaml cli.yaml <<YAML
images:
  s.img:
    overlay: overlays/s.img
    backing: [t.raw]
  slow.img:
    overlay: overlays/slow.img
    backing: [t.raw]
    stream: {speed: 512K}
  r.img:
    overlay: overlays/r.img
    backing: [t.raw]
YAML
start_mount cli.yaml mnt
ESC=$'\033'

# expect_failure WHAT PATTERN COMMAND...: COMMAND must exit non-zero and say PATTERN.
expect_failure() {
  local what=$1 pattern=$2 out
  shift 2
  out=$("$@" 2>&1) && fail "$what: exit 0: $out"
  grep -qiE -e "$pattern" <<<"$out" || fail "$what: no message matching '$pattern': $out"
  return 0
}
# json_lines FILE: every line of FILE parses as JSON (and there is one).
json_lines() {
  python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "no output"
for line in lines: json.loads(line)' "$1"
}
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

step "corfs events (plain) follows the mount"
start_bg "$CORFS" events -m mnt > events.txt
EVENTS_PID=$BG_PID
# The events client connects in the background: tiny streams until one of
# their events shows it is listening (slow to start under sanitizers).
probes=0
events_live() {
  probes=$((probes + 1))
  "$CORFS" stream r.img -m mnt --range 0:64K --job-id "probe$probes" --wait > /dev/null
  grep -q '^BLOCK_JOB_COMPLETED' events.txt
}
wait_for 20 events_live
out=$("$CORFS" stream r.img -m mnt --range 0:64K --job-id hello --wait) || fail "range stream --wait: $out"
grep -q "job hello completed" <<<"$out" || fail "range stream --wait said: $out"
wait_for 10 grep -q '^BLOCK_JOB_COMPLETED {.*"device":"hello"' events.txt

step "no mount named: the CLI says how to name one"
expect_failure "jobs without a mount" "--mountpoint" "$CORFS" jobs
expect_failure "jobs without a mount" "--socket" "$CORFS" jobs
expect_failure "status without a mount" "--mountpoint" "$CORFS" status
expect_failure "a mount that is not running" "is the mount running" "$CORFS" jobs -m nowhere

step "status and jobs on an idle mount; every way of naming it"
out=$("$CORFS" status -m mnt) || fail "status: $out"
head -1 <<<"$out" | grep -q "^IMAGE .*STATE" || fail "status header: $out"
for i in s.img slow.img r.img; do grep -qE "^$i +16 MiB .* has backing " <<<"$out" || fail "status line of $i: $out"; done
"$CORFS" status -m mnt --json > status.json
python3 - <<'PY' || fail "status --json: $(cat status.json)"
import json
s = json.load(open("status.json"))
assert sorted(i["name"] for i in s["images"]) == ["r.img", "s.img", "slow.img"], s
assert s["jobs"] == [], s
PY
[ "$("$CORFS" jobs -m mnt)" = "no jobs" ] || fail "idle jobs: $("$CORFS" jobs -m mnt)"
for naming in "-m mnt" "-m mnt/" "-m $PWD/mnt" "-S mnt.sock" "--socket $PWD/mnt.sock"; do
  # shellcheck disable=SC2086
  [ "$("$CORFS" jobs --json $naming)" = "[]" ] || fail "jobs --json $naming"
done
[ "$(CORFS_SOCKET=$PWD/mnt.sock "$CORFS" jobs --json)" = "[]" ] || fail "jobs with CORFS_SOCKET"

step "a running job: jobs, status, busy image, pause, resume, set-speed"
out=$("$CORFS" stream slow.img -m mnt) || fail "stream slow.img: $out"
[ "$out" = "started job slow.img" ] || fail "stream slow.img said: $out"
"$CORFS" jobs -m mnt --json > jobs.json
python3 - <<'PY' || fail "jobs --json: $(cat jobs.json)"
import json
jobs = json.load(open("jobs.json"))
assert len(jobs) == 1, jobs
j = jobs[0]
assert j["device"] == "slow.img" and j["image"] == "slow.img" and j["status"] == "running", j
assert j["speed"] == 512 << 10 and j["len"] == 16 << 20, j
PY
"$CORFS" jobs -m mnt > jobs.txt
grep -qE '^job=slow.img image=slow.img status=running offset=[0-9]+ len=16777216 percent=[0-9.]+ ' jobs.txt ||
  fail "jobs plain line: $(cat -A jobs.txt)"
grep -q "$ESC" jobs.txt && fail "terminal escapes in plain output: $(cat -A jobs.txt)"
"$CORFS" status -m mnt | grep -qE "^slow.img .* streaming +slow.img running [0-9.]+%" || fail "status shows no job: $("$CORFS" status -m mnt)"
expect_failure "a second stream on a busy image" "slow.img.*exists" "$CORFS" stream slow.img -m mnt
expect_failure "a second stream on a busy image" "busy" "$CORFS" stream slow.img -m mnt --job-id other
expect_failure "a stream on an unknown image" "nosuch.img.*not found" "$CORFS" stream nosuch.img -m mnt
expect_failure "a bad --speed" "speed" "$CORFS" stream s.img -m mnt --speed fast
expect_failure "a bad --range" "range" "$CORFS" stream s.img -m mnt --range 12
expect_failure "a bad --on-error" "on-error" "$CORFS" stream s.img -m mnt --on-error explode
for verb in pause resume cancel; do
  expect_failure "$verb of an unknown job" "nosuchjob" "$CORFS" $verb nosuchjob -m mnt
done
expect_failure "set-speed of an unknown job" "nosuchjob" "$CORFS" set-speed nosuchjob 1M -m mnt
expect_failure "set-speed with a bad value" "speed" "$CORFS" set-speed slow.img 1X -m mnt
[ "$("$CORFS" pause slow.img -m mnt)" = paused ] || fail "pause"
wait_for 10 job_is mnt slow.img paused
[ "$("$CORFS" resume slow.img -m mnt)" = resumed ] || fail "resume"
wait_for 10 job_is mnt slow.img running
[ "$("$CORFS" set-speed slow.img 1M -m mnt)" = "speed set" ] || fail "set-speed"
[ "$(job_field mnt slow.img speed)" -eq $((1 << 20)) ] || fail "speed change not shown"

step "jobs --watch prints plain lines until no job is left; cancel ends the job"
start_bg "$CORFS" jobs -m mnt --watch > watch.txt
WATCH_PID=$BG_PID
sleep 1.5
[ "$("$CORFS" cancel slow.img -m mnt)" = "cancel requested" ] || fail "cancel"
wait_for 10 pid_gone "$WATCH_PID"
wait "$WATCH_PID" || fail "jobs --watch exited non-zero"
grep -q '^job=slow.img .* percent=' watch.txt || fail "jobs --watch output: $(cat -A watch.txt)"
grep -q "$ESC" watch.txt && fail "terminal escapes in jobs --watch output: $(cat -A watch.txt)"
wait_for 10 job_gone mnt slow.img
[ "$(info_field overlays/slow.img state)" = has-backing ] || fail "a cancelled stream dropped the backing link"

step "stream --wait exits 1 when the job is cancelled"
start_bg "$CORFS" stream slow.img -m mnt --wait --speed 1M > cancelled.txt
WAIT_PID=$BG_PID
wait_for 10 job_is mnt slow.img running
"$CORFS" cancel slow.img -m mnt > /dev/null
wait_for 10 pid_gone "$WAIT_PID"
if wait "$WAIT_PID"; then fail "stream --wait exited 0 for a cancelled job"; fi
grep -q "job slow.img cancelled" cancelled.txt || fail "stream --wait of a cancelled job said: $(cat cancelled.txt)"

step "a speed under 64K needs --force; at 50 B/s, pause and set-speed 0 still act at once"
expect_failure "stream --speed 50" "minimum.*force" "$CORFS" stream slow.img -m mnt --speed 50
job_gone mnt slow.img || fail "a refused stream started a job"
# On r.img, of which only the first 64 KiB is local: slow.img's streams
# before may have copied its first MiBs already on a loaded machine, and a
# range that is all local ends before it can be seen running.
out=$("$CORFS" stream r.img -m mnt --speed 50 --force --job-id typo --range 2M:4M) || fail "stream --force: $out"
wait_for 10 job_is mnt typo running
expect_failure "set-speed 1000 without --force" "minimum.*force" "$CORFS" set-speed typo 1000 -m mnt
[ "$(job_field mnt typo speed)" -eq 50 ] || fail "a refused set-speed changed the speed"
[ "$("$CORFS" set-speed typo 60 --force -m mnt)" = "speed set" ] || fail "set-speed --force"
[ "$(job_field mnt typo speed)" -eq 60 ] || fail "forced speed not shown"
# At 60 B/s one cluster takes 18 minutes: the pause and the new speed must
# not wait for it.
"$CORFS" pause typo -m mnt > /dev/null
wait_for 5 job_is mnt typo paused
"$CORFS" resume typo -m mnt > /dev/null
wait_for 5 job_is mnt typo running
"$CORFS" set-speed typo 0 -m mnt > /dev/null
wait_for 10 job_gone mnt typo

step "stream --wait off a terminal: plain progress lines, exit 0 when it completes"
"$CORFS" stream s.img -m mnt --wait --speed 6M > wait.txt || fail "stream --wait: $(cat wait.txt)"
grep -qE '^job=s.img .* percent=[0-9.]+ ' wait.txt || fail "no progress line: $(cat -A wait.txt)"
[[ "$(tail -1 wait.txt)" == "job s.img completed in "* ]] || fail "last line: $(cat wait.txt)"
grep -q "$ESC" wait.txt && fail "terminal escapes off a terminal: $(cat -A wait.txt)"
grep -q $'\r' wait.txt && fail "carriage returns off a terminal: $(cat -A wait.txt)"
[ "$(info_field overlays/s.img state)" = standalone ] || fail "s.img not standalone after a completed stream"
cmp t.raw mnt/s.img

step "--json output parses"
"$CORFS" stream r.img -m mnt --range 64K:1M --json > range.json
python3 -c 'import json; r = json.load(open("range.json")); assert r == {"job-id": "r.img", "next-offset": (1 << 20) + 65536}, r' ||
  fail "stream --range --json: $(cat range.json)"
wait_for 10 job_gone mnt r.img
"$CORFS" stream r.img -m mnt --wait --json --speed 6M --job-id rj > wait.json || fail "stream --wait --json: $(cat wait.json)"
json_lines wait.json || fail "stream --wait --json: $(cat wait.json)"
python3 - <<'PY' || fail "stream --wait --json: $(cat wait.json)"
import json
lines = [json.loads(l) for l in open("wait.json").read().splitlines()]
assert lines[-1]["event"] == "BLOCK_JOB_COMPLETED" and lines[-1]["data"]["device"] == "rj", lines[-1]
assert any(l.get("device") == "rj" and "offset" in l for l in lines[:-1]), lines  # progress, as jobs entries
PY
for command in "status" "jobs" "threshold r.img 1M"; do
  # shellcheck disable=SC2086
  "$CORFS" $command -m mnt --json > out.json || fail "$command --json"
  json_lines out.json || fail "$command --json: $(cat out.json)"
done

step "stream --wait on a terminal draws a bar"
if command -v script > /dev/null; then
  script -qec "$CORFS stream slow.img -m mnt --wait --speed 3M" /dev/null > tty.txt || fail "stream --wait on a tty: $(cat -A tty.txt)"
  grep -q $'\r\\[#*\\.*\\] slow.img' tty.txt || fail "no bar on a terminal: $(cat -A tty.txt)"
  grep -q "job slow.img completed" tty.txt || fail "no completion on a terminal: $(cat -A tty.txt)"
else
  echo "(script(1) not installed: skipped)"
fi

step "threshold: percent and bytes; bad values refused"
out=$("$CORFS" threshold s.img 80% -m mnt) || fail "threshold 80%: $out"
[ "$out" = "write threshold of s.img set to 12.8 MiB (80% of the disk): one event when the overlay holds more" ] ||
  fail "threshold 80% said: $out"
"$CORFS" status -m mnt --json > status.json
python3 -c '
import json
s = json.load(open("status.json"))
t = {i["name"]: i["write-threshold"] for i in s["images"]}
assert t["s.img"] == 16777216 * 80 // 100, t
assert t["r.img"] == 1 << 20, t' || fail "threshold not shown: $(cat status.json)"
[ "$("$CORFS" threshold s.img 12.5% -m mnt --json)" = '{"write-threshold":2097152}' ] || fail "threshold 12.5%"
[ "$("$CORFS" threshold s.img 0 -m mnt --json)" = '{"write-threshold":0}' ] || fail "threshold 0"
expect_failure "threshold 150%" "between 0% and 100%" "$CORFS" threshold s.img 150% -m mnt
expect_failure "threshold abc%" "percentage" "$CORFS" threshold s.img abc% -m mnt
expect_failure "threshold abc" "threshold" "$CORFS" threshold s.img abc -m mnt
expect_failure "threshold past the disk" "larger than the disk" "$CORFS" threshold s.img 1G -m mnt
expect_failure "threshold of an unknown image" "nosuch.img" "$CORFS" threshold nosuch.img 1M -m mnt

step "the events client saw the jobs"
for job in slow.img s.img rj; do
  grep -qE "^BLOCK_JOB_(COMPLETED|CANCELLED) \{.*\"device\":\"$job\"" events.txt || fail "no event for $job: $(cat events.txt)"
done
stop_bg "$EVENTS_PID"
stop_mount mnt
for o in s slow r; do "$CORFS" check overlays/$o.img > /dev/null || fail "check $o"; done
