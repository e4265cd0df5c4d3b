#!/usr/bin/env bash
# Makes the small templates the examples name (templates/*.raw, *.qcow2,
# beside this script) and the folders their overlays go in (overlays/,
# clones/), so every example mounts as it is:
#
#   examples/make-templates.sh           # keeps templates that exist
#   examples/make-templates.sh --force   # makes them all again
#
# Each template is a 64 MiB ext4 file system made from a folder with
# mkfs.ext4 -d (no loop mount, no root needed). A "delta" (nginx-delta.raw,
# ...) is a sparse raw file that holds only the 64 KiB blocks in which its
# file system differs from debian-12.raw: [delta, debian-12.raw] as a chain
# reads as debian-12 with the delta's files added, as a layered template
# should. archive-2023.qcow2 is the same kind of disk in qcow2 (qemu-img).
# Needs e2fsprogs (mkfs.ext4, debugfs), qemu-utils and python3.
set -euo pipefail
cd "$(dirname "$0")"

force=false
[ "${1:-}" = "--force" ] && force=true
size=64M
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p templates overlays clones

wanted() { $force || [ ! -e "$1" ]; }

# make_ext4 IMAGE LABEL: an ext4 file system with a few files.
make_ext4() {
  local image=$1 label=$2 root="$work/$2"
  wanted "$image" || return 0
  mkdir -p "$root/etc" "$root/srv"
  echo "$label" > "$root/etc/hostname"
  for i in $(seq 1 20); do echo "$label file $i" > "$root/srv/file-$i.txt"; done
  head -c 4M /dev/urandom > "$root/srv/data.bin"
  rm -f "$image"
  mkfs.ext4 -q -F -L "$label" -d "$root" "$image" "$size" > /dev/null
  echo "made $image"
}

# make_delta DELTA BASE FILE...: BASE with /etc/FILE written into it, kept
# as the blocks that differ from BASE only.
make_delta() {
  local delta=$1 base=$2
  shift 2
  wanted "$delta" || return 0
  local full="$work/full.raw"
  cp --sparse=always "$base" "$full"
  for name in "$@"; do
    echo "$name from $(basename "$delta")" > "$work/$name"
    debugfs -w -R "write $work/$name /etc/$name" "$full" > /dev/null 2>&1
  done
  rm -f "$delta"
  python3 - "$base" "$full" "$delta" <<'PY'
import os, sys
base, full, delta = sys.argv[1:]
block = 64 * 1024
with open(base, "rb") as b, open(full, "rb") as f, open(delta, "wb") as d:
    d.truncate(os.fstat(f.fileno()).st_size)
    offset = 0
    while chunk := f.read(block):
        if chunk != b.read(block):
            d.seek(offset)
            d.write(chunk)
        offset += len(chunk)
PY
  echo "made $delta"
}

make_ext4 templates/debian-12.raw debian-12
make_delta templates/nginx-delta.raw templates/debian-12.raw nginx.conf
make_delta templates/postgres-delta.raw templates/debian-12.raw postgresql.conf
make_delta templates/app-v3-delta.raw templates/debian-12.raw app.conf
make_ext4 templates/ci-runner-2024.raw ci-runner
make_ext4 templates/dataset-2024.raw dataset
if wanted templates/archive-2023.qcow2; then
  make_ext4 "$work/archive.raw" archive > /dev/null
  rm -f templates/archive-2023.qcow2
  qemu-img convert -q -f raw -O qcow2 "$work/archive.raw" templates/archive-2023.qcow2
  echo "made templates/archive-2023.qcow2"
fi
