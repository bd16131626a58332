#!/usr/bin/env bash
# tests/kvm-unit-tests/run.sh — kvm-unit-tests' own run_tests.sh, unmodified, against QEMU
# and against Labyrinth on the same host, one test at a time in turn, and a table of
# both results and times.
#
#   tests/kvm-unit-tests/run.sh [--vmms "qemu labyrinth"] [--timeout SECONDS] [--batch]
#       [--table FILE] [--expect-pass FILE] [TEST...]
#
# - The suite is the pinned upstream archive in ../shared/peers (or $KVM_UNIT_TESTS_TARBALL),
#   checked against its sha256, extracted and built under build/kvm-unit-tests/ (never
#   into the project's sources, never patched) by scripts/kvm_unit_tests.sh.
# - The suite's build directory: $LABYRINTH_KUT_BUILD (default build/kvm-unit-tests); the
#   Labyrinth binary: $LABYRINTH (default build/labyrinth; the shim reads it).
# - Labyrinth runs through tests/kvm-unit-tests/labyrinth-qemu (QEMU=<shim>), QEMU as
#   qemu-system-x86_64; both with ACCEL=kvm and the suite's TIMEOUT.
# - TEST... are the suite's test names (x86/unittests.cfg); default: all of them.
# - Where this machine has no usable /dev/kvm the whole run goes into the test VM
#   (scripts/vm.sh), as every KVM test of the project does.
# - --table FILE writes the Markdown table (test, QEMU, Labyrinth, seconds each) with the
#   host kind; it is always printed. A test's seconds are its VMM process's, from its start
#   to its exit (tests/kvm-unit-tests/timed-vmm, the QEMU= of both VMMs, writes them; for
#   Labyrinth they include the shim in front of it), not the suite's harness around it;
#   "-" where no VMM ran the test (the suite skipped it, or refused it after its probe).
# - --batch: one run_tests.sh per VMM for all the tests, instead of one per test. Each call
#   of run_tests.sh walks the whole x86/unittests.cfg (~55 s of bash forks inside the test
#   VM, whichever test it runs), so CI's list runs in ~1/3 of the time; the table's last
#   row has each VMM's whole run_tests.sh time.
# - --expect-pass FILE: one test name a line; the run fails (status 1) when one of them
#   does not PASS under Labyrinth (CI's regression check).
# Exit status: 0 done (and every expected test passed), 1 an expected test did not pass,
# 2 usage or the suite could not be built.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
vmms="qemu labyrinth" timeout=90 table="" expect="" batch=0
usage() {
  echo "usage: $0 [--vmms \"qemu labyrinth\"] [--timeout SECONDS] [--batch] [--table FILE]" \
    "[--expect-pass FILE] [TEST...]" >&2
  exit 2
}
tests=()
while (($#)); do
  case "$1" in
    --vmms) vmms="${2:?}"; shift 2 ;;
    --timeout) timeout="${2:?}"; shift 2 ;;
    --table) table="${2:?}"; shift 2 ;;
    --batch) batch=1; shift ;;
    --expect-pass) expect="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) tests+=("$1"); shift ;;
  esac
done
[[ $timeout =~ ^[1-9][0-9]*$ ]] || { echo "$0: --timeout wants seconds" >&2; exit 2; }
for v in $vmms; do
  [[ $v == qemu || $v == labyrinth ]] || { echo "$0: unknown VMM '$v' (qemu, labyrinth)" >&2; exit 2; }
done
[[ -z $expect || -f $expect ]] || { echo "$0: --expect-pass: no file $expect" >&2; exit 2; }

# --- the suite, built under build/ -------------------------------------------------------
src=$(scripts/kvm_unit_tests.sh "${LABYRINTH_KUT_BUILD:-$root/build/kvm-unit-tests}") ||
  exit 2  # the one builder

# --- where KVM runs ----------------------------------------------------------------------
if [[ ${LABYRINTH_IN_TEST_VM:-0} != 1 ]]; then
  source scripts/kvm_env.sh
  kvm_decide build/labyrinth
  if [[ $KVM_WHERE == vm ]]; then
    args=(--vmms "$vmms" --timeout "$timeout")
    ((batch)) && args+=(--batch)
    [[ -n $table ]] && args+=(--table "$(realpath -m "$table")")
    [[ -n $expect ]] && args+=(--expect-pass "$(realpath "$expect")")
    exec scripts/vm.sh --timeout 5400 "$0" "${args[@]}" "${tests[@]}"
  fi
fi

