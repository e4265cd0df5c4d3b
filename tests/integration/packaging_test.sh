#!/usr/bin/env bash
# scripts/package.sh builds a .deb from the build folder of $CORFS; it holds
# the binary, the man pages, the completion and the unit, and depends on
# fuse3 and the libraries the binary links (libsystemd0 among them).
# `apt-get install ./corfs_*.deb` installs it with its dependencies from
# Debian; the installed /usr/bin/corfs mounts the demo's YAML file and
# unmounts; `apt-get remove --purge` removes it again, also when a step
# fails.
#
# This test changes the system (/usr/bin/corfs and the rest): it does
# nothing when a corfs package, or a /usr/bin/corfs of another origin, is
# there already.
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/integration/lib.sh"

if dpkg-query -W -f='${Status}' corfs 2>/dev/null | grep -q ' installed$'; then
  echo "packaging_test: a corfs package is installed already; not touching it: skipped"
  exit 0
fi
if [ -e /usr/bin/corfs ]; then
  echo "packaging_test: /usr/bin/corfs exists and belongs to no corfs package; not touching it: skipped"
  exit 0
fi

build=$(build_dir)

step "scripts/package.sh"
deb=$(CORFS_BUILD_DIR=$build bash "$root/scripts/package.sh" 2>package.log | tail -n 1) ||
  { cat package.log >&2; fail "scripts/package.sh failed"; }
[ -f "$deb" ] || { cat package.log >&2; fail "scripts/package.sh made no package (last line: $deb)"; }
# A copy: a later package.sh on the same build folder replaces the file.
cp "$deb" .
deb=./$(basename "$deb")
[[ $deb == ./corfs_*.deb ]] || fail "unexpected package name $deb"

step "what the package holds"
dpkg-deb -c "$deb" | awk '{ print $6 }' >contents
for f in ./usr/bin/corfs ./usr/lib/systemd/system/corfs@.service ./usr/share/bash-completion/completions/corfs \
  ./usr/share/man/man1/corfs.1.gz ./usr/share/man/man1/corfs-mount.1.gz ./usr/share/man/man1/corfs-create.1.gz; do
  grep -qx "$f" contents || fail "the package lacks $f"
done
grep -v -e '^\./usr/\(bin\|lib/systemd/system\|share/bash-completion/completions\|share/man/man1\)/' -e '/$' contents &&
  fail "the package holds files outside its places (above)"
depends=$(dpkg-deb -f "$deb" Depends)
for d in fuse3 libfuse3-3 libsystemd0; do
  grep -qE "(^|, )$d( |,|$)" <<<"$depends" || fail "the package does not depend on $d: $depends"
done
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/corfs@.service |
  grep -qx 'ExecStart=/usr/bin/corfs mount /etc/corfs/%i.yaml' || fail "the packaged unit does not run /usr/bin/corfs"

remove_package() {
  DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -q -o DPkg::Lock::Timeout=300 corfs >remove.log 2>&1
}
CLEANUP_HOOK=remove_package

step "apt-get install ./$(basename "$deb")"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "$deb" \
  >install.log 2>&1 || { cat install.log >&2; fail "apt-get install failed"; }
dpkg-query -W -f='${Status}' corfs | grep -q ' installed$' || fail "corfs is not installed after apt-get install"
[ "$(command -v corfs)" = /usr/bin/corfs ] || fail "corfs on PATH is $(command -v corfs), not /usr/bin/corfs"
[ "$(man -w corfs-mount)" = /usr/share/man/man1/corfs-mount.1.gz ] || fail "man does not find corfs-mount(1)"
systemd-analyze verify /usr/lib/systemd/system/corfs@.service >verify.log 2>&1 && [ ! -s verify.log ] ||
  { cat verify.log >&2; fail "systemd-analyze verify of the installed unit"; }

step "the installed corfs mounts the demo's YAML file and unmounts"
random_file template.raw 8M
# The YAML file of scripts/demo.sh.
write_yaml demo.yaml <<YAML
mountpoint: mnt
templates:
  debian: template.raw
images:
  vm1.img:
    overlay: overlays/vm1.img
    backing: debian
YAML
CORFS=/usr/bin/corfs start_mount demo.yaml mnt
cmp mnt/vm1.img template.raw || fail "the installed corfs does not serve the template's bytes"
/usr/bin/corfs status -m mnt >/dev/null || fail "corfs status on the installed corfs's mount"
stop_mount mnt
/usr/bin/corfs check overlays/vm1.img >/dev/null || fail "the overlay is not sound after the unmount"

step "apt-get remove --purge corfs"
remove_package || { cat remove.log >&2; fail "apt-get remove failed"; }
CLEANUP_HOOK=""
dpkg-query -W -f='${Status}' corfs 2>/dev/null | grep -q ' installed$' && fail "corfs is still installed"
for f in /usr/bin/corfs /usr/lib/systemd/system/corfs@.service /usr/share/man/man1/corfs-mount.1.gz \
  /usr/share/bash-completion/completions/corfs; do
  [ ! -e "$f" ] || fail "$f is still there after the removal"
done
