# shellcheck shell=bash
# Boots small Linux guests under qemu (TCG) for the tests that need a real
# guest on a corfs disk. Source it after lib.sh (it uses fail, step, WORK and
# STARTED_PIDS).
#
# The guest is Debian's cloud kernel and an initramfs made here from
# busybox-static with a test's own /init script: no distribution image, no
# network in the guest, and a boot to /init in seconds under TCG. KVM is never
# used: a test must behave the same on a machine without it, and TCG is
# what CI has.
#
# The kernel comes from Debian's linux-image-cloud-amd64 package, fetched
# once with `apt-get download` (no installation: nothing in /boot changes)
# into CORFS_GUEST_CACHE (default ~/.cache/corfs/guest), of which only the
# kernel and the virtio modules are kept: the first run needs a Debian
# mirror, later ones nothing. Its storage drivers are modules,
# so the initramfs loads them itself; ext4 is built in.

: "${CORFS_GUEST_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/corfs/guest}"

# The modules a guest needs for a virtio-blk disk on a PCI machine, in an
# order where each one's dependencies come first (busybox insmod does not
# resolve them).
GUEST_MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk)

# guest_require_tools: fails, naming the packages, when a tool is missing.
guest_require_tools() {
  command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 is missing (Debian package qemu-system-x86)"
  { [ -x /bin/busybox ] && file_is_static /bin/busybox; } || fail "a static /bin/busybox is missing (Debian package busybox-static)"
}

file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

