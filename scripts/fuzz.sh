#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/) for a bounded time and prints, per target,
# executions per second, libFuzzer's coverage at start and end (cov: edges, ft:
# features) and the CPU seconds the target really got.
#   scripts/fuzz.sh                        every target, 60 s (wall) each
#   scripts/fuzz.sh --seconds 20 lnic_fuzz pio_fuzz
#   scripts/fuzz.sh --cpu-seconds 720 --nice 19 config_fuzz   a campaign: each target runs
#                                          until it has had 720 s of CPU (user + system,
#                                          from /proc/<pid>/stat), however long that takes
#                                          on a loaded or SIGSTOP'ed machine
# Builds the targets first (scripts/build.sh fuzz: build-asan/fuzz/, in the ASan+UBSan
# tree; incremental; --no-build skips that and runs the binaries as they are; --bindir
# DIR runs copies elsewhere). Each target starts
# from its seed corpus tests/fuzz/corpus/<target>/ (regression inputs included) and grows
# a working corpus in OUT/corpus/<target>/; a finding is saved under
# OUT/artifacts/<target>/, the log in OUT/logs/<target>.log (OUT: --out DIR, default
# build-asan/fuzzing; separate OUTs let a short run and a campaign share the binaries).
# Exit status: 0 if no target found anything, 1 if any did (its log is printed), 2 on
# usage errors.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60 cpu_seconds=0 niceness=5 build=1 bindir=build-asan/fuzz out=build-asan/fuzzing
all=()  # every target there is: tests/fuzz/<target>.cc
for f in tests/fuzz/*_fuzz.cc; do f=${f##*/}; all+=("${f%.cc}"); done
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --cpu-seconds) cpu_seconds="${2:?--cpu-seconds needs a value}"; shift 2 ;;
    --nice) niceness="${2:?--nice needs a value}"; shift 2 ;;
    --bindir) bindir="${2:?--bindir needs a directory}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "scripts/fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
for n in "$seconds" "$cpu_seconds" "$niceness"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "scripts/fuzz.sh: numbers must be >= 0" >&2; exit 2; }
done
((seconds > 0)) || { echo "scripts/fuzz.sh: --seconds N (N > 0)" >&2; exit 2; }
((${#targets[@]})) || targets=("${all[@]}")

((build)) && nice -n 5 scripts/build.sh fuzz >/dev/null
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for symbolizer in /usr/bin/llvm-symbolizer-19 /usr/bin/llvm-symbolizer; do
  if [[ -x $symbolizer ]]; then export ASAN_SYMBOLIZER_PATH=$symbolizer; break; fi
done
tick=$(getconf CLK_TCK)

# CPU seconds (user + system) of a live process; empty once it is gone.
cpu_of() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }  # after "pid (comm) "
  read -r -a f <<<"$stat"
  echo $(((f[11] + f[12]) / tick))  # utime, stime: fields 14 and 15
}

failed=0
printf '%-12s %8s %12s %9s %13s %13s  %s\n' target cpu-s execs execs/s "cov/ft start" \
  "cov/ft end" result
for t in "${targets[@]}"; do
  bin=$bindir/$t
  [[ -x $bin ]] || { echo "scripts/fuzz.sh: no target $t" >&2; exit 2; }
  work=$out/corpus/$t artifacts=$out/artifacts/$t
  log=$out/logs/$t.log
  mkdir -p "$work" "$artifacts" "$out/logs"
  limit=$seconds
  ((cpu_seconds > 0)) && limit=0  # no wall-clock limit: the CPU budget ends the run
  nice -n "$niceness" "$bin" -max_total_time="$limit" -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1 &
  pid=$! cpu=0
  while kill -0 "$pid" 2>/dev/null; do
    now=$(cpu_of "$pid")
    [[ -n $now ]] && cpu=$now
    if ((cpu_seconds > 0 && cpu >= cpu_seconds)); then
      kill -INT "$pid" 2>/dev/null || true  # libFuzzer prints its final stats and exits
      break
    fi
    sleep 1
  done
  status=0
  wait "$pid" || status=$?
  # libFuzzer's exit status after SIGINT (-interrupted_exitcode) is 72: not a finding.
  ((cpu_seconds > 0 && status == 72)) && status=0
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  start=$(grep -m1 -o 'INITED cov: [0-9]* ft: [0-9]*' "$log" | awk '{print $3 "/" $5}')
  end=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 | awk '{print $2 "/" $4}')
  result=ok
  if ((status != 0)); then
    result="FINDING (exit $status): $(ls -t "$artifacts" 2>/dev/null | head -1)"
    failed=1
  fi
  printf '%-12s %8s %12s %9s %13s %13s  %s\n' "$t" "$cpu" "${execs:--}" "${rate:--}" \
    "${start:--}" "${end:--}" "$result"
  if ((status != 0)); then
    grep -E 'FUZZ_CHECK|ERROR: |SUMMARY|runtime error|==[0-9]+==' "$log" | head -20 >&2 || true
    echo "  full log: $log" >&2
  fi
done
exit $failed
