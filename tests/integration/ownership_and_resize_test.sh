#!/usr/bin/env bash
# Ownership, mode and growth of images on a real mount, as libvirt and QEMU
# users need them:
#   - chown 64055:64055 (libvirt's dynamic ownership hands a disk to the
#     qemu user) and chmod work and survive a remount; a chown of only the
#     group keeps the owner;
#   - with allow_other an image whose YAML file gives no mode is 0600: an
#     unprivileged user can neither read it nor chown or chmod it, and can
#     read and chmod it once it is chowned to them (the kernel decides, the
#     mount uses default_permissions);
#   - `truncate -s` grows a disk: the new tail reads zeros (qemu-io), the
#     old part is the template's (cmp); shrinking is refused;
#   - QMP block_resize (device or node-name, size) grows it and `stat` sees
#     the new size at once; a smaller size is "Cannot shrink ..."; `corfs
#     resize IMAGE +SIZE` grows it too;
#   - a stream started before a grow ends standalone, and the data file is
#     the template followed by zeros (qemu-img compare, cmp).
source "$(dirname "$0")/lib.sh"

NOBODY=65534
as_nobody() { setpriv --reuid $NOBODY --regid $NOBODY --clear-groups "$@"; }
# The unprivileged user must reach the mountpoint inside the test's folder.
chmod 755 "$WORK"

random_file template.raw 8M
write_yaml vm.yaml <<YAML
images:
  vm1.img:
    overlay: overlays/vm1.img
    backing: [template.raw]
  slow.img:
    overlay: overlays/slow.img
    backing: [template.raw]
YAML
start_mount vm.yaml mnt
write_qmp_client

step "chown and chmod, persisted across a remount"
[ "$(stat -c %a mnt/vm1.img)" = 644 ] || fail "default mode without allow_other is not 0644"
chown 64055:64055 mnt/vm1.img || fail "chown 64055:64055 refused"
[ "$(stat -c %u:%g mnt/vm1.img)" = 64055:64055 ] || fail "owner not changed: $(stat -c %u:%g mnt/vm1.img)"
chmod 0640 mnt/vm1.img
chown :123 mnt/vm1.img
[ "$(stat -c %u:%g:%a mnt/vm1.img)" = 64055:123:640 ] || fail "after chown :123: $(stat -c %u:%g:%a mnt/vm1.img)"
chown 64055:64055 mnt/vm1.img
stop_mount mnt
start_mount vm.yaml mnt
[ "$(stat -c %u:%g:%a mnt/vm1.img)" = 64055:64055:640 ] || fail "not kept across a remount: $(stat -c %u:%g:%a mnt/vm1.img)"
[ "$(stat -c %u:%a mnt/slow.img)" = "$(id -u):644" ] || fail "the other image changed: $(stat -c %u:%a mnt/slow.img)"

step "truncate -s grows; the new tail reads zeros, the old part is the template's"
truncate -s 12M mnt/vm1.img
[ "$(stat -c %s mnt/vm1.img)" = $((12 << 20)) ] || fail "size after truncate: $(stat -c %s mnt/vm1.img)"
qemu-io -f raw -c "read -P 0 8M 4M" mnt/vm1.img | grep -q "read 4194304/4194304" || fail "the new tail is not zeros"
cmp -n $((8 << 20)) mnt/vm1.img template.raw || fail "the old part changed"
if truncate -s 4M mnt/vm1.img 2>err.txt; then fail "shrinking was allowed"; fi
grep -q "Operation not permitted" err.txt || fail "shrink refused with: $(cat err.txt)"
[ "$(stat -c %s mnt/vm1.img)" = $((12 << 20)) ] || fail "a refused shrink changed the size"

