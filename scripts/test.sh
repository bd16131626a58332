#!/usr/bin/env bash
# Sets up, builds and runs every test: the full build (g++), then everything again
# under ASan+UBSan and under TSan (clang-19; the sanitizer builds boot the guests the
# g++ build made). Builds run on this machine; the tests run natively where /dev/kvm
# boots a guest and inside the test VM (scripts/vm.sh: QEMU TCG with a real kvm_amd)
# where it does not, or always with LABYRINTH_TEST_VM=1. One line says which.
# Under CI=true a skipped test fails the run (LABYRINTH_ALLOW_SKIPS=1 overrides that
# outside CI). clang-tidy runs beside all of it (niced); every libFuzzer target runs 20 s
# from its seed corpus once the ASan+UBSan tree is built (scripts/fuzz.sh).
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

# Background jobs: the kvm tests of a tree and the stock-Linux boots in the test VM
# (one vCPU: one core), and clang-tidy (niced, so it takes what the rest leaves: the
# core beside a VM stage, the gaps between builds). A job runs in its own process group
# (setsid), so that a failed run can end it, QEMU included (stop_jobs); its output goes to
# LOG, and finish_job prints that and returns the job's status.
declare -A job_pid=() job_log=() job_t0=()
start_job() {  # name log command...
  local name="$1" log="$2"
  shift 2
  echo "== $name: starts in the background"
  rm -f "$log" "$log.rc" "$log.pgid"
  (
    set +e
    setsid "$@" >"$log" 2>&1 &
    echo $! >"$log.pgid"
    wait $!
    echo $? >"$log.rc"
  ) &
  job_pid[$name]=$! job_log[$name]=$log job_t0[$name]=$SECONDS
}
finish_job() {  # name
  local name="$1" status
  [[ -n ${job_pid[$name]:-} ]] || return 0
  echo "== $name: waiting for it (background)"
  wait "${job_pid[$name]}" || true
  unset "job_pid[$name]"
  cat "${job_log[$name]}"
  status="$(cat "${job_log[$name]}.rc" 2>/dev/null || echo 1)"
  echo "== $name: status $status, $((SECONDS - job_t0[$name])) s from start to collection"
  return "$status"
}
# Ends a background job (its process group) and the subshell that waits for it.
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
# A failed run must not leave a background VM (or lint) behind.
stop_jobs() {
  local name
  for name in "${!job_pid[@]}"; do stop_background "${job_pid[$name]}" "${job_log[$name]}.pgid"; done
}
trap stop_jobs EXIT

# The stock-Linux boots (label linux) and kvm-unit-tests' run_tests.sh (label kut) take
# minutes of emulated guest kernel in the test VM. They start in a VM of their own once
# the release build's other tests passed; finish_linux_vm collects them at the end.
long_labels="linux|kut"
start_linux_vm() {  # dir
  linux_dir="$1"
  start_job "$linux_dir linux+kut (test VM)" "$linux_dir/ctest-linux.log" \
    scripts/vm.sh ctest --test-dir "$linux_dir" -L "$long_labels" --output-on-failure --timeout 1800
}
finish_linux_vm() {
  [[ -n ${linux_dir:-} ]] || return 0
  local dir="$linux_dir"
  linux_dir=""
  finish_job "$dir linux+kut (test VM)" || return
  check_skips "$dir/ctest-linux.log" "$dir (linux)"
}
# A sanitizer tree's kvm tests in the test VM while the next build compiles on this
# host. One at a time; finish_vm_tests collects it.
vm_dir=""
start_vm_tests() {  # dir
  # One test VM at a time: some kvm tests measure time, and a second TCG VM beside them
  # halves their speed. The linux VM is done by now on a CI machine; if not, wait for it.
  # (|| return: set -e does not reach into a function called from an && list)
  finish_linux_vm || return
  vm_dir="$1"
  start_job "$vm_dir kvm (test VM)" "$vm_dir/ctest-vm.log" \
    scripts/vm.sh ctest --test-dir "$vm_dir" -L kvm -LE "$long_labels" --output-on-failure --timeout 1800
}
finish_vm_tests() {
  [[ -n $vm_dir ]] || return 0
  local dir="$vm_dir" status=0
  vm_dir=""
  finish_job "$dir kvm (test VM)" || status=$?
  cat "$dir/ctest-vm.log" >>"$dir/ctest.log"
  ((status == 0)) || return "$status"
  check_skips "$dir/ctest.log" "$dir (kvm)"
}

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
# clang-tidy needs only build/compile_commands.json: it runs from here to the end at the
# lowest priority, on whatever core the rest leaves idle (the host tests are serial, a VM
# stage takes one core). With autogroup scheduling (Debian's kernels) nice only orders
# processes inside one session, and the job has a session of its own (setsid): its
# session's weight is lowered too, or it would take a third of the machine from the
# build and the VM beside it.
start_job "clang-tidy-19 (allocator, devices, vmm)" build/lint.log \
  sh -c '{ echo 19 >/proc/self/autogroup; } 2>/dev/null; exec nice -n 19 scripts/lint.sh allocator devices vmm'
run_tests build 1

# scripts/vm.sh's own checks boot four small test VMs that mostly sleep (~2.5 min, little
# CPU): in the background beside the rest, collected at the end.
start_job "scripts/vm.sh: its own checks (tests/scripts/vm_sh_test.sh)" build/vm_sh_test.log \
  tests/scripts/vm_sh_test.sh

echo "== the kvm-unit-tests QEMU shim (tests/scripts/kut_shim_test.sh)"
tests/scripts/kut_shim_test.sh

echo "== clang-format-19 (.clang-format): every C/C++ file"
git ls-files '*.cc' '*.h' '*.c' | xargs clang-format-19 --dry-run --Werror

# The sanitizer builds run everything but the stock-Linux boots (label linux: minutes of
# emulated guest kernel each in the test VM; the g++ build runs them).
# Where the kvm tests go to the test VM, each sanitizer tree's run there in the
# background while the next build compiles (start_vm_tests), one VM stage at a time.
echo "== ASan+UBSan (clang-19; the libFuzzer targets too)"
scripts/build.sh asan

# Fuzzing (tests/fuzz/, issue 9): every libFuzzer target for a short fixed time from its
# seed corpus (regression inputs included), a fresh working corpus each run; one core,
# beside the linux VM. Campaigns: scripts/fuzz.sh --cpu-seconds N (docs/hardening.md).
echo "== libFuzzer targets (build-asan/fuzz/): 20 s each"
rm -rf build-asan/fuzz-ci
scripts/fuzz.sh --no-build --seconds 20 --out build-asan/fuzz-ci

run_tests build-asan 0 1

echo "== TSan (clang-19)"
# Beside ASan's kvm tests in the background VM, which some measure time: the VM job is a
# session of its own, and autogroup scheduling gives each session an equal share, so the
# VM keeps a core against the build's two jobs; without autogroup, nice does that.
nice -n 10 scripts/build.sh tsan
finish_vm_tests
run_tests build-tsan 0 1

finish_vm_tests
finish_linux_vm
finish_job "scripts/vm.sh: its own checks (tests/scripts/vm_sh_test.sh)"
finish_job "clang-tidy-19 (allocator, devices, vmm)"

echo "== all tests passed in $((SECONDS - started)) s (KVM work: $KVM_WHERE)"
