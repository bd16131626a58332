#!/usr/bin/env bash
# Linux boot, split into VMM start, kernel and shutdown, for labyrinth, QEMU's microvm
# machine and QEMU's pc machine on the same kernel and initramfs (guest/linux/), each
# run in turn so that a change in the host's load hits all of them alike.
#
#   tests/vmm/bench/linux_boot_bench.sh [--runs N] [--vcpus N] [--mem MIB]
#       [--vmms "labyrinth labyrinth-vmlinux microvm microvm-pvh pc"] [--labyrinth PATH]
#       [--before PATH] [--microvm MACHINE_OPTS]
#
# The kernel is Debian's bzImage (guest/linux/fetch_kernel.sh) for labyrinth, microvm and
# pc; labyrinth-vmlinux and microvm-pvh boot the same kernel unpacked from it
# (fetch_kernel.sh --vmlinux: the ELF its decompressor would have produced), labyrinth at
# its 64-bit entry e_entry, QEMU's microvm through the ELF's PVH note (CONFIG_PVH). Both
# skip the decompressor; the second shows what the same shortcut gives a QEMU user.
#
# --before PATH adds a second labyrinth binary (e.g. one built before a change) as the
# VMM "before". --microvm sets the microvm machine's options (default "microvm").
#
# The command line is a user's: console=ttyS0 reboot=k panic=-1 quiet (no i8042.*
# options). init (guest/linux/init, labyrinth.test=poweroff) prints
# "labyrinth-init: reached init after <uptime> s" and "labyrinth-test: poweroff", then
# runs `poweroff -f`. From the moments those lines appear on the serial console
# (stdout) and the moment the process exits:
#   start     process start -> the guest clock's zero: wall time at init minus the
#             guest's uptime at init (VMM set-up, firmware, kernel decompression)
#   kernel    the guest's uptime when init runs (its own clock)
#   shutdown  "labyrinth-test: poweroff" -> process exit
#   total     process start -> process exit
# QEMU runs with -accel kvm -cpu host -nodefaults -serial stdio -kernel/-initrd/-append:
# microvm (qboot, no PCI, ACPI power-off) and pc (SeaBIOS, ACPI power-off). Labyrinth
# powers off through ACPI too (its FADT's PM1a control block, docs/linux.md).
# Needs standard KVM (run it in the test VM: there only the ratios mean anything);
# prints the host kind with the figures. Run 0 of each VMM warms the page cache.
# Labyrinth runs with --trace-start: the median of its own set-up (exec -> the first
# KVM_RUN, part of "start") is printed below the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs=10 vcpus=1 mem=256 vmms="labyrinth labyrinth-vmlinux microvm microvm-pvh pc" before=""
microvm=microvm
labyrinth="$PWD/build/labyrinth"
usage() {
  echo "usage: $0 [--runs N] [--vcpus N] [--mem MIB] [--vmms LIST] [--labyrinth PATH]" \
    "[--before PATH] [--microvm MACHINE_OPTS]" >&2
  exit 2
}
while (($#)); do
  [[ $# -ge 2 ]] || usage
  case "$1" in
    --runs) runs="$2" ;;
    --vcpus) vcpus="$2" ;;
    --mem) mem="$2" ;;
    --vmms) vmms="$2" ;;
    --labyrinth) labyrinth="$2" ;;
    --before) before="$2" ;;
    --microvm) microvm="$2" ;;
    *) usage ;;
  esac
  shift 2
done
[[ -n $before ]] && vmms="$vmms before"
kernel="$(guest/linux/fetch_kernel.sh)"
vmlinux="$(guest/linux/fetch_kernel.sh --vmlinux)"
initrd="$(guest/linux/make_initramfs.sh)"
for b in "$labyrinth" ${before:+"$before"}; do
  [[ -x $b ]] || { echo "$0: $b is missing (scripts/build.sh release)" >&2; exit 2; }
done
args="console=ttyS0 reboot=k panic=-1 quiet labyrinth.test=poweroff"
host="standard KVM"
[[ -e /sys/module/kvm_pvm ]] && host="nested PVM KVM (not representative)"
grep -q hypervisor /proc/cpuinfo && host="$host, inside a VM ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
 "machine-config": {"vcpu_count": $vcpus, "mem_size_mib": $mem}, "serial": {"input": "none"}}
JSON
sed "s|\"kernel_image_path\": \"$kernel\"|\"kernel_image_path\": \"$vmlinux\"|" "$work/vm.json" \
  >"$work/vmlinux.json"