# guest_kernel: sets GUEST_KERNEL (a vmlinuz) and GUEST_MODULE_DIR (the
# *.ko files of GUEST_MODULES), fetching them into the cache on first use.
guest_kernel() {
  local package
  package=$(apt-cache depends --important linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-/ { print $2; exit }')
  if [ -z "$package" ]; then
    # Without apt's lists (no `apt-get update` yet), whatever is cached.
    package=$(find "$CORFS_GUEST_CACHE" -mindepth 1 -maxdepth 1 -name 'linux-image-*' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
  fi
  [ -n "$package" ] || fail "no guest kernel: apt-cache knows no linux-image-cloud-amd64 (run apt-get update) and $CORFS_GUEST_CACHE is empty"
  local dir=$CORFS_GUEST_CACHE/$package
  [ -f "$dir/ready" ] || guest_fetch_kernel "$package" "$dir"
  GUEST_KERNEL=$dir/vmlinuz
  GUEST_MODULE_DIR=$dir/modules
}

# guest_fetch_kernel PACKAGE DIR: downloads PACKAGE and keeps its kernel
# and GUEST_MODULES in DIR. The files are put together in a folder of this
# test and renamed to DIR at once, so tests that fetch at the same time
# never see half a cache (the later rename loses and is dropped).
guest_fetch_kernel() {
  local package=$1 dir=$2
  step "fetching the guest kernel ($package) into $dir"
  local tmp
  tmp=$(mktemp -d "$WORK/kernel.XXXXXX")
  (cd "$tmp" && apt-get download -q "$package" >download.log 2>&1) ||
    { cat "$tmp/download.log" >&2; fail "apt-get download $package"; }
  mkdir -p "$tmp/x" "$tmp/out/modules"
  dpkg-deb --fsys-tarfile "$tmp"/"$package"_*.deb |
    tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/virtio/*.ko' \
      './lib/modules/*/kernel/drivers/block/virtio_blk.ko'
  cp "$tmp"/x/boot/vmlinuz-* "$tmp/out/vmlinuz"
  local m
  for m in "${GUEST_MODULES[@]}"; do
    find "$tmp/x/lib/modules" -name "$m.ko" -exec cp {} "$tmp/out/modules/" \;
    [ -f "$tmp/out/modules/$m.ko" ] || fail "$package has no $m.ko"
  done
  touch "$tmp/out/ready"
  mkdir -p "$CORFS_GUEST_CACHE"
  local staged
  staged=$(mktemp -d "$CORFS_GUEST_CACHE/.staging.XXXXXX")
  chmod 0755 "$staged"
  cp -r "$tmp/out/." "$staged/"
  # A folder without its `ready` mark is what a fetch killed halfway left.
  if [ -e "$dir" ] && [ ! -f "$dir/ready" ]; then rm -rf "$dir"; fi
  mv -T "$staged" "$dir" 2>/dev/null || rm -rf "$staged"
  rm -rf "$tmp"
  [ -f "$dir/ready" ] || fail "could not put the guest kernel in $dir"
}

# guest_initramfs OUT.cpio.gz INIT_SCRIPT: an initramfs of busybox, the
# virtio modules and INIT_SCRIPT as /init. The script runs as PID 1 with
# busybox's applets on PATH, /proc, /sys and /dev mounted and the modules
# loaded; when it returns the guest powers off (so a failing command ends
# the boot too: see guest_run).
guest_initramfs() {
  local out=$1 script=$2 root
  root=$(mktemp -d "$WORK/initramfs.XXXXXX")
  mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  cp "$GUEST_MODULE_DIR"/*.ko "$root/lib/modules/"
  cp "$script" "$root/test.sh"
  cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${GUEST_MODULES[*]}; do insmod /lib/modules/\$m.ko || echo "GUEST: insmod \$m failed"; done
sh -e /test.sh && echo "GUEST-STATUS: 0" || echo "GUEST-STATUS: \$?"
sync
poweroff -f
EOF
  chmod +x "$root/init"
  (cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$out"
  rm -rf "$root"
}

# guest_libvirt_disk IMAGE: sets GUEST_DISK_ARGS to the qemu arguments
# libvirt gives for a raw file disk on virtio-blk with
#   <driver name='qemu' type='raw' cache='none' io='native'/>
# that is, O_DIRECT (cache.direct) and Linux AIO (aio=native) on IMAGE.
# They are what `virsh domxml-to-native qemu-argv` printed for the domain of
# docs/libvirt.md (Debian 12: libvirt 9.0, qemu 7.2), with only the path
# changed.
guest_libvirt_disk() {
  local image
  image=$(realpath "$1")
  # shellcheck disable=SC2034 # the caller passes it to guest_run
  GUEST_DISK_ARGS=(
    -blockdev '{"driver":"file","filename":"'"$image"'","aio":"native","node-name":"libvirt-1-storage","cache":{"direct":true,"no-flush":false},"auto-read-only":true,"discard":"unmap"}'
    -blockdev '{"node-name":"libvirt-1-format","read-only":false,"cache":{"direct":true,"no-flush":false},"driver":"raw","file":"libvirt-1-storage"}'
    -device '{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x2","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1,"write-cache":"on"}'
  )
}

# forget_pid PID: takes a reaped process out of STARTED_PIDS, so cleanup
# never signals a later process that got the same pid.
forget_pid() {
  local kept=() p
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  STARTED_PIDS=("${kept[@]}")
}

# guest_start LOG INITRD QEMU_ARGS...: starts the guest under TCG with its
# console on LOG (qemu's own messages on LOG.qemu) and sets GUEST_PID; the
# pid is also in STARTED_PIDS. The disks are the caller's QEMU_ARGS.
# GUEST_APPEND replaces the quiet console options of the kernel command
# line (GUEST_APPEND= shows the boot).
guest_start() {
  local log=$1 initrd=$2
  shift 2
  qemu-system-x86_64 -accel tcg -machine pc -m 256 -smp 1 -nographic -no-reboot \
    -nodefaults -serial "file:$log" -monitor none \
    -kernel "$GUEST_KERNEL" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 no_timer_check cryptomgr.notests ${GUEST_APPEND-quiet loglevel=3}" "$@" 2>"$log.qemu" </dev/null &
  GUEST_PID=$!
  STARTED_PIDS+=("$GUEST_PID")
}

# guest_run LOG TIMEOUT_SECONDS INITRD QEMU_ARGS...: boots the guest
# (guest_start) and waits for it to power off. Fails when qemu fails, when
# the guest is not done within TIMEOUT_SECONDS (qemu is then killed) or when
# the guest's script did not end with status 0.
guest_run() {
  local log=$1 limit=$2 initrd=$3
  shift 3
  guest_start "$log" "$initrd" "$@"
  local pid=$GUEST_PID
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((limit * 10)) ]; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      cat "$log" "$log.qemu" >&2
      fail "the guest did not power off within ${limit}s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  local status=0
  wait "$pid" || status=$?
  forget_pid "$pid"
  [ "$status" -eq 0 ] || { cat "$log" "$log.qemu" >&2; fail "qemu exited with status $status"; }
  grep -q 'GUEST-STATUS: 0' "$log" || { cat "$log" >&2; fail "the guest's script failed"; }
}
