#!/bin/sh
# /init of the test VM's initramfs (scripts/vm.sh builds it; busybox sh).
# Loads the modules (dependencies first: vm.sh numbered them), mounts the host's /
# from virtio-9p, gives it the VM's own /proc /sys /dev /run, runs the command
# vm.sh wrote (labyrinth.run=DIR on the kernel command line: DIR/cmd.sh) and leaves
# its exit status in DIR/rc, then powers off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
  echo "vm-init: $*" >/dev/ttyS0
  echo 0 >/proc/sys/kernel/printk
  poweroff -f
}

for m in /modules/*.ko; do
  insmod "$m" || fail "insmod $m failed"
done

run=""
cache=loose
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    labyrinth.run=*) run="${arg#labyrinth.run=}" ;;
    labyrinth.9p_cache=*) cache="${arg#labyrinth.9p_cache=}" ;;
  esac
done
[ -n "$run" ] || fail "no labyrinth.run= on the command line"

# msize: 512 KiB messages (the default 8 KiB makes every read many round trips).
# cache (labyrinth.9p_cache=, LABYRINTH_VM_9P_CACHE): loose keeps what the VM read in its
# page cache (every exec of bash, labyrinth and its libraries, python3 read the files
# over 9p again with mmap: the VM's tests ran ~2x slower, docs/test-vm.md); the host's
# files do not change under a test VM's run, and what the VM writes reaches the host
# through the page cache's writeback and the sync below.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=$cache,access=client hostroot /mnt ||
  fail "cannot mount the host's root over virtio-9p"
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
mount -t devtmpfs dev /mnt/dev
mkdir -p /mnt/dev/pts /mnt/dev/shm
# What udev/systemd would add: bash process substitution needs /dev/fd.
ln -sf /proc/self/fd /mnt/dev/fd
ln -sf /proc/self/fd/0 /mnt/dev/stdin
ln -sf /proc/self/fd/1 /mnt/dev/stdout
ln -sf /proc/self/fd/2 /mnt/dev/stderr
mount -t devpts devpts /mnt/dev/pts
mount -t tmpfs shm /mnt/dev/shm
mount -t tmpfs run /mnt/run
# /tmp stays the host's: a checkout (or a CI clone) may live there.
ip link set lo up

# The heartbeat scripts/vm.sh's watchdog checks: a VM whose kernel stops scheduling
# (docs/test-vm.md, "A lost timer interrupt") stops writing it. Its pid is left beside it
# for vm.sh's own test, which stops it to play a hung VM.
heartbeat() {
  while :; do
    : >"/mnt$run/beat"
    sleep 10
  done
}
heartbeat &
echo $! >"/mnt$run/beat.pid"
[ -e /dev/kvm ] || fail "/dev/kvm did not appear (kvm_amd: no SVM in -cpu max?)"

stty -F /dev/ttyS0 -onlcr -echo 2>/dev/null
chroot /mnt /bin/bash "$run/cmd.sh" </dev/null >/dev/ttyS0 2>&1
echo $? >"/mnt$run/rc"
sync
echo 0 >/proc/sys/kernel/printk
umount /mnt/run 2>/dev/null
poweroff -f
