#!/usr/bin/env bash
# The test VM: runs a command on a standard KVM host (kvm_amd) made by QEMU's TCG.
#
#   scripts/vm.sh [--timeout SECONDS] [--] COMMAND [ARG...]
#
# Boots Debian's stock kernel (linux-image-amd64's dependency, fetched with
# `apt-get download` and unpacked with `dpkg -x`, never installed) in
# qemu-system-x86_64 -accel tcg -cpu max (which emulates SVM with nested paging),
# loads kvm_amd, mounts this machine's / over virtio-9p, chroots into it and runs
# COMMAND there in the current directory with the current environment. /dev/kvm
# inside is a real, standard KVM. The command's output (stdout and stderr, merged)
# comes out on stdout; vm.sh exits with the command's status.
#
# Inside the VM: / is the host's (read-write, shared live, /tmp included), /proc /sys
# /dev /run are the VM's own. Loopback is up; tun and veth are loaded; `ip netns` works.
#
# Exit status: the command's, or
#   2    usage / setup error (message on stderr)
#   124  the watchdog ended the VM: it ran longer than --timeout / LABYRINTH_VM_TIMEOUT,
#        or its kernel made no progress (no heartbeat) for LABYRINTH_VM_STALL seconds;
#        one line on stderr says which, a second the vCPU's state when it was stopped
#   125  the VM stopped without reporting the command's status (kernel panic, QEMU
#        error, out of memory); the console above says why
#
# Environment:
#   LABYRINTH_VM_TIMEOUT  watchdog in seconds (default 3000)
#   LABYRINTH_VM_STALL    seconds without a heartbeat from the VM's kernel (written every
#                         10 s) before the watchdog ends it (default 240; the boot,
#                         before the first heartbeat, gets 120 s more)
#   LABYRINTH_VM_MEM      guest memory (default 6G)
#   LABYRINTH_VM_CACHE    kernel + initramfs cache (default <repo>/build/vm)
#   LABYRINTH_VM_VERBOSE  1: show the kernel's boot log too
#   LABYRINTH_VM_9P_CACHE how the VM caches the host's files: loose (default; the VM keeps
#                         what it read, so a file the host changes during the run may be
#                         seen stale, and writes reach the host by the final sync), mmap
#                         (read through on every open, as before session 14) or none
#
# One vCPU on purpose: see docs/test-vm.md (with -smp 2 the guest kernel livelocked
# after ~60 VM creations under multi-threaded TCG).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
timeout_s="${LABYRINTH_VM_TIMEOUT:-3000}"
stall_s="${LABYRINTH_VM_STALL:-240}"
mem="${LABYRINTH_VM_MEM:-6G}"
p9_cache="${LABYRINTH_VM_9P_CACHE:-loose}"
case "$p9_cache" in
  loose | mmap | none) ;;
  *) echo "vm.sh: LABYRINTH_VM_9P_CACHE must be loose, mmap or none, not '$p9_cache'" >&2; exit 2 ;;
esac
cache="${LABYRINTH_VM_CACHE:-$repo/build/vm}"

