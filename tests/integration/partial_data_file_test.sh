#!/usr/bin/env bash
# An unfinished overlay does not pass for a disk outside the mount: its data
# file is NAME.part, so `ls` shows no NAME, qemu-img finds no NAME, and
# NAME.part differs from the template; when the stream completes, NAME
# appears, identical to the template (qemu-img compare), and NAME.part is
# gone. A kill -9 mid-stream keeps NAME.part; a rename cut short after the
# standalone header is finished by the next mount.
source "$(dirname "$0")/lib.sh"

random_file template.raw 24M
disk_yaml plain.yaml
disk_yaml slow.yaml 'stream: {auto: true, speed: 4M}'
disk_yaml fast.yaml 'stream: {auto: true}'

# names_in FOLDER: the entries of a folder on one line.
names_in() { (cd "$1" && ls | tr '\n' ' ' | sed 's/ $//'); }

step "corfs create over a template makes NAME.part and NAME.cor, and says so"
out=$("$CORFS" create overlays/made.img --backing template.raw)
echo "$out"
echo "$out" | grep -q "created overlays/made.img.part (+ overlays/made.img.cor); overlays/made.img appears" ||
  fail "create's message: $out"
[ "$(names_in overlays)" = "made.img.cor made.img.part" ] || fail "after create: $(names_in overlays)"
"$CORFS" info overlays/made.img | grep -q "^data file: *overlays/made.img.part$" || fail "info does not show the data file"
"$CORFS" check overlays/made.img >/dev/null || fail "check of a fresh overlay"
"$CORFS" create overlays/scratch.img --size 1M | grep -q "created overlays/scratch.img (+ overlays/scratch.img.cor)$" ||
  fail "an overlay without a template is not plain NAME"
rm overlays/made.img.* overlays/scratch.img*

step "while streaming: ls shows NAME.part, qemu-img finds no NAME, NAME.part differs from the template"
start_mount plain.yaml mnt
head -c 1M mnt/disk.img > /dev/null  # some clusters local, most not
[ "$(names_in overlays)" = "disk.img.cor disk.img.part" ] || fail "while unfinished: $(names_in overlays)"
if qemu-img info overlays/disk.img > qemu.out 2>&1; then fail "qemu-img info opened an unfinished overlay as NAME"; fi
grep -qi "no such file" qemu.out || fail "qemu-img info: $(cat qemu.out)"
set +e
qemu-img compare -f raw -F raw overlays/disk.img.part template.raw > compare.out 2>&1
status=$?
set -e
[ $status -eq 1 ] || fail "qemu-img compare of NAME.part and the template: exit $status, $(cat compare.out)"
"$CORFS" info overlays/disk.img | grep -q "^data file: *overlays/disk.img.part$" || fail "info while streaming"

step "after the stream: NAME is the template's twin, NAME.part is gone"
"$CORFS" stream disk.img -m mnt --wait
[ "$(names_in overlays)" = "disk.img disk.img.cor" ] || fail "after the stream: $(names_in overlays)"
qemu-img compare -f raw -F raw overlays/disk.img template.raw || fail "qemu-img compare after the stream"
cmp template.raw mnt/disk.img || fail "the mount after the rename"
stop_mount mnt
qemu-img info -f raw overlays/disk.img | grep -q "virtual size: 24 MiB" || fail "qemu-img info of the finished disk"
"$CORFS" check overlays/disk.img >/dev/null

step "a rename cut short after the standalone header: check and info say so, the next mount finishes it"
mv overlays/disk.img overlays/disk.img.part
"$CORFS" check overlays/disk.img | grep -q "note: .*still overlays/disk.img.part" || fail "check does not note the rename"
"$CORFS" info overlays/disk.img | grep -q "^data file: *overlays/disk.img.part (complete" || fail "info: pending rename"
[ "$(info_field overlays/disk.img data-file-rename-pending)" = "True" ] || fail "info --json: pending rename"
start_mount plain.yaml mnt
[ "$(names_in overlays)" = "disk.img disk.img.cor" ] || fail "the mount did not finish the rename: $(names_in overlays)"
cmp template.raw mnt/disk.img || fail "content after the finished rename"
stop_mount mnt

step "two data files are refused, naming both, and nothing changes"
cp overlays/disk.img overlays/disk.img.part
if "$CORFS" mount plain.yaml mnt 2> refused.log; then fail "a mount with NAME and NAME.part both present"; fi
grep -q "overlays/disk.img and [^ ]*overlays/disk.img.part" refused.log || fail "refusal message: $(cat refused.log)"
if "$CORFS" check overlays/disk.img 2> check.log; then fail "check passes two data files"; fi
grep -q "two data files" check.log || fail "check's message: $(cat check.log)"
[ "$(names_in overlays)" = "disk.img disk.img.cor disk.img.part" ] || fail "a refusal changed files"
rm overlays/disk.img*

step "kill -9 mid-stream: still NAME.part; a remount resumes and ends with NAME"
start_mount slow.yaml mnt
victim=$MOUNT_PID
wait_for 60 job_offset_above mnt disk.img $((2 * 1024 * 1024))
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
fusermount3 -u mnt 2>/dev/null || umount -l mnt
[ "$(info_field overlays/disk.img state)" = has-backing ] || fail "the kill did not land mid-stream"
[ "$(names_in overlays)" = "disk.img.cor disk.img.part" ] || fail "after kill -9: $(names_in overlays)"
if qemu-img info overlays/disk.img > /dev/null 2>&1; then fail "qemu-img info opened NAME after kill -9"; fi
start_mount fast.yaml mnt
wait_for 120 test -e overlays/disk.img  # the rename is the stream's last step
[ "$(names_in overlays)" = "disk.img disk.img.cor" ] || fail "after the resumed stream: $(names_in overlays)"
stop_mount mnt
qemu-img compare -f raw -F raw overlays/disk.img template.raw || fail "qemu-img compare after the resumed stream"
