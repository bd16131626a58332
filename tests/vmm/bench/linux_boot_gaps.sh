#!/usr/bin/env bash
# Where a Linux boot spends its time under labyrinth and under QEMU's microvm machine,
# from the guest's own printk timestamps: the same kernel and initramfs, a user's
# command line plus `initcall_debug printk.time=1 loglevel=8` (no `quiet`: every
# message reaches the serial console, as a user sees it), one boot each.
#
#   tests/vmm/bench/linux_boot_gaps.sh [--out DIR] [--gap MS] [--slow MS]
#       [--labyrinth PATH] [--microvm MACHINE_OPTS] [--vmms "labyrinth microvm"]
#
# Keeps each console log in DIR (default build/boot-gaps) and prints
#   - every gap between two consecutive printk lines above --gap ms (default 5) in
#     labyrinth's log, with the lines around it, and the same pair's gap under microvm
#     when microvm printed the same message (numbers and addresses masked);
#   - every initcall (`initcall X returned R after N usecs`) that took --slow ms (default
#     5) or more under either VMM, with both times and the ratio.
# Needs standard KVM (the test VM). Absolute times there are TCG's; the comparison is
# between the two columns of one run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=build/boot-gaps gap=5 slow=5 microvm="microvm,rtc=on" vmms="labyrinth microvm"
labyrinth="$PWD/build/labyrinth"
usage() {
  echo "usage: $0 [--out DIR] [--gap MS] [--slow MS] [--labyrinth PATH] [--microvm OPTS] [--vmms LIST]" >&2
  exit 2
}
while (($#)); do
  [[ $# -ge 2 ]] || usage
  case "$1" in
    --out) out="$2" ;;
    --gap) gap="$2" ;;
    --slow) slow="$2" ;;
    --labyrinth) labyrinth="$2" ;;
    --microvm) microvm="$2" ;;
    --vmms) vmms="$2" ;;
    *) usage ;;
  esac
  shift 2
done
kernel="$(guest/linux/fetch_kernel.sh)"
initrd="$(guest/linux/make_initramfs.sh)"
args="console=ttyS0 reboot=k panic=-1 initcall_debug printk.time=1 loglevel=8 labyrinth.test=poweroff"
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
  echo "$vmm: $(((($(date +%s%N) - start)) / 1000000)) ms wall, $(grep -c '^\[' "$out/$vmm.log") printk lines," \
    "$(grep -m1 -o 'reached init after [0-9.]* s' "$out/$vmm.log")"
done
[[ " $vmms " == *" labyrinth "* && " $vmms " == *" microvm "* ]] || exit 0

# "<time s>\t<masked message>" per printk line. The mask turns every number and
# address into '#', so that the same message matches between the two boots.
norm() {
  tr -d '\r' <"$1" | sed -n 's/^\[ *\([0-9]*\.[0-9]*\)\] \(.*\)$/\1\t\2/p' |
    awk -F'\t' '{ m = $2; gsub(/0x[0-9a-fA-F]+|[0-9a-fA-F]*[0-9][0-9a-fA-F]*/, "#", m); print $1 "\t" m "\t" $2 }'
}
norm "$out/labyrinth.log" >"$out/labyrinth.tsv"
norm "$out/microvm.log" >"$out/microvm.tsv"

echo
echo "Gaps above $gap ms in labyrinth's log (previous line -> line; microvm's gap for the same pair of messages, '-' when microvm has no such pair):"
awk -F'\t' -v gap="$gap" '
  FNR == NR { if (pm != "") { k = pm "\t" $2; if (!(k in mv)) mv[k] = ($1 - pt) * 1000 } pt = $1; pm = $2; next }
  { if (lm != "") { d = ($1 - lt) * 1000
      if (d > gap) { k = lm "\t" $2; printf "%8.1f ms  (microvm %s)  [%s] %s\n              -> [%s] %s\n", d,
          (k in mv) ? sprintf("%.1f ms", mv[k]) : "-", lt, substr(ll, 1, 90), $1, substr($3, 1, 90) } }
    lt = $1; lm = $2; ll = $3 }' "$out/microvm.tsv" "$out/labyrinth.tsv"

echo
echo "Initcalls of $slow ms or more under either VMM (usecs):"
initcalls() { tr -d '\r' <"$1" | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs.*/\1 \2/p'; }
initcalls "$out/microvm.log" >"$out/microvm.initcalls"
initcalls "$out/labyrinth.log" >"$out/labyrinth.initcalls"
printf '%-44s %12s %12s %7s\n' initcall labyrinth microvm ratio
awk -v slow="$slow" '
  FNR == NR { mv[$1] = $2; next }
  { lb[$1] = $2; if ($2 >= slow * 1000 || mv[$1] >= slow * 1000) order[++n] = $1 }
  END { for (k in mv) if (!(k in lb) && mv[k] >= slow * 1000) order[++n] = k
        for (i = 1; i <= n; i++) { k = order[i]
          printf "%-44s %12s %12s %7s\n", k, (k in lb) ? lb[k] : "-", (k in mv) ? mv[k] : "-",
            (k in lb && mv[k] > 0) ? sprintf("%.2fx", lb[k] / mv[k]) : "-" } }' \
  "$out/microvm.initcalls" "$out/labyrinth.initcalls"
echo
echo "Sum of all initcalls: labyrinth $(awk '{s += $2} END {print s}' "$out/labyrinth.initcalls") us," \
  "microvm $(awk '{s += $2} END {print s}' "$out/microvm.initcalls") us"
echo "Messages only labyrinth printed (masked, first 40):"
awk -F'\t' 'FNR == NR { mv[$2] = 1; next } !($2 in mv) { print "  " substr($3, 1, 110) }' \
  "$out/microvm.tsv" "$out/labyrinth.tsv" | head -40
