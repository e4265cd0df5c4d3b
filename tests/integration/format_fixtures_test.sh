#!/usr/bin/env bash
# Overlays made by older corfs releases open with today's corfs. Each
# fixture tests/fixtures/overlay_vN.tar.xz holds a 2 MiB raw template, its
# overlay with 64 KiB clusters, two guest writes and one copy-on-read fill
# (from version 3 on, its unfinished data file is disk.img.part),
# made by a corfs that wrote header version N. For each: `check` is clean,
# the disk reads as the template plus those writes, and a full stream that
# rewrites the header keeps it at version N (the format only moves on when a
# feature of a newer version is asked for).
source "$(dirname "$0")/lib.sh"

FIXTURES=$(realpath "$(dirname "$0")/../fixtures")

header_version() {  # METADATA_FILE SLOT: the u32 version of a header slot
  od -A n -t u4 -j $(($2 * 65536 + 8)) -N 4 "$1" | tr -d ' '
}

check_fixture() {  # VERSION
  local v=$1
  rm -rf fx && mkdir fx && cd fx
  tar -xJf "$FIXTURES/overlay_v$v.tar.xz"

  step "the fixture is a version $v overlay, and check accepts it"
  [ "$(header_version disk.img.cor 0)" = "$v" ] || fail "slot 0 of the fixture is not version $v"
  [ "$(header_version disk.img.cor 1)" = "$v" ] || fail "slot 1 of the fixture is not version $v"
  "$CORFS" check disk.img > check.log || { cat check.log; fail "check refused the version $v fixture"; }
  [ "$(info_field disk.img allocated-clusters)" = 3 ] || fail "the fixture should hold 3 clusters"

  step "the expected disk: the template plus the writes made when the fixture was made"
  python3 - <<'PY'
with open("template.raw", "rb") as f:
    disk = bytearray(f.read())
a = b"overlay write A " * 4096
disk[256 * 1024:256 * 1024 + len(a)] = a
b = b"overlay write B\n" * 256
disk[1024 * 1024 + 8192:1024 * 1024 + 8192 + len(b)] = b
with open("expected.raw", "wb") as f:
    f.write(disk)
PY

  write_yaml fixture.yaml <<'YAML'
images:
  disk.img:
    overlay: disk.img
    backing: [template.raw]
    create: false
YAML
  start_mount fixture.yaml mnt
  cmp expected.raw mnt/disk.img
  "$CORFS" stream disk.img -m mnt --wait > stream.log || { cat stream.log; fail "stream did not complete"; }
  cmp expected.raw mnt/disk.img
  stop_mount mnt

  step "after the stream: standalone, still version $v, check clean, data file alone is the disk"
  [ "$(info_field disk.img state)" = standalone ] || fail "the overlay is not standalone after the stream"
  [ "$(header_version disk.img.cor 0)" = "$v" ] || fail "slot 0 was rewritten with another version"
  [ "$(header_version disk.img.cor 1)" = "$v" ] || fail "slot 1 was rewritten with another version"
  "$CORFS" check disk.img > check2.log || { cat check2.log; fail "check refused the streamed fixture"; }
  cmp expected.raw disk.img
  cd ..
}

for v in 1 2 3; do
  step "=== fixture made with header version $v"
  check_fixture "$v"
done
