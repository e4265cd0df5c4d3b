#!/usr/bin/env bash
# Images join and leave a running mount:
#   - QMP image-add takes the keys of one image as the YAML file spells
#     them (relative paths relative to the file's folder; its defaults and
#     templates apply); the new file reads as its template at once;
#   - a bad image-add (unknown key, missing file, another image's overlay,
#     a name in use) gets an error and changes nothing on disk;
#   - image-remove is refused while a file is open on the image and while a
#     job works on it; when idle it goes at once from `ls`, its overlay
#     committed and kept; added again it is a new file (new inode);
#   - the CLI (corfs image-add / image-remove) drives the same commands;
#   - SIGHUP re-reads the YAML file: new images are added, unlisted idle
#     ones removed, unlisted busy ones stay (logged), changed settings of a
#     mounted image are refused with one message each (logged and in the
#     CORFS_CONFIG_RELOADED event); a broken file changes nothing;
#   - the mount keeps serving through all of it.
source "$(dirname "$0")/lib.sh"

random_file template.raw 8M
random_file other.raw 4M
write_yaml mount.yaml <<YAML
defaults:
  mode: 0600
templates:
  base: template.raw
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [base]
YAML
start_mount mount.yaml mnt
write_qmp_client
export MOUNT_PID

step "image-add over QMP: the new file is there at once and reads as its template"
ls mnt >/dev/null  # the kernel has listed the folder before the change
python3 - <<'PY'
from qmp import *
c = Qmp("mnt.sock")
assert c.ok("image-add", {"name": "new.img", "overlay": "overlays/new.img", "backing": ["other.raw"]}) == {}
assert c.event("CORFS_IMAGE_ADDED")["data"] == {"name": "new.img"}
names = [i["name"] for i in c.ok("query-images")]
assert names == ["disk.img", "new.img"], names
PY
ls mnt | grep -qx new.img || fail "ls does not show the added image"
cmp mnt/new.img other.raw || fail "the added image does not read as its template"
[ "$(stat -c %a mnt/new.img)" = 600 ] || fail "the YAML file's defaults did not apply to the added image"
python3 - <<'PY' || fail "the added image's reads are not counted (query-blockstats)"
from qmp import *
c = Qmp("mnt.sock")
stats = {s["device"]: s["stats"] for s in c.ok("query-blockstats")}
assert stats["new.img"]["rd_bytes"] > 0, stats
PY
first_inode=$(stat -c %i mnt/new.img)

step "a bad image-add gets an error and changes nothing on disk"
python3 - <<'PY'
from qmp import *
c = Qmp("mnt.sock")
def refused(args, *words):
    r = c.err("image-add", args, "GenericError")
    for word in words:
        assert word in r["error"]["desc"], (args, word, r)
refused({"name": "bad.img", "overlay": "overlays/bad.img", "backing": ["missing.raw"]}, "missing.raw")
refused({"name": "bad.img", "overlay": "overlays/bad.img", "backing": ["other.raw"], "sise": "1M"}, "sise", "size")
refused({"name": "bad.img", "overlay": "overlays/disk.img", "backing": ["other.raw"]}, "disk.img")
refused({"name": "bad.img", "overlay": "overlays/bad.img", "backing": ["overlays/new.img"]}, "new.img")
refused({"name": "new.img", "overlay": "overlays/bad.img", "backing": ["other.raw"]}, "new.img")
refused({"name": "a/b", "overlay": "overlays/bad.img", "backing": ["other.raw"]}, "/")
refused({"name": "bad.img", "overlay": "nofolder/bad.img", "backing": ["other.raw"]}, "nofolder")
refused({"no-such-argument": 1}, "no-such-argument", "name")
assert [i["name"] for i in c.ok("query-images")] == ["disk.img", "new.img"]
PY
[ -e overlays/bad.img ] || [ -e overlays/bad.img.part ] || [ -e overlays/bad.img.cor ] || [ -e nofolder ] && fail "a refused image-add left files"
ls mnt | grep -q bad.img && fail "a refused image shows in the mount"

step "the CLI adds an image over a template of the YAML file"
"$CORFS" image-add cli.img overlay=overlays/cli.img backing=base mode=0640 -m mnt || fail "corfs image-add"
cmp mnt/cli.img template.raw || fail "the image added by the CLI does not read as its template"
[ "$(stat -c %a mnt/cli.img)" = 640 ] || fail "mode=0640 did not apply"
out=$("$CORFS" image-add cli2.img overlay=overlays/cli2.img backing=base strem.auto=true -m mnt 2>&1) &&
  fail "a mistyped key was accepted"
grep -q "strem" <<<"$out" || fail "the CLI does not name the mistyped key: $out"

step "image-remove is refused while a file is open on the image"
exec 3<mnt/new.img
python3 - <<'PY'
from qmp import *
c = Qmp("mnt.sock")
r = c.err("image-remove", {"name": "new.img"}, "GenericError")
assert "open" in r["error"]["desc"], r
c.err("image-remove", {"name": "nosuch.img"}, "DeviceNotFound")
c.err("image-remove", {"name": "new.img", "force": True}, "GenericError")
PY
cmp mnt/new.img other.raw || fail "the refused removal disturbed the image"
exec 3<&-

