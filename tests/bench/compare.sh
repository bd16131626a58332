#!/usr/bin/env bash
# tests/bench/compare.sh — one benchmark binary from two builds, run alternately in one
# script, medians and the new/old ratio per benchmark.
#
#   tests/bench/compare.sh OLD_BINARY NEW_BINARY [--rounds N] [--metric NAME] [-- BENCHMARK_ARGS...]
#   tests/bench/compare.sh /work/base/build/bench/alloc_bench build/bench/alloc_bench \
#       --rounds 3 -- --benchmark_filter='BM_1T_Pool' --benchmark_repetitions=5
#
# Why alternate: this is a shared, noisy machine; running all of "old" and then all of
# "new" puts any drift in the machine's load into the ratio. Old and new take turns, each
# round runs both, and the medians are taken over every repetition of every round.
# The figure compared is Google Benchmark's real_time for manual_time/real_time rows and
# cpu_time otherwise (what each row reports as its main figure), or --metric NAME: any
# field of the JSON rows (cpu_time, or a counter such as alloc_p50_ns). On a loaded
# machine cpu_time moves less than real_time: waiting for a core is not counted. A row that errored in
# any run (SkipWithError) is reported as such and makes the script exit 1.
# Exit status: 0 compared, 1 a row errored or a binary failed, 2 usage.
set -euo pipefail
usage() { echo "usage: $0 OLD_BINARY NEW_BINARY [--rounds N] [--metric NAME] [-- BENCHMARK_ARGS...]" >&2; exit 2; }
(($# >= 2)) || usage
old="$1" new="$2"
shift 2
rounds=3 metric=""
while (($#)); do
  case "$1" in
    --rounds) rounds="${2:?}"; shift 2 ;;
    --metric) metric="${2:?}"; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
for b in "$old" "$new"; do [[ -x $b ]] || { echo "$0: not an executable: $b" >&2; exit 2; }; done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "$0: --rounds wants a positive integer" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for side in old new; do
    bin=$old
    [[ $side == new ]] && bin=$new
    if ! "$bin" --benchmark_format=json --benchmark_out="$out/$side.$r.json" \
         --benchmark_out_format=json "$@" >/dev/null; then
      echo "$0: $side binary failed in round $r ($bin)" >&2
      exit 1
    fi
  done
done

python3 - "$out" "$rounds" "$old" "$new" "$metric" <<'EOF'
import json, statistics, sys, glob, os
out, rounds, old, new, metric = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows, errors, order = {}, [], []
for side in ("old", "new"):
    for path in sorted(glob.glob(os.path.join(out, f"{side}.*.json"))):
        for b in json.load(open(path))["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b["name"]
            if name not in order:
                order.append(name)
            if b.get("error_occurred"):
                errors.append(f"{side} {name}: {b.get('error_message', '')}")
                continue
            key = metric or ("real_time" if ("manual_time" in name or "real_time" in name) else "cpu_time")
            if key not in b:
                errors.append(f"{side} {name}: no field {key}")
                continue
            unit = b["time_unit"] if key.endswith("_time") else ""
            rows.setdefault(name, {"old": [], "new": [], "unit": unit})[side].append(b[key])
print(f"old: {old}\nnew: {new}\nrounds: {rounds} (alternating); median over every repetition"
      f" of {metric or 'real_time (manual/real_time rows) or cpu_time'}")
print(f"{'benchmark':<62} {'old':>10} {'new':>10} {'new/old':>8}")
for name in order:
    r = rows.get(name)
    if not r or not r["old"] or not r["new"]:
        continue
    o, n = statistics.median(r["old"]), statistics.median(r["new"])
    print(f"{name:<62} {o:>8.1f}{r['unit']:>2} {n:>8.1f}{r['unit']:>2} {n / o:>8.3f}")
for e in errors:
    print("ERROR", e)
sys.exit(1 if errors else 0)
EOF
