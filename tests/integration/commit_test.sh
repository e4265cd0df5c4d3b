#!/usr/bin/env bash
# corfs commit (block-commit): an image of vm's chain (mid.raw) is written
# into the raw base that two other images of the mount also read. Both
# siblings read byte-identically before and after (cmp against copies taken
# before), vm reads as before, its chain is shorter (corfs info), and all
# three open again after a remount. An active commit (of vm.img itself)
# goes READY, takes a write made then, completes, and leaves the overlay
# empty. Then kill -9 of the daemon after each step of either commit (a
# test hook): after a remount every image reads what it read before, and
# a new commit finishes. Refusals change nothing:
# a qcow2 base, a base read-only on disk, a base on a server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/http_lib.sh"
write_qmp_client

random_file base.raw 32M
# mid.raw: a sparse layer with data in a few places.
truncate -s 32M mid.raw
for at in 1 7 8 20 31; do random_file piece.bin 512K; dd if=piece.bin of=mid.raw bs=1M seek=$at conv=notrunc status=none; done
cp --sparse=always base.raw base.orig
cp --sparse=always mid.raw mid.orig

write_yaml three.yaml <<YAML
images:
  vm.img:
    overlay: overlays/vm.img
    backing: [mid.raw, base.raw]
  sib1.img:
    overlay: overlays/sib1.img
    backing: [base.raw]
  sib2.img:
    overlay: overlays/sib2.img
    backing: [base.raw]
YAML

