#!/usr/bin/env bash
# SIGTERM -> exit of `labyrinth run`, with and without seccomp filters, alternating, and
# where the main thread's time goes (docs/hardening.md, "SIGTERM shutdown"):
#   tests/vmm/bench/sigterm_teardown.sh [PAIRS] [CONFIG]     (default 4, configs/lnic_latency.json)
# Each run is traced with strace -f -T; per run it prints the time from the signal to
# exit_group and the four system calls the main thread spent most time in after it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
pairs="${1:-4}" config="${2:-configs/lnic_latency.json}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((i = 0; i < pairs; ++i)); do
  for mode in on off; do
    opt=()
    [[ $mode == off ]] && opt=(--no-seccomp)
    rm -f "$tmp"/t.*
    strace -f -T -ttt -ff -o "$tmp/t" build/labyrinth run "${opt[@]}" --config "$config" \
      >/dev/null 2>&1 &
    tracer=$!
    sleep 3
    pid=$(pgrep -P "$tracer" -x labyrinth)
    t0=$(date +%s.%N)
    kill -TERM "$pid"
    wait "$tracer" || true
    python3 - "$tmp/t.$pid" "$t0" "$mode" <<'PY'
import collections, re, sys
path, t0, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
spent, end = collections.Counter(), None
for line in open(path):
    m = re.match(r'([\d.]+) (.*)', line)
    if not m or float(m.group(1)) < t0:
        continue
    rest = m.group(2)
    if rest.startswith('exit_group'):
        end = float(m.group(1))
    d = re.search(r'<([\d.]+)>$', rest)
    if not d:
        continue
    name = re.match(r'(\w+)\(', rest).group(1)
    if name == 'ioctl':
        name += ' ' + rest.split(',')[1].strip()
    spent[name] += float(d.group(1))
top = ', '.join('%s %.0f' % (k, 1000 * v) for k, v in spent.most_common(4))
print(f'filters {mode}: SIGTERM -> exit {1000 * (end - t0):.0f} ms; main thread: {top}')
PY
  done
done