die() {
  echo "vm.sh: $*" >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --timeout)
      [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
      timeout_s="$2"
      shift 2
      ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[[ $timeout_s =~ ^[0-9]+$ ]] || die "LABYRINTH_VM_TIMEOUT must be a number of seconds, not '$timeout_s'"
[[ $stall_s =~ ^[0-9]+$ && $stall_s -ge 20 ]] ||
  die "LABYRINTH_VM_STALL must be a number of seconds >= 20 (the heartbeat is every 10 s), not '$stall_s'"
(($#)) || die "usage: scripts/vm.sh [--timeout SECONDS] [--] COMMAND [ARG...]"

for tool in qemu-system-x86_64 busybox cpio apt-get dpkg; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh"
done
busybox_bin="$(command -v busybox)"
! ldd "$busybox_bin" >/dev/null 2>&1 || die "busybox is not static: install busybox-static (scripts/setup.sh)"

# ---------------------------------------------------------------- kernel + initramfs
# The modules the VM needs, in no particular order (their dependencies are added).
modules=(virtio_pci 9pnet_virtio 9p kvm-amd tun veth)

kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}

build_image() {
  local pkg="$1" dir="$2" work kver moddir
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  echo "vm.sh: preparing the test VM's kernel ($pkg) in $dir" >&2
  (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
    (apt-get update -qq && cd "$work" && apt-get download -q "$pkg" >/dev/null) ||
    die "apt-get download $pkg failed"
  dpkg -x "$work"/*.deb "$work/pkg"
  kver="$(ls "$work/pkg/lib/modules")"
  moddir="$work/pkg/lib/modules/$kver"
  busybox depmod -b "$work/pkg" "$kver"

  # Dependencies first, each module once.
  local -a order=()
  local -A seen=()
  add_module() {
    local name="$1" path line dep
    path="$(grep -E "(^|/)${name}\.ko:" "$moddir/modules.dep" | head -1 | cut -d: -f1)"
    [[ -n $path ]] || die "module $name not in $pkg"
    [[ -n ${seen[$path]:-} ]] && return
    seen[$path]=1
    line="$(grep -E "^${path}:" "$moddir/modules.dep" | cut -d: -f2)"
    for dep in $line; do add_module "$(basename "$dep" .ko)"; done
    order+=("$path")
  }
  for m in "${modules[@]}"; do add_module "$m"; done

  local root="$work/initramfs"
  mkdir -p "$root"/{bin,dev,proc,sys,mnt,modules}
  cp "$busybox_bin" "$root/bin/busybox"
  for a in sh mount umount insmod mkdir chroot poweroff sync stty ip cat echo sleep; do
    ln -s busybox "$root/bin/$a"
  done
  local i=0
  for path in "${order[@]}"; do
    cp "$moddir/$path" "$root/modules/$(printf '%02d' $i)-$(basename "$path")"
    i=$((i + 1))
  done
  cp "$repo/scripts/vm-init.sh" "$root/init"
  chmod +x "$root/init"
  mkdir -p "$dir"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initramfs.cpio.gz.tmp"
  cp "$work/pkg/boot/vmlinuz-$kver" "$dir/vmlinuz.tmp"
  mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
  mv "$dir/initramfs.cpio.gz.tmp" "$dir/initramfs.cpio.gz"
  sha256sum "$repo/scripts/vm-init.sh" "$0" | sha256sum | cut -c1-16 >"$dir/stamp"
}

pkg="$(kernel_package)"
if [[ -z $pkg ]]; then
  apt-get update -qq >/dev/null || true
  pkg="$(kernel_package)"
fi
[[ -n $pkg ]] || die "cannot find linux-image-amd64's kernel package (apt-get update?)"
image="$cache/$pkg"
want_stamp="$(sha256sum "$repo/scripts/vm-init.sh" "$0" | sha256sum | cut -c1-16)"
if [[ ! -f $image/vmlinuz || ! -f $image/initramfs.cpio.gz ||
  "$(cat "$image/stamp" 2>/dev/null)" != "$want_stamp" ]]; then
  build_image "$pkg" "$image"
fi

# ---------------------------------------------------------------- the run
mkdir -p "$cache/runs"
run="$(mktemp -d "$cache/runs/run.XXXXXX")"
mkdir "$run/tmp"
trap 'rm -rf "$run"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
{
  echo "# written by scripts/vm.sh"
  export -p | grep -v -E '^declare -x (BASHOPTS|BASH_[A-Z_]*|SHELLOPTS|SHLVL|PWD|OLDPWD|_|TERM|DISPLAY|SSH_[A-Z_]*|TMPDIR)(=|$)'
  echo "export LABYRINTH_IN_TEST_VM=1"
  printf 'export LABYRINTH_VM_RUN=%q\n' "$run"
  # A private TMPDIR: /tmp is the host's, shared by every VM and the host, and a VM's
  # pids repeat those of a VM booted beside it (two runs of one test once truncated each
  # other's labyrinth-child-<pid>-0.out there).
  printf 'export TMPDIR=%q\n' "$run/tmp"
  printf 'cd %q || exit 2\n' "$PWD"
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} >"$run/cmd.sh"

# lapic=notscdeadline nohz=off highres=off: the VM kernel's tick is the LAPIC timer in
# periodic mode. QEMU 7.2's TCG can lose a pending interrupt's request while the VM runs a
# KVM guest (seen: the one-shot timer interrupt left in the IRR, never delivered, and a
# 2-vCPU Linux guest spinning in smp_call_function_many_cond for 50 min); a one-shot
# timer is never re-armed after that, a periodic one re-raises the request every 4 ms.
# docs/test-vm.md, "A lost timer interrupt".
# no_timer_check: the kernel's IO-APIC timer check counts ticks over a busy-wait calibrated
# on the TSC; under TCG on a loaded host the ticks come too late and the VM panicked with
# "IO-APIC + timer doesn't work!" before init (session 13: twice in a row at load 16-19).
append="console=ttyS0 panic=-1 rdinit=/init mitigations=off no_timer_check"
append+=" lapic=notscdeadline nohz=off highres=off labyrinth.run=$run labyrinth.9p_cache=$p9_cache"
if [[ ${LABYRINTH_VM_VERBOSE:-0} == 1 ]]; then
  append+=" loglevel=7"
else
  append+=" quiet loglevel=1"
fi

# The monitor (HMP) on two FIFOs: the watchdog asks it for the vCPU's state.
mkfifo "$run/monitor.in" "$run/monitor.out"
qemu-system-x86_64 -accel tcg,tb-size=512 -cpu max -smp "${LABYRINTH_VM_SMP:-1}" -m "$mem" \
  -nodefaults -no-user-config -nographic -no-reboot -bios /usr/share/qemu/qboot.rom \
  -serial stdio -monitor "pipe:$run/monitor" \
  -kernel "$image/vmlinuz" -initrd "$image/initramfs.cpio.gz" -append "$append" \
  -fsdev local,id=root,path=/,security_model=passthrough,multidevs=remap \
  -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
  </dev/null &
qemu_pid=$!
cat "$run/monitor.out" >"$run/monitor.log" 2>/dev/null &
monitor_pid=$!

# The watchdog: ends the VM after timeout_s, or once its kernel has not written the
# heartbeat (vm-init.sh, every 10 s) for stall_s. It leaves the reason in $run/watchdog.
watchdog() {
  local start now last
  start=$(date +%s)
  while sleep 5; do
    now=$(date +%s)
    if ((now - start >= timeout_s)); then
      echo "the test VM ran longer than ${timeout_s} s and was stopped" >"$run/watchdog"
      break
    fi
    # Before the first heartbeat the VM is still booting: it gets 120 s more for that.
    last=$(stat -c %Y "$run/beat" 2>/dev/null) || last=$((start + 120))
    if ((now - last >= stall_s)); then
      echo "the test VM made no progress for $((now - last)) s (its kernel stopped writing the heartbeat; LABYRINTH_VM_STALL=${stall_s}) and was stopped" >"$run/watchdog"
      break
    fi
  done
  printf 'info registers\ninfo lapic\n' >"$run/monitor.in"
  sleep 2
  kill -TERM "$qemu_pid" 2>/dev/null
  sleep 10
  kill -KILL "$qemu_pid" 2>/dev/null
}
watchdog &
watchdog_pid=$!
trap 'kill "$watchdog_pid" "$qemu_pid" "$monitor_pid" 2>/dev/null || true; rm -rf "$run"' EXIT

status=0
wait "$qemu_pid" || status=$?
kill "$watchdog_pid" 2>/dev/null || true
wait "$watchdog_pid" 2>/dev/null || true

if [[ -s $run/watchdog ]]; then
  echo "vm.sh: watchdog: $(cat "$run/watchdog")" >&2
  # The vCPU's state when it was stopped, for the report (docs/test-vm.md).
  state="$(tr -d '\r' <"$run/monitor.log" 2>/dev/null | sed 's/\x1b\[[0-9]*[A-Za-z]//g' |
    grep -a -o -E 'RIP=[0-9a-f]+ RFL=[0-9a-f]+ .*HLT=[01]|^(IRR|ISR)[[:space:]].*' | tr -s '\t ' ' ' |
    paste -s -d ';' || true)"
  [[ -z $state ]] || echo "vm.sh: its vCPU when stopped: $state" >&2
  exit 124
fi
if [[ $status -ne 0 ]]; then
  echo "vm.sh: qemu-system-x86_64 failed (status $status)" >&2
  exit 125
fi
if [[ ! -s $run/rc ]]; then
  echo "vm.sh: the test VM stopped without the command's exit status (see the console above)" >&2
  exit 125
fi
exit "$(cat "$run/rc")"
