#!/usr/bin/env bash
# A Linux guest boots under qemu (TCG) from a corfs image that is still
# streaming, with the disk options libvirt gives qemu for
#   <driver name='qemu' type='raw' cache='none' io='native'/>
# (O_DIRECT and Linux AIO on the image file: guest_libvirt_disk). The
# guest mounts the ext4 file system of the template, reads a file of it and
# writes two, and powers off; the host then finds the guest's files with
# debugfs, e2fsck finds the file system clean, the stream completes, and
# `corfs check` finds the overlay sound.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/guest_lib.sh"

guest_require_tools
guest_kernel

step "an ext4 template with files for the guest to read"
mkdir tree
echo "hello from the template" >tree/hello.txt
random_file tree/big.bin 4M
# What the guest never reads: the stream has this much to copy whatever the
# guest does, 256 s at 64 KiB/s, longer than guest_run lets the guest run.
random_file tree/unread.bin 16M
big_md5=$(md5sum <tree/big.bin | cut -d' ' -f1)
truncate -s 64M template.raw
mkfs.ext4 -q -F -d tree template.raw

step "the mount, streaming at 64 KiB/s, the slowest speed without --force"
disk_yaml disk.yaml "stream: {auto: true, speed: 64K}"
start_mount disk.yaml mnt
wait_for 10 job_is mnt disk.img running

cat >guest.sh <<'EOF'
for _ in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -t ext4 /dev/vda /mnt
echo "GUEST-READ: $(cat /mnt/hello.txt)"
echo "GUEST-BIG: $(md5sum /mnt/big.bin | cut -d' ' -f1)"
echo "written by the guest" >/mnt/guest.txt
dd if=/dev/urandom of=/mnt/guest.bin bs=64k count=32 2>/dev/null
echo "GUEST-WROTE: $(md5sum /mnt/guest.bin | cut -d' ' -f1)"
umount /mnt
echo "GUEST-UPTIME: $(cut -d' ' -f1 /proc/uptime) s"
EOF
guest_initramfs initrd.gz guest.sh

step "boot the guest from mnt/disk.img (cache=none, io=native, virtio-blk)"
guest_libvirt_disk mnt/disk.img
guest_run console.log 240 initrd.gz "${GUEST_DISK_ARGS[@]}"

step "the guest read the template's files"
grep -a 'GUEST' console.log
grep -q 'GUEST-READ: hello from the template' console.log || { cat console.log; fail "the guest did not read hello.txt"; }
grep -q "GUEST-BIG: $big_md5" console.log || { cat console.log; fail "the guest read big.bin wrong"; }
guest_md5=$(sed -n 's/.*GUEST-WROTE: //p' console.log | tr -d '\r')
[ -n "$guest_md5" ] || fail "the guest did not report its write"

step "the guest ran while the stream was still copying"
job_is mnt disk.img running || { "$CORFS" jobs -m mnt; fail "the stream was not running any more when the guest powered off"; }

step "the host sees the guest's files (debugfs) and a clean file system (e2fsck)"
e2fsck -fn mnt/disk.img || fail "e2fsck found errors after the guest"
[ "$(debugfs -R 'cat /guest.txt' mnt/disk.img 2>/dev/null)" = "written by the guest" ] || fail "guest.txt is not on the disk"
[ "$(debugfs -R 'cat /guest.bin' mnt/disk.img 2>/dev/null | md5sum | cut -d' ' -f1)" = "$guest_md5" ] ||
  fail "guest.bin on the disk differs from what the guest wrote"

step "the stream completes; the overlay stands alone and is sound"
"$CORFS" set-speed disk.img 0 -m mnt
wait_for 120 job_gone mnt disk.img
wait_for 10 overlay_is overlays/disk.img standalone
stop_mount mnt
"$CORFS" check overlays/disk.img
e2fsck -fn overlays/disk.img || fail "e2fsck found errors in the standalone overlay"
[ "$(debugfs -R 'cat /guest.txt' overlays/disk.img 2>/dev/null)" = "written by the guest" ] ||
  fail "guest.txt is not in the standalone overlay"
