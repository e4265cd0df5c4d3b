#!/usr/bin/env bash
# The main job (README): installs, builds, generates an ext4 template, mounts
# it through corfs with a YAML file, and shows the disk is usable at once
# while the overlay is still nearly empty; then unmounts.
#
#   scripts/demo.sh [WORK_DIR]     (default: a fresh temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Installing packages and building"
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
corfs="$root/build/cli/corfs"

work=${1:-$(mktemp -d /tmp/corfs-demo.XXXXXX)}
mkdir -p "$work"
cd "$work"
daemon=""
cleanup() {
  if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
    kill -INT "$daemon"; wait "$daemon" || true
  fi
  mountpoint -q "$work/mnt" 2>/dev/null && fusermount3 -u "$work/mnt" || true
}
trap cleanup EXIT

step "Generating a template: an ext4 image made from a folder of files"
rm -rf rootfs mnt overlays template.raw demo.yaml
mkdir -p rootfs/etc rootfs/srv/data mnt
echo "corfs-demo" > rootfs/etc/hostname
echo "Hello from a disk that was never copied." > rootfs/hello.txt
for i in $(seq 1 200); do echo "file $i" > "rootfs/srv/data/file-$i.txt"; done
head -c 64M /dev/urandom > rootfs/srv/blob.bin
run mkfs.ext4 -q -F -L template -d rootfs template.raw 1G
ls -lsh template.raw

step "The YAML file: one template, one image over it"
cat > demo.yaml <<YAML
mountpoint: mnt
templates:
  debian: template.raw
images:
  vm1.img:
    overlay: overlays/vm1.img
    backing: debian
YAML
cat demo.yaml

step "Mounting (corfs runs in the foreground; here in the background of this script)"
"$corfs" mount demo.yaml &
daemon=$!
for _ in $(seq 1 100); do mountpoint -q mnt && break; sleep 0.1; done
mountpoint -q mnt || { echo "mount did not appear"; exit 1; }
run ls -l mnt

step "The disk is usable at once"
run e2fsck -fn mnt/vm1.img
run debugfs -R 'cat /hello.txt' mnt/vm1.img
run debugfs -R 'ls -l /srv' mnt/vm1.img

step "...while the overlay holds only what was read"
run du -h --apparent-size mnt/vm1.img
run du -h mnt/vm1.img
run "$corfs" info overlays/vm1.img
echo "Unfinished, its data file is overlays/vm1.img.part: no tool outside the mount takes it for the disk."
run ls overlays

step "Streaming the rest in the background, while the disk stays in use"
run "$corfs" stream vm1.img -m mnt --wait
run "$corfs" status -m mnt
run e2fsck -fn mnt/vm1.img

step "Unmounting (SIGINT: commits metadata, then unmounts)"
kill -INT "$daemon"; wait "$daemon"; daemon=""
run "$corfs" check overlays/vm1.img
run "$corfs" info overlays/vm1.img
echo "The overlay is standalone: overlays/vm1.img.part became overlays/vm1.img, a plain raw image."
run ls overlays
run cmp template.raw overlays/vm1.img
echo
echo "Demo done; files are in $work"
