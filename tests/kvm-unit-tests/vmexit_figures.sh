#!/usr/bin/env bash
# tests/kvm-unit-tests/vmexit_figures.sh — kvm-unit-tests' vmexit microbenchmarks
# (x86/vmexit.c: cycles per exit, from the guest's TSC) under QEMU -accel kvm and under
# Labyrinth on the same host, and the ratio Labyrinth / QEMU of their medians.
#
#   tests/kvm-unit-tests/vmexit_figures.sh [--runs N] [--tests "cpuid vmcall ..."]
#
# - Each run boots vmexit.flat once per VMM and test through the suite's own x86/run
#   (unmodified; Labyrinth through tests/kvm-unit-tests/labyrinth-qemu), with the
#   parameters x86/unittests.cfg gives that test (params_of below); the VMMs alternate run
#   by run so that a slow stretch of the host weighs on both. Default: 5 runs of cpuid
#   vmcall inl_from_qemu inl_from_kernel ipi tscdeadline tscdeadline_immed.
#   inl_from_qemu is an exit to the VMM's userspace and back (an unmapped port: QEMU's
#   unassigned-I/O path against Labyrinth's bus); inl_from_kernel (port 0x4d0) stays in
#   KVM; cpuid and vmcall are KVM's own exits, the same code under both VMMs.
#   pci-mem and pci-io (pci-testdev's BARs, which x86/run asks for from both VMMs) give one
#   figure per device test, "mmio-no-eventfd:pci-mem" and so on: QEMU hands its "*-eventfd"
#   tests' writes to KVM ioeventfds, Labyrinth takes every one in userspace
#   (devices/pci/pci_testdev.h), so only the no-eventfd rows compare like with like.
# - Where this machine has no usable /dev/kvm the whole script runs in the test VM
#   (scripts/vm.sh). There KVM itself runs under QEMU TCG: absolute cycles mean nothing
#   and only the ratios are printed; on a KVM host the medians are printed too.
# - The suite is built under build/kvm-unit-tests by scripts/kvm_unit_tests.sh.
# Output: a Markdown table (test, runs, ratio; cycles on real KVM). Exit status: 0,
# 2 usage or the suite could not be built, 1 a VMM produced no figure for a test.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
runs=5 tests="cpuid vmcall inl_from_qemu inl_from_kernel ipi tscdeadline tscdeadline_immed"
while (($#)); do
  case "$1" in
    --runs) runs="${2:?}"; shift 2 ;;
    --tests) tests="${2:?}"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--tests \"cpuid vmcall ...\"]" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "$0: --runs wants a positive count" >&2; exit 2; }

src=$(scripts/kvm_unit_tests.sh "$root/build/kvm-unit-tests") || exit 2
if [[ ${LABYRINTH_IN_TEST_VM:-0} != 1 ]]; then
  source scripts/kvm_env.sh
  kvm_decide build/labyrinth >&2
  if [[ $KVM_WHERE == vm ]]; then
    exec scripts/vm.sh --timeout 3600 "$0" --runs "$runs" --tests "$tests"
  fi
fi
if [[ ${LABYRINTH_IN_TEST_VM:-0} == 1 ]]; then
  host_kind="TCG-emulated test VM (QEMU TCG, kvm_amd inside): ratios only"
  absolute=0
elif grep -qw hypervisor /proc/cpuinfo; then
  host_kind="nested KVM: ratios only"
  absolute=0
else
  host_kind="bare KVM ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))"
  absolute=1
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# One boot per test, with the parameters x86/unittests.cfg gives that test. (All tests in
# one -smp 2 boot, as before session 15, gave QEMU's default CPU no TSC-deadline timer:
# "tscdeadline (skipped)"; and under Labyrinth the second CPU ran the parallel tscdeadline
# test with its LVTT never switched to deadline mode — has_tscdeadline() programs the
# calling CPU's only — and waited for good, so ipi, after it, never ran.)
params_of() {
  case "$1" in
    ipi) echo "-smp 2 -machine pit=off" ;;
    ipi_halt) echo "-smp 2" ;;
    tscdeadline | tscdeadline_immed) echo "-smp 1 -cpu qemu64,+x2apic,+tsc-deadline" ;;
    *) echo "-smp 1" ;;
  esac
}
for ((r = 1; r <= runs; r++)); do
  for v in qemu labyrinth; do
    qemu=qemu-system-x86_64
    [[ $v == labyrinth ]] && qemu=$root/tests/kvm-unit-tests/labyrinth-qemu
    : >"$out/$v.$r"
    for t in $tests; do
      # x86/run prints the guest's console on stdout: "<test> <cycles>" per test.
      # shellcheck disable=SC2046 # the parameters are words
      (cd "$src" && QEMU=$qemu ACCEL=kvm TIMEOUT=120s ./x86/run x86/vmexit.flat \
         $(params_of "$t") -append "$t" 2>/dev/null) | tr -d '\r' >>"$out/$v.$r" || true
    done
    echo "run $r $v: $(grep -E '^[a-z_:-]+ [0-9]+$' "$out/$v.$r" | tr '\n' ' ')" >&2
  done
done

# Whole cycles, never awk's %.6g (1.5e+06 is no number to bc).
median() { sort -n | awk '{a[NR] = $1} END {if (NR == 0) exit 1; printf "%.0f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "vmexit.flat, $runs run(s) per VMM, one boot per test (x86/unittests.cfg parameters); host: $host_kind; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
if ((absolute)); then
  echo "| test | QEMU cycles (median) | Labyrinth cycles (median) | Labyrinth / QEMU |"
  echo "| --- | ---: | ---: | ---: |"
else
  echo "| test | Labyrinth / QEMU (median cycles) | runs with a figure (QEMU, Labyrinth) |"
  echo "| --- | ---: | --- |"
fi
status=0
# pci-mem / pci-io stand for the device tests that printed "<name>:pci-mem <cycles>".
rows=
for t in $tests; do
  if [[ $t == pci-mem || $t == pci-io ]]; then
    sub=$(cat "$out"/*.* | awk -v t=":$t" 'NF == 2 && substr($1, length($1) - length(t) + 1) == t {print $1}' | sort -u)
    rows+=" ${sub:-$t}"
  else
    rows+=" $t"
  fi
done
for t in $rows; do
  # A figure is "<test> <cycles>"; "<test> (skipped)" is none.
  fig='$1 == t && NF == 2 && $2 ~ /^[0-9]+$/'
  q=$(cat "$out"/qemu.* | awk -v t="$t" "$fig {print \$2}" | median || true)
  l=$(cat "$out"/labyrinth.* | awk -v t="$t" "$fig {print \$2}" | median || true)
  nq=$(cat "$out"/qemu.* | awk -v t="$t" "$fig" | wc -l)
  nl=$(cat "$out"/labyrinth.* | awk -v t="$t" "$fig" | wc -l)
  if [[ -z $q || -z $l ]]; then
    ratio="no figure"
    status=1
  else
    ratio=$(echo "scale=2; $l / $q" | bc -l)
  fi
  if ((absolute)); then
    echo "| $t | ${q:--} | ${l:--} | $ratio |"
  else
    echo "| $t | $ratio | $nq, $nl |"
  fi
done
exit $status
