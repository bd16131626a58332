#!/usr/bin/env bash
# Sets up, builds and runs every test: the full build (g++), then everything again
# under ASan+UBSan and under TSan (clang-19; the sanitizer builds boot the guests the
# g++ build made). Builds run on this machine; the tests run natively where /dev/kvm
# boots a guest and inside the test VM (scripts/vm.sh: QEMU TCG with a real kvm_amd)
# where it does not, or always with LABYRINTH_TEST_VM=1. One line says which.
# Under CI=true a skipped test fails the run (LABYRINTH_ALLOW_SKIPS=1 overrides that
# outside CI). Last, every libFuzzer target runs 20 s from its seed corpus (scripts/fuzz.sh).
# Exit status: non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/kvm_env.sh
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
for symbolizer in /usr/bin/llvm-symbolizer-19 /usr/bin/llvm-symbolizer /usr/bin/llvm-symbolizer-14; do
  if [[ -x $symbolizer ]]; then
    export ASAN_SYMBOLIZER_PATH=$symbolizer
    export TSAN_OPTIONS="$TSAN_OPTIONS:external_symbolizer_path=$symbolizer"
    break
  fi
done
no_skips=0
if [[ ${CI:-} == true && ${LABYRINTH_ALLOW_SKIPS:-0} != 1 ]]; then no_skips=1; fi
started=$SECONDS

# One ctest run, on this host or in the test VM, appended to $log.
ctest_in() {  # where ctest-args...
  local where="$1" status
  shift
  set +e
  if [[ $where == vm ]]; then
    scripts/vm.sh ctest "$@" --output-on-failure --timeout 1800 2>&1 | tee -a "$log"
  else
    ctest "$@" --output-on-failure --timeout 1800 2>&1 | tee -a "$log"
  fi
  status=${PIPESTATUS[0]}
  set -e
  return "$status"
}

# Fails (status 1) when a ctest log shows a skipped test and CI forbids skips.
check_skips() {  # log label
  if ((no_skips)) && grep -q -E '\((Skipped|Not Run|Disabled)\)' "$1"; then
    echo "== $2: FAILED: tests were skipped under CI (a skipped test is not a passed test):"
    grep -E '\((Skipped|Not Run|Disabled)\)' "$1"
    return 1
  fi
}

