#!/usr/bin/env bash
# qcow2 templates through a real mount: a plain image with data and holes,
# zlib- and zstd-compressed images, zero clusters over a backing file, and a
# qcow2 -> qcow2 -> raw chain (backing files named relative to the images),
# all in one YAML file. Each mounted disk equals `qemu-img convert -O raw`
# of its template; each streams to standalone; with the templates deleted a
# remount shows the same disks. Then the bad inputs: a qcow2 chain that
# loops and a truncated qcow2 are refused, with nothing created or mounted.
source "$(dirname "$0")/lib.sh"

# io IMAGE COMMAND...: qemu-io with one -c per command (format from the file).
io() {
  local image=$1 args=()
  shift
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io "${args[@]}" "$image" > /dev/null
}

# chain_is OVERLAY "FORMAT ...": the formats of the overlay's recorded chain, top first.
chain_is() {
  local got
  got=$(info_field "$1" backing-chain | python3 -c 'import json,sys; print(" ".join(e["format"] for e in json.load(sys.stdin)))')
  [ "$got" = "$2" ] || fail "$1: the chain is '$got', not '$2': $(info_field "$1" backing-chain)"
}

step "templates made with qemu-img and qemu-io"
mkdir templates
# plain: data at 0, 5M and 20M (not cluster aligned at the end), holes between.
qemu-img create -q -f qcow2 templates/plain.qcow2 32M
io templates/plain.qcow2 "write -P 0x11 0 1M" "write -P 0x22 5M 64k" "write -P 0x33 20M 300k"
# A source for the compressed images: random data, text, patterns, holes.
truncate -s 16M src.raw
dd if=/dev/urandom of=src.raw bs=1M seek=1 count=2 conv=notrunc status=none
seq 1 300000 | dd of=src.raw bs=1M seek=6 iflag=fullblock conv=notrunc status=none
qemu-io -f raw -c "write -P 0x5a 10M 1M" -c "write -P 0x00 12M 64k" src.raw > /dev/null
qemu-img convert -c -O qcow2 src.raw templates/zlib.qcow2
qemu-img convert -c -O qcow2 -o compression_type=zstd src.raw templates/zstd.qcow2
# zero clusters (the v3 zero flag) over data of the backing file.
random_file templates/zbase.raw 16M
qemu-img create -q -f qcow2 -b zbase.raw -F raw templates/zero.qcow2
io templates/zero.qcow2 "write -z 1M 2M" "write -P 0x44 4M 64k" "write -z 8M 64k" "write -z 15M 1M"
# top.qcow2 -> mid.qcow2 -> base.raw; top also zeroes a range of mid's data.
random_file templates/base.raw 24M
qemu-img create -q -f qcow2 -b base.raw -F raw templates/mid.qcow2
io templates/mid.qcow2 "write -P 0x66 2M 1M" "write -P 0x67 16M 64k"
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 templates/top.qcow2
io templates/top.qcow2 "write -P 0x77 0 64k" "write -z 2M 256k" "write -P 0x78 23M 1M"
# A sparse raw delta over the chain: where it holds data, it wins.
truncate -s 24M delta.raw
dd if=/dev/urandom of=delta.raw bs=64k seek=100 count=4 conv=notrunc status=none

step "the expected disks, from qemu-img"
mkdir expected
for t in plain zlib zstd zero top; do qemu-img convert -O raw templates/$t.qcow2 expected/$t.raw; done
cp expected/plain.raw expected/explicit.raw
cp expected/top.raw expected/chain.raw
cp expected/top.raw expected/listed.raw
cp expected/top.raw expected/mixed.raw
dd if=delta.raw of=expected/mixed.raw bs=64k skip=100 seek=100 count=4 conv=notrunc status=none
images=(plain explicit zlib zstd zero chain listed mixed)

# Half of the images are thin (copy_on_read: false), so their first reads
# go to the qcow2 templates and their streams copy everything; the others
# fill by copy-on-read first.
write_yaml vms.yaml <<YAML
templates:
  zstd-template: templates/zstd.qcow2
  layered: [templates/top.qcow2]
defaults:
  copy_on_read: false