step "image-remove is refused while a job works on the image; idle images go"
python3 - <<'PY'
from qmp import *
c = Qmp("mnt.sock")
# An image none of whose data is local yet, so that a slow stream lasts.
c.ok("image-add", {"name": "job.img", "overlay": "overlays/job.img", "backing": ["template.raw"]})
job = c.ok("block-stream", {"device": "job.img", "speed": 65536})["job-id"]
r = c.err("image-remove", {"name": "job.img"}, "GenericError")
assert "job" in r["error"]["desc"], r
c.ok("block-job-cancel", {"device": job})
c.event("BLOCK_JOB_CANCELLED", device=job)
# Idle now: both go. The kernel releases the file closed above on its
# own time, and a concluded job leaves the list once its event is out.
def removed(name):
    r = c.cmd("image-remove", {"name": name})
    assert "return" in r or "open" in r["error"]["desc"] or "job" in r["error"]["desc"], r
    return "return" in r
for name in ("job.img", "new.img"):
    wait_until(lambda: removed(name), what="image-remove of the idle " + name)
    e = c.event("CORFS_IMAGE_REMOVED")
    assert e["data"] == {"name": name}, e
assert [i["name"] for i in c.ok("query-images")] == ["disk.img", "cli.img"]
PY
ls mnt | grep -qx new.img && fail "ls still shows the removed image"
[ -e mnt/new.img ] && fail "the removed image can still be opened"
"$CORFS" check overlays/new.img || fail "the removed image's overlay is not consistent"

step "added again, the image is a new file with the data it had"
"$CORFS" image-add new.img '{overlay: overlays/new.img, backing: [other.raw]}' -m mnt 2>/dev/null &&
  fail "a value that is no KEY=VALUE was accepted"
"$CORFS" image-add new.img overlay=overlays/new.img 'backing=[other.raw]' -m mnt || fail "adding new.img again"
cmp mnt/new.img other.raw || fail "new.img added again does not read as its template"
[ "$(stat -c %i mnt/new.img)" != "$first_inode" ] || fail "the image added again reuses its old inode"

step "SIGHUP: the edited file adds, removes and refuses changes; a busy image stays"
write_yaml mount.yaml <<YAML
control_socket: elsewhere.sock
defaults:
  mode: 0600
templates:
  base: template.raw
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [base]
    read_only: true
  hup.img:
    overlay: overlays/hup.img
    backing: [other.raw]
YAML
exec 3<mnt/new.img
python3 - <<'PY'
import os, signal
from qmp import *
c = Qmp("mnt.sock")
os.kill(int(os.environ["MOUNT_PID"]), signal.SIGHUP)
e = c.event("CORFS_CONFIG_RELOADED")["data"]
assert e["added"] == ["hup.img"], e
assert e["removed"] == ["cli.img"], e
assert [k["name"] for k in e["kept"]] == ["new.img"], e
assert "open" in e["kept"][0]["reason"], e
assert [r["name"] for r in e["refused"]] == ["disk.img"], e
assert "read_only" in e["refused"][0]["reason"], e
assert [i["name"] for i in c.ok("query-images")] == ["disk.img", "new.img", "hup.img"]
assert c.ok("query-images")[0]["read-only"] is False
PY
exec 3<&-
grep -q "image 'disk.img' not changed: changed read_only" corfs.log || fail "no message for the refused change"
grep -q "image 'new.img' is no longer in .* but stays" corfs.log || fail "no message for the busy image"
grep -q "control_socket changed in .*next mount" corfs.log || fail "no message for the changed control_socket"
ls mnt | sort | tr '\n' ' ' | grep -qx "disk.img hup.img new.img " || fail "after SIGHUP: $(ls mnt)"
cmp mnt/hup.img other.raw || fail "the image added by SIGHUP does not read as its template"
printf 'still writable' | dd of=mnt/disk.img bs=1 seek=4096 conv=notrunc status=none ||
  fail "the refused change was applied anyway"

step "SIGHUP with a broken file changes nothing"
cp mount.yaml good.yaml
printf 'images:\n  disk.img: [\n' > mount.yaml
python3 - <<'PY'
import os, signal
from qmp import *
c = Qmp("mnt.sock")
os.kill(int(os.environ["MOUNT_PID"]), signal.SIGHUP)
e = c.event("CORFS_CONFIG_RELOADED")["data"]
assert "mount.yaml" in e["error"], e
assert [i["name"] for i in c.ok("query-images")] == ["disk.img", "new.img", "hup.img"]
PY
grep -q "does not load; nothing changed" corfs.log || fail "no message for the broken file"

step "SIGHUP again once the busy image is idle removes it; the mount still serves"
cp good.yaml mount.yaml
python3 - <<'PY'
import os, signal
from qmp import *
c = Qmp("mnt.sock")
def reload_removes():
    os.kill(int(os.environ["MOUNT_PID"]), signal.SIGHUP)
    e = c.event("CORFS_CONFIG_RELOADED")["data"]
    return e["removed"] == ["new.img"]
wait_until(reload_removes, what="SIGHUP removing new.img once it is released")
PY
kill -0 "$MOUNT_PID" || fail "the daemon died"
is_mounted mnt || fail "unmounted"
[ "$(dd if=mnt/disk.img bs=1 skip=4096 count=14 status=none)" = "still writable" ] || fail "write lost"
cmp -n 4096 mnt/disk.img template.raw || fail "disk.img does not serve after the changes"
stop_mount mnt
for overlay in disk new cli hup job; do "$CORFS" check overlays/$overlay.img || fail "overlay $overlay"; done
