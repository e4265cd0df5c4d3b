#!/usr/bin/env bash
# Every bad YAML file is refused before anything is touched: non-zero exit,
# a message with file:line:column, no overlay created, nothing mounted.
source "$(dirname "$0")/lib.sh"

random_file template.raw 4M
mkdir -p mnt

# expect_refused NAME PATTERN: `corfs mount NAME.yaml mnt` must fail, print
# PATTERN and a file:line:column position, create nothing and mount nothing.
expect_refused() {
  local name=$1 pattern=$2 out status
  set +e
  out=$("$CORFS" mount "$name.yaml" mnt 2>&1)
  status=$?
  set -e
  [ $status -ne 0 ] || fail "$name: accepted"
  grep -qiE -- "$pattern" <<<"$out" || fail "$name: message lacks '$pattern': $out"
  if [ "$name" != missing_file ]; then
    grep -qE "$name\.yaml:[0-9]+:[0-9]+:" <<<"$out" || fail "$name: no file:line:column in: $out"
  fi
  [ -z "$(ls -A overlays 2>/dev/null)" ] || fail "$name: created $(ls overlays)"
  is_mounted mnt && fail "$name: mounted"
  echo "ok: $name -> $(head -1 <<<"$out")"
}

printf 'images:\n  vm1: {overlay: overlays/vm1.img, backing: [template.raw]\n' > malformed.yaml
expect_refused malformed "malformed|yaml"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n    colour: blue\n' > unknown_key.yaml
expect_refused unknown_key "colour"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n    read_only: perhaps\n' > wrong_type.yaml
expect_refused wrong_type "read_only"
printf 'images:\n  vm1:\n    overlay: overlays/a.img\n    backing: [template.raw]\n  vm1:\n    overlay: overlays/b.img\n    backing: [template.raw]\n' > duplicate.yaml
expect_refused duplicate "duplicate|twice|again"
printf 'images:\n  a/b:\n    overlay: overlays/a.img\n    backing: [template.raw]\n' > slash_name.yaml
expect_refused slash_name "/"
printf 'images:\n  "..":\n    overlay: overlays/a.img\n    backing: [template.raw]\n' > dotdot_name.yaml
expect_refused dotdot_name '\.\.'
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: {template: nosuch}\n' > unknown_template.yaml
expect_refused unknown_template "nosuch"
printf 'templates:\n  a: [{template: b}]\n  b: [{template: a}]\nimages:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: a\n' > cycle.yaml
expect_refused cycle "cycle"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw, template.raw]\n' > repeated.yaml
expect_refused repeated "already in this chain"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [nothere.raw]\n' > missing_backing.yaml
expect_refused missing_backing "nothere.raw"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n    cluster_size: 3000\n' > cluster_pow2.yaml
expect_refused cluster_pow2 "power of two"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n    cluster_size: 4M\n' > cluster_range.yaml
expect_refused cluster_range "2 MiB|2M"
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n    size: -5G\n' > bad_size.yaml
expect_refused bad_size "size"

step "a config file that does not exist"
set +e
out=$("$CORFS" mount missing_file.yaml mnt 2>&1); status=$?
set -e
[ $status -ne 0 ] && grep -q "missing_file.yaml" <<<"$out" || fail "missing config file: $out"
step "an overlay made over another template is refused, naming both"
random_file other.raw 4M
mkdir -p overlays
"$CORFS" create overlays/vm1.img --backing other.raw > /dev/null
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n' > mismatch.yaml
before=$(md5sum overlays/vm1.img.cor)
set +e
out=$("$CORFS" mount mismatch.yaml mnt 2>&1); status=$?
set -e
[ $status -ne 0 ] || fail "mismatched template accepted"
grep -q "template.raw" <<<"$out" && grep -q "other.raw" <<<"$out" || fail "message does not name both: $out"
[ "$(md5sum overlays/vm1.img.cor)" = "$before" ] || fail "the refused mount changed the overlay"
is_mounted mnt && fail "mounted"
echo "ok: mismatch -> $out"

step "a control socket in use: refused after the images open, and the overlays it made are gone"
printf 'images:\n  first:\n    overlay: first/first.img\n    backing: [template.raw]\n    create_dirs: true\n' > first.yaml
start_mount first.yaml mnt
mkdir -p mnt2
printf 'control_socket: mnt.sock\nimages:\n  second:\n    overlay: second/deep/second.img\n    backing: [template.raw]\n    create_dirs: true\n' > second.yaml
set +e
out=$("$CORFS" mount second.yaml mnt2 2>&1); status=$?
set -e
[ $status -ne 0 ] || fail "a second mount on a busy control socket was accepted"
grep -q "in use" <<<"$out" || fail "message: $out"
[ ! -e second ] || fail "the refused mount left $(find second)"
is_mounted mnt2 && fail "mnt2 mounted"
"$CORFS" status -m mnt > /dev/null || fail "the first mount's socket no longer answers"
stop_mount mnt
echo "ok: busy socket -> $out"

step "an overlay in a folder that does not exist is refused unless create_dirs is set"
printf 'images:\n  vm1:\n    overlay: nodir/sub/vm1.img\n    backing: [template.raw]\n' > nodir.yaml
set +e
out=$(timeout 60 "$CORFS" mount nodir.yaml mnt 2>&1); status=$?
set -e
[ $status -ne 0 ] || fail "an overlay in a missing folder was accepted"
grep -q "nodir/sub" <<<"$out" && grep -q "create_dirs" <<<"$out" || fail "message: $out"
[ ! -e nodir ] || fail "the refused mount made $(find nodir)"
is_mounted mnt && fail "mounted"
echo "ok: missing folder -> $out"
printf 'defaults:\n  create_dirs: true\nimages:\n  vm1:\n    overlay: nodir/sub/vm1.img\n    backing: [template.raw]\n' > dirs.yaml
start_mount dirs.yaml mnt
cmp template.raw mnt/vm1 || fail "the image in the made folder does not read the template"
stop_mount mnt
[ -f nodir/sub/vm1.img.cor ] || fail "create_dirs did not make the folder's overlay"

step "a mountpoint on the command line that would hide an image's files is refused"
mkdir -p hidden
printf 'images:\n  vm1:\n    overlay: hidden/vm1.img\n    backing: [template.raw]\n' > hide.yaml
set +e
out=$(timeout 60 "$CORFS" mount hide.yaml hidden 2>&1); status=$?
set -e
[ $status -ne 0 ] || fail "a mountpoint over an overlay's folder was accepted"
grep -q "inside the mountpoint" <<<"$out" || fail "message: $out"
is_mounted hidden && fail "mounted over the overlay's folder"
[ -z "$(ls -A hidden)" ] || fail "the refused mount made $(ls hidden)"
echo "ok: mountpoint over the overlays -> $out"