if ((${#tests[@]} == 0)) && [[ -n $expect ]]; then
  mapfile -t tests < <(grep -v -e '^#' -e '^$' "$expect")
elif ((${#tests[@]} == 0)); then
  mapfile -t tests < <(sed -n 's/^\[\(.*\)\]$/\1/p' "$src/x86/unittests.cfg")
fi
# The host kind beside every figure: the test VM, a KVM nested under another hypervisor,
# or bare KVM.
if [[ ${LABYRINTH_IN_TEST_VM:-0} == 1 ]]; then
  host_kind="TCG-emulated standard KVM (the test VM: QEMU TCG, kvm_amd inside)"
elif grep -qw hypervisor /proc/cpuinfo; then
  host_kind="nested KVM (this kernel runs under $(lscpu | sed -n 's/^Hypervisor vendor: *//p'))"
else
  host_kind="bare KVM"
fi

declare -A result seconds
times=$(mktemp)  # timed-vmm's "TESTNAME SECONDS STATUS" lines, one run_tests.sh call's
trap 'rm -f "$times"' EXIT
# One run_tests.sh for the tests given: QEMU=the VMM's binary, each VMM its own log
# directory (logs-qemu/, logs-labyrinth/ in the suite's tree, the last test's log kept
# there): two runs side by side must not rotate each other's. It prints "PASS name
# (...)", "FAIL name ...", "SKIP name (...)" a test. QEMU= is timed-vmm in front of the
# VMM; it leaves each real run's time in $times (emptied here first).
run_suite() {  # vmm test...
  local v="$1" qemu=qemu-system-x86_64
  shift
  [[ $v == labyrinth ]] && qemu=$root/tests/kvm-unit-tests/labyrinth-qemu
  : >"$times"
  (cd "$src" && QEMU=$root/tests/kvm-unit-tests/timed-vmm LABYRINTH_KUT_VMM=$qemu \
     LABYRINTH_KUT_TIMES=$times ACCEL=kvm TIMEOUT=${timeout}s unittest_log_dir=logs-$v \
     ./run_tests.sh "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' || true)
}
vmm_seconds() {  # test: its VMM seconds from $times (summed if it ran twice), or "-"
  awk -v t="$1" '$1 == t { s += $2; n++ } END { if (n) printf "%.1f", s; else print "-" }' \
    "$times"
}
result_of() {  # output test
  grep -E "^(PASS|FAIL|SKIP) $2( |\$)" <<<"$1" | head -1 || true
}
if ((batch)); then
  for v in $vmms; do
    t0=$(date +%s.%N)
    out=$(run_suite "$v" "${tests[@]}")
    t1=$(date +%s.%N)
    total=$(printf '%.1f' "$(echo "$t1 - $t0" | bc -l)")
    for t in "${tests[@]}"; do
      line=$(result_of "$out" "$t")
      [[ -n $line ]] || line="FAIL $t (no result line from run_tests.sh)"
      result[$t,$v]=$line
      seconds[$t,$v]=$(vmm_seconds "$t")
      echo "$v: $line (VMM ${seconds[$t,$v]} s)"
    done
    seconds[total,$v]=$total
    echo "$v: ${#tests[@]} tests in one run_tests.sh, $total s"
  done
else
  for t in "${tests[@]}"; do
    for v in $vmms; do
      t0=$(date +%s.%N)
      line=$(result_of "$(run_suite "$v" "$t")" "$t")
      t1=$(date +%s.%N)
      [[ -n $line ]] || line="FAIL $t (no result line from run_tests.sh)"
      result[$t,$v]=$line
      seconds[$t,$v]=$(vmm_seconds "$t")
      echo "$v: $line (VMM ${seconds[$t,$v]} s, run_tests.sh $(printf '%.1f' "$(echo "$t1 - $t0" | bc -l)") s)"
    done
  done
fi

render() {
  echo "kvm-unit-tests (the pinned archive, sha256 $(cut -c1-12 "$src/../stamp")...) under" \
    "run_tests.sh (TIMEOUT=${timeout}s);"
  echo "host: $host_kind; $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Seconds: each test's VMM process, start to exit (timed-vmm)."
  echo
  local header="| test |" rule="| --- |"
  for v in $vmms; do header+=" $v | $v s |"; rule+=" --- | ---: |"; done
  echo "$header"
  echo "$rule"
  for t in "${tests[@]}"; do
    local row="| $t |"
    for v in $vmms; do
      local r=${result[$t,$v]}
      # "PASS name (summary)" -> "PASS (summary)"; keep the suite's words.
      r=${r/ $t/}
      row+=" ${r//|/\\|} | ${seconds[$t,$v]} |"
    done
    echo "$row"
  done
  if ((batch)); then
    local row="| (all, one run_tests.sh) |"
    for v in $vmms; do row+=" | ${seconds[total,$v]} |"; done
    echo "$row"
  fi
}
render
[[ -n $table ]] && render >"$table"

status=0
if [[ -n $expect ]]; then
  while read -r t; do
    [[ -z $t || $t == \#* ]] && continue
    r=${result[$t,labyrinth]:-}
    if [[ $r != PASS* ]]; then
      echo "expected to pass under Labyrinth: $t: ${r:-not run}"
      status=1
    fi
  done <"$expect"
fi
exit $status