step "block_resize over QMP; stat sees it at once; shrink refused; corfs resize"
stat mnt/vm1.img > /dev/null  # the kernel caches the attributes now
python3 - <<'PY'
import os
from qmp import *
c = Qmp("mnt.sock")
assert c.ok("block_resize", {"device": "vm1.img", "size": 16 << 20}) == {}
assert os.stat("mnt/vm1.img").st_size == 16 << 20, os.stat("mnt/vm1.img").st_size
r = c.err("block_resize", {"device": "vm1.img", "size": 1 << 20}, "GenericError")
assert r["error"]["desc"].startswith("Cannot shrink"), r
c.err("block_resize", {"device": "nosuch.img", "size": 1 << 30}, "DeviceNotFound")
c.err("block_resize", {"size": 1 << 30}, "GenericError")
assert c.ok("block_resize", {"node-name": "vm1.img", "size": (16 << 20) + 4096}) == {}
assert os.stat("mnt/vm1.img").st_size == (16 << 20) + 4096
images = {i["name"]: i for i in c.ok("query-images")}
assert images["vm1.img"]["virtual-size"] == (16 << 20) + 4096, images["vm1.img"]
PY
"$CORFS" resize vm1.img +1M -m mnt > out.txt || fail "corfs resize failed"
[ "$(stat -c %s mnt/vm1.img)" = $(((17 << 20) + 4096)) ] || fail "size after corfs resize: $(stat -c %s mnt/vm1.img)"
if "$CORFS" resize vm1.img 1M -m mnt 2>err.txt; then fail "corfs resize shrank"; fi
grep -q "Cannot shrink" err.txt || fail "corfs resize shrink: $(cat err.txt)"
qemu-io -f raw -c "read -P 0 8M $(((9 << 20) + 4096))" mnt/vm1.img | grep -q "read" || fail "tail not zeros"
cmp -n $((8 << 20)) mnt/vm1.img template.raw || fail "the old part changed after block_resize"

step "a stream started before a grow ends standalone, template + zeros"
python3 - <<'PY'
from qmp import *
c = Qmp("mnt.sock")
job = c.ok("block-stream", {"device": "slow.img", "speed": 1 << 20})["job-id"]
wait_until(lambda: c.ok("query-block-jobs") and c.ok("query-block-jobs")[0]["offset"] > 0, what="stream progress")
assert c.ok("block_resize", {"device": "slow.img", "size": 12 << 20}) == {}
assert c.ok("block-job-set-speed", {"device": job, "speed": 0}) == {}
e = c.event("BLOCK_JOB_COMPLETED", timeout=60, device=job)
assert "error" not in e["data"], e
PY
overlay_is overlays/slow.img standalone || fail "the stream did not end standalone: $(info_field overlays/slow.img state)"
stop_mount mnt
[ "$(stat -c %s overlays/slow.img)" = $((12 << 20)) ] || fail "data file size $(stat -c %s overlays/slow.img)"
cmp -n $((8 << 20)) overlays/slow.img template.raw || fail "the streamed data file differs from the template"
qemu-img compare -f raw -F raw template.raw overlays/slow.img || fail "qemu-img compare: the tail is not zeros"
"$CORFS" check overlays/slow.img > /dev/null || fail "corfs check of the grown overlay"
"$CORFS" check overlays/vm1.img > /dev/null || fail "corfs check of vm1"

step "allow_other: 0600 by default; an unprivileged user denied, then allowed after a chown"
write_yaml other.yaml <<YAML
allow_other: true
images:
  vm2.img:
    overlay: overlays/vm2.img
    backing: [template.raw]
YAML
start_mount other.yaml mnt2
[ "$(stat -c %a mnt2/vm2.img)" = 600 ] || fail "default mode with allow_other: $(stat -c %a mnt2/vm2.img)"
if as_nobody head -c 4096 mnt2/vm2.img > /dev/null 2>err.txt; then fail "nobody read a 0600 image of root"; fi
grep -q "Permission denied" err.txt || fail "nobody's read: $(cat err.txt)"
if as_nobody chown $NOBODY mnt2/vm2.img 2>/dev/null; then fail "nobody chowned root's image"; fi
if as_nobody chmod 0666 mnt2/vm2.img 2>/dev/null; then fail "nobody chmodded root's image"; fi
[ "$(stat -c %u:%a mnt2/vm2.img)" = "0:600" ] || fail "a refused chown/chmod changed: $(stat -c %u:%a mnt2/vm2.img)"
chown $NOBODY:$NOBODY mnt2/vm2.img
as_nobody head -c 4096 mnt2/vm2.img | cmp -n 4096 - template.raw || fail "nobody cannot read its own image"
as_nobody chmod 0640 mnt2/vm2.img || fail "the owner cannot chmod"
if as_nobody chown 0 mnt2/vm2.img 2>/dev/null; then fail "nobody gave the image to root"; fi
[ "$(stat -c %u:%g:%a mnt2/vm2.img)" = "$NOBODY:$NOBODY:640" ] || fail "after: $(stat -c %u:%g:%a mnt2/vm2.img)"
