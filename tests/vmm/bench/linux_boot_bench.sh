#!/usr/bin/env bash
# Process start -> Linux init, and -> power-off, for labyrinth and for QEMU on the same
# kernel and initramfs (guest/linux/), side by side.
#
#   tests/vmm/bench/linux_boot_bench.sh [--runs N] [--vcpus N] [--mem MIB] [--no-qemu]
#
# Each run starts the VMM, stamps the moment "labyrinth-init: reached init" appears on
# its serial console (stdout) and the moment the process exits (init runs
# `poweroff -f`). QEMU runs with -accel kvm -cpu host, SeaBIOS, -kernel/-initrd/-append
# (no disk, no network): the conventional firmware path. Needs standard KVM (run it in
# the test VM); prints the host kind with the figures.
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs=10 vcpus=1 mem=256 qemu=1
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --vcpus) vcpus="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --no-qemu) qemu=0; shift ;;
    *) echo "usage: $0 [--runs N] [--vcpus N] [--mem MIB] [--no-qemu]" >&2; exit 2 ;;
  esac
done
kernel="$(guest/linux/fetch_kernel.sh)"
initrd="$(guest/linux/make_initramfs.sh)"
labyrinth="$PWD/build/labyrinth"
[[ -x $labyrinth ]] || { echo "$0: build first (scripts/build.sh)" >&2; exit 2; }
args="console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd labyrinth.test=poweroff"
host="standard KVM"
[[ -e /sys/module/kvm_pvm ]] && host="nested PVM KVM (not representative)"
grep -q hypervisor /proc/cpuinfo && host="$host, inside a VM"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
 "machine-config": {"vcpu_count": $vcpus, "mem_size_mib": $mem}, "serial": {"input": "none"}}
JSON

now_ns() { date +%s%N; }
# one_run NAME CMD...: prints "<init ms> <exit ms> <status>"
one_run() {
  local start init=0 line end status
  start=$(now_ns)
  exec 3< <("$@" 2>"$work/err" </dev/null; echo "labyrinth-bench: status $?")
  while IFS= read -r line <&3; do
    case "$line" in
      *"labyrinth-init: reached init"*) [[ $init == 0 ]] && init=$(now_ns) ;;
      "labyrinth-bench: status "*) status="${line##* }" ;;
    esac
  done
  end=$(now_ns)
  exec 3<&-
  echo "$(((init - start) / 1000000)) $(((end - start) / 1000000)) ${status:-?}"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}'; }

declare -A results
for vmm in labyrinth qemu; do
  [[ $vmm == qemu && $qemu == 0 ]] && continue
  : >"$work/$vmm"
  for ((i = 0; i <= runs; i++)); do  # run 0 warms the page cache
    if [[ $vmm == labyrinth ]]; then
      r=$(one_run "$labyrinth" run --config "$work/vm.json")
    else
      r=$(one_run qemu-system-x86_64 -accel kvm -cpu host -m "$mem" -smp "$vcpus" -display none \
        -no-reboot -nodefaults -serial stdio -kernel "$kernel" -initrd "$initrd" -append "$args")
    fi
    read -r init total status <<<"$r"
    if [[ $status != 0 || $init -le 0 ]]; then
      echo "$0: $vmm run $i failed (status $status); stderr:" >&2
      cat "$work/err" >&2
      exit 1
    fi
    ((i > 0)) && echo "$init $total" >>"$work/$vmm"
  done
  results[$vmm.init]=$(cut -d' ' -f1 "$work/$vmm" | median)
  results[$vmm.exit]=$(cut -d' ' -f2 "$work/$vmm" | median)
done

echo "Linux boot: $(basename "$kernel"), $(basename "$initrd"), $vcpus vCPU(s), $mem MiB, $runs runs (medians)"
echo "host: $host; $(nproc) CPUs"
printf '%-10s %18s %22s\n' "VMM" "start -> init (ms)" "start -> power-off (ms)"
for vmm in labyrinth qemu; do
  [[ -n ${results[$vmm.init]:-} ]] || continue
  printf '%-10s %18s %22s\n' "$vmm" "${results[$vmm.init]}" "${results[$vmm.exit]}"
done
if [[ -n ${results[qemu.init]:-} ]]; then
  awk -v li="${results[labyrinth.init]}" -v qi="${results[qemu.init]}" \
    -v le="${results[labyrinth.exit]}" -v qe="${results[qemu.exit]}" \
    'BEGIN { printf "qemu / labyrinth: %.2fx to init, %.2fx to power-off\n", qi / li, qe / le }'
fi