# The stock-Linux boots (label linux) and kvm-unit-tests' run_tests.sh (label kut) take
# minutes of emulated guest kernel in the test VM, on one core (the VM has one vCPU). They start in a VM of their own in the
# background once the release build's other tests passed, and the rest of the run
# (lint, the sanitizer builds and their tests) goes on beside them on the other core;
# finish_linux_vm collects them at the end.
linux_pid=""
long_labels="linux|kut"
start_linux_vm() {  # dir
  linux_dir="$1" linux_t0=$SECONDS
  echo "== $linux_dir: the linux and kut tests start in a second test VM, in the background"
  rm -f "$linux_dir"/ctest-linux.{log,rc,pgid}
  (
    set +e
    # its own process group (setsid), so that stop_linux_vm can end QEMU with it
    setsid scripts/vm.sh ctest --test-dir "$linux_dir" -L "$long_labels" --output-on-failure \
      --timeout 1800 >"$linux_dir/ctest-linux.log" 2>&1 &
    echo $! >"$linux_dir/ctest-linux.pgid"
    wait $!
    echo $? >"$linux_dir/ctest-linux.rc"
  ) &
  linux_pid=$!
}
finish_linux_vm() {
  [[ -n $linux_pid ]] || return 0
  local status
  echo "== $linux_dir: waiting for the linux and kut tests (test VM, background)"
  wait "$linux_pid" || true
  linux_pid=""
  cat "$linux_dir/ctest-linux.log"
  status="$(cat "$linux_dir/ctest-linux.rc" 2>/dev/null || echo 1)"
  echo "== $linux_dir: linux and kut tests: ctest status $status, $((SECONDS - linux_t0)) s from start to collection (test VM)"
  ((status == 0)) || return "$status"
  check_skips "$linux_dir/ctest-linux.log" "$linux_dir (linux)"
}
# A sanitizer tree's kvm tests (test VM) in the background while the next build
# compiles on this host: the test VM runs on one core (one vCPU), so a build beside it
# uses the core that would otherwise idle. One at a time; finish_vm_tests collects it.
vm_pid="" vm_dir=""
start_vm_tests() {  # dir
  vm_dir="$1" vm_t0=$SECONDS
  echo "== $vm_dir: the kvm tests start in the test VM, in the background"
  rm -f "$vm_dir"/ctest-vm.{log,rc,pgid}
  (
    set +e
    setsid scripts/vm.sh ctest --test-dir "$vm_dir" -L kvm -LE "$long_labels" \
      --output-on-failure --timeout 1800 >"$vm_dir/ctest-vm.log" 2>&1 &
    echo $! >"$vm_dir/ctest-vm.pgid"
    wait $!
    echo $? >"$vm_dir/ctest-vm.rc"
  ) &
  vm_pid=$!
}
finish_vm_tests() {
  [[ -n $vm_pid ]] || return 0
  local status
  echo "== $vm_dir: waiting for the kvm tests (test VM, background)"
  wait "$vm_pid" || true
  vm_pid=""
  cat "$vm_dir/ctest-vm.log" | tee -a "$vm_dir/ctest.log"
  status="$(cat "$vm_dir/ctest-vm.rc" 2>/dev/null || echo 1)"
  echo "== $vm_dir: kvm tests: ctest status $status, $((SECONDS - vm_t0)) s from start to collection (test VM)"
  ((status == 0)) || return "$status"
  check_skips "$vm_dir/ctest.log" "$vm_dir (kvm)"
}

# Ends a background VM job (its process group) and the subshell that waits for it.
stop_background() {  # pid pgid-file
  local pid="$1" pgid="" i
  # The background subshell writes the pgid right after it starts setsid: a failure in
  # the first instants after the start may get here before it has.
  for ((i = 0; i < 50; ++i)); do
    pgid="$(cat "$2" 2>/dev/null || true)"
    [[ -n $pgid ]] || ! kill -0 "$pid" 2>/dev/null && break
    sleep 0.1
  done
  [[ -n $pgid ]] && kill -- "-$pgid" 2>/dev/null
  kill "$pid" 2>/dev/null || true
}
# A failed run must not leave a background VM behind.
stop_vms() {
  [[ -z $vm_pid ]] || stop_background "$vm_pid" "$vm_dir/ctest-vm.pgid"
  [[ -z $linux_pid ]] || stop_background "$linux_pid" "$linux_dir/ctest-linux.pgid"
}
trap stop_vms EXIT

