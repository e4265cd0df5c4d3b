#!/usr/bin/env bash
# Boot profiles: a mount with `boot_profile:` and no profile yet records the
# order of the guest's first reads (here dd with O_DIRECT, scattered blocks
# in a known order) and writes the profile when the image closes; `corfs
# profile show` lists those blocks first to last. A fresh overlay mounted
# with the profile streams from mount, copying the profile's ranges first in
# its order (the stream's debug log of profile ranges; no timing), and
# query-block-jobs (and `corfs jobs`) says `profile: true` with how far it
# is. A profile made for another template is refused, at mount and by
# `corfs profile merge`.
source "$(dirname "$0")/lib.sh"

random_file template.raw 64M
random_file other.raw 64M
# The blocks the "guest" reads, in this order, in 64 KiB blocks (40M, 8M,
# 56M, 2M, 24M); the repeat of the first adds nothing.
BLOCKS=(640 128 896 32 384 640)
EXPECTED="41943040 8388608 58720256 2097152 25165824"

disk_yaml record.yaml "boot_profile: boot.profile" "boot_profile_idle: 1h" "stream: {speed: 1M}"

step "record: scattered reads in a known order; the profile is written when the image closes"
start_mount record.yaml mnt
for block in "${BLOCKS[@]}"; do
  dd if=mnt/disk.img of=/dev/null bs=64K skip="$block" count=1 iflag=direct status=none
done
[ -e boot.profile ] && fail "the profile was written before the guest was idle or the image closed"
stop_mount mnt
[ -s boot.profile ] || fail "no profile after the unmount"
ls boot.profile.tmp 2>/dev/null && fail "a temporary file is left"

# ranges PROFILE: the offsets of its ranges, in its order, on one line.
ranges() {
  "$CORFS" profile show --json "$1" | python3 -c 'import json,sys; print(*[r["offset"] for r in json.load(sys.stdin)["ranges"]])'
}
[ "$(ranges boot.profile)" = "$EXPECTED" ] || fail "profile ranges: $(ranges boot.profile), expected $EXPECTED"
"$CORFS" profile show boot.profile > show.txt
grep -q "^ranges: 5, bytes: 327680 (320 KiB), time span: " show.txt || { cat show.txt; fail "show: summary"; }
grep -q "^0 *41943040 *65536 *+0.000 s" show.txt || { cat show.txt; fail "show: the first range"; }

step "replay: a fresh overlay streams from mount, the profile's ranges first, in order"
rm -rf overlays && mkdir overlays
disk_yaml replay.yaml "boot_profile: boot.profile" "stream: {speed: 1M}"
start_mount replay.yaml mnt --log-level debug
wait_for 10 job_is mnt disk.img running
[ "$(job_field mnt disk.img profile)" = True ] || fail "query-block-jobs does not say profile"
[ "$(job_field mnt disk.img profile-len)" = 327680 ] || fail "profile-len $(job_field mnt disk.img profile-len)"
profile_done() { [ "$(job_field mnt disk.img profile-offset)" = 327680 ]; }
wait_for 60 profile_done
# `corfs jobs` (text: one line per job, piped) says it too; the stream at
# 1M/s is still on the rest of the disk.
"$CORFS" jobs -m mnt > jobs.txt
grep -q "^job=disk.img .* profile=1 profile-offset=327680 profile-len=327680$" jobs.txt ||
  { cat jobs.txt; fail "corfs jobs does not show the profile's fields"; }
copied=$(grep -o "stream of 'disk.img': profile range [0-9]*: [0-9]*" "$WORK/corfs.log" | awk '{print $NF}' | xargs)
[ "$copied" = "$EXPECTED" ] || fail "the stream's profile ranges: '$copied', expected '$EXPECTED'"
# Each of the profile's blocks is in the overlay now (depth 0 in the map).
"$CORFS" map --json -m mnt disk.img > map.json
for offset in $EXPECTED; do
  python3 - "$offset" <<'PY' || fail "block at $offset is not local after the profile pass"
import json, sys
offset = int(sys.argv[1])
runs = json.load(open("map.json"))
assert any(r["start"] <= offset < r["start"] + r["length"] and r["depth"] == 0 for r in runs)
PY
done
stop_mount mnt

step "a profile made for another template is refused, and changes nothing"
cat > other.yaml <<YAML
images:
  vm.img:
    overlay: overlays/vm.img
    backing: [other.raw]
    boot_profile: boot.profile
YAML
before=$(sha256sum boot.profile)
mkdir -p mnt2
if "$CORFS" mount other.yaml mnt2 2> refused.txt; then fail "a profile of another template was accepted"; fi
is_mounted mnt2 && fail "mounted anyway"
grep -q "boot profile .*boot.profile was recorded over another template" refused.txt || { cat refused.txt; fail "message"; }
[ "$(sha256sum boot.profile)" = "$before" ] || fail "the refused mount changed the profile"

step "merge: same template merges; another template's profile is refused"
"$CORFS" profile merge boot.profile boot.profile -o merged.profile > /dev/null || fail "merge"
[ "$(ranges merged.profile)" = "$EXPECTED" ] || fail "merged ranges: $(ranges merged.profile)"
sed -i 's/boot.profile$/other.profile/' other.yaml
start_mount other.yaml mnt2
dd if=mnt2/vm.img of=/dev/null bs=64K count=1 iflag=direct status=none
stop_mount mnt2
[ -s other.profile ] || fail "no profile of the other template"
if "$CORFS" profile merge boot.profile other.profile -o bad.profile 2> merge.txt; then fail "merged two templates"; fi
grep -q "another template" merge.txt || { cat merge.txt; fail "merge message"; }
[ -e bad.profile ] && fail "a refused merge wrote its output"
echo PASS