chain_length() { info_field "overlays/$1" backing-chain | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# fresh: the files as at the start, the three images mounted, written to
# and read, and a copy of each image's disk in before/.
fresh() {
  rm -f overlays/* base.raw.corfs-commit
  cp --sparse=always base.orig base.raw
  cp --sparse=always mid.orig mid.raw
  start_mount three.yaml mnt
  random_file w.bin 256K
  dd if=w.bin of=mnt/vm.img bs=1M seek=8 conv=notrunc,fsync status=none  # over mid's data
  dd if=w.bin of=mnt/sib1.img bs=1M seek=3 conv=notrunc,fsync status=none
  dd if=mnt/sib1.img of=/dev/null bs=1M count=10 status=none  # sib1 holds a part of the base
  mkdir -p before
  for i in vm sib1 sib2; do cp "mnt/$i.img" "before/$i.img"; done
}

same_as_before() {
  for i in vm sib1 sib2; do cmp "before/$i.img" "mnt/$i.img" || fail "$i.img reads differently $1"; done
}

step "commit of mid.raw into the base two siblings read"
fresh
[ "$(chain_length vm.img)" = 2 ] || fail "vm.img should start with a chain of 2"
"$CORFS" commit vm.img --top "$WORK/mid.raw" --wait -m mnt
same_as_before "after the commit"
[ "$(chain_length vm.img)" = 1 ] || fail "the chain of vm.img is not shorter"
[ ! -e base.raw.corfs-commit ] || fail "the commit intent stayed"
cmp -s base.raw base.orig && fail "the base did not change"
stop_mount mnt
start_mount three.yaml mnt
same_as_before "after a remount"
stop_mount mnt
for i in vm sib1 sib2; do "$CORFS" check "overlays/$i.img" > /dev/null || fail "check of $i.img"; done

step "active commit of vm.img (the overlay and mid.raw) into the base: READY, then complete"
fresh
"$CORFS" commit vm.img -m mnt > /dev/null
wait_for 60 job_is mnt vm.img ready
random_file late.bin 64K
dd if=late.bin of=mnt/vm.img bs=64K seek=100 conv=notrunc,fsync status=none  # while READY
dd if=late.bin of=before/vm.img bs=64K seek=100 conv=notrunc status=none
# A sibling the commit keeps reading as before cannot leave the mount
# meanwhile; streamed standalone, it no longer reads the base, and the
# commit leaves it alone.
"$CORFS" image-remove sib2.img -m mnt 2> remove.log && fail "a sibling of a running commit was removed"
grep -q "busy" remove.log || fail "unclear message: $(cat remove.log)"
"$CORFS" stream sib2.img --wait -m mnt > /dev/null || fail "stream of a sibling while the commit is READY"
"$CORFS" complete vm.img -m mnt > /dev/null
wait_for 60 job_gone mnt vm.img
same_as_before "after the active commit"
[ "$(chain_length vm.img)" = 1 ] || fail "the chain of vm.img is not shorter after the active commit"
[ "$(info_field overlays/vm.img allocated-bytes)" = 0 ] || fail "the overlay still holds clusters after the active commit"
[ "$(info_field overlays/sib2.img state)" = standalone ] || fail "sib2.img is not standalone"
[ ! -e base.raw.corfs-commit ] || fail "the commit intent stayed"
stop_mount mnt
start_mount three.yaml mnt
same_as_before "after the active commit and a remount"
stop_mount mnt

for mode in top active; do
  for n in 1 2 3 4 5 6; do
    step "kill -9 after step $n of the commit ($mode)"
    fresh
    victim=$MOUNT_PID
    python3 - "$n" "$mode" "$WORK/mid.raw" <<'PY' || true
import sys
from qmp import *
q = Qmp("mnt.sock")
args = {"device": "vm.img", "x-exit-after-step": int(sys.argv[1])}
if sys.argv[2] == "top":
    args["top"] = sys.argv[3]
q.cmd("block-commit", args)
if sys.argv[2] == "active":
    wait_until(lambda: any(j["status"] == "ready" for j in q.cmd("query-block-jobs")["return"]), 60, "READY")
    q.cmd("block-job-complete", {"device": "vm.img"})
PY
    wait "$victim" 2>/dev/null || true
    fusermount3 -u mnt 2>/dev/null || umount -l mnt
    start_mount three.yaml mnt
    same_as_before "after a kill -9 after step $n ($mode)"
    if [ "$mode" = top ]; then
      "$CORFS" commit vm.img --top "$WORK/mid.raw" --wait -m mnt > /dev/null ||
        [ "$n" = 6 ] || fail "the commit again after step $n"
    else
      "$CORFS" commit vm.img --wait -m mnt > /dev/null || fail "the active commit again after step $n"
    fi
    same_as_before "after the commit again (step $n, $mode)"
    stop_mount mnt
  done
done

step "refusals change nothing"
rm -f overlays/* base.raw.corfs-commit
cp --sparse=always base.orig base.raw
cp --sparse=always mid.orig mid.raw
qemu-img convert -f raw -O qcow2 base.raw base.qcow2
PORT=$(free_port)
mkdir -p www && cp --sparse=always base.orig www/base.raw
start_nginx "$WORK/www" "$PORT"
write_yaml refuse.yaml <<YAML
images:
  vm.img:
    overlay: overlays/vm.img
    backing: [mid.raw, base.raw]
  q.img:
    overlay: overlays/q.img
    backing: [mid.raw, base.qcow2]
  web.img:
    overlay: overlays/web.img
    backing: [mid.raw, "http://127.0.0.1:$PORT/base.raw"]
YAML
start_mount refuse.yaml mnt
sums_before=$(md5sum base.raw base.qcow2 mid.raw overlays/*.cor)
out=$("$CORFS" commit q.img --top "$WORK/mid.raw" -m mnt 2>&1) && fail "a qcow2 base was accepted"
grep -q qcow2 <<<"$out" || fail "the refusal does not name qcow2: $out"
out=$("$CORFS" commit web.img --top "$WORK/mid.raw" -m mnt 2>&1) && fail "a base on a server was accepted"
grep -q server <<<"$out" || fail "the refusal does not say server: $out"
chmod 0444 base.raw
out=$("$CORFS" commit vm.img --top "$WORK/mid.raw" -m mnt 2>&1) && fail "a read-only base was accepted"
grep -q read-only <<<"$out" || fail "the refusal does not say read-only: $out"
chmod 0644 base.raw
out=$("$CORFS" commit vm.img --top "$WORK/mid.raw" --bogus -m mnt 2>&1) && fail "an unknown option was accepted"
python3 - <<'PY'
from qmp import *
q = Qmp("mnt.sock")
q.err("block-commit", {"device": "vm.img", "top": "mid.raw", "bogus": 1}, "GenericError")
PY
[ "$sums_before" = "$(md5sum base.raw base.qcow2 mid.raw overlays/*.cor)" ] || fail "a refused commit changed a file"
stop_mount mnt
stop_nginx
