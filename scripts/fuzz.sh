#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/) for a bounded time and prints, per target,
# executions per second and libFuzzer's final coverage (cov: edges, ft: features).
#   scripts/fuzz.sh                    every target, 60 s each
#   scripts/fuzz.sh --seconds 600      a longer campaign
#   scripts/fuzz.sh --seconds 20 lnic_fuzz pio_fuzz
# Builds build-fuzz/ first (scripts/build.sh fuzz; incremental). Each target starts
# from its seed corpus tests/fuzz/corpus/<target>/ (regression inputs included) and
# grows a working corpus in build-fuzz/corpus/<target>/; a finding is saved under
# build-fuzz/artifacts/<target>/. Exit status: 0 if no target found anything, 1 if
# any did (its log is printed), 2 on usage errors. c_api_fuzz needs /dev/kvm and is
# skipped (with a note) where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "scripts/fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "scripts/fuzz.sh: --seconds N (N > 0)" >&2; exit 2; }
((${#targets[@]})) || targets=(config_fuzz elf_fuzz lnic_fuzz pio_fuzz c_api_fuzz)

nice -n 5 scripts/build.sh fuzz >/dev/null
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for symbolizer in /usr/bin/llvm-symbolizer-19 /usr/bin/llvm-symbolizer; do
  if [[ -x $symbolizer ]]; then export ASAN_SYMBOLIZER_PATH=$symbolizer; break; fi
done

failed=0
printf '%-12s %8s %12s %10s %8s %8s  %s\n' target seconds execs execs/s cov ft result
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz/$t
  [[ -x $bin ]] || { echo "scripts/fuzz.sh: no target $t" >&2; exit 2; }
  if [[ $t == c_api_fuzz && ! -w /dev/kvm ]]; then
    printf '%-12s %8s  skipped: needs /dev/kvm (the C API maps chunks into a KVM VM)\n' "$t" -
    continue
  fi
  work=build-fuzz/corpus/$t artifacts=build-fuzz/artifacts/$t
  log=build-fuzz/logs/$t.log
  mkdir -p "$work" "$artifacts" build-fuzz/logs
  status=0
  nice -n 5 "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if ((status != 0)); then
    result="FINDING (exit $status): $(ls -t "$artifacts" 2>/dev/null | head -1)"
    failed=1
  fi
  printf '%-12s %8s %12s %10s %8s %8s  %s\n' "$t" "$seconds" "${execs:--}" "${rate:--}" \
    "${cov:--}" "${ft:--}" "$result"
  if ((status != 0)); then
    grep -E 'FUZZ_CHECK|ERROR: |SUMMARY|runtime error|==[0-9]+==' "$log" | head -20 >&2 || true
    echo "  full log: $log" >&2
  fi
done
exit $failed