now_ns() { date +%s%N; }
# one_run CMD...: prints "<start ms> <kernel ms> <shutdown ms> <total ms> <status>"
one_run() {
  local t0 init=0 uptime="" off=0 line end status=""
  t0=$(now_ns)
  exec 3< <(timeout 900 "$@" 2>"$work/err" </dev/null; echo "labyrinth-bench: status $?")
  while IFS= read -r line <&3; do
    line="${line%$'\r'}"
    case "$line" in
      *"labyrinth-init: reached init after "*)
        init=$(now_ns)
        uptime="${line##*reached init after }"
        uptime="${uptime%% s*}"
        ;;
      *"labyrinth-test: poweroff"*) off=$(now_ns) ;;
      "labyrinth-bench: status "*) status="${line##* }" ;;
    esac
  done
  end=$(now_ns)
  exec 3<&-
  if [[ -z $uptime || $off == 0 ]]; then
    echo "0 0 0 0 ${status:-?}"
    return
  fi
  awk -v t0="$t0" -v init="$init" -v up="$uptime" -v off="$off" -v end="$end" -v s="$status" \
    'BEGIN { printf "%d %d %d %d %s\n", (init - t0) / 1e6 - up * 1000, up * 1000,
             (end - off) / 1e6, (end - t0) / 1e6, s }'
}
cmd=()
set_cmd() {  # set_cmd VMM: the command line that boots VMM, in cmd
  local machine="$microvm"
  case "$1" in
    labyrinth) cmd=("$labyrinth" run --config "$work/vm.json" --trace-start) ;;
    labyrinth-vmlinux) cmd=("$labyrinth" run --config "$work/vmlinux.json" --trace-start) ;;
    before) cmd=("$before" run --config "$work/vm.json") ;;
    microvm | microvm-pvh | pc)
      [[ $1 == pc ]] && machine=pc
      local image="$kernel"
      [[ $1 == microvm-pvh ]] && image="$vmlinux"
      cmd=(qemu-system-x86_64 -M "$machine" -accel kvm -cpu host -m "$mem" -smp "$vcpus"
        -display none -no-reboot -nodefaults -no-user-config -serial stdio
        -kernel "$image" -initrd "$initrd" -append "$args")
      ;;
    *) echo "$0: unknown VMM '$1' in --vmms (labyrinth labyrinth-vmlinux before microvm microvm-pvh pc)" >&2
       exit 2 ;;
  esac
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}'; }

for vmm in $vmms; do : >"$work/$vmm"; done
for ((i = 0; i <= runs; i++)); do
  for vmm in $vmms; do
    set_cmd "$vmm"
    read -r start kernel_ms shutdown total status <<<"$(one_run "${cmd[@]}")"
    if [[ $status != 0 || $total == 0 ]]; then
      echo "$0: $vmm run $i failed (status $status); stderr:" >&2
      cat "$work/err" >&2
      exit 1
    fi
    echo "run $i $vmm: start $start kernel $kernel_ms shutdown $shutdown total $total ms" >&2
    ((i > 0)) && echo "$start $kernel_ms $shutdown $total" >>"$work/$vmm"
    if [[ $vmm == labyrinth* ]] && ((i > 0)); then
      sed -n 's/.*exec -> first KVM_RUN \([0-9]*\) ms.*/\1/p' "$work/err" >>"$work/setup.$vmm"
    fi
  done
done

echo "Linux boot: $(basename "$(readlink -f "$kernel")"), $(basename "$initrd"), $vcpus vCPU(s), $mem MiB, '$args'; $runs runs each, in turn (medians)"
echo "host: $host; $(nproc) CPUs"
printf '%-22s %11s %11s %13s %11s\n' VMM "start (ms)" "kernel (ms)" "shutdown (ms)" "total (ms)"
declare -A med
for vmm in $vmms; do
  for col in 1 2 3 4; do med[$vmm.$col]=$(cut -d' ' -f$col "$work/$vmm" | median); done
  name=$vmm
  [[ $vmm == microvm ]] && name="$microvm"
  [[ $vmm == microvm-pvh ]] && name="$microvm (PVH vmlinux)"
  printf '%-22s %11s %11s %13s %11s\n' "$name" "${med[$vmm.1]}" "${med[$vmm.2]}" "${med[$vmm.3]}" "${med[$vmm.4]}"
done
for l in labyrinth labyrinth-vmlinux; do
  [[ -s $work/setup.$l ]] &&
    echo "$l's own set-up (exec -> first KVM_RUN, --trace-start): $(median <"$work/setup.$l") ms"
done
# Each labyrinth kind against every other VMM (and labyrinth against before).
for l in labyrinth labyrinth-vmlinux; do
  [[ " $vmms " == *" $l "* ]] || continue
  for vmm in $vmms; do
    [[ $vmm == labyrinth* ]] && continue
    awk -v l="$l" -v n="$vmm" -v l1="${med[$l.1]}" -v l2="${med[$l.2]}" -v l3="${med[$l.3]}" \
      -v l4="${med[$l.4]}" -v o1="${med[$vmm.1]}" -v o2="${med[$vmm.2]}" -v o3="${med[$vmm.3]}" \
      -v o4="${med[$vmm.4]}" 'function r(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "-" }
      BEGIN { printf "%s / %s: start %s, kernel %s, shutdown %s, total %s\n", l, n, r(l1, o1),
              r(l2, o2), r(l3, o3), r(l4, o4) }'
  done
done
