#!/usr/bin/env bash
# A FIFO where corfs expects a file (a template, a qcow2 template's backing
# file, an overlay's NAME.cor or NAME.part) is refused with a message that
# says what it is, by every command: none waits on it (opening a FIFO waits
# for a writer, reading it for data), and nothing changes on disk.
source "$(dirname "$0")/lib.sh"
command -v qemu-img > /dev/null || exit 77

# refused WHAT CMD...: CMD ends within 20 s with a failure naming a FIFO.
refused() {
  local what=$1 rc=0
  shift
  timeout 20 "$@" > out.log 2>&1 || rc=$?
  [ "$rc" -ne 124 ] || fail "$what: $* waited on a FIFO"
  [ "$rc" -ne 0 ] || fail "$what: $* succeeded"
  grep -q "is a FIFO" out.log || fail "$what: unclear message: $(cat out.log)"
}

step "a template, or a qcow2 template's backing file"
mkfifo pipe
refused "a template" "$CORFS" create a.img -b pipe
[ ! -e a.img.cor ] && [ ! -e a.img.part ] || fail "a refused create left files"

# -u: qemu-img itself would wait on the FIFO to learn its size.
qemu-img create -q -u -f qcow2 -b "$WORK/pipe" -F raw top.qcow2 16M
refused "a qcow2 template's backing file" "$CORFS" create b.img -b top.qcow2
[ ! -e b.img.cor ] || fail "a refused create left files"

step "an overlay's NAME.part, then its NAME.cor"
random_file t.raw 4M
"$CORFS" create c.img -b t.raw
mv c.img.part c.part.real
mkfifo c.img.part
refused "NAME.part" "$CORFS" map c.img
rm c.img.part
mv c.part.real c.img.part
mv c.img.cor c.cor.real
mkfifo c.img.cor
for command in info check map; do refused "NAME.cor" "$CORFS" "$command" c.img; done
write_yaml m.yaml <<YAML
images:
  c.img:
    overlay: c.img
    backing: [t.raw]
YAML
mkdir -p mnt
refused "NAME.cor" "$CORFS" mount m.yaml mnt
mountpoint -q mnt && fail "a refused mount is mounted"
[ -p c.img.cor ] || fail "the FIFO was replaced"
