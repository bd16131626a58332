#!/usr/bin/env bash
# Where a Linux boot spends its time under labyrinth and under QEMU's microvm machine,
# from the guest's own printk timestamps: the same kernel and initramfs, a user's
# command line plus `initcall_debug printk.time=1` and `quiet log_buf_len=8M`, one boot
# each. The console stays quiet during the boot: with `loglevel=8` it prints ~115 KB,
# two exits a byte (91% of a boot's exits), and the boot took 12 minutes in a loaded
# test VM, the console's cost hiding everything else. init (labyrinth.test=dmesg-gaps=MS)
# then prints from the kernel's log every gap above MS ms with the two messages around
# it and every initcall or probe of MS ms or more, and powers off.
#
#   tests/vmm/bench/linux_boot_gaps.sh [--out DIR] [--gap MS] [--labyrinth PATH]
#       [--microvm MACHINE_OPTS] [--vmms "labyrinth microvm"]
#
# Keeps each console log in DIR (default build/boot-gaps) and prints both VMMs' gaps
# (matched by their pair of messages, numbers and addresses masked) and initcalls side
# by side; '<MS' where the other VMM had the message without the gap.
# Needs standard KVM (the test VM). Absolute times there are TCG's; the comparison is
# between the two columns of one run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=build/boot-gaps gap=5 microvm="microvm,rtc=on" vmms="labyrinth microvm"
labyrinth="$PWD/build/labyrinth"
usage() {
  echo "usage: $0 [--out DIR] [--gap MS] [--labyrinth PATH] [--microvm OPTS] [--vmms LIST]" >&2
  exit 2
}
while (($#)); do
  [[ $# -ge 2 ]] || usage
  case "$1" in
    --out) out="$2" ;;
    --gap) gap="$2" ;;
    --labyrinth) labyrinth="$2" ;;
    --microvm) microvm="$2" ;;
    --vmms) vmms="$2" ;;
    *) usage ;;
  esac
  shift 2
done
kernel="$(guest/linux/fetch_kernel.sh)"
initrd="$(guest/linux/make_initramfs.sh)"
args="console=ttyS0 reboot=k panic=-1 quiet initcall_debug printk.time=1 log_buf_len=8M labyrinth.test=dmesg-gaps=$gap"
mkdir -p "$out"
cat >"$out/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$kernel", "initrd_path": "$initrd", "boot_args": "$args"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}, "serial": {"input": "none"}}
JSON
for vmm in $vmms; do
  case "$vmm" in
    labyrinth) cmd=("$labyrinth" run --config "$out/vm.json" --stats) ;;
    microvm)
      cmd=(qemu-system-x86_64 -M "$microvm" -accel kvm -cpu host -m 256 -smp 1 -display none
        -no-reboot -nodefaults -no-user-config -serial stdio
        -kernel "$kernel" -initrd "$initrd" -append "$args")
      ;;
    *) usage ;;
  esac
  start=$(date +%s%N)
  timeout 1800 "${cmd[@]}" </dev/null >"$out/$vmm.log" 2>"$out/$vmm.err" || {
    echo "$0: $vmm failed (status $?); see $out/$vmm.err" >&2
    exit 1
  }
  echo "$vmm: $(((($(date +%s%N) - start)) / 1000000)) ms wall," \
    "$(grep -m1 -o 'reached init after [0-9.]* s' "$out/$vmm.log")"
done
[[ " $vmms " == *" labyrinth "* && " $vmms " == *" microvm "* ]] || exit 0

# gaps: "<masked pair>\t<ms>\t<pair as printed>"; the mask turns numbers and addresses
# into '#', so that the same pair of messages matches between the two boots.
gaps() {
  tr -d '\r' <"$1" | sed -n 's/^labyrinth-gap: \([0-9.]*\) ms | \(.*\)$/\1\t\2/p' |
    awk -F'\t' '{ m = $2; gsub(/\[ *[0-9.]+\]/, "", m); gsub(/0x[0-9a-fA-F]+|[0-9a-fA-F]*[0-9][0-9a-fA-F]*/, "#", m)
                  print m "\t" $1 "\t" $2 }'
}
gaps "$out/labyrinth.log" >"$out/labyrinth.gaps"
gaps "$out/microvm.log" >"$out/microvm.gaps"
echo
echo "Gaps above $gap ms (labyrinth, microvm; pairs of messages either VMM had):"
printf '%10s %10s  %s\n' labyrinth microvm "message before | message after"
awk -F'\t' -v gap="$gap" '
  FNR == NR { mv[$1] = $2; txt[$1] = $3; next }
  { lb[$1] = $2; txt[$1] = $3 }
  END { for (k in txt) printf "%10s %10s  %s\n", (k in lb) ? lb[k] : "<" gap, (k in mv) ? mv[k] : "<" gap,
          substr(txt[k], 1, 150) }' "$out/microvm.gaps" "$out/labyrinth.gaps" | sort -k1,1 -rn

echo
echo "Initcalls and probes of $gap ms or more under either VMM (usecs):"
calls() { tr -d '\r' <"$1" | sed -n 's/.*\] \(initcall [^ ]*\|probe of [^ ]*\) returned .* after \([0-9]*\) usecs.*/\1\t\2/p'; }
calls "$out/labyrinth.log" >"$out/labyrinth.calls"
calls "$out/microvm.log" >"$out/microvm.calls"
printf '%12s %12s %7s  %s\n' labyrinth microvm ratio ""
awk -F'\t' -v gap="$gap" '
  FNR == NR { mv[$1] = $2; all[$1] = 1; next }
  { lb[$1] = $2; all[$1] = 1 }
  END { for (k in all) printf "%12s %12s %7s  %s\n", (k in lb) ? lb[k] : "<" gap * 1000,
          (k in mv) ? mv[k] : "<" gap * 1000, (k in lb && k in mv) ? sprintf("%.2fx", lb[k] / mv[k]) : "-", k }' \
  "$out/microvm.calls" "$out/labyrinth.calls" | sort -k1,1 -rn