images:
  plain.img:
    overlay: overlays/plain.img
    backing: templates/plain.qcow2
    copy_on_read: true
  explicit.img:
    overlay: overlays/explicit.img
    backing: {path: templates/plain.qcow2, format: qcow2}
  zlib.img:
    overlay: overlays/zlib.img
    backing: [templates/zlib.qcow2]
    copy_on_read: true
  zstd.img:
    overlay: overlays/zstd.img
    backing: zstd-template
  zero.img:
    overlay: overlays/zero.img
    backing: [templates/zero.qcow2]          # its backing file zbase.raw continues the chain
  chain.img:
    overlay: overlays/chain.img
    backing: layered                         # top.qcow2 -> mid.qcow2 -> base.raw
    copy_on_read: true
  listed.img:
    overlay: overlays/listed.img
    backing:                                 # the same chain, written out
      - templates/top.qcow2
      - {path: templates/mid.qcow2, format: qcow2}
      - {path: templates/base.raw, format: raw}
  mixed.img:
    overlay: overlays/mixed.img
    backing: [delta.raw, {template: layered}]   # raw over qcow2 over qcow2 over raw
    copy_on_read: true
YAML
start_mount vms.yaml mnt

step "each mounted disk is what qemu-img reads"
for i in "${images[@]}"; do cmp "expected/$i.raw" "mnt/$i.img" || fail "$i.img differs from qemu-img's reading"; done
step "a qcow2's own backing files continue its chain"
chain_is overlays/plain.img "qcow2"
chain_is overlays/zero.img "qcow2 raw"
chain_is overlays/chain.img "qcow2 qcow2 raw"
chain_is overlays/listed.img "qcow2 qcow2 raw"
chain_is overlays/mixed.img "raw qcow2 qcow2 raw"

step "each streams to standalone"
for i in "${images[@]}"; do
  "$CORFS" stream "$i.img" -m mnt --wait > "stream-$i.log" || { cat "stream-$i.log"; fail "$i.img: stream did not complete"; }
  wait_for 10 overlay_is "overlays/$i.img" standalone
done
for i in "${images[@]}"; do cmp "expected/$i.raw" "mnt/$i.img" || fail "$i.img differs after the stream"; done
stop_mount mnt

step "templates deleted: a remount shows the same disks"
rm -rf templates delta.raw
start_mount vms.yaml mnt
for i in "${images[@]}"; do cmp "expected/$i.raw" "mnt/$i.img" || fail "$i.img differs without its template"; done
stop_mount mnt
for i in "${images[@]}"; do
  "$CORFS" check "overlays/$i.img" > /dev/null || fail "corfs check overlays/$i.img"
  cmp "expected/$i.raw" "overlays/$i.img" || fail "the data file of $i.img is not the disk"
done

# bad_yaml NAME BACKING: NAME.yaml with a sound new image first, then
# vm.img over BACKING (a YAML flow value); the sound one must not be left
# behind when vm.img is refused.
random_file good.raw 1M
bad_yaml() {
  write_yaml "$1.yaml" <<YAML
images:
  good.img:
    overlay: bad-overlays/sub/good.img
    backing: [good.raw]
    create_dirs: true
  vm.img:
    overlay: bad-overlays/vm.img
    backing: $2
    create_dirs: true
YAML
}

# expect_refused NAME PATTERN: `corfs mount NAME.yaml bad-mnt` must fail
# with a message matching PATTERN, create no overlay (nor its folder) and
# mount nothing.
mkdir -p bad-mnt
expect_refused() {
  local name=$1 pattern=$2 out status
  set +e
  out=$("$CORFS" mount "$name.yaml" bad-mnt 2>&1)
  status=$?
  set -e
  [ $status -ne 0 ] || fail "$name: accepted"
  grep -qiE -- "$pattern" <<<"$out" || fail "$name: message lacks '$pattern': $out"
  [ ! -e bad-overlays ] || fail "$name: created $(find bad-overlays)"
  is_mounted bad-mnt && fail "$name: mounted"
  [ ! -e bad-mnt.sock ] || fail "$name: left a control socket"
  echo "ok: $name -> $(head -1 <<<"$out")"
}

step "a backing chain that loops is refused"
mkdir loop
qemu-img create -q -f qcow2 loop/b.qcow2 4M
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 loop/a.qcow2
qemu-img rebase -u -b a.qcow2 -F qcow2 loop/b.qcow2   # -u: no check, so the loop can be made
bad_yaml loop "[loop/a.qcow2]"
expect_refused loop "loops.*a\.qcow2"

step "a truncated qcow2 is refused"
qemu-img create -q -f qcow2 truncated.qcow2 16M
io truncated.qcow2 "write -P 0x55 0 4M"
truncate -s 100K truncated.qcow2   # before its L1 table
bad_yaml truncated "[{path: truncated.qcow2, format: qcow2}]"
expect_refused truncated "truncated\.qcow2.*truncated"