# ctest over one build tree; fails on a skipped test under CI. Where the tests run:
#   /dev/kvm works here        everything on this host — except that on a nested PVM KVM,
#                              whose guest CPL 0 is ~1000x slow, the labels linux (stock
#                              Linux boots) and kut (kvm-unit-tests) go to the test VM;
#   no working /dev/kvm here   what needs KVM (label kvm) in the test VM, the rest
#                              (allocator, unit and host-side tests) on this host.
# Wherever those two labels go to the test VM they run there in the background
# (start_linux_vm). with_linux=0 leaves them out (the sanitizer builds, which have no kut
# test either).
# bg_vm=1 (no working /dev/kvm here only): the kvm tests start in the background
# (start_vm_tests) after the host's, and finish_vm_tests collects them.
run_tests() {  # dir with_linux [bg_vm]
  local dir="$1" with_linux="$2" bg_vm="${3:-0}" t0=$SECONDS status=0 where
  log="$dir/ctest.log"
  : >"$log"
  if [[ $KVM_WHERE == vm ]]; then
    where="this host, tests labelled kvm in the test VM (no working /dev/kvm here)"
    # As on a PVM host: the kvm tests first, in a VM that has the machine to itself
    # (some measure time; a second TCG VM beside it halved its speed and thinned the
    # latency floor to 65 of 1,010 ticks), then the linux VM beside the rest of the run.
    ctest_in native --test-dir "$dir" -LE "kvm|$long_labels" || status=$?
    if ((bg_vm)); then
      ((status == 0)) && start_vm_tests "$dir"
      where="this host; tests labelled kvm in the test VM in the background (no working /dev/kvm here)"
    else
      ctest_in vm --test-dir "$dir" -L kvm -LE "$long_labels" || status=$?
    fi
    if ((with_linux)); then
      ((status == 0)) && start_linux_vm "$dir"
      where+=", then linux and kut in a second test VM"
    fi
  elif ((with_linux)) && [[ -d /sys/module/kvm_pvm ]] &&
    ctest --test-dir "$dir" -N -L "$long_labels" | grep -q -E 'Total Tests: [1-9]'; then
    where="native, linux and kut tests in the test VM (PVM host)"
    # The native tests first, on a machine of their own (some measure time), then the
    # linux VM beside the rest of the run.
    ctest_in native --test-dir "$dir" -LE "$long_labels" || status=$?
    ((status == 0)) && start_linux_vm "$dir"
  elif ((with_linux)); then
    where=native
    ctest_in native --test-dir "$dir" || status=$?
  else
    where=native
    ctest_in native --test-dir "$dir" -LE "$long_labels" || status=$?
  fi
  echo "== $dir: ctest status $status in $((SECONDS - t0)) s ($where)"
  if ((status != 0)); then return "$status"; fi
  check_skips "$log" "$dir"
}

echo "== build (g++) and test"
scripts/build.sh release
# The stock-Linux kit (kernel + test initramfs from Debian's packages): fetched here,
# on the host — the test VM has no network.
echo "linux guest kit: $(guest/linux/make_initramfs.sh)"
kvm_decide build/labyrinth
run_tests build 1

echo "== scripts/vm.sh: its own checks (tests/scripts/vm_sh_test.sh)"
tests/scripts/vm_sh_test.sh

echo "== the kvm-unit-tests QEMU shim (tests/scripts/kut_shim_test.sh)"
tests/scripts/kut_shim_test.sh

echo "== clang-format-19 (.clang-format): every C/C++ file"
git ls-files '*.cc' '*.h' '*.c' | xargs clang-format-19 --dry-run --Werror

echo "== clang-tidy-19: allocator, devices, vmm"
scripts/lint.sh allocator devices vmm

# The sanitizer builds run everything but the stock-Linux boots (label linux: minutes of
# emulated guest kernel each in the test VM; the g++ build runs them).
# Where the kvm tests go to the test VM, each sanitizer tree's run there in the
# background while the next build compiles (start_vm_tests), one VM stage at a time.
echo "== ASan+UBSan (clang-19)"
scripts/build.sh asan
run_tests build-asan 0 1

echo "== TSan (clang-19)"
# niced: beside ASan's kvm tests in the background VM, which some measure time
nice -n 10 scripts/build.sh tsan
finish_vm_tests
run_tests build-tsan 0 1

# Fuzzing (tests/fuzz/, issue 9): every libFuzzer target for a short fixed time from its
# seed corpus (regression inputs included), a fresh working corpus each run. Campaigns:
# scripts/fuzz.sh --cpu-seconds N (docs/hardening.md).
echo "== libFuzzer targets (clang-19, ASan+UBSan): 20 s each"
rm -rf build-fuzz/ci
scripts/fuzz.sh --seconds 20 --out build-fuzz/ci

finish_vm_tests
finish_linux_vm

echo "== all tests passed in $((SECONDS - started)) s (KVM work: $KVM_WHERE)"
