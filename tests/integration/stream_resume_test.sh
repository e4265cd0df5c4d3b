#!/usr/bin/env bash
# A whole-image stream resumes at the next mount, with its speed and
# on-error policy, after kill -9 of the daemon and after a clean unmount,
# though the YAML says `stream.auto: false`; `corfs jobs` says it resumed.
# Its completion or a cancel ends the wish: the mount after starts nothing.
# A range stream is not resumed.
source "$(dirname "$0")/lib.sh"

random_file template.raw 64M
{
  echo "images:"
  for name in disk c r; do
    printf '  %s.img:\n    overlay: overlays/%s.img\n    backing: [template.raw]\n    stream: {auto: false}\n' \
      "$name" "$name"
  done
} > resume.yaml

# jobs_on MNT: the ids of the mount's jobs, one a line.
jobs_on() { "$CORFS" jobs --json -m "$1" | python3 -c 'import json,sys; [print(j["device"]) for j in json.load(sys.stdin)]'; }

start_mount resume.yaml mnt
step "a whole-image stream (4M/s, on-error stop), a range, a cancelled one; then kill -9"
"$CORFS" stream disk.img -m mnt --speed 4M --on-error stop > /dev/null
"$CORFS" stream r.img -m mnt --range 0:32M --speed 1M > /dev/null
"$CORFS" stream c.img -m mnt --speed 1M > /dev/null
"$CORFS" cancel c.img -m mnt > /dev/null
wait_for 10 job_gone mnt c.img
[ "$(job_field mnt disk.img resumed)" = False ] || fail "a job started by hand is not resumed"
wait_for 30 job_offset_above mnt disk.img $((4 << 20))
kill -KILL "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
fusermount3 -u mnt 2>/dev/null || umount -l mnt

step "remount: the stream resumes, as it was; the range and the cancelled one do not"
start_mount resume.yaml mnt
wait_for 10 job_is mnt disk.img running
[ "$(job_field mnt disk.img resumed)" = True ] || fail "query-block-jobs does not say it resumed"
[ "$(job_field mnt disk.img speed)" = $((4 << 20)) ] || fail "resumed at speed $(job_field mnt disk.img speed)"
"$CORFS" jobs -m mnt | grep -q '^job=disk.img .* resumed=1' || fail "corfs jobs does not say it resumed"
[ "$(jobs_on mnt)" = disk.img ] || fail "jobs after the remount: $(jobs_on mnt | tr '\n' ' ')"

step "a clean unmount while it runs: it resumes again"
stop_mount mnt
start_mount resume.yaml mnt
wait_for 10 job_is mnt disk.img running
[ "$(job_field mnt disk.img resumed)" = True ] || fail "not resumed after a clean unmount"

step "its completion ends the wish"
"$CORFS" set-speed disk.img 0 -m mnt > /dev/null
wait_for 120 job_gone mnt disk.img
[ "$(info_field overlays/disk.img state)" = standalone ] || fail "not standalone after the stream"
cmp template.raw mnt/disk.img || fail "content"
stop_mount mnt
start_mount resume.yaml mnt
# Streams start before the mount appears (MountSession).
[ -z "$(jobs_on mnt)" ] || fail "jobs after a completed stream: $(jobs_on mnt | tr '\n' ' ')"
stop_mount mnt
"$CORFS" check overlays/disk.img
