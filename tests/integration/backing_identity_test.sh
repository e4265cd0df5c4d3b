#!/usr/bin/env bash
# A template rewritten in place (1 MiB in the middle, same size, between the
# blocks the sampled fingerprint reads): an overlay made with
# `--verify-backing full` is refused by a mount (naming the image) and by
# `corfs check --full`; an overlay without a content hash mounts with a
# warning naming the template, and `check` notes it. A copy made with
# `cp -p` (another inode, same mtime) mounts without a warning.
source "$(dirname "$0")/lib.sh"

# expect_mount_refused CONFIG: `corfs mount` exits with an error (bounded: a
# mount that was accepted by mistake is stopped); its stderr is mount.log.
expect_mount_refused() {
  mkdir -p mnt
  MOUNTED+=("$(realpath -m mnt)")
  local rc=0
  timeout -s INT 60 "$CORFS" mount "$1" mnt 2> mount.log || rc=$?
  [ $rc != 0 ] && [ $rc != 124 ] || { cat mount.log; fail "the mount of $1 was accepted"; }
}

step "a 256 MiB template with data at the start, the middle and the end"
truncate -s 256M template.raw
for at in 0 100 128 200 255; do
  dd if=/dev/urandom of=template.raw bs=1M seek=$at count=1 conv=notrunc status=none
done
touch -d '2024-01-01 00:00:00' template.raw  # any rewrite below moves the mtime
mkdir -p overlays
"$CORFS" create overlays/full.img --backing template.raw --verify-backing full > /dev/null
"$CORFS" create overlays/plain.img --backing template.raw > /dev/null
"$CORFS" check --full overlays/full.img > check.log || { cat check.log; fail "check --full of a fresh overlay"; }
"$CORFS" create overlays/bad.img --backing template.raw --verify-backing some 2> create.log \
  && fail "create accepted --verify-backing some"
grep -q "verify-backing" create.log || { cat create.log; fail "no message for --verify-backing some"; }
[ -z "$(ls overlays | grep '^bad\.img')" ] || fail "a refused create left a file: $(ls overlays)"

write_yaml full.yaml <<'YAML'
images:
  full.img: {overlay: overlays/full.img, backing: [template.raw], create: false, verify_backing: full}
YAML
write_yaml plain.yaml <<'YAML'
images:
  plain.img: {overlay: overlays/plain.img, backing: [template.raw], create: false}
YAML

step "unchanged: both mount without a warning"
start_mount full.yaml mnt
cmp -n 1M template.raw mnt/full.img
stop_mount mnt
start_mount plain.yaml mnt
stop_mount mnt
grep -q "warning" corfs.log && { cat corfs.log; fail "a warning for an unchanged template"; }

step "a cp -p copy of the template (another inode, same mtime) mounts without a warning"
mkdir moved
cp -p --sparse=always template.raw moved/template.raw
write_yaml moved.yaml <<'YAML'
images:
  plain.img: {overlay: overlays/plain.img, backing: [moved/template.raw], create: false}
YAML
start_mount moved.yaml mnt
stop_mount mnt
grep -q "warning" corfs.log && { cat corfs.log; fail "a warning for a harmless copy"; }

step "rewrite 1 MiB at 128 MiB in place: the sampled fingerprint cannot see it"
before=$(info_field overlays/plain.img backing-chain)
dd if=/dev/urandom of=template.raw bs=1M seek=128 count=1 conv=notrunc status=none
[ "$(stat -c %s template.raw)" = $((256 << 20)) ] || fail "the template changed size"

step "verify_backing: full refuses the mount, naming the image and the template"
expect_mount_refused full.yaml
grep -q "image 'full.img'" mount.log || { cat mount.log; fail "the refusal does not name the image"; }
grep -q "template.raw" mount.log || { cat mount.log; fail "the refusal does not name the template"; }
grep -q "content hash" mount.log || { cat mount.log; fail "the refusal does not say what differs"; }
is_mounted mnt && fail "something is mounted after the refusal"

step "corfs check --full reports the mismatch (exit 1); so does plain check (the mtime moved)"
for args in "--full" ""; do
  set +e
  "$CORFS" check $args overlays/full.img > check.out 2> check.err
  rc=$?
  set -e
  [ $rc = 1 ] || { cat check.out check.err; fail "check $args exited $rc, not 1"; }
  grep -q "problem: .*template.raw.*content hash" check.err || { cat check.err; fail "check $args: no problem line"; }
done

step "without a content hash: the mount warns, naming the template; check notes it"
start_mount plain.yaml mnt
stop_mount mnt
grep -q "corfs: warning: overlay .*plain.img: backing image '.*template.raw' was modified" corfs.log \
  || { cat corfs.log; fail "no warning for a modified template"; }
"$CORFS" check overlays/plain.img > check.out || { cat check.out; fail "check refused plain.img"; }
grep -q "note: .*template.raw' was modified" check.out || { cat check.out; fail "check has no note"; }
"$CORFS" check --full overlays/plain.img > check.out || { cat check.out; fail "check --full refused plain.img"; }
grep -q "records no content hash" check.out || { cat check.out; fail "check --full does not say it cannot verify"; }
[ "$(info_field overlays/plain.img backing-chain)" = "$before" ] || fail "a warning changed the header"

step "verify_backing: full over an overlay without a content hash is refused"
write_yaml plainfull.yaml <<'YAML'
images:
  plain.img: {overlay: overlays/plain.img, backing: [template.raw], create: false, verify_backing: full}
YAML
expect_mount_refused plainfull.yaml
grep -q "records no content hash" mount.log || { cat mount.log; fail "no reason given"; }

step "an overlay made by a mount with verify_backing: full records the hash"
write_yaml new.yaml <<'YAML'
defaults:
  verify_backing: full
images:
  new.img: {overlay: overlays/new.img, backing: [template.raw]}
YAML
start_mount new.yaml mnt
stop_mount mnt
"$CORFS" check --full overlays/new.img > check.out || { cat check.out; fail "check --full of new.img"; }
grep -q "content hash" check.out && { cat check.out; fail "new.img has no content hash"; }
dd if=/dev/urandom of=template.raw bs=4k seek=$((128 * 256 + 10)) count=1 conv=notrunc status=none
expect_mount_refused new.yaml
grep -q "image 'new.img'" mount.log || { cat mount.log; fail "the refusal does not name new.img"; }
