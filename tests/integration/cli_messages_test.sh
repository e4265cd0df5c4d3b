#!/usr/bin/env bash
# What the client commands say on a running mount: `status` keeps its
# columns in line under a long image name and says "has backing",
# "streaming" (a stream job is on the image) or "standalone"; `stream` of a
# standalone image says there is nothing to stream and starts no job;
# `threshold IMG 40` is refused as a missing unit (40B is bytes) and a
# threshold set is shown in human units; QMP's error class ("DeviceNotFound")
# stays out of messages and is in the --json error object; usage errors exit 2.
source "$(dirname "$0")/lib.sh"
unset CORFS_SOCKET

random_file t.raw 8M
LONG=a-rather-long-image-name-for-the-status-table.img
write_yaml m.yaml <<YAML
images:
  $LONG:
    overlay: overlays/long.img
    backing: [t.raw]
  s.img:
    overlay: overlays/s.img
    size: 16M
YAML
start_mount m.yaml mnt

step "status: columns from the longest name, states in words"
out=$("$CORFS" status -m mnt) || fail "status: $out"
echo "$out"
# The SIZE column ends at the same place on every line.
ends=$(awk 'NR == 1 { print index($0, "SIZE") + 3 } NR > 1 { print index($0, "MiB") + 2 }' <<<"$out" | sort -u | wc -l)
[ "$ends" -eq 1 ] || fail "the columns are not in line: $out"
grep -qE "^$LONG +8 MiB +0.0% has backing +-$" <<<"$out" || fail "long image line: $out"
grep -qE "^s.img +16 MiB +0.0% standalone +-$" <<<"$out" || fail "standalone line: $out"
"$CORFS" stream "$LONG" -m mnt --speed 64K > /dev/null
out=$("$CORFS" status -m mnt)
grep -qE "^$LONG .* streaming +$LONG running" <<<"$out" || fail "no streaming state while a job runs: $out"
"$CORFS" cancel "$LONG" -m mnt > /dev/null
wait_for 10 job_gone mnt "$LONG"
"$CORFS" status -m mnt | grep -qE "^$LONG .* has backing +-$" || fail "state after the job: $("$CORFS" status -m mnt)"

step "stream of a standalone image: nothing to stream, no job"
out=$("$CORFS" stream s.img -m mnt) || fail "stream s.img exited non-zero: $out"
[ "$out" = "nothing to stream: s.img is standalone (it has no backing image)" ] || fail "stream s.img said: $out"
[ "$("$CORFS" stream s.img -m mnt --output=json)" = '{"image":"s.img","state":"standalone"}' ] || fail "stream --output=json"
[ "$("$CORFS" jobs -m mnt)" = "no jobs" ] || fail "a job was started: $("$CORFS" jobs -m mnt)"

step "threshold: a bare small number is refused; what is set is shown in human units"
if out=$("$CORFS" threshold s.img 40 -m mnt 2>&1); then fail "threshold 40 accepted: $out"; else code=$?; fi
[ "$code" -eq 2 ] || fail "threshold 40 exit $code: $out"
grep -q "40B" <<<"$out" || fail "threshold 40 said: $out"
[ "$("$CORFS" threshold s.img 40B -m mnt)" = "write threshold of s.img set to 40 B: one event when the overlay holds more" ] ||
  fail "threshold 40B"
[ "$("$CORFS" threshold s.img "4 M" -m mnt)" = "write threshold of s.img set to 4 MiB: one event when the overlay holds more" ] ||
  fail "threshold '4 M'"
[ "$("$CORFS" threshold s.img 0 -m mnt)" = "write threshold of s.img disabled" ] || fail "threshold 0"

step "QMP error classes stay out of messages, and are in --json"
if out=$("$CORFS" threshold nosuch.img 1M -m mnt 2>&1); then fail "unknown image accepted"; else code=$?; fi
[ "$code" -eq 1 ] || fail "unknown image: exit $code"
[ "$out" = "corfs: Image 'nosuch.img' not found" ] || fail "unknown image said: $out"
json=$("$CORFS" pause nosuchjob -m mnt --json 2> /dev/null) && fail "pause of no job exited 0"
[ "$json" = '{"error":{"class":"DeviceNotActive","desc":"No active block job with id '"'"'nosuchjob'"'"'"}}' ] ||
  fail "pause --json error object: $json"

step "usage errors exit 2"
for args in "stream" "stream s.img -m mnt --speed fast" "status -m mnt --output=yaml" "threshold s.img 5X -m mnt"; do
  # shellcheck disable=SC2086
  if "$CORFS" $args > /dev/null 2>&1; then fail "$args exited 0"; else code=$?; fi
  [ "$code" -eq 2 ] || fail "$args: exit $code, not 2"
done

stop_mount mnt
